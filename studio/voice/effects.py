"""Voice effects that keep every sample where it was: pitch, formants, loudness.

Pitch shift = phase-vocoder time stretch by the pitch ratio r (identity phase locking,
Laroche & Dolson 1999) followed by band-limited resampling by 1/r: the result has the
original length and time axis, so phoneme timings stay valid, and the pitch is r times
higher. Resampling also scales the formants by r; a second STFT pass puts the spectral
envelope back where it was (or where the formant setting wants it): each frame is
multiplied by target envelope / current envelope, where envelopes are "true envelopes"
(iterated cepstral smoothing of the log spectrum, Röbel & Rodet 2005) and the target is
the original frame's envelope with its frequency axis scaled by 2^(formant/12).
"""

from __future__ import annotations

import numpy as np

from studio.voice.resample import resample_ratio

N_FFT = 1024
HOP = 256


def _window(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float64)


def stft(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Centred STFT (frame i centred on sample i·hop), shape (frames, n_fft//2 + 1)."""
    x = np.asarray(x, dtype=np.float64)
    pad = n_fft // 2
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad + n_fft)])
    count = len(x) // hop + 1
    idx = np.arange(count)[:, None] * hop + np.arange(n_fft)[None, :]
    return np.fft.rfft(padded[idx] * _window(n_fft), axis=1)


def istft(spec: np.ndarray, length: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`stft`, ``length`` samples long."""
    win = _window(n_fft)
    frames = np.fft.irfft(spec, n_fft, axis=1) * win
    total = (len(frames) - 1) * hop + n_fft
    out = np.zeros(total)
    norm = np.zeros(total)
    for i, frame in enumerate(frames):
        out[i * hop : i * hop + n_fft] += frame
        norm[i * hop : i * hop + n_fft] += win * win
    out /= np.maximum(norm, 1e-8)
    pad = n_fft // 2
    result = out[pad : pad + length]
    if len(result) < length:
        result = np.concatenate([result, np.zeros(length - len(result))])
    return result


def time_stretch(x: np.ndarray, factor: float, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Make ``x`` ``factor`` times longer without changing its pitch (phase vocoder with
    identity phase locking). Output length is ``round(len(x) * factor)``."""
    x = np.asarray(x, dtype=np.float64)
    length = int(round(len(x) * factor))
    if len(x) == 0 or length == 0:
        return np.zeros(length)
    spec = stft(x, n_fft, hop)
    n_frames, n_bins = spec.shape
    mag, phase = np.abs(spec), np.angle(spec)
    omega = 2 * np.pi * hop * np.arange(n_bins) / n_fft  # expected phase advance per hop
    out_frames = length // hop + 1
    positions = np.arange(out_frames) / factor
    out = np.zeros((out_frames, n_bins), dtype=np.complex128)
    acc = phase[0].copy()
    bins = np.arange(n_bins)
    for m, p in enumerate(positions):
        i = min(int(p), n_frames - 1)
        j = min(i + 1, n_frames - 1)
        frac = p - int(p) if j > i else 0.0
        cur_mag = (1 - frac) * mag[i] + frac * mag[j]
        if m > 0:
            delta = phase[j] - phase[i] - omega if j > i else np.zeros(n_bins)
            delta -= 2 * np.pi * np.round(delta / (2 * np.pi))
            acc = acc + omega + delta
        # identity phase locking: bins follow the phase of the peak of their region
        peaks = np.nonzero(
            (cur_mag[1:-1] >= cur_mag[:-2]) & (cur_mag[1:-1] > cur_mag[2:])
        )[0] + 1
        if peaks.size:
            edges = (peaks[:-1] + peaks[1:]) // 2
            owner = peaks[np.searchsorted(edges, bins, side="right")]
            locked = acc[owner] + phase[i] - phase[i][owner]
        else:
            locked = acc
        out[m] = cur_mag * np.exp(1j * locked)
        acc = locked
    return istft(out, length, n_fft, hop)


def _log_envelope(log_mag: np.ndarray, order: int, iterations: int = 16) -> np.ndarray:
    """True envelope of log magnitudes (frames × bins) by iterated cepstral smoothing.

    Valleys are floored 60 dB below each frame's peak so the deep gaps between sparse
    harmonics cannot drag the envelope down (which would bias high voices)."""
    n_fft = 2 * (log_mag.shape[1] - 1)
    lifter = np.zeros(n_fft)
    lifter[: order + 1] = 1.0
    lifter[-order:] = 1.0
    log_mag = np.maximum(log_mag, log_mag.max(axis=1, keepdims=True) - 6.9)
    target = log_mag.copy()
    env = target
    for _ in range(iterations):
        cep = np.fft.irfft(target, n_fft, axis=1)
        env = np.fft.rfft(cep * lifter, axis=1).real
        target = np.maximum(log_mag, env)
    return env


def _envelope_order(x: np.ndarray, sr: int, pitch_ratio: float) -> int:
    """Cepstral order for the true envelope: half the period of the highest pitch in play
    (Röbel & Rodet), so harmonics are bridged but formants stay apart."""
    from studio.voice.analysis import estimate_f0

    f0 = estimate_f0(x[: sr * 20], sr, fmin=60, fmax=800)
    voiced = f0[f0 > 0]
    top = float(np.percentile(voiced, 90)) if voiced.size >= 5 else 200.0
    top *= max(1.0, pitch_ratio)
    return int(np.clip(sr / (2.0 * top), 12, 80))


def _envelope_correct(
    source: np.ndarray,
    shifted: np.ndarray,
    sr: int,
    formant_factor: float,
    n_fft: int = N_FFT,
    hop: int = HOP,
    order: int = 40,
) -> np.ndarray:
    """Give ``shifted`` the spectral envelope of ``source`` scaled by ``formant_factor``."""
    length = len(shifted)
    S = stft(source, n_fft, hop)
    Y = S if shifted is source else stft(shifted, n_fft, hop)
    n = min(len(S), len(Y))
    S, Y = S[:n], Y[:n]
    floor = 1e-7
    env_s = _log_envelope(np.log(np.abs(S) + floor), order)
    env_y = _log_envelope(np.log(np.abs(Y) + floor), order)
    bins = np.arange(S.shape[1], dtype=np.float64)
    src_bins = np.clip(bins / formant_factor, 0, S.shape[1] - 1)
    lo = np.floor(src_bins).astype(int)
    hi = np.minimum(lo + 1, S.shape[1] - 1)
    w = src_bins - lo
    target = env_s[:, lo] * (1 - w) + env_s[:, hi] * w
    if formant_factor > 1:  # frequencies above the scaled Nyquist: fade the envelope down
        beyond = bins / formant_factor > S.shape[1] - 1
        target[:, beyond] -= 3.0
    gain = np.exp(np.clip(target - env_y, -6.0, 4.0))  # at most +35 / -52 dB
    return istft(Y * gain, length, n_fft, hop)


def shift_pitch(
    audio: np.ndarray, sr: int, semitones: float, formant: float = 0.0
) -> np.ndarray:
    """Shift pitch by ``semitones`` and formants by ``formant`` semitones, keeping the
    length and time axis (timings stay valid). ``formant=0`` keeps the voice's timbre."""
    x = np.asarray(audio, dtype=np.float64)
    if len(x) == 0 or (abs(semitones) < 1e-6 and abs(formant) < 1e-6):
        return x.astype(np.float32)
    # long windows resolve low voices' harmonics; scale them with the sample rate
    n_fft = 1 << int(round(np.log2(sr * 0.046)))
    hop = n_fft // 4
    ratio = 2.0 ** (semitones / 12.0)
    if abs(semitones) < 1e-6:
        shifted = x
    else:
        stretched = time_stretch(x, ratio, n_fft, hop)
        shifted = resample_ratio(stretched, 1.0 / ratio, len(x)).astype(np.float64)
    order = _envelope_order(x, sr, ratio)
    out = _envelope_correct(x, shifted, sr, 2.0 ** (formant / 12.0), n_fft, hop, order)
    return out.astype(np.float32)


def apply_gain_spans(
    audio: np.ndarray, sr: int, spans: list[tuple[float, float]], gain_db: float,
    ramp_s: float = 0.03,
) -> np.ndarray:
    """Raise the level over time spans by ``gain_db`` with short ramps (emphasis).

    Only the samples within ``ramp_s`` of a span are touched, one merged stretch at a time:
    the work and the memory follow the emphasised audio, not spans x samples."""
    if not spans or gain_db == 0:
        return audio
    n = len(audio)
    out = np.array(audio, dtype=np.float32, copy=True)
    windows = []
    for a, b in sorted(spans):
        lo = max(0, int(np.floor((a - ramp_s) * sr)))
        hi = min(n, int(np.ceil((b + ramp_s) * sr)) + 1)
        if hi <= lo:
            continue
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
            windows[-1][2].append((a, b))
        else:
            windows.append([lo, hi, [(a, b)]])
    for lo, hi, inside in windows:
        t = np.arange(lo, hi) / sr
        envelope = np.zeros(hi - lo)
        for a, b in inside:
            up = np.clip((t - (a - ramp_s)) / ramp_s, 0, 1)
            down = np.clip(((b + ramp_s) - t) / ramp_s, 0, 1)
            envelope = np.maximum(envelope, np.minimum(up, down))
        out[lo:hi] = (audio[lo:hi] * 10 ** (gain_db * envelope / 20.0)).astype(np.float32)
    return out


NORMALIZE_BLOCK = 1 << 20  # samples scaled at once (no float64 copy of all the audio)


def normalize_peak(audio: np.ndarray, peak: float = 10 ** (-1 / 20), volume: float = 1.0) -> np.ndarray:
    """Scale so the peak is ``peak`` (-1 dBFS), times ``volume``; louder than full scale
    goes through a soft limiter instead of clipping."""
    x = np.asarray(audio)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top < 1e-9:
        return x.astype(np.float32)
    out = np.empty(x.shape, dtype=np.float32)
    flat_in, flat_out = x.reshape(-1), out.reshape(-1)
    for a in range(0, flat_in.size, NORMALIZE_BLOCK):  # float64 math, a block at a time
        y = flat_in[a : a + NORMALIZE_BLOCK].astype(np.float64) * (peak * volume / top)
        over = np.abs(y) > 0.9
        if np.any(over):
            # soft knee above 0.9: tanh-shaped approach to 1.0
            y = np.where(over, np.sign(y) * (0.9 + 0.1 * np.tanh((np.abs(y) - 0.9) / 0.1)), y)
        flat_out[a : a + NORMALIZE_BLOCK] = y
    return out
