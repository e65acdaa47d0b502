"""Animation stays linear in the length of the speech (issue 9: never abort, never corrupt).

The dominance model used to build a phonemes x samples matrix: 2,000 phonemes took 606 MB
and the timings of 20 minutes of speech 24 GB. Each viseme now only counts within reach of
its span; the curves must be the same as the dense computation on normal speech.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from studio.animate import AnimationSettings, animate_speech
from studio.animate.audio_mouth import _band_energies, speech_energy
from studio.animate.lipsync import (
    LipSyncSettings,
    _force_closures,
    _gaussian,
    viseme_curves,
)
from studio.animate.visemes import CHANNELS, DOMINANCE, POSES, VISEMES, VisemeSpan
from studio.core.errors import StudioError

MAX_DURATION = 10_800.0  # studio.animate.lipsync.MAX_DURATION: 3 hours


def _dense_curves(spans, duration, s):
    """The dense (phonemes x samples) computation the studio used before: the reference."""
    n = max(2, int(np.ceil(duration * s.fps)) + 1)
    t = np.linspace(0.0, duration, n)
    padded = [VisemeSpan("sil", -1.0, spans[0].start), *spans,
              VisemeSpan("sil", spans[-1].end, max(duration, spans[-1].end) + 1.0)]
    dom = np.empty((len(padded), len(t)))
    for i, span in enumerate(padded):
        start = span.start - s.anticipation
        end = span.end - s.anticipation
        centre = 0.5 * (start + end)
        half = max(0.5 * (end - start), 0.5 * s.min_duration)
        distance = np.maximum(np.abs(t - centre) - half, 0.0)
        dom[i] = DOMINANCE.get(span.viseme, 1.0) * np.exp(-distance / max(s.blend, 1e-4))
    weights = dom / np.maximum(dom.sum(axis=0, keepdims=True), 1e-12)
    poses = np.array([POSES.get(sp.viseme, POSES["sil"]) for sp in padded])
    values = _gaussian(poses.T @ weights, s.smoothing * s.fps)
    _force_closures(values, spans, t, s)
    gains = np.array([s.intensity, s.intensity, s.intensity, 1.0])
    values = np.clip(values * gains[:, None], 0.0, 1.0)
    curves = {ch: values[i] for i, ch in enumerate(CHANNELS)}
    index = {v: i for i, v in enumerate(VISEMES)}
    onehot = np.zeros((len(padded), len(VISEMES)))
    for i, sp in enumerate(padded):
        onehot[i, index.get(sp.viseme, 0)] = 1.0
    vis = _gaussian(onehot.T @ weights, s.smoothing * s.fps)
    for v, i in index.items():
        curves[f"viseme.{v}"] = np.clip(vis[i], 0.0, 1.0)
    return t, curves


def _synthetic_spans(count: int, seed: int = 0) -> list[VisemeSpan]:
    """``count`` viseme spans of speech-like lengths (40-160 ms) with some pauses."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(0.04, 0.16, count)
    lengths[rng.random(count) < 0.05] = 0.5  # pauses
    starts = np.concatenate([[0.2], 0.2 + np.cumsum(lengths)[:-1]])
    names = rng.choice(np.array(VISEMES), count)
    return [VisemeSpan(str(v), float(a), float(a + d))
            for v, a, d in zip(names, starts, lengths, strict=True)]


@pytest.mark.parametrize("settings", [
    LipSyncSettings(),
    LipSyncSettings(blend=0.06, anticipation=0.0, min_duration=0.1, intensity=1.5),
])
def test_curves_equal_the_dense_computation(speech, settings):
    from studio.animate.visemes import visemes_from_phones

    spans = visemes_from_phones([(p.phoneme, p.start, p.end) for p in speech.phonemes])
    t0, dense = _dense_curves(spans, speech.duration, settings)
    t1, curves = viseme_curves(spans, speech.duration, settings)
    assert np.array_equal(t0, t1)
    assert dense.keys() == curves.keys()
    for channel in dense:
        np.testing.assert_allclose(curves[channel], dense[channel], rtol=0, atol=1e-12,
                                   err_msg=channel)


def test_curves_equal_the_dense_computation_across_gaps():
    """Timings with long gaps (no phoneme at all for seconds) and overlapping phonemes."""
    spans = [VisemeSpan("aa", 0.5, 0.7), VisemeSpan("PP", 0.65, 0.8), VisemeSpan("E", 4.0, 4.1),
             VisemeSpan("ou", 4.1, 4.3), VisemeSpan("SS", 9.0, 9.02), VisemeSpan("xx", 9.5, 9.6)]
    s = LipSyncSettings()
    _, dense = _dense_curves(spans, 12.0, s)
    _, curves = viseme_curves(spans, 12.0, s)
    for channel in dense:
        np.testing.assert_allclose(curves[channel], dense[channel], rtol=0, atol=1e-12,
                                   err_msg=channel)


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_linear_in_the_phonemes():
    """10,000 phonemes (about 15 minutes of speech): the dense matrix alone would be
    10,000 x 93,000 samples = 7.4 GB. Now memory grows with the samples."""
    small, large = _synthetic_spans(2_500), _synthetic_spans(10_000)
    s = LipSyncSettings()
    peak_small = _peak_bytes(lambda: viseme_curves(small, small[-1].end + 0.3, s))
    peak_large = _peak_bytes(lambda: viseme_curves(large, large[-1].end + 0.3, s))
    samples = (large[-1].end + 0.3) * s.fps
    assert peak_large < 1000 * samples  # 19 curves of float64 and their temporaries
    assert peak_large < 200e6
    assert peak_large < 5 * peak_small  # 4x the phonemes: about 4x the memory


# peak RSS of this process: VmHWM (ru_maxrss would carry the pytest parent's peak over
# fork + exec on Linux)
_PEAK_RSS = """
import resource, sys
from studio.cli import main
rc = main(sys.argv[1:])
try:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rc, peak)
"""


@pytest.mark.slow
def test_lipsync_command_on_10k_phonemes_stays_small(tmp_path):
    """`studio lipsync` (mouth, visemes, blinks, head) on the timings of 10,000 phonemes
    (about 15 minutes of speech) in a fresh process: peak memory well under 500 MB; the
    dense matrix alone used to need 7.4 GB."""
    spans = _synthetic_spans(10_000, seed=1)
    ipa = {"sil": "_", "PP": "p", "FF": "f", "TH": "θ", "DD": "d", "kk": "k", "CH": "ʃ",
           "SS": "s", "nn": "n", "RR": "ɹ", "aa": "ɑ", "E": "ɛ", "ih": "ɪ", "oh": "ɔ", "ou": "u"}
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({"phonemes": [
        {"phoneme": ipa[sp.viseme], "start": sp.start, "end": sp.end} for sp in spans]}))
    out = tmp_path / "c.json"
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, "lipsync", str(timings), "-o",
                           str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rc, peak_kb = proc.stdout.split()[-2:]
    assert rc == "0"
    assert int(peak_kb) < 400 * 1024
    doc = json.loads(out.read_text())
    assert {tr["channel"] for tr in doc["tracks"]} >= {"mouth_open", "blink", "head_pitch"}


def test_overlong_and_overlapping_speech_is_refused_clearly():
    with pytest.raises(StudioError, match="at most 10800 s"):
        viseme_curves([VisemeSpan("aa", 0.0, 1.0)], MAX_DURATION + 1)
    with pytest.raises(StudioError, match="cannot animate"):
        viseme_curves([VisemeSpan("aa", 0.0, 1.0)], float("nan"))
    # 3,000 phonemes that all span the whole 10 minutes: no phonemes x samples work
    every = [VisemeSpan(VISEMES[i % 15], 0.0, 600.0) for i in range(3_000)]
    with pytest.raises(StudioError, match="overlap too much"):
        viseme_curves(every, 600.0)
    with pytest.raises(StudioError, match="at most 10800 s"):
        animate_speech([("a", 0.0, 1e6)], settings=AnimationSettings(blinks=False,
                                                                       head_motion=False))
    with pytest.raises(StudioError, match="at most 10800 s"):  # 25 M head samples otherwise
        animate_speech([("a", 0.0, 1e6)], settings=AnimationSettings(lipsync=False))


def test_audio_analysis_memory_is_bounded_by_the_audio():
    """The analysis of 10 minutes of audio at 22.05 kHz used to build frames x window
    matrices (and their spectra): 1.2 GB. It now runs in blocks of frames."""
    rng = np.random.default_rng(0)
    sr = 22050
    audio = (0.1 * rng.standard_normal(sr * 600)).astype(np.float32)
    audio[: sr * 2] = 0
    peak = _peak_bytes(lambda: (speech_energy(audio, sr), _band_energies(audio, sr, 0.01, 0.025)))
    assert peak < 60e6  # the audio itself is 53 MB (float32): the analysis needs less


@pytest.mark.parametrize("block", [1, 7, 1024])
def test_audio_analysis_in_blocks_equals_one_block(neural_speech, monkeypatch, block):
    from studio.animate import audio_mouth

    audio, sr = neural_speech.audio, neural_speech.sample_rate
    monkeypatch.setattr(audio_mouth, "FRAME_BLOCK", 10**9)  # all frames at once, as before
    t0, whole = audio_mouth.audio_mouth_curves(audio, sr)
    monkeypatch.setattr(audio_mouth, "FRAME_BLOCK", block)
    t1, blocks = audio_mouth.audio_mouth_curves(audio, sr)
    assert np.array_equal(t0, t1)
    for channel in whole:
        np.testing.assert_allclose(blocks[channel], whole[channel], rtol=0, atol=1e-12)
