"""A personal voice end to end on a tiny test user: train (cancel, resume), speak with the
model file (timings unchanged, pitch and timbre moved), timeline speech clip, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import FileFormatError
from studio.core.jobs import JobCancelled, JobContext
from studio.voice.analysis import median_f0
from studio.voice.settings import VoiceSettings
from studio.voice.spectral import aligned_mcd, analyze
from studio.voice.test_user import make_test_user, speak_as_user

SENTENCES = ["The young baker carried fresh bread.", "Please check the thermostat soon."]


def _drive(gen, on_progress=None):
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(p)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from studio.train.voice_train import train_voice_job

    root = tmp_path_factory.mktemp("personal")
    make_test_user(root / "takes", SENTENCES)
    out = root / "me.safetensors"
    ctx = JobContext()

    def cancel_at_25(p):
        if p.step == 25:
            ctx.cancel()

    kwargs = dict(steps=40, batch=4, crop=32, min_takes=2)
    with pytest.raises(JobCancelled):
        _drive(train_voice_job(ctx, root / "takes", out, **kwargs), cancel_at_25)
    assert not out.exists() and (root / "me.run" / "checkpoint.pt").exists()
    steps = []
    result = _drive(train_voice_job(JobContext(), root / "takes", out, resume=True, **kwargs),
                    lambda p: steps.append(p.step) if p.step else None)
    assert steps[0] > 25  # resumed after the checkpoint, not from scratch
    assert result["takes"] == 2 and out.is_file()
    return out, result


def test_speaking_with_the_model_keeps_timings_and_moves_the_voice(trained):
    from studio.voice.personal import load_personal_voice
    from studio.voice.synth import synthesize

    path, result = trained
    voice = load_personal_voice(path)
    assert 3.0 < voice.pitch_semitones < 6.0  # the hidden change is x1.3 = +4.5 semitones
    text = SENTENCES[0]
    mine = synthesize(text, str(path), cache=None)
    base = synthesize(text, "joe", VoiceSettings(rate=1.0 / voice.rate), cache=None)
    assert len(mine.audio) == len(base.audio)
    assert [(p.phoneme, p.start, p.end) for p in mine.phonemes] == \
        [(p.phoneme, p.start, p.end) for p in base.phonemes]
    sr = base.sample_rate
    assert median_f0(mine.audio, sr) > 1.15 * median_f0(base.audio, sr)
    user, _ = speak_as_user(text)
    target = analyze(user, sr)
    assert aligned_mcd(analyze(mine.audio, sr), target) < aligned_mcd(analyze(base.audio, sr),
                                                                      target)


def test_timeline_speech_clip_uses_the_personal_voice(trained, tmp_path):
    from studio.timeline.speech import speech_to_timeline_job
    from studio.voice.audio_io import load_audio
    from studio.voice.synth import synthesize

    path, _ = trained
    text = SENTENCES[1]
    item = _drive(speech_to_timeline_job(JobContext(), text, str(path),
                                         VoiceSettings(voice=str(path)), tmp_path))
    assert item.curves and item.speech.phonemes
    written = load_audio(tmp_path / item.audio_rel, normalize=False).audio
    mine = synthesize(text, str(path))
    assert len(written) == len(mine.audio)
    assert np.corrcoef(written, mine.audio)[0, 1] > 0.99


def test_a_damaged_model_file_is_named(tmp_path, trained):
    from studio.voice.personal import load_personal_voice
    from studio.voice.voices import resolve_voice

    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(trained[0].read_bytes()[:200])
    with pytest.raises(FileFormatError, match="broken.safetensors"):
        load_personal_voice(bad)
    with pytest.raises(FileFormatError, match="broken.safetensors"):
        resolve_voice(str(bad))
