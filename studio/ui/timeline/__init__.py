"""The timeline editor: lanes view (ruler, grouped lanes, keys, clips), curve editor and
the panel that holds them (see :mod:`studio.ui.timeline.panel`)."""

from studio.ui.timeline.panel import TimelinePanel

__all__ = ["TimelinePanel"]
