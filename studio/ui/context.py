"""What every panel gets: the document, the app model, the job runner and the viewport.

Panels take what they need from here, typed, and listen to the app model's events
(``app.events.device``, ``app.models.changed``, ``app.transport.events``); they never
reach into the main window or into each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from studio.core.app import AppModel
from studio.core.document import Document
from studio.core.settings import Settings
from studio.render.playback import PlaybackState
from studio.ui.job_runner import JobRunner
from studio.ui.viewport import Viewport


@dataclass
class StudioContext:
    document: Document
    app: AppModel
    runner: JobRunner
    viewport: Viewport
    show_status: Callable[[str, int], None] = lambda msg, ms=0: None
    report_error: Callable[[str, str], None] = lambda title, text: None
    # the last full render's time in ms, and frames per second while frames arrive (or None)
    set_preview_stats: Callable[[float, float | None], None] = lambda render_ms, fps: None
    # audio output: available?, a short message when not, details for its tooltip
    set_audio_status: Callable[[bool, str, str], None] = lambda ok, msg, details: None
    # File > Save As (asks where); True when the project was saved
    save_project_as: Callable[[], bool] = lambda: False
    # playback: the slow-machine policy, the render cache's ranges (for the ruler), status
    playback: PlaybackState = field(default_factory=PlaybackState)

    @property
    def settings(self) -> Settings:
        return self.app.settings
