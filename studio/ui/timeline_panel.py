"""The Timeline panel (kept for imports): it lives in :mod:`studio.ui.timeline`."""

from studio.ui.timeline import TimelinePanel

__all__ = ["TimelinePanel"]
