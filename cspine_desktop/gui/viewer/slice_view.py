"""One plane of the volume on screen, with the shared crosshair and the reader's mouse habits.

Mouse (OHIF / Weasis / Slicer): wheel = next/previous slice, left-drag = window/level,
middle-drag = pan, right-drag = zoom, left click (no drag) = move the crosshair here.
The widget only translates gestures into :class:`ViewerModel` calls and paints what
:func:`render_slice` returns; all state lives in the model.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..models import Orientation, ViewerModel
from ..models.render import render_slice
from .captions import caption_margin, paint_captions
from .drawing import LevelCache, paint_levels, paint_measurements

CLICK_TOLERANCE_PX = 3
# colour of the crosshair line that marks each plane (Slicer: axial red, sagittal yellow,
# coronal green)
PLANE_COLOURS = {
    Orientation.AXIAL: QColor(230, 70, 70),
    Orientation.SAGITTAL: QColor(235, 210, 60),
    Orientation.CORONAL: QColor(90, 200, 90),
}
# letters on the (left, right, top, bottom) edges in radiological orientation


class SliceView(QWidget):
    """Paints the current slice of ``orientation``; emits ``probed`` (a Probe or None) as the
    mouse moves and ``activated`` (the orientation) when clicked or scrolled."""

    probed = Signal(object)
    activated = Signal(object)

    def __init__(self, model: ViewerModel, orientation: Orientation, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.orientation = orientation
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._rgb: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._rendered_index: int | None = None
        self._button = Qt.MouseButton.NoButton
        self._press_pos = QPointF()
        self._last_pos = QPointF()
        self._wheel_rest = 0.0
        model.changed.connect(self._on_model_changed)
        model.overlays.changed.connect(self.invalidate)
        model.measurements.changed.connect(self.update)
        self._levels = LevelCache()

    # ---------------------------------------------------------------- model → pixels
    def invalidate(self, *_: object) -> None:
        self._qimage = None
        self.update()

    def _on_model_changed(self, kind: str) -> None:
        if kind == "cursor" and self._rendered_index == self._current_index():
            self.update()  # only the crosshair moved in this plane
        elif kind == "view":
            self.update()
        else:
            self.invalidate()

    def _current_index(self) -> int | None:
        return self.model.slice_index(self.orientation) if self.model.has_volume else None

    def current_image(self) -> np.ndarray:
        """The RGB array [rows, cols, 3] of the slice as displayed (rendered if needed)."""
        if self._qimage is None or self._rendered_index != self._current_index():
            self._rgb = render_slice(self.model, self.orientation)
            h, w, _ = self._rgb.shape
            self._qimage = QImage(self._rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            self._rendered_index = self._current_index()
        return self._rgb  # type: ignore[return-value]

    def image_transform(self) -> QTransform:
        """Displayed-pixel (col, row) → widget coordinates, keeping the physical aspect."""
        if not self.model.has_volume:
            return QTransform()
        plane = self.model.planes[self.orientation]
        rows, cols = plane.image_shape
        row_mm, col_mm = plane.pixel_mm
        view = self.model.views[self.orientation]
        # one caption line above and below stays clear of the image (at zoom 1)
        margin = caption_margin(self)
        w, h = max(1, self.width()), max(1, self.height() - 2 * margin)
        scale = min(w / (cols * col_mm), h / (rows * row_mm)) * view.zoom
        sx, sy = scale * col_mm, scale * row_mm
        dx = (w - cols * sx) / 2.0 + view.pan_x
        dy = margin + (h - rows * sy) / 2.0 + view.pan_y
        return QTransform(sx, 0.0, 0.0, sy, dx, dy)

    def widget_to_pixel(self, pos: QPointF) -> tuple[float, float]:
        """(row, col) of the displayed pixel under widget position ``pos`` (may be outside)."""
        inv, _ = self.image_transform().inverted()
        p = inv.map(QPointF(pos))
        return math.floor(p.y()), math.floor(p.x())

    def pixel_to_widget(self, row: float, col: float) -> QPointF:
        """Widget position of the centre of displayed pixel (row, col)."""
        return self.image_transform().map(QPointF(col + 0.5, row + 0.5))

    # ---------------------------------------------------------------- painting
    def plane_colour(self) -> QColor:
        return PLANE_COLOURS[self.orientation]

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if not self.model.has_volume:
            painter.setPen(QColor(120, 120, 120))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.orientation.value)
            painter.end()
            return
        self.current_image()
        painter.save()
        painter.setTransform(self.image_transform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        if self._qimage is not None:  # current_image() has just made it
            painter.drawImage(0, 0, self._qimage)
        painter.restore()
        self._paint_crosshair(painter)
        paint_levels(painter, self, self._levels)
        paint_measurements(painter, self)
        self._paint_annotations(painter)
        painter.end()

    def _paint_crosshair(self, painter: QPainter) -> None:
        plane = self.model.planes[self.orientation]
        row, col = plane.to_display(self.model.cursor)
        centre = self.pixel_to_widget(row, col)
        rows, cols = plane.image_shape
        top_left = self.pixel_to_widget(-0.5, -0.5)
        bottom_right = self.pixel_to_widget(rows - 0.5, cols - 0.5)
        row_axis, col_axis = self.orientation.plane_axes
        vertical_plane = _plane_through(col_axis)  # a vertical line = a plane across columns
        horizontal_plane = _plane_through(row_axis)
        for plane_o, a, b in (
            (
                vertical_plane,
                QPointF(centre.x(), top_left.y()),
                QPointF(centre.x(), bottom_right.y()),
            ),
            (
                horizontal_plane,
                QPointF(top_left.x(), centre.y()),
                QPointF(bottom_right.x(), centre.y()),
            ),
        ):
            pen = QPen(PLANE_COLOURS[plane_o])
            pen.setWidthF(1.0)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawLine(a, b)

    def _paint_annotations(self, painter: QPainter) -> None:
        paint_captions(painter, self)

    # ---------------------------------------------------------------- mouse
    def _measuring(self, event: QMouseEvent) -> bool:
        """A measurement tool is chosen and the left button draws with it."""
        tool = self.model.measurements.tool
        return self.model.has_volume and tool != "navigate"

    def _point(self, pos: QPointF) -> tuple[float, float]:
        """Displayed-pixel (row, col) under ``pos``, sub-pixel, clamped to the image."""
        inv, _ = self.image_transform().inverted()
        p = inv.map(QPointF(pos))
        rows, cols = self.model.planes[self.orientation].image_shape
        return min(max(p.y(), 0.0), float(rows)), min(max(p.x(), 0.0), float(cols))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.model.active = self.orientation
        self.activated.emit(self.orientation)
        self._button = event.button()
        self._press_pos = self._last_pos = event.position()
        if event.button() == Qt.MouseButton.LeftButton and self._measuring(event):
            index = self.model.slice_index(self.orientation)
            self.model.measurements.press(self.orientation, index, self._point(event.position()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        dx, dy = pos.x() - self._last_pos.x(), pos.y() - self._last_pos.y()
        self._last_pos = pos
        buttons = event.buttons()
        if buttons & Qt.MouseButton.LeftButton and self._measuring(event):
            self.model.measurements.drag(self._point(pos))
        elif self.model.has_volume and buttons & Qt.MouseButton.LeftButton:
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self._move_crosshair(pos)
            elif not self._is_click(pos):
                self.model.drag_window(dx, dy)
        elif self.model.has_volume and buttons & Qt.MouseButton.MiddleButton:
            self.model.drag_pan(self.orientation, dx, dy)
        elif self.model.has_volume and buttons & Qt.MouseButton.RightButton:
            self.model.drag_zoom(self.orientation, dy)
        self._emit_probe(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._measuring(event):
            self.model.measurements.release(self._point(event.position()))
        elif event.button() == Qt.MouseButton.LeftButton and self._is_click(event.position()):
            self._move_crosshair(event.position())
        self._button = Qt.MouseButton.NoButton

    def wheelEvent(self, event: QWheelEvent) -> None:
        """One notch (120 units) = one slice; wheel down/toward the user = next slice."""
        self.model.active = self.orientation
        self._wheel_rest += -event.angleDelta().y() / 120.0
        steps = int(self._wheel_rest)
        if steps:
            self._wheel_rest -= steps
            self.model.step_slice(self.orientation, steps)
            self._emit_probe(event.position())
        event.accept()

    def leaveEvent(self, event) -> None:
        self.probed.emit(None)

    def _is_click(self, pos: QPointF) -> bool:
        d = pos - self._press_pos
        return abs(d.x()) + abs(d.y()) < CLICK_TOLERANCE_PX

    def _move_crosshair(self, pos: QPointF) -> None:
        if not self.model.has_volume:
            return
        plane = self.model.planes[self.orientation]
        row, col = self.widget_to_pixel(pos)
        rows, cols = plane.image_shape
        if 0 <= row < rows and 0 <= col < cols:
            self.model.set_cursor(
                plane.to_voxel(row, col, self.model.slice_index(self.orientation))
            )

    def _emit_probe(self, pos: QPointF) -> None:
        if self.model.has_volume:
            self.probed.emit(self.model.probe(self.orientation, *self.widget_to_pixel(pos)))


def _plane_through(axis: int) -> Orientation:
    """The orientation whose slices step along array ``axis`` (drawn as a crosshair line)."""
    return next(o for o in Orientation if o.index_axis == axis)
