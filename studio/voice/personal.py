"""Personal voices: a base voice (Piper, with timings) converted to the user's timbre.

A personal voice file (``.safetensors``) holds a small 1-D convolutional network over
frames that maps the base voice's mel-cepstra (with ±4 frames of context) to the user's,
normalisation statistics, and in its JSON metadata the base voice, the log-F0 statistics
of both voices and the user's speaking-rate factor.

Conversion keeps every sample in time, so the base voice's phoneme timings stay valid for
lip sync: the base voice speaks (at the user's rate), its pitch is shifted by the ratio of
the two voices' mean pitch (formants kept), then each STFT frame is filtered by the
difference between the converted and the base envelope (a differential spectral filter:
the base voice's excitation and fine structure stay, only the envelope changes). The
converted mel-cepstra get the user's global variance back (against muffled output).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio.core.errors import FileFormatError, StudioError
from studio.voice.effects import istft, shift_pitch, stft
from studio.voice.spectral import MCEP_ORDER, analyze, mcep_to_log_envelope

FORMAT = "studio.personal-voice"
VERSION = 1


class MceptNet(nn.Module):
    """Frames of base mel-cepstra (normalised, B×D×T) → the user's (normalised, B×O×T)."""

    def __init__(self, in_dim: int = MCEP_ORDER + 1, out_dim: int = MCEP_ORDER,
                 channels: int = 128, layers: int = 3, kernel: int = 5) -> None:
        super().__init__()
        self.config = {"in_dim": in_dim, "out_dim": out_dim, "channels": channels,
                       "layers": layers, "kernel": kernel}
        blocks: list[nn.Module] = []
        dim = in_dim
        for _ in range(layers):
            blocks += [nn.Conv1d(dim, channels, kernel, padding=kernel // 2), nn.GELU()]
            dim = channels
        self.body = nn.Sequential(*blocks)
        self.head = nn.Conv1d(channels, out_dim, 1)
        self.skip = nn.Conv1d(in_dim, out_dim, 1)  # a linear map, the network adds detail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.head(self.body(x))


@dataclass
class PersonalVoice:
    """A loaded personal voice model."""

    net: MceptNet
    stats: dict[str, np.ndarray]  # in_mean, in_std, out_mean, out_std, gv (normalised)
    base_voice: str
    sample_rate: int
    log_f0: tuple[float, float, float, float]  # base mean, base std, user mean, user std
    rate: float  # user duration / base duration
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def pitch_semitones(self) -> float:
        return 12.0 / math.log(2.0) * (self.log_f0[2] - self.log_f0[0])

    def convert_mcep(self, mcep: np.ndarray, gv: bool = True) -> np.ndarray:
        """The user's mel-cepstra for the base voice's ``mcep`` (frames × (M+1)); c̃(0) kept."""
        s = self.stats
        x = (np.asarray(mcep, np.float32) - s["in_mean"]) / s["in_std"]
        with torch.no_grad():
            y = self.net(torch.from_numpy(x.T.copy())[None].float())[0].numpy().T
        if gv and len(y) > 1:  # restore the user's global variance per dimension
            mean = y.mean(axis=0)
            var = np.maximum(y.var(axis=0), 1e-6)
            y = mean + (y - mean) * np.sqrt(s["gv"] / var)
        out = np.array(mcep, dtype=np.float32, copy=True)
        out[:, 1:] = y * s["out_std"] + s["out_mean"]
        return out

    def convert_audio(self, audio: np.ndarray, sr: int, gv: bool = True) -> np.ndarray:
        """Convert the base voice's ``audio`` to the user's voice; same length and timing."""
        if sr != self.sample_rate:
            raise StudioError(f"the personal voice expects {self.sample_rate} Hz audio, got {sr}")
        x = np.asarray(audio, np.float64).reshape(-1)
        if len(x) < sr // 20:
            return x.astype(np.float32)
        an = analyze(x, sr, with_f0=False)
        conv = self.convert_mcep(an.mcep, gv=gv)
        diff = mcep_to_log_envelope(conv - an.mcep, sr, an.n_fft)
        diff = np.clip(diff, -4.6, 3.5)  # -40 .. +30 dB
        shifted = shift_pitch(x, sr, self.pitch_semitones) if abs(self.pitch_semitones) > 0.05 \
            else x
        spec = stft(np.asarray(shifted, np.float64), an.n_fft, an.hop)
        n = min(len(spec), len(diff))
        spec[:n] *= np.exp(diff[:n])
        return istft(spec, len(x), an.n_fft, an.hop).astype(np.float32)


def _stat_names() -> tuple[str, ...]:
    return ("in_mean", "in_std", "out_mean", "out_std", "gv")


def save_personal_voice(path: str | Path, voice: PersonalVoice) -> Path:
    """Write ``voice`` as safetensors (weights + statistics) with JSON metadata, atomically."""
    from safetensors.torch import save

    from studio.core.atomic import atomic_write_bytes

    path = Path(path)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in voice.net.state_dict().items()}
    for k in _stat_names():
        tensors[f"stats.{k}"] = torch.from_numpy(np.asarray(voice.stats[k], np.float32).copy())
    meta = {
        "format": FORMAT, "version": str(VERSION),
        "config": json.dumps(voice.net.config),
        "voice": json.dumps({
            "base_voice": voice.base_voice, "sample_rate": voice.sample_rate,
            "log_f0": list(voice.log_f0), "rate": voice.rate, **voice.meta,
        }),
    }
    atomic_write_bytes(path, save(tensors, metadata=meta))
    return path


def is_personal_voice(path: str | Path) -> bool:
    """Whether ``path`` is a personal voice file (reads only its header)."""
    try:
        return read_meta(path).get("format") == FORMAT
    except StudioError:
        return False


def read_meta(path: str | Path) -> dict:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileFormatError("personal voice file not found", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise FileFormatError(f"not a readable safetensors file ({exc})", path) from None


def load_personal_voice(path: str | Path) -> PersonalVoice:
    """Read a personal voice file; a wrong or damaged file raises FileFormatError."""
    from safetensors import safe_open

    path = Path(path)
    meta = read_meta(path)
    if meta.get("format") != FORMAT:
        raise FileFormatError("not a personal voice model (no studio.personal-voice header)",
                              path)
    if int(meta.get("version", "0")) > VERSION:
        raise FileFormatError("this personal voice was made by a newer studio; update it", path)
    try:
        config = json.loads(meta["config"])
        info = json.loads(meta["voice"])
        net = MceptNet(**{k: int(config[k]) for k in
                          ("in_dim", "out_dim", "channels", "layers", "kernel")})
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        stats = {k: tensors[f"stats.{k}"].numpy().astype(np.float32) for k in _stat_names()}
        log_f0 = tuple(float(v) for v in info["log_f0"])
        rate = float(info["rate"])
        sr = int(info["sample_rate"])
        base = str(info["base_voice"])
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"the personal voice file is damaged ({exc})", path) from None
    if len(log_f0) != 4 or not all(np.all(np.isfinite(v)) for v in stats.values()) \
            or not 0.25 <= rate <= 4.0 or any(np.any(stats[k] <= 0) for k in ("in_std", "out_std")):
        raise FileFormatError("the personal voice file holds invalid numbers", path)
    net.eval()
    extra = {k: v for k, v in info.items()
             if k not in ("base_voice", "sample_rate", "log_f0", "rate")}
    return PersonalVoice(net, stats, base, sr, log_f0, rate, extra, path)


_LOADED: dict[tuple[str, int, int], PersonalVoice] = {}


def cached_personal_voice(path: str | Path) -> PersonalVoice:
    """:func:`load_personal_voice`, remembered by path, size and modification time."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_personal_voice(path)
    return _LOADED[key]
