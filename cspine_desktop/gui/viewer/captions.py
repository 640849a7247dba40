"""The text drawn over a view: the DICOM corner overlay (patient name, ID and birth date top
left under the plane and slice number; study date and descriptions top right), window/level
and zoom at the bottom, and the orientation letters on the edges."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QWidget

from ..models import Orientation
from ..models.patient import corner_lines

CAPTION_PT = 9.0
# letters on the (left, right, top, bottom) edges in radiological orientation
EDGE_LETTERS = {
    Orientation.AXIAL: ("R", "L", "A", "P"),
    Orientation.CORONAL: ("R", "L", "S", "I"),
    Orientation.SAGITTAL: ("A", "P", "S", "I"),
}
TEXT = QColor(220, 220, 220)
LETTERS = QColor(200, 200, 120)


def caption_font(widget: QWidget) -> QFont:
    font = QFont(widget.font())
    font.setPointSizeF(CAPTION_PT)
    return font


def caption_margin(widget: QWidget) -> int:
    """Pixels kept free above and below the image for one caption line (scales with DPI)."""
    return QFontMetrics(caption_font(widget)).height() + 6


def _lines(painter: QPainter, rect: QRectF, lines: list[str], align) -> None:
    fm = painter.fontMetrics()
    for i, text in enumerate(lines):
        r = QRectF(rect).adjusted(0, i * fm.height(), 0, 0)
        painter.drawText(
            r, align, fm.elidedText(text, Qt.TextElideMode.ElideRight, int(rect.width()))
        )


def paint_captions(painter: QPainter, view) -> None:
    """Draw the captions of ``view`` (a SliceView with ``model`` and ``orientation``)."""
    model, orientation = view.model, view.orientation
    painter.setFont(caption_font(view))
    r = QRectF(view.rect()).adjusted(6, 4, -6, -4)
    half = QRectF(r.left(), r.top(), r.width() / 2 - 4, r.height())
    right_half = QRectF(r.center().x() + 4, r.top(), r.width() / 2 - 4, r.height())
    top_left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
    top_right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
    n = model.planes[orientation].n_slices
    idx = model.slice_index(orientation)
    slab = model.slab_caption(orientation) if hasattr(model, "slab_caption") else ""
    patient, study = corner_lines(model.volume.meta)
    painter.setPen(view.plane_colour())
    _lines(painter, half, [f"{orientation.value.capitalize()}  {idx + 1}/{n}{slab}"], top_left)
    painter.setPen(TEXT)
    _lines(painter, half, ["", *patient], top_left)
    _lines(painter, right_half, study, top_right)
    win = model.window
    text = f"W {win.width:.0f}  L {win.center:.0f}" + ("  inverted" if model.invert else "")
    painter.drawText(r, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, text)
    zoom = model.views[orientation].zoom
    painter.drawText(r, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, f"{zoom:.2f}×")
    left, right, top, bottom = EDGE_LETTERS[orientation]
    painter.setPen(LETTERS)
    mid = Qt.AlignmentFlag.AlignVCenter
    line = painter.fontMetrics().height()
    inner = r.adjusted(0, line * (1 + len(patient)), 0, -line)  # clear of the corner text
    painter.drawText(r, Qt.AlignmentFlag.AlignLeft | mid, left)
    painter.drawText(r, Qt.AlignmentFlag.AlignRight | mid, right)
    painter.drawText(inner, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, top)
    painter.drawText(r, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, bottom)
