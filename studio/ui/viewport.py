"""The central viewport: shows the current frame with zoom, pan, fit, 1:1, a checkerboard
under transparent pixels, and a before/after compare slider."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from studio.ui.imageutil import to_qimage

MIN_ZOOM, MAX_ZOOM = 0.05, 32.0


def _checker_brush(cell: int = 8) -> QBrush:
    pm = QPixmap(cell * 2, cell * 2)
    pm.fill(QColor("#5a5d63"))
    p = QPainter(pm)
    p.fillRect(0, 0, cell, cell, QColor("#3c3f45"))
    p.fillRect(cell, cell, cell, cell, QColor("#3c3f45"))
    p.end()
    return QBrush(pm)


class Viewport(QWidget):
    zoom_changed = Signal(float)
    frame_shown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewport")
        self.setMinimumSize(200, 200)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self._image: QImage | None = None
        self._before: QImage | None = None
        self._zoom = 1.0
        self._center = QPointF(0, 0)  # image coordinate shown at the widget centre
        self._fit = True
        self._split = 0.5  # compare slider position, 0..1 of the image width
        self._drag: str | None = None
        self._last_pos = QPointF()
        self._message = "No image yet"
        self._checker = _checker_brush()
        self.frames_shown = 0

    # -- content -----------------------------------------------------------------------
    def set_image(self, img: np.ndarray | QImage | None) -> None:
        new = to_qimage(img) if isinstance(img, np.ndarray) else img
        size_changed = (
            new is None or self._image is None or new.size() != self._image.size()
        )
        self._image = new
        if size_changed and self._image is not None and self._fit:
            self.fit()
        elif size_changed and self._image is not None:
            self._center = QPointF(self._image.width() / 2, self._image.height() / 2)
        self.frames_shown += 1
        self.update()
        self.frame_shown.emit()

    def set_before(self, img: np.ndarray | QImage | None) -> None:
        """Show a before/after compare: ``img`` left of the slider, the current image right."""
        self._before = to_qimage(img) if isinstance(img, np.ndarray) else img
        self.update()

    def set_message(self, text: str) -> None:
        self._message = text
        self.update()

    @property
    def image(self) -> QImage | None:
        return self._image

    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def compare_active(self) -> bool:
        return self._before is not None and self._image is not None

    @property
    def split(self) -> float:
        return self._split

    def set_split(self, value: float) -> None:
        self._split = float(min(max(value, 0.0), 1.0))
        self.update()

    # -- view ----------------------------------------------------------------------------
    def fit(self) -> None:
        self._fit = True
        if self._image is None or self._image.width() == 0:
            return
        margin = 16
        zx = (self.width() - margin) / self._image.width()
        zy = (self.height() - margin) / self._image.height()
        self._set_zoom(max(MIN_ZOOM, min(zx, zy)))
        self._center = QPointF(self._image.width() / 2, self._image.height() / 2)
        self.update()

    def actual_size(self) -> None:
        self._fit = False
        self._set_zoom(1.0)
        if self._image is not None:
            self._center = QPointF(self._image.width() / 2, self._image.height() / 2)
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self._fit = False
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self.widget_to_image(anchor)
        self._set_zoom(self._zoom * factor)
        after = self.widget_to_image(anchor)
        self._center += before - after
        self.update()

    def _set_zoom(self, z: float) -> None:
        z = float(min(max(z, MIN_ZOOM), MAX_ZOOM))
        if z != self._zoom:
            self._zoom = z
            self.zoom_changed.emit(z)

    def image_rect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        w, h = self._image.width() * self._zoom, self._image.height() * self._zoom
        cx = self.width() / 2 - self._center.x() * self._zoom
        cy = self.height() / 2 - self._center.y() * self._zoom
        return QRectF(cx, cy, w, h)

    def widget_to_image(self, pos: QPointF) -> QPointF:
        r = self.image_rect()
        return QPointF((pos.x() - r.x()) / self._zoom, (pos.y() - r.y()) / self._zoom)

    def _split_x(self) -> float:
        r = self.image_rect()
        return r.x() + r.width() * self._split

    # -- painting ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#151618"))
        if self._image is None:
            p.setPen(QColor("#8b9099"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._message)
            return
        r = self.image_rect()
        p.fillRect(r, self._checker)
        smooth = self._zoom < 1.0 or self._fit  # pixel-exact only when zoomed in by hand
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.drawImage(r, self._image)
        if self.compare_active:
            sx = self._split_x()
            p.save()
            p.setClipRect(QRectF(r.x(), r.y(), sx - r.x(), r.height()))
            p.fillRect(r, self._checker)
            p.drawImage(r, self._before)
            p.restore()
            p.setPen(QPen(QColor("#ffffff"), 2))
            p.drawLine(QPointF(sx, r.top()), QPointF(sx, r.bottom()))
            p.setBrush(QColor("#4f9dff"))
            p.drawEllipse(QPointF(sx, r.center().y()), 7, 7)
            p.setPen(QColor("#ffffff"))
            p.drawText(QPointF(r.x() + 8, r.y() + 18), "before")
            p.drawText(QPointF(r.right() - 40, r.y() + 18), "after")
        p.setPen(QColor("#8b9099"))
        p.drawText(QPointF(8, self.height() - 8), f"{self._zoom * 100:.0f}%")

    # -- interaction ---------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802
        if self._fit:
            self.fit()
        super().resizeEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15**steps, event.position())

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self.compare_active and abs(pos.x() - self._split_x()) < 8:
            self._drag = "split"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self._last_pos = pos

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._drag == "split":
            r = self.image_rect()
            if r.width() > 0:
                self.set_split((pos.x() - r.x()) / r.width())
        elif self._drag == "pan":
            self._fit = False
            self._center -= (pos - self._last_pos) / self._zoom
            self.update()
        elif self.compare_active:
            near = abs(pos.x() - self._split_x()) < 8
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.ArrowCursor)
        self._last_pos = pos

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag = None
        self.setCursor(Qt.CursorShape.ArrowCursor)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.fit()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        else:
            super().keyPressEvent(event)
