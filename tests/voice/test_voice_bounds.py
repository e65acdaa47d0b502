"""Hostile or huge input to the voice code gives one clear line, never a hang, a traceback
or gigabytes (issue 9: never abort, never corrupt)."""

from __future__ import annotations

import json
import os

import pytest

from studio.core.errors import FileFormatError, StudioError
from studio.voice.tags import Pause, TagError, TextRun, parse_tags
from studio.voice.types import load_timings, parse_timings

MAX_SPEECH_SECONDS = 10_800.0  # studio.voice.types.MAX_SPEECH_SECONDS: 3 hours
MAX_TOTAL_PAUSE = 600.0  # studio.voice.tags.MAX_TOTAL_PAUSE
MAX_SENTENCE_CHARS = 400  # studio.voice.chunking.MAX_SENTENCE_CHARS


def test_the_limits_are_what_the_tests_assume():
    from studio.animate.lipsync import MAX_DURATION
    from studio.voice import chunking, tags, types

    assert types.MAX_SPEECH_SECONDS == MAX_SPEECH_SECONDS == MAX_DURATION
    assert tags.MAX_TOTAL_PAUSE == MAX_TOTAL_PAUSE
    assert chunking.MAX_SENTENCE_CHARS == MAX_SENTENCE_CHARS


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    return text


# ------------------------------------------------------------------- timings files


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1%s}]}' % ("0" * 400),
         "far too large"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1%s}]}' % ("0" * 5000),
         "too many digits"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1e6}]}', "at most 10800 s"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1e12}]}', "at most 10800 s"),
        ('{"words": [{"word": "a", "start": 0, "end": 1}], "duration": 1e9}', "at most 10800"),
        ('{"words": [], "sentence_ends": [5e7]}', r"sentence_ends\[0\] is 5e\+07 s"),
    ],
)
def test_hostile_timings_give_one_line(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=message) as err:
        load_timings(path)
    assert "bad.json" in _one_line(err.value)


def test_timings_within_the_limit_still_load():
    t = parse_timings(json.dumps({"phonemes": [
        {"phoneme": "a", "start": 0, "end": MAX_SPEECH_SECONDS}]}))
    assert t.end_time == MAX_SPEECH_SECONDS


def test_timings_from_a_device_a_fifo_or_a_huge_file(tmp_path):
    from studio.voice.types import MAX_TIMINGS_BYTES

    with pytest.raises(FileFormatError, match="not a regular file") as err:
        load_timings("/dev/zero")
    _one_line(err.value)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(FileFormatError, match="not a regular file"):
        load_timings(fifo)  # opening it would block until a writer came
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(MAX_TIMINGS_BYTES + 1)  # sparse: no disk used
    with pytest.raises(FileFormatError, match="too large"):
        load_timings(big)
    with pytest.raises(FileFormatError, match="folder"):
        load_timings(tmp_path)


def test_audio_from_a_device_or_a_fifo(tmp_path):
    from studio.voice.audio_io import load_audio

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        with pytest.raises(FileFormatError, match="not a regular file"):
            load_audio(path)


def test_overlong_audio_is_refused_before_decoding(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from studio.voice import audio_io

    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(16000 * 3, np.float32), 16000)
    monkeypatch.setattr(audio_io, "MAX_AUDIO_SECONDS", 2.0)
    monkeypatch.setattr(audio_io, "_read_soundfile", lambda p: pytest.fail("decoded"))
    with pytest.raises(FileFormatError, match="at most 2 s"):
        audio_io.load_audio(path)


# ------------------------------------------------------------------------ pauses


def test_pauses_add_up_to_a_bounded_total():
    text = "[pause 30s] a " * 1000  # 14 KB of text asking for 8 hours of silence
    with pytest.raises(TagError, match=f"more than {MAX_TOTAL_PAUSE:g} s") as err:
        parse_tags(text)
    assert "character" in _one_line(err.value)
    with pytest.raises(TagError, match="longer than"):
        parse_tags("a [pause 31s] b")
    # up to the total is fine, and neighbouring pauses still merge up to MAX_PAUSE
    parsed = parse_tags("[pause 30s] a " * int(MAX_TOTAL_PAUSE // 30))
    assert parsed.total_pause == MAX_TOTAL_PAUSE
    parsed = parse_tags("a [pause 20s][pause 20s] b")
    assert [p.seconds for p in parsed.parts if isinstance(p, Pause)] == [30.0]
    merged = parse_tags("a " + '<break time="30s"/>' * 21 + " b")  # one pause of 30 s
    assert merged.total_pause == 30.0
    with pytest.raises(TagError, match="add up"):
        parse_tags(" x ".join(['<break time="30s"/>'] * 22))  # apart: 660 s


# ---------------------------------------------------------------- long sentences


def test_short_sentences_stay_one_run():
    from studio.voice.chunking import split_run

    run = TextRun("Hello there. " * 100, [(0, 5)])
    chunks = split_run(run)
    assert len(chunks) == 1 and chunks[0].run is run and not chunks[0].cut


def test_long_sentences_are_cut_at_clauses_then_spaces():
    from studio.voice.chunking import split_run

    words = " ".join(f"word{i}" for i in range(400))
    text = f"A short one. {words[:900]}, then more of it {words[900:]}. The end."
    run = TextRun(text, [(2, 7), (20, 40)])
    chunks = split_run(run, 200)
    assert "".join(c.run.text for c in chunks) == text  # nothing lost, nothing added
    assert all(len(c.run.text) <= 200 for c in chunks)
    assert chunks[0].run.text == "A short one. " and not chunks[0].cut
    assert chunks[0].run.emphasis == [(2, 7)]
    for a, b in zip(chunks[1:-2], chunks[2:-1], strict=True):  # no word is cut in two
        assert a.run.text.endswith(",") or b.run.text[0].isspace()
    assert [c.cut for c in chunks[1:-1]] == [True] * (len(chunks) - 3) + [False]
    assert any(c.run.text.endswith(",") for c in chunks)  # the clause end was used
    assert chunks[-1].run.text == "The end." and not chunks[-1].cut
    # one endless "word": cut anywhere, into pieces of the limit
    endless = split_run(TextRun("x" * 1000, []), 300)
    assert [len(c.run.text) for c in endless] == [300, 300, 300, 100]


@pytest.mark.parametrize("voice", ["espeak:en-us", "joe"])
def test_a_long_sentence_is_spoken_in_pieces_with_continuous_timings(voice, monkeypatch):
    """A long text without punctuation used to reach the engine (and onnxruntime) as one
    sentence; a 50,000-character one failed with an allocation error."""
    from studio.voice import synth
    from studio.voice.ipa import tokenize_words
    from studio.voice.types import SILENCE

    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    text = " ".join(words[i % len(words)] for i in range(200))  # 1,200 characters
    engine = synth.get_engine(voice.split(":")[0] if ":" in voice else "piper")
    seen: list[str] = []
    original = engine.render

    def spy(text, *args, **kwargs):
        seen.append(text)
        return original(text, *args, **kwargs)

    monkeypatch.setattr(engine, "render", spy)
    result = synth.synthesize(text, voice, cache=None)
    assert len(seen) >= 3 and all(len(t) <= MAX_SENTENCE_CHARS for t in seen)
    assert [w.word for w in result.words] == [w for w, _, _ in tokenize_words(text)]
    phones = result.phonemes
    assert phones[0].start == 0 and phones[-1].end == pytest.approx(result.duration)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:], strict=False))
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(w.end > w.start for w in result.words)
    assert len(result.sentence_ends) == 1  # one sentence, however it was cut
    spoken = [p for p in phones if p.phoneme != SILENCE]
    assert spoken[-1].end == pytest.approx(result.sentence_ends[0])


def test_speech_longer_than_the_limit_is_refused(monkeypatch):
    from studio.voice import synth

    monkeypatch.setattr(synth, "MAX_SPEECH_SECONDS", 3.0)
    with pytest.raises(StudioError, match="longer than") as err:
        synth.synthesize("One two three four five six. [pause 2s] Seven eight nine ten.",
                         "espeak:en-us", cache=None)
    _one_line(err.value)


# ------------------------------------------------------------------------ emphasis


def _gain_spans_dense(audio, sr, spans, gain_db, ramp_s=0.03):
    """The former implementation (spans x samples): the reference."""
    import numpy as np

    envelope = np.zeros(len(audio))
    t = np.arange(len(audio)) / sr
    for a, b in spans:
        up = np.clip((t - (a - ramp_s)) / ramp_s, 0, 1)
        down = np.clip(((b + ramp_s) - t) / ramp_s, 0, 1)
        envelope = np.maximum(envelope, np.minimum(up, down))
    return (audio * 10 ** (gain_db * envelope / 20.0)).astype(np.float32)


def test_emphasis_gain_equals_the_dense_computation_in_linear_memory():
    import tracemalloc

    import numpy as np

    from studio.voice.effects import apply_gain_spans

    rng = np.random.default_rng(0)
    sr = 8000
    audio = rng.uniform(-0.5, 0.5, sr * 20).astype(np.float32)
    spans = [(0.0, 0.2), (0.19, 0.5), (3.0, 3.01), (7.5, 9.0), (8.0, 8.5), (19.9, 20.5),
             (-1.0, -0.5), (25.0, 26.0)]
    np.testing.assert_array_equal(apply_gain_spans(audio, sr, spans, 4.0),
                                  _gain_spans_dense(audio, sr, spans, 4.0))
    # 2,000 emphasised words over 10 minutes: no spans x samples arrays of float64
    long = np.zeros(sr * 600, np.float32)
    many = [(0.3 * k, 0.3 * k + 0.1) for k in range(2000)]
    tracemalloc.start()
    try:
        apply_gain_spans(long, sr, many, 4.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * long.nbytes  # the output (float32) and small windows


# --------------------------------------------------- audio analysis for long recordings


def _traced_peak(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_resampling_and_levels_of_long_audio_stay_small():
    """Aligning 20 minutes resampled them through float64 copies and measured the level
    with a frames x window matrix: over 1 GB together. Both now work block by block."""
    import numpy as np

    from studio.voice.analysis import frame_rms_db
    from studio.voice.resample import resample

    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(22050 * 120)).astype(np.float32)  # 2 minutes
    out_bytes = 16000 * 120 * 4
    # the output (7.7 MB) and one block's temporaries; it was 100 MB
    assert _traced_peak(lambda: resample(audio, 22050, 16000)) < out_bytes + 30e6
    a16 = np.tile(resample(audio[: 22050 * 30], 22050, 16000), 10)  # 5 minutes at 16 kHz
    assert _traced_peak(lambda: frame_rms_db(a16, 16000, 0.01)) < 60e6  # it was 300 MB
