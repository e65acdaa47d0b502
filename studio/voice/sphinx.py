"""PocketSphinx decoders (the English model ships inside the package), made once each.

The aligner and the recogniser need differently configured decoders (forced alignment
turns off the best-path search), so each configuration gets its own, cached by its
settings; callers serialise their use with their own lock.
"""

from __future__ import annotations

import threading
from typing import Any

from studio.core.errors import StudioError

_decoders: dict[tuple, Any] = {}
_lock = threading.Lock()


def decoder(**settings: Any) -> Any:
    """The PocketSphinx ``Decoder`` for ``settings`` (made on first use, quiet)."""
    key = tuple(sorted(settings.items()))
    with _lock:
        found = _decoders.get(key)
        if found is None:
            try:
                from pocketsphinx import Decoder, set_loglevel
            except ImportError as exc:  # pragma: no cover - packaging problem
                raise StudioError("PocketSphinx is not installed (the pocketsphinx package)") \
                    from exc
            set_loglevel("FATAL")
            found = _decoders[key] = Decoder(loglevel="FATAL", **settings)
        return found
