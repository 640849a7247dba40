"""The heat-map's colour bar: probability 0 → 1 on the shared scale, the analysis's threshold
marked, and the part below it greyed out while it is hidden."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...vertebrae import HEAT_SCALE_RGB
from ..models import OverlayModel


class HeatScaleBar(QWidget):
    """Paints the scale of ``overlays`` and follows its threshold and switches."""

    def __init__(self, overlays: OverlayModel, parent=None) -> None:
        super().__init__(parent)
        self.overlays = overlays
        self.setObjectName("heatScale")
        fm = self.fontMetrics()
        self.setMinimumHeight(2 * fm.height() + 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        overlays.changed.connect(self.update)

    def threshold_text(self) -> str:
        return f"threshold {self.overlays.heat_threshold:.2f}"

    def bar_rect(self) -> QRectF:
        fm = self.fontMetrics()
        return QRectF(6, 2, max(10, self.width() - 12), fm.height())

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        bar = self.bar_rect()
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        grad.setColorAt(0.0, QColor(*HEAT_SCALE_RGB[0]))
        grad.setColorAt(1.0, QColor(*HEAT_SCALE_RGB[1]))
        painter.fillRect(bar, grad)
        t = self.overlays.heat_threshold
        x = bar.left() + t * bar.width()
        if not self.overlays.heat_below_threshold:  # hidden part: greyed
            painter.fillRect(
                QRectF(bar.left(), bar.top(), x - bar.left(), bar.height()), QColor(90, 90, 90, 200)
            )
        painter.setPen(QPen(self.palette().text().color(), 2))
        painter.drawLine(QPointF(x, bar.top() - 1), QPointF(x, bar.bottom() + 4))
        painter.setPen(self.palette().text().color())
        fm = self.fontMetrics()
        y = bar.bottom() + 4
        label_rect = QRectF(bar.left(), y, bar.width(), fm.height() + 4)
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignLeft, "0")
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignRight, "1")
        text = self.threshold_text()
        w = fm.horizontalAdvance(text)
        left = min(
            max(bar.left() + fm.horizontalAdvance("0 "), x - w / 2),
            bar.right() - w - fm.horizontalAdvance(" 1"),
        )
        painter.drawText(QRectF(left, y, w + 2, fm.height() + 4), Qt.AlignmentFlag.AlignLeft, text)
        painter.end()
