"""Building blocks of the StyleGAN2 networks, written for this project.

The layers reproduce the arithmetic of StyleGAN2-ADA (equalised learning rate, weight
modulation and demodulation, FIR-filtered resampling, per-pixel noise) so that weights
trained by NVIDIA's or rosinality's code render the same images. Attribute names follow the
NVIDIA ``state_dict`` layout (``weight``, ``bias``, ``affine``, ``noise_strength``,
``noise_const``, ``resample_filter``) so checkpoints load with ``strict=True``.

Every activation path also supports a compute ``dtype`` (bf16 on AMX CPUs, fp16/bf16 on
CUDA) and channels-last tensors; styles and demodulation coefficients stay in fp32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2.0)
DEMOD_EPS = 1e-8

# Default gain of each activation: keeps the signal's second moment at 1.
ACTIVATION_GAIN = {"linear": 1.0, "relu": SQRT2, "lrelu": SQRT2}

Padding = tuple[int, int, int, int]  # (left, right, top, bottom)


# --------------------------------------------------------------------------- FIR filters


def make_resample_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """Separable low-pass filter as a normalised 2-D float32 kernel (sums to 1)."""
    t = torch.as_tensor(list(taps), dtype=torch.float32)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError("resample filter taps must be a non-empty 1-D sequence")
    f2 = torch.outer(t, t)
    return f2 / f2.sum()


def _pad_or_crop(x: torch.Tensor, pad: Padding) -> torch.Tensor:
    left, right, top, bottom = pad
    if min(pad) < 0:
        h, w = x.shape[-2:]
        x = x[..., max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
    if max(pad) > 0:
        x = F.pad(x, [max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)])
    return x


def fir_filter(
    x: torch.Tensor, f: torch.Tensor, pad: Padding, gain: float = 1.0, down: int = 1
) -> torch.Tensor:
    """Pad (negative = crop), convolve every channel with ``f * gain``, keep every ``down``-th pixel."""
    c = x.shape[1]
    k = (f * gain).flip([0, 1]).to(x.dtype)  # convolution, not correlation
    k = k[None, None].expand(c, 1, *k.shape).contiguous()
    x = _pad_or_crop(x, pad)
    y = F.conv2d(x, k, groups=c)
    if down > 1:
        y = y[:, :, ::down, ::down]
    return y


def zero_upsample(x: torch.Tensor, up: int) -> torch.Tensor:
    """Insert ``up - 1`` zeros after every pixel in both directions."""
    n, c, h, w = x.shape
    y = x.new_zeros(n, c, h, up, w, up)
    y[:, :, :, 0, :, 0] = x
    return y.reshape(n, c, h * up, w * up)


def upsample_2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Zero-insert 2x upsampling followed by the low-pass filter (output exactly 2H x 2W)."""
    ft = f.shape[-1]
    pad = ((ft + 1) // 2, (ft - 2) // 2)
    return fir_filter(zero_upsample(x, 2), f, (pad[0], pad[1], pad[0], pad[1]), gain=4.0)


def downsample_2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Low-pass filter then keep every 2nd pixel (output exactly H/2 x W/2)."""
    ft = f.shape[-1]
    p0, p1 = (ft - 1) // 2, (ft - 2) // 2
    return fir_filter(x, f, (p0, p1, p0, p1), down=2)


# --------------------------------------------------------------------------- conv helpers


def resampled_conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
) -> torch.Tensor:
    """2-D convolution with optional 2x up- or downsampling through the FIR filter ``f``.

    ``padding`` is relative to the upsampled image. ``flip_weight=False`` means a true
    convolution (the orientation StyleGAN2 uses for its upsampling layers).
    """
    out_ch, in_per_group, kh, kw = w.shape
    if up == 1 and down == 1:
        if not flip_weight:
            w = w.flip([2, 3])
        return F.conv2d(x, w, padding=padding, groups=groups)
    assert f is not None and (up == 1 or down == 1)
    ft = f.shape[-1]
    if down > 1:
        p0 = padding + (ft - down + 1) // 2
        p1 = padding + (ft - down) // 2
        if not flip_weight:
            w = w.flip([2, 3])
        if kh == 1 and kw == 1:
            x = fir_filter(x, f, (p0, p1, p0, p1), down=down)
            return F.conv2d(x, w, groups=groups)
        x = fir_filter(x, f, (p0, p1, p0, p1))
        return F.conv2d(x, w, stride=down, groups=groups)
    # Upsampling.
    p0 = padding + (ft + up - 1) // 2
    p1 = padding + (ft - up) // 2
    if kh == 1 and kw == 1:
        x = F.conv2d(x, w, groups=groups)
        return fir_filter(zero_upsample(x, up), f, (p0, p1, p0, p1), gain=up * up)
    # Transposed strided convolution, then the filter takes up the remaining padding.
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    if flip_weight:
        wt = wt.flip([2, 3])
    r0, r1 = p0 - (kw - 1), p1 - (kw - up)
    x = F.conv_transpose2d(x, wt, stride=up, groups=groups)
    return fir_filter(x, f, (r0, r1, r0, r1), gain=up * up)


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias, apply the activation, scale by ``gain``, clamp to +-clamp."""
    if gain is None:
        gain = ACTIVATION_GAIN[act]
    inplace = not torch.is_grad_enabled()
    if b is not None:
        shape = [1] * x.ndim
        shape[1] = -1
        b = b.to(x.dtype).reshape(shape)
        x = x.add_(b) if inplace else x + b
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE, inplace=inplace)
    elif act == "relu":
        x = F.relu(x, inplace=inplace)
    elif act != "linear":
        raise ValueError(f"unsupported activation {act!r}")
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# --------------------------------------------------------------------------- layers


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalised learning rate (weights stored unscaled, scaled at run time)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = (
            nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        )
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Plain (unmodulated) convolution with equalised learning rate, used by D and resnet skips."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", make_resample_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = ACTIVATION_GAIN[activation]
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = resampled_conv2d(
            x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding,
            flip_weight=(self.up == 1),
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


def modulate_weight(
    weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-sample weights ``[N, O, I, k, k]`` scaled by ``styles [N, I]`` and (optionally)
    demodulated, plus the demodulation coefficients ``[N, O]``. Computed in fp32."""
    w = weight.float().unsqueeze(0) * styles.float().reshape(styles.shape[0], 1, -1, 1, 1)
    if not demodulate:
        return w, None
    d = (w.square().sum(dim=[2, 3, 4]) + DEMOD_EPS).rsqrt()
    return w * d.reshape(*d.shape, 1, 1, 1), d


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Demodulation coefficients ``[N, O]`` without building per-sample weights:
    ``sum_{i,k} (w[o,i,k] s[n,i])^2 = (s^2 @ sum_k w^2 .T)[n, o]``. fp32, outside autocast."""
    with torch.autocast(device_type=weight.device.type, enabled=False):
        w2 = weight.float().square().sum(dim=[2, 3])  # [O, I]
        return (styles.float().square() @ w2.t() + DEMOD_EPS).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool = True,
) -> torch.Tensor:
    """Modulated convolution (StyleGAN2 eq. 1-3).

    ``fused=True`` builds per-sample weights: a plain convolution for batch 1 and a grouped
    convolution for larger batches. ``fused=False`` scales the activations before and after
    one shared convolution (a plain batched convolution; the faster choice for batches on
    the CPU). Both give the same result up to rounding.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    styles = styles.float()
    if x.dtype == torch.float16 and demodulate:
        # Keep fp16 intermediates in range; demodulation cancels these scales.
        weight = weight * (
            1.0 / math.sqrt(in_ch * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    memory_format = (
        torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1
        else torch.contiguous_format
    )

    if not fused:
        dcoefs = demod_coefficients(weight, styles) if demodulate else None
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        w = weight.to(x.dtype).contiguous(memory_format=memory_format)
        x = resampled_conv2d(x, w, resample_filter, up=up, padding=padding, flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w, _ = modulate_weight(weight, styles, demodulate)
    w = w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype)
    if n == 1:
        w = w.contiguous(memory_format=memory_format)
        y = resampled_conv2d(x, w, resample_filter, up=up, padding=padding, flip_weight=flip_weight)
    else:
        xg = x.reshape(1, n * in_ch, *x.shape[2:])
        y = resampled_conv2d(
            xg, w, resample_filter, up=up, padding=padding, groups=n, flip_weight=flip_weight
        )
        y = y.reshape(n, out_ch, *y.shape[2:])
    if noise is not None:
        y = y.add_(noise.to(y.dtype)) if not torch.is_grad_enabled() else y + noise.to(y.dtype)
    return y


NOISE_MODES = ("const", "random", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution + noise + bias + leaky ReLU (optionally 2x upsampling)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.layer_index = 0  # position among the synthesis layers; set by SynthesisNetwork
        # Registration order reproduces NVIDIA's state_dict order.
        self.register_buffer("resample_filter", make_resample_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATION_GAIN[activation]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size)
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def make_noise(
        self, x: torch.Tensor, noise_mode: str, noise_seed: int | None
    ) -> torch.Tensor | None:
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength
        if noise_mode != "random":
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, not {noise_mode!r}")
        shape = [x.shape[0], 1, self.resolution, self.resolution]
        if noise_seed is None:
            noise = torch.randn(shape, device=x.device)
        else:  # per-layer stream: the same seed gives the same noise wherever rendering starts
            gen = torch.Generator(device="cpu").manual_seed(
                (int(noise_seed) * 1_000_003 + self.layer_index) % (2**63)
            )
            noise = torch.randn(shape, generator=gen).to(x.device)
        return noise * self.noise_strength

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1.0,
        noise_seed: int | None = None,
    ) -> torch.Tensor:
        styles = self.affine(w.float())
        noise = self.make_noise(x, noise_mode, noise_seed)
        x = modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=(self.up == 1),
            fused=fused_modconv,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w.float()) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation across groups of samples as extra feature maps."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/g, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


# --------------------------------------------------------------------------- polyphase forms
#
# A 2x upsampling convolution (zero insertion, kernel K, low-pass filter) equals four ordinary
# convolutions of the low-resolution input, one per output phase, interleaved afterwards.
# Running them as one dense 3x3 convolution with 4x the output channels is much faster on
# CPUs (oneDNN/AMX) than a transposed convolution followed by a depthwise filter, and it
# folds the filter in for free.


def full_conv2d_taps(w: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of every ``w[o, i]`` (``[O, I, k, k]``) with ``f`` (``[t, t]``),
    returned taps-first: ``[k+t-1, k+t-1, O, I]``."""
    o, i, k, _ = w.shape
    t = f.shape[-1]
    w_taps = w.permute(2, 3, 0, 1).contiguous()  # [k, k, O, I]
    out = w.new_zeros(k + t - 1, k + t - 1, o, i)
    for a in range(t):
        for b in range(t):
            out[a : a + k, b : b + k].add_(w_taps, alpha=float(f[a, b]))
    return out


def polyphase_kernels(taps: torch.Tensor, center: int) -> torch.Tensor:
    """Split a kernel that acts on the zero-inserted 2x grid (taps-first ``[L, L, O, I]``)
    into four 3x3 kernels on the low resolution grid:
    ``out[o, 2u+ry, 2v+rx] = sum_e x[u+ey, v+ex] * K[ry+c-2ey, rx+c-2ex]``.
    Returns ``[4*O, I, 3, 3]`` ordered phase-major: ``(ry*2 + rx) * O + o``."""
    length, _, o, i = taps.shape
    out = taps.new_zeros(2, 2, 3, 3, o, i)
    for ry in range(2):
        for rx in range(2):
            for ey in range(3):
                for ex in range(3):
                    a = ry + center - 2 * (ey - 1)
                    b = rx + center - 2 * (ex - 1)
                    if 0 <= a < length and 0 <= b < length:
                        out[ry, rx, ey, ex] = taps[a, b]
    return out.permute(0, 1, 4, 5, 2, 3).reshape(4 * o, i, 3, 3)


def up_conv_polyphase_kernel(weight: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """The 3x3 upsampling SynthesisLayer conv (transposed conv, then the filter with gain 4)
    as ``[O*4, I, 3, 3]`` polyphase kernels; apply with padding 1 and :func:`phase_shuffle`."""
    assert weight.shape[-1] == 3 and f.shape[-1] == 4, "polyphase form needs 3x3 conv, 4-tap filter"
    return polyphase_kernels(full_conv2d_taps(weight.float(), f.float() * 4.0), center=2)


def upsample_polyphase_kernel(f: torch.Tensor) -> torch.Tensor:
    """:func:`upsample_2x` as ``[4, 1, 3, 3]`` polyphase kernels (padding 1, phase_shuffle)."""
    assert f.shape[-1] == 4, "polyphase form needs a 4-tap filter"
    return polyphase_kernels((f.double() * 4.0)[:, :, None, None], center=1)


def phase_shuffle(y: torch.Tensor) -> torch.Tensor:
    """``[N, 4*O, H, W]`` (phase-major, see :func:`polyphase_kernels`) -> ``[N, O, 2H, 2W]``,
    keeping the memory format of ``y``."""
    n, c4, h, w = y.shape
    o = c4 // 4
    if y.is_contiguous(memory_format=torch.channels_last) and o > 1:
        t = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, o).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(n, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
    t = y.reshape(n, 2, 2, o, h, w).permute(0, 3, 4, 1, 5, 2)
    return t.reshape(n, o, 2 * h, 2 * w)
