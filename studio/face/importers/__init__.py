"""Import StyleGAN2 checkpoints that artists already have into a studio face model.

Supported:

- NVIDIA network pickles (``.pkl``) from stylegan2-ada-pytorch and the StyleGAN2 networks of
  the stylegan3 repository: read with a whitelisting unpickler that executes nothing;
  ``G_ema`` (else ``G``) and ``D`` are imported, conditional (``c_dim > 0``) ones included.
- rosinality/stylegan2-pytorch checkpoints (``.pt``): ``{g, d, g_ema, ...}`` or
  ``{g_ema, latent_avg}``, loaded with ``torch.load(weights_only=True)`` after checking
  every declared size; ``g_ema`` (else ``g``) and the discriminator ``d`` when present.

Refused with a :class:`~studio.core.errors.FileFormatError` naming the file: StyleGAN3
networks, anything that is not one of the formats above, damaged files, and pickles that
refer to anything outside the short list real files use.

The format is sniffed from the file's first bytes, not its name. The modules:

- :mod:`.detect`: bounded checks of the file, format sniffing;
- :mod:`.convert`: checkpoint -> our constructor arguments and state dicts;
- :mod:`.build`: our networks built from those, strictly;
- :mod:`.write`: ``import_checkpoint`` (locked, verified, atomic);
- :mod:`.describe`: ``inspect_checkpoint``;
- :mod:`.nvidia_pkl`, :mod:`.rosinality`: the two formats;
- :mod:`.safe_pickle`, :mod:`.guarded_unpickler`, :mod:`.torch_legacy`,
  :mod:`.torch_checkpoint`: reading pickles and torch files without running or
  allocating what they ask for.
"""

from __future__ import annotations

from studio.face.importers.build import build_networks
from studio.face.importers.convert import ConvertedCheckpoint, convert_checkpoint
from studio.face.importers.describe import inspect_checkpoint
from studio.face.importers.detect import (
    FORMAT_NAMES,
    MAX_CHECKPOINT_BYTES,
    NVIDIA_PKL,
    TORCH_CKPT,
    detect_format,
)
from studio.face.importers.write import (
    LICENSE_NOTE,
    default_output_path,
    import_checkpoint,
    import_checkpoint_job,
)

__all__ = [
    "FORMAT_NAMES",
    "LICENSE_NOTE",
    "MAX_CHECKPOINT_BYTES",
    "NVIDIA_PKL",
    "TORCH_CKPT",
    "ConvertedCheckpoint",
    "build_networks",
    "convert_checkpoint",
    "default_output_path",
    "detect_format",
    "import_checkpoint",
    "import_checkpoint_job",
    "inspect_checkpoint",
]
