"""Piper and eSpeak: audio, phoneme timings that cover it and match the text, words."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import FileFormatError, StudioError
from studio.voice.analysis import estimate_f0, rms
from studio.voice.cache import SpeechCache
from studio.voice.espeak import get_espeak
from studio.voice.ipa import split_ipa, tokenize_words
from studio.voice.settings import VoiceSettings
from studio.voice.synth import synthesize
from studio.voice.types import SILENCE
from studio.voice.voices import choose_voice, list_voices, resolve_voice
from studio.voice.wordmap import align_sequences

HELLO = "Hello, I am your digital human. Peter bought a map!"  # as in conftest.py


def check_tiling(result):
    phones = result.phonemes
    assert phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(result.duration, abs=1e-6)
    for a, b in zip(phones, phones[1:], strict=False):
        assert a.end == pytest.approx(b.start, abs=1e-9)
        assert a.end > a.start


def pitch_ratio(a, b, sr):
    """Median of frame-by-frame pitch ratios where both are voiced."""
    fa, fb = estimate_f0(a, sr), estimate_f0(b, sr)
    n = min(len(fa), len(fb))
    both = (fa[:n] > 0) & (fb[:n] > 0)
    assert both.sum() > 10
    return float(np.median(fb[:n][both] / fa[:n][both]))


def edit_ratio(a, b):
    matched, _ = align_sequences(a, b)
    exact = sum(1 for i, j in enumerate(matched) if j is not None and a[i] == b[j])
    return exact / max(len(a), len(b))


@pytest.mark.parametrize("fixture", ["joe_speech", "espeak_speech"])
def test_speech_audio_and_timings(fixture, request):
    result = request.getfixturevalue(fixture)
    assert result.audio.dtype == np.float32 and result.audio.ndim == 1
    assert result.sample_rate == 22050
    assert 2.0 < result.duration < 5.0
    assert 0.05 < rms(result.audio) < 0.5
    assert np.max(np.abs(result.audio)) == pytest.approx(10 ** (-1 / 20), rel=0.01)
    check_tiling(result)
    # speech is where the phones say, silence where they say silence
    sr = result.sample_rate
    for p in result.phonemes:
        seg = result.audio[int(p.start * sr) : int(p.end * sr)]
        if p.phoneme == SILENCE and p.duration > 0.1 and p.start > 0 and p.end < result.duration:
            assert rms(seg) < 0.02
    voiced = [p for p in result.phonemes if p.phoneme in ("oʊ", "aɪ", "uː", "æ")]
    assert voiced and all(rms(result.audio[int(p.start * sr) : int(p.end * sr)]) > 0.05
                          for p in voiced)


@pytest.mark.parametrize("fixture", ["joe_speech", "espeak_speech"])
def test_phonemes_match_the_text(fixture, request):
    result = request.getfixturevalue(fixture)
    spoken = [p.phoneme for p in result.phonemes if p.phoneme != SILENCE]
    expected = split_ipa(" ".join(get_espeak().phonemize(HELLO, "en-us")))
    assert edit_ratio(spoken, expected) > 0.9
    assert spoken[:4] == ["h", "ə", "l", "oʊ"]
    assert spoken[-3:] == ["m", "æ", "p"]


@pytest.mark.parametrize("fixture", ["joe_speech", "espeak_speech"])
def test_words_follow_the_text(fixture, request):
    result = request.getfixturevalue(fixture)
    assert [w.word for w in result.words] == [t for t, _, _ in tokenize_words(HELLO)]
    for a, b in zip(result.words, result.words[1:], strict=False):
        assert a.end <= b.start + 1e-9
    for w in result.words:
        assert 0.05 < w.duration < 0.6, w
    # the sentence break lies between "human" and "Peter"
    human, peter = result.words[5], result.words[6]
    assert peter.start - human.end > 0.1
    assert result.sentence_ends[0] == pytest.approx(human.end, abs=1e-6)
    assert result.sentence_ends[-1] == pytest.approx(result.words[-1].end, abs=1e-6)
    # each word's phones: "map" ends in m æ p
    map_phones = [p.phoneme for p in result.phonemes
                  if result.words[-1].start - 1e-9 <= p.start < result.words[-1].end]
    assert map_phones == ["m", "æ", "p"]


def test_piper_is_deterministic(joe_speech):
    again = synthesize(HELLO, "joe", cache=None)
    assert np.array_equal(again.audio, joe_speech.audio)
    assert again.phonemes == joe_speech.phonemes


def test_rate_pitch_and_pauses():
    base = synthesize("Good morning to you.", "espeak:en-us", cache=None)
    fast = synthesize("Good morning to you.", "espeak:en-us", VoiceSettings(rate=1.6), cache=None)
    assert fast.duration < 0.8 * base.duration
    high = synthesize("Good morning to you.", "espeak:en-us", VoiceSettings(pitch=5), cache=None)
    # eSpeak's pitch flutter carries over between calls: a few samples of difference
    for a, b in zip(high.phonemes, base.phonemes, strict=True):
        assert a.phoneme == b.phoneme and abs(a.start - b.start) < 0.002
    assert pitch_ratio(base.audio, high.audio, 22050) == pytest.approx(2 ** (5 / 12), rel=0.03)
    paused = synthesize("Good morning [pause 700ms] to you.", "espeak:en-us", cache=None)
    gap = paused.words[2].start - paused.words[1].end
    assert gap > 0.65
    check_tiling(paused)
    two = "One sentence. Another sentence."
    plain = synthesize(two, "espeak:en-us", cache=None)
    spaced = synthesize(two, "espeak:en-us", VoiceSettings(sentence_pause=0.5), cache=None)
    assert spaced.duration == pytest.approx(plain.duration + 0.5, abs=0.01)
    assert spaced.words[2].start == pytest.approx(plain.words[2].start + 0.5, abs=0.01)
    # eSpeak differs by a few samples between calls (see above)
    assert spaced.words[1].end == pytest.approx(plain.words[1].end, abs=0.002)


def test_emphasis_is_marked_and_louder():
    plain = synthesize("I did not say that.", "espeak:en-us", cache=None)
    loud = synthesize("I did *not* say that.", "espeak:en-us", cache=None)
    assert [w.emphasis for w in loud.words] == [False, False, True, False, False]
    w = loud.words[2]
    sr = loud.sample_rate
    seg = slice(int(w.start * sr), int(w.end * sr))
    others = np.concatenate([loud.audio[: int(loud.words[1].end * sr)]])
    ref = np.concatenate([plain.audio[: int(plain.words[1].end * sr)]])
    gain = (rms(loud.audio[seg]) / rms(others)) / (rms(plain.audio[seg]) / rms(ref))
    assert gain > 1.3  # about +4 dB relative to the rest


def test_espeak_languages():
    de = synthesize("Guten Morgen, wie geht es dir?", "espeak:de", cache=None)
    assert [w.word for w in de.words] == ["Guten", "Morgen", "wie", "geht", "es", "dir"]
    check_tiling(de)
    assert rms(de.audio) > 0.05
    fr = synthesize("Café au lait, s'il vous plaît.", "espeak:fr", cache=None)
    assert fr.words[0].word == "Café" and fr.words[0].duration > 0.1
    with pytest.raises(StudioError, match="no voice"):
        synthesize("hi", "espeak:xx-nonexistent", cache=None)


def test_cache_memory_and_disk(tmp_path):
    cache = SpeechCache(max_items=2, folder=tmp_path)
    a = synthesize("Cache me.", "espeak:en-us", cache=cache)
    assert cache.misses == 1 and len(list(tmp_path.glob("*.npz"))) == 1
    b = synthesize("Cache me.", "espeak:en-us", cache=cache)
    assert cache.hits == 1 and np.array_equal(a.audio, b.audio) and a.phonemes == b.phonemes
    fresh = SpeechCache(folder=tmp_path)  # a new process: served from disk
    c = synthesize("Cache me.", "espeak:en-us", cache=fresh)
    assert fresh.hits == 1 and np.array_equal(a.audio, c.audio) and a.words == c.words
    synthesize("Cache me.", "espeak:en-us", VoiceSettings(rate=1.2), cache=cache)
    assert cache.misses == 2  # other settings, other entry
    next(tmp_path.glob("*.npz")).write_bytes(b"garbage")  # a damaged entry is replaced
    d = synthesize("Cache me.", "espeak:en-us", cache=SpeechCache(folder=tmp_path))
    assert d.duration > 0


def test_voices_and_errors(tmp_path):
    voices = list_voices([tmp_path])
    ids = [v.id for v in voices]
    assert ids[0] == "joe" and "espeak:en-us" in ids and "espeak:de" in ids
    joe = resolve_voice("joe")
    assert joe.engine == "piper" and joe.license == "CC0" and joe.model.is_file()
    assert resolve_voice(str(joe.model)).model == joe.model  # a path works too
    assert choose_voice("en-US").id == "joe"
    assert choose_voice("de").id == "espeak:de"  # no neural German voice: eSpeak
    with pytest.raises(StudioError, match="unknown voice"):
        resolve_voice("nobody")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(FileFormatError, match="config"):
        resolve_voice(str(bad))
    (tmp_path / "broken.onnx.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileFormatError, match="Piper voice config"):
        resolve_voice(str(bad))
    with pytest.raises(StudioError, match="nothing to say"):
        synthesize("[pause 1s]", "espeak:en-us", cache=None)
    with pytest.raises(StudioError, match="out of range"):
        VoiceSettings(pitch=30)


def test_piper_voice_copied_to_a_folder(tmp_path):
    joe = resolve_voice("joe")
    import shutil

    shutil.copy(joe.model, tmp_path / "my-voice.onnx")
    shutil.copy(joe.config, tmp_path / "my-voice.onnx.json")
    found = [v for v in list_voices([tmp_path], espeak=False) if v.name == "my-voice"]
    assert found and found[0].engine == "piper" and found[0].sample_rate == 22050
    assert resolve_voice("piper:my-voice", [tmp_path]).model == tmp_path / "my-voice.onnx"


def test_nothing_to_pronounce():
    with pytest.raises(StudioError, match="nothing to"):
        synthesize("…", "espeak:en-us", cache=None)


def test_voice_and_animate_never_load_qt_or_sound_devices():
    import subprocess
    import sys

    code = (
        "import sys, importlib, pkgutil, studio.voice, studio.animate\n"
        "for pkg in (studio.voice, studio.animate):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "import studio.cli.voice_cmds\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'sounddevice', 'PyQt5', 'PyQt6')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
