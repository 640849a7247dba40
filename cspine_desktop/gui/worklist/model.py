"""Qt table model over :class:`WorklistRow` s."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from .rows import WorklistRow

COLUMNS = ("Patient", "Verdict", "State", "Study date", "Study", "Source", "Received")
STATE_COL, VERDICT_COL = 2, 1
STUDY_ID_ROLE = Qt.ItemDataRole.UserRole + 1


class WorklistModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[WorklistRow] = []
        self.open_study_id: str | None = None  # drawn in bold: the study on screen

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                row.patient,
                row.verdict_text,
                row.state_text,
                row.date_text,
                row.description,
                row.source_text,
                row.received_text,
            )[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == STATE_COL and row.error:
                return row.error
            if col in (0, 4):
                return row.patient if col == 0 else row.description
            if col == VERDICT_COL and row.reasons:
                return "\n".join(row.reasons)
        if role == Qt.ItemDataRole.ForegroundRole and col == VERDICT_COL and row.verdict_colour:
            return QBrush(QColor(row.verdict_colour))
        if role == Qt.ItemDataRole.FontRole and row.study_id == self.open_study_id:
            font = QFont()
            font.setBold(True)
            return font
        if role == STUDY_ID_ROLE:
            return row.study_id
        return None

    def set_rows(self, rows: list[WorklistRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def set_open_study(self, study_id: str | None) -> None:
        self.open_study_id = study_id
        if self.rows:
            last = self.index(len(self.rows) - 1, len(COLUMNS) - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def row_of(self, study_id: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.study_id == study_id), -1)

    def update_row(self, row: WorklistRow) -> None:
        i = self.row_of(row.study_id)
        if i < 0:
            return
        self.rows[i] = row
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
