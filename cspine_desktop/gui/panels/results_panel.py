"""The verdicts: the patient banner (amber "Indeterminate — read the images" with its reasons
when no verdict can be given — never green), the C1–C7 table with each threshold,
model/backend/timing, loading warnings, and the "not for diagnostic use" notice (always shown,
result or not). Words and colours come from :mod:`cspine_desktop.analysis.wording`."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ... import DISCLAIMER
from ...analysis import wording
from ...analysis.result import AnalysisResult
from ...vertebrae import VERTEBRAE
from .overlay_panel import colour_icon

# whether a level is in view is in its verdict ("— not in view"); no column of its own
COLUMNS = ("Level", "Probability", "Threshold", "Verdict")
PROBABILITY_COL, THRESHOLD_COL, VERDICT_COL = 1, 2, 3
MAX_REASONS = 4  # reasons shown under the banner; all of them in its tooltip
_MARKS = {wording.FRACTURE: "⚠ ", wording.CLEAR: "✓ ", wording.UNSURE: "? ", wording.ABSENT: "— "}
FRACTURE_TEXT = _MARKS[wording.FRACTURE] + wording.vertebra_word("assessed", True)
CLEAR_TEXT = _MARKS[wording.CLEAR] + wording.vertebra_word("assessed", False)
ABSENT_TEXT = _MARKS[wording.ABSENT] + wording.vertebra_word("not_in_view", None)


def verdict_cell(status: str | None, fractured: bool | None) -> tuple[str, QColor]:
    """(text, colour) of one verdict cell: a mark and the shared words."""
    t = wording.tone(status, fractured)
    return _MARKS[t] + wording.vertebra_word(status, fractured), QColor(wording.COLOURS[t])


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
        self.reasons = QLabel("")
        self.reasons.setWordWrap(True)
        self.reasons.setObjectName("verdictReasons")
        self.reasons.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(len(VERTEBRAE), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(VERDICT_COL, QHeaderView.ResizeMode.Stretch)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.cellClicked.connect(self._on_row_clicked)
        for row, v in enumerate(VERTEBRAE):
            item = QTableWidgetItem(colour_icon(v.rgb), v.name)
            self.table.setItem(row, 0, item)
        layout.addWidget(self.table)
        self._fit_table()

        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #8a5a00;")
        # the banner, the C1–C7 table and the notice are always in full view; the reasons,
        # model details and warnings below the table scroll when the screen is short
        more = QWidget()
        more_layout = QVBoxLayout(more)
        more_layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.reasons, self.details, self.warnings):
            more_layout.addWidget(w)
        more_layout.addStretch(1)
        self.more = QScrollArea()
        self.more.setObjectName("verdictDetails")
        self.more.setWidgetResizable(True)
        self.more.setFrameShape(QFrame.Shape.NoFrame)
        self.more.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.more.setWidget(more)
        self.more.setMinimumHeight(4 * self.fontMetrics().lineSpacing())
        layout.addWidget(self.more, 1)
        self.notice = DisclaimerLabel()
        layout.addWidget(self.notice)
        self.show_result(None)

    def resizeEvent(self, event) -> None:
        """The banner and the notice keep every wrapped line at the current width."""
        super().resizeEvent(event)
        for label in (self.patient_label, self.notice):
            label.setMinimumHeight(label.heightForWidth(max(1, label.width())))

    # ---------------------------------------------------------------- display
    def _fit_table(self) -> None:
        """All seven rows and every header in full, never a scroll bar (sizes follow the
        font, so they scale with the screen's DPI)."""
        fm = self.table.fontMetrics()
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(fm.height() + 8)
        header = self.table.horizontalHeader()
        height = header.sizeHint().height() + len(VERTEBRAE) * rows.defaultSectionSize()
        self.table.setFixedHeight(height + 2 * self.table.frameWidth() + 2)
        widest = fm.horizontalAdvance(FRACTURE_TEXT) + 16
        needed = sum(self.table.sizeHintForColumn(c) for c in range(VERDICT_COL))
        header_needed = sum(fm.horizontalAdvance(COLUMNS[c]) + 24 for c in range(len(COLUMNS) - 1))
        self.table.setMinimumWidth(
            max(needed, header_needed) + widest + 2 * self.table.frameWidth()
        )

    def show_result(self, result: AnalysisResult | None, load_warnings: Sequence[str] = ()) -> None:
        """Fill the panel from ``result`` (None = clear); ``load_warnings`` come from loading."""
        self.result = result
        self.table.clearSelection()  # a row chosen for another patient must not carry over
        self.table.setCurrentCell(-1, -1)
        for row in range(len(VERTEBRAE)):
            verdict = result.vertebrae[row] if result else None
            prob = (
                ""
                if verdict is None or verdict.probability is None or not verdict.present
                else f"{verdict.probability:.2f}"
            )
            threshold = "" if verdict is None else wording.threshold_text(verdict.threshold)
            if verdict is None:
                text, colour = "", QColor(wording.COLOURS[wording.ABSENT])
            else:
                text, colour = verdict_cell(verdict.status, verdict.fractured)
            cells = ((PROBABILITY_COL, prob), (THRESHOLD_COL, threshold), (VERDICT_COL, text))
            for col, value in cells:
                item = QTableWidgetItem(value)
                if col == VERDICT_COL:
                    item.setForeground(QBrush(colour))
                tip = _tooltip(verdict)
                item.setToolTip(tip)
                self.table.setItem(row, col, item)
        self._fit_table()
        self._show_patient(result)
        self._show_reasons(result)
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
        self.patient_label.setText(
            wording.patient_headline(p.status, p.fractured, p.probability, p.threshold)
        )
        colour = wording.colour(p.status, p.fractured)
        style = f"font-size: 13pt; font-weight: bold; color: {colour};"
        if result.indeterminate:
            style += (
                f" background: {wording.AMBER_BACKGROUND}; border: 2px solid "
                f"{wording.AMBER_BORDER}; padding: 4px;"
            )
        self.patient_label.setStyleSheet(style)
        self.patient_label.setMinimumHeight(
            self.patient_label.heightForWidth(max(1, self.patient_label.width()))
        )
        self.patient_label.setToolTip(
            wording.threshold_text(p.threshold, p.operating_point) if p.threshold else ""
        )

    def _show_reasons(self, result: AnalysisResult | None) -> None:
        lines = wording.reason_lines(result) if result is not None else []
        if result is not None and result.indeterminate:
            po = result.patient_overall
            lines.insert(
                0,
                f"No verdict is given (patient probability {po.probability:.2f}, threshold "
                f"{wording.threshold_text(po.threshold)}). Why:",
            )
        shown = lines[: MAX_REASONS + 1]
        if len(lines) > len(shown):
            shown.append(f"… and {len(lines) - len(shown)} more (hover to see all)")
        self.reasons.setText("\n".join(f"• {x}" if i else x for i, x in enumerate(shown)))
        self.reasons.setToolTip("\n".join(lines))
        colour = wording.COLOURS[wording.UNSURE]
        self.reasons.setStyleSheet(f"color: {colour};")
        self.reasons.setVisible(bool(lines))

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
        item = self.table.item(row, VERDICT_COL)
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
    parts.extend(verdict.reasons)
    if verdict.threshold is not None:
        op = verdict.operating_point
        parts.append("threshold " + wording.threshold_text(verdict.threshold, op))
    return "; ".join(parts)
