"""The verdicts: C1–C7 table, patient-level verdict, model/backend/timing, loading warnings,
and the "not for diagnostic use" notice (always shown, result or not)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ... import DISCLAIMER
from ...analysis.result import AnalysisResult
from ...vertebrae import VERTEBRAE
from .overlay_panel import colour_icon

COLUMNS = ("Vertebra", "Present", "Probability", "Verdict")
FRACTURE_TEXT, CLEAR_TEXT, ABSENT_TEXT = "⚠ fracture", "✓ no fracture", "— not in view"
FRACTURE_COLOUR, CLEAR_COLOUR, ABSENT_COLOUR = (
    QColor(200, 40, 40),
    QColor(30, 130, 60),
    QColor(120, 120, 120),
)


class DisclaimerLabel(QLabel):
    """The decision-support notice, styled so it is hard to miss."""

    def __init__(self, parent=None) -> None:
        super().__init__(DISCLAIMER, parent)
        self.setWordWrap(True)
        self.setObjectName("disclaimer")
        self.setStyleSheet(
            "QLabel#disclaimer { background: #fff3cd; color: #664d03; padding: 4px; "
            "border: 1px solid #ffda6a; font-weight: bold; }"
        )


class ResultsPanel(QWidget):
    """Shows one :class:`AnalysisResult`. Clicking a vertebra row emits
    ``vertebra_selected(label, peak_slice)`` (peak slice on the source grid, or -1)."""

    vertebra_selected = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.result: AnalysisResult | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.patient_label = QLabel("No analysis yet.")
        self.patient_label.setWordWrap(True)
        self.patient_label.setObjectName("patientVerdict")
        layout.addWidget(self.patient_label)

        self.table = QTableWidget(len(VERTEBRAE), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(self._on_row_clicked)
        for row, v in enumerate(VERTEBRAE):
            item = QTableWidgetItem(colour_icon(v.rgb), v.name)
            self.table.setItem(row, 0, item)
        layout.addWidget(self.table)

        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #8a5a00;")
        layout.addWidget(self.warnings)
        layout.addWidget(DisclaimerLabel())
        self.show_result(None)

    # ---------------------------------------------------------------- display
    def show_result(self, result: AnalysisResult | None, load_warnings: list[str] = ()) -> None:
        """Fill the panel from ``result`` (None = clear); ``load_warnings`` come from loading."""
        self.result = result
        for row in range(len(VERTEBRAE)):
            verdict = result.vertebrae[row] if result else None
            present = "" if verdict is None else ("yes" if verdict.present else "no")
            prob = (
                ""
                if verdict is None or verdict.probability is None or not verdict.present
                else f"{verdict.probability:.2f}"
            )
            if verdict is None:
                text, colour = "", ABSENT_COLOUR
            elif not verdict.present:
                text, colour = ABSENT_TEXT, ABSENT_COLOUR
            elif verdict.fractured:
                text, colour = FRACTURE_TEXT, FRACTURE_COLOUR
            else:
                text, colour = CLEAR_TEXT, CLEAR_COLOUR
            for col, value in ((1, present), (2, prob), (3, text)):
                item = QTableWidgetItem(value)
                if col == 3:
                    item.setForeground(QBrush(colour))
                tip = _tooltip(verdict)
                item.setToolTip(tip)
                self.table.setItem(row, col, item)
        self._show_patient(result)
        self._show_details(result)
        warnings = list(load_warnings) + (list(result.warnings) if result else [])
        self.warnings.setText("\n".join(f"• {w}" for w in dict.fromkeys(warnings)))
        self.warnings.setVisible(bool(warnings))

    def _show_patient(self, result: AnalysisResult | None) -> None:
        if result is None:
            self.patient_label.setText("No analysis yet.")
            self.patient_label.setStyleSheet("font-size: 13pt;")
            return
        p = result.patient_overall
        if p.fractured:
            text, colour = (
                f"Fracture suspected — patient probability {p.probability:.2f}",
                "#c82828",
            )
        else:
            text, colour = (
                f"No fracture detected — patient probability {p.probability:.2f}",
                "#1e823c",
            )
        self.patient_label.setText(text)
        self.patient_label.setStyleSheet(f"font-size: 13pt; font-weight: bold; color: {colour};")

    def _show_details(self, result: AnalysisResult | None) -> None:
        if result is None:
            self.details.setText("")
            return
        total = result.timings_s.get("total", sum(result.timings_s.values()))
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items() if k != "total")
        self.details.setText(
            f"Model: {result.model.name} {result.model.version}\n"
            f"Backend: {result.backend}\n"
            f"Time: {total:.1f} s" + (f" ({timing})" if timing else "")
        )

    # ---------------------------------------------------------------- interaction
    def verdict_text(self, row: int) -> str:
        item = self.table.item(row, 3)
        return item.text() if item else ""

    def _on_row_clicked(self, row: int, _col: int) -> None:
        if self.result is None:
            return
        verdict = self.result.vertebrae[row]
        peak = verdict.peak_slice
        if peak is None and verdict.slice_range:
            peak = (verdict.slice_range[0] + verdict.slice_range[1]) // 2
        self.vertebra_selected.emit(VERTEBRAE[row].label, -1 if peak is None else int(peak))


def _tooltip(verdict) -> str:
    if verdict is None:
        return ""
    parts = []
    if verdict.slice_range:
        parts.append(f"slices {verdict.slice_range[0] + 1}–{verdict.slice_range[1] + 1}")
    if verdict.peak_slice is not None:
        parts.append(f"most suspicious slice {verdict.peak_slice + 1}")
    parts.extend(verdict.notes)
    return "; ".join(parts)
