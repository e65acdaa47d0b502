"""Timeline playback in the window: scrubbing shows the frame at the playhead, Space plays
the picture against a clock (with no audio device: the wall clock, and the status bar says
so), frames ahead of the playhead are cached and exposed as time ranges."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.core import paths
from studio.core.document import Document
from studio.core.project import CurveTrack, Key, Project
from studio.core.settings import Settings
from studio.render.playback import frame_index
from studio.ui.audio_player import NO_DEVICE
from studio.ui.imageutil import from_qimage

torch = pytest.importorskip("torch")


def _tiny_model(path, seed=0, resolution=32):
    """A tiny untrained face model with a strong "smile" control direction."""
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(seed)
    G = Generator(z_dim=32, w_dim=32, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(64, 32), None).mean(dim=(0, 1)))
    direction = np.random.default_rng(seed).standard_normal(32).astype(np.float32) * 2.0
    path.parent.mkdir(parents=True, exist_ok=True)
    save_face_model(path, G, name=f"Tiny {seed}", source="tests",
                    training={"untrained": True}, controls={"smile": direction})
    return path


@pytest.fixture(autouse=True)
def no_shipped_models(monkeypatch, tmp_path):
    monkeypatch.setattr("studio.core.model_registry.shipped_face_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.core.paths.shipped_models_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.face.model_ref.default_face_model", lambda: None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def play_window(qtbot):
    from studio.ui.main_window import MainWindow

    _tiny_model(paths.user_models_dir() / "face" / "tiny.safetensors")
    project = Project()
    # the smile channel rises from 0 to 3 over 4 seconds: every frame looks different
    project.timeline.tracks = [CurveTrack(channel="smile", keys=[
        Key(t=0.0, v=0.0, interp="linear"), Key(t=4.0, v=3.0, interp="linear")])]
    w = MainWindow(Settings(device="cpu", precision="fp32"), Document(project),
                   offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    # this test machine has no sound, and neither may any other that runs it
    w.playback.player.set_backend(None, NO_DEVICE)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(w.panels["face"].is_ready, timeout=20000)
    qtbot.waitUntil(lambda: w.playback.shown_index == 0, timeout=20000)
    yield w
    w.document.history.mark_clean()
    w.close()


def _shown(window) -> np.ndarray:
    return from_qimage(window.viewport.image)[..., :3].astype(np.int16)


def test_scrubbing_the_playhead_changes_the_viewport(play_window, qtbot):
    w = play_window
    fps = w.document.project.timeline.fps
    qtbot.waitUntil(lambda: w.panels["face"].is_ready() and w.playback.idle, timeout=20000)
    start = _shown(w)
    for t in (0.7, 1.9, 3.2):  # what the timeline ruler does when the user drags it
        w.app.transport.seek(t)
    qtbot.waitUntil(lambda: w.playback.shown_index == frame_index(3.2, fps), timeout=20000)
    late = _shown(w)
    assert np.abs(late - start).mean() > 2.0  # the face changed with the smile curve
    # back to the start: the cached first frame comes back exactly
    w.app.transport.seek(0.0)
    qtbot.waitUntil(lambda: w.playback.shown_index == 0, timeout=20000)
    assert np.array_equal(_shown(w), start)
    assert not w.app.transport.playing


def test_space_plays_frames_without_an_audio_device(play_window, qtbot):
    w = play_window
    clock = FakeClock()
    w.playback.clock = clock
    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=5000)
    first = _shown(w)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert w.app.transport.playing
    label = w.playback.status_label
    assert label.isVisible() and "no sound" in label.text() and "wall clock" in label.text()
    assert w.playback.bar.play_btn.text().endswith("Pause")
    seen = [w.playback.shown_index]
    for _ in range(3):
        clock.now += 0.8  # 20 frames at 25 fps
        target = w.app.transport.time + 0.8
        qtbot.waitUntil(lambda target=target: w.app.transport.time >= target - 1e-9,
                        timeout=10000)
        qtbot.waitUntil(lambda: w.playback.shown_index > seen[-1], timeout=20000)
        seen.append(w.playback.shown_index)
    assert seen == sorted(seen) and len(set(seen)) == 4  # the picture moved on each time
    assert np.abs(_shown(w) - first).mean() > 2.0
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert not w.app.transport.playing
    assert w.playback.bar.play_btn.text().endswith("Play")
    assert not label.isVisible()
    stopped_at = w.app.transport.time
    clock.now += 5.0
    qtbot.wait(50)  # paused: the clock moving on moves nothing (no assertion on timing)
    assert w.app.transport.time == stopped_at


def test_playback_reaches_the_end_and_stops(play_window, qtbot):
    w = play_window
    clock = FakeClock()
    w.playback.clock = clock
    w.playback.toggle()
    clock.now += 60.0
    qtbot.waitUntil(lambda: not w.app.transport.playing, timeout=10000)
    assert w.app.transport.time == w.document.project.timeline.duration
    w.playback.toggle()  # play at the end starts again from the start
    assert w.app.transport.playing and w.app.transport.time == 0.0
    w.playback.toggle()


def test_frames_ahead_of_the_playhead_are_cached_as_ranges(play_window, qtbot):
    w = play_window
    state = w.ctx.playback
    fps = w.document.project.timeline.fps
    changes = []
    w.playback.cache_changed.connect(lambda: changes.append(state.cached_ranges))
    w.app.transport.seek(1.0)
    qtbot.waitUntil(lambda: any(a <= 1.0 and b >= 1.0 + 2.0 for a, b in state.cached_ranges),
                    timeout=30000)
    assert changes
    (a, b), *_ = [r for r in state.cached_ranges if r[0] <= 1.0 < r[1]]
    assert a <= 1.0 and b - a >= 2.0
    assert all(round(x * fps, 6) == int(round(x * fps)) for r in state.cached_ranges for x in r)
    # scrubbing into the cached range shows cached frames: nothing new is rendered
    qtbot.waitUntil(lambda: w.playback.idle, timeout=20000)
    rendered = w.playback.worker.rendered
    w.app.transport.seek(2.0)
    qtbot.waitUntil(lambda: w.playback.shown_index == frame_index(2.0, fps), timeout=5000)
    assert w.playback.worker.rendered == rendered
    # an edit of the timeline changes the pixels: the old frames no longer count, and the
    # frame at the playhead is rendered again
    before = _shown(w)
    track = w.document.project.timeline.tracks[0]
    from studio.timeline.commands import AddKey

    w.document.push(AddKey(track.id, 2.0, -3.0, "linear"))
    assert state.cached_ranges == []
    qtbot.waitUntil(lambda: np.abs(_shown(w) - before).mean() > 2.0, timeout=20000)
    qtbot.waitUntil(lambda: any(a <= 2.0 < b for a, b in state.cached_ranges), timeout=30000)


class FakeStream:
    def __init__(self) -> None:
        self.time = 50.0
        self.latency = 0.1


class FakeSoundDevice:
    """sounddevice's play/stop/get_stream, with a stream clock the test moves."""

    def __init__(self) -> None:
        self.stream = FakeStream()
        self.played: list[tuple[np.ndarray, int]] = []
        self.stops = 0

    def play(self, data, sample_rate):
        self.played.append((np.array(data), sample_rate))

    def get_stream(self):
        return self.stream

    def stop(self):
        self.stops += 1


def test_picture_follows_the_audio_clock_of_the_mix(play_window, qtbot, tmp_path):
    from studio.core.project import Clip
    from studio.voice.audio_io import save_audio

    w = play_window
    sr = 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr).astype(np.float32)
    save_audio(tmp_path / "audio" / "tone.wav", tone, sr)
    project = w.document.project.model_copy(deep=True)
    project.timeline.clips = [Clip(kind="audio", start=0.5, duration=2.0, offset=0.0,
                                   audio="audio/tone.wav", gain=0.5)]
    w.document.replace(project, tmp_path / "talk.dhproj")
    sd = FakeSoundDevice()
    w.playback.player.set_backend(sd)
    clock = FakeClock()  # the wall clock stands still: only the audio clock moves
    w.playback.clock = clock
    w.playback.toggle()
    qtbot.waitUntil(lambda: bool(sd.played), timeout=20000)
    audio, rate = sd.played[0]
    assert len(audio) == 10 * rate  # the mix from the playhead to the end
    assert np.abs(audio[: int(0.45 * rate)]).max() == 0.0  # silence before the clip
    loud = np.abs(audio[int(0.6 * rate): int(2.4 * rate)]).max()
    assert 0.2 < loud < 0.3  # the clip's level at half gain
    assert "no sound" not in w.playback.status_label.text()
    sd.stream.time += 1.1  # one second heard (0.1 s is still in the output latency)
    qtbot.waitUntil(lambda: w.app.transport.time == pytest.approx(1.0), timeout=10000)
    fps = w.document.project.timeline.fps
    qtbot.waitUntil(lambda: w.playback.shown_index is not None
                    and w.playback.shown_index > frame_index(0.5, fps), timeout=20000)
    assert w.playback.player.clock_source == "audio"
    w.playback.toggle()
    assert sd.stops >= 1 and not w.playback.player.playing
