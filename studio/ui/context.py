"""What every panel gets: the document, settings, job runner and viewport."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from studio.core.document import Document
from studio.core.settings import Settings
from studio.ui.job_runner import JobRunner
from studio.ui.viewport import Viewport


@dataclass
class StudioContext:
    document: Document
    settings: Settings
    runner: JobRunner
    viewport: Viewport
    show_status: Callable[[str, int], None] = lambda msg, ms=0: None
    report_error: Callable[[str, str], None] = lambda title, text: None
    set_preview_stats: Callable[[float, float], None] = lambda latency_ms, fps: None
    services: dict = field(default_factory=dict)  # shared engines, e.g. "face_preview"
