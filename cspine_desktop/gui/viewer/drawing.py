"""Drawing over a view: the C1–C7 level names beside the spine (sagittal and coronal) and the
reader's measurements with their values."""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen

from ...vertebrae import VERTEBRAE
from ..models.levels import level_positions
from ..models.measurements import describe
from ..models.render import slab_slice

MEASURE_COLOUR = QColor(255, 255, 255)
PENDING_COLOUR = QColor(255, 255, 255, 170)


def _outlined_text(painter: QPainter, pos: QPointF, text: str, colour: QColor) -> None:
    """Text with a dark outline, readable on bone and on air."""
    path = QPainterPath()
    path.addText(pos, painter.font(), text)
    painter.setPen(QPen(QColor(0, 0, 0, 220), 3))
    painter.drawPath(path)
    painter.fillPath(path, colour)


class LevelCache:
    """Level positions per (labels array, orientation), recomputed only when labels change."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: list = []

    def get(self, labels, plane) -> list:
        key = (id(labels), plane.orientation, plane.shape)
        if key != self._key:
            self._key, self._value = key, level_positions(labels, plane)
        return self._value


def paint_levels(painter: QPainter, view, cache: LevelCache) -> None:
    ov = view.model.overlays
    if ov.labels is None or not ov.labels_visible:
        return
    plane = view.model.planes[view.orientation]
    font = QFont(view.font())
    font.setPointSizeF(10.0)
    font.setBold(True)
    painter.setFont(font)
    for label, row, col in cache.get(ov.labels, plane):
        if label in ov.hidden_labels:
            continue
        v = VERTEBRAE[label - 1]
        pos = view.pixel_to_widget(row, col)
        pos = QPointF(pos.x() + 4, pos.y() + painter.fontMetrics().ascent() / 2)
        _outlined_text(painter, pos, v.name, QColor(*v.rgb))


def paint_measurements(painter: QPainter, view) -> None:
    model, o = view.model, view.orientation
    shown = model.measurements.on_slice(o, model.slice_index(o))
    if not shown:
        return
    plane = model.planes[o]
    hu = slab_slice(model, o) if any(m.kind == "roi" for m in shown) else None
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    font = QFont(view.font())
    font.setPointSizeF(9.5)
    painter.setFont(font)
    for m in shown:
        colour = MEASURE_COLOUR if m in model.measurements.items else PENDING_COLOUR
        pen = QPen(colour, 1.5)
        painter.setPen(pen)
        pts = [view.pixel_to_widget(r - 0.5, c - 0.5) for r, c in m.points]
        if m.kind == "roi":
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(QRectF(pts[0], pts[1]).normalized())
        elif m.kind == "cobb":
            painter.drawLine(pts[0], pts[1])
            if len(pts) >= 4:
                painter.drawLine(pts[2], pts[3])
        else:
            for a, b in itertools.pairwise(pts):
                painter.drawLine(a, b)
        for p in pts:
            painter.drawEllipse(p, 2.5, 2.5)
        text = describe(m, plane, hu)
        if text:  # beside the last point, kept inside the view
            fm = painter.fontMetrics()
            x = pts[-1].x() + 8
            if x + fm.horizontalAdvance(text) > view.width() - 4:
                x = max(4.0, pts[-1].x() - 8 - fm.horizontalAdvance(text))
            y = min(max(pts[-1].y() - 6, fm.ascent() + 2), view.height() - fm.descent() - 2)
            _outlined_text(painter, QPointF(x, y), text, colour)
