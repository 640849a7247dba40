"""Pick one series when a study holds several that could be analysed (from ``list_series``)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...imaging.volume import SeriesInfo

COLUMNS = ("Description", "Modality", "Slices", "Thickness (mm)", "Type")


class SeriesChooser(QDialog):
    """Lists ``series`` (usable ones); the one with most slices is preselected."""

    def __init__(self, series: list[SeriesInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series = list(series)
        self.setWindowTitle("Choose a series")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("This study holds several CT series. Which one to analyse?"))
        self.table = QTableWidget(len(self.series), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for row, s in enumerate(self.series):
            values = (
                s.description or s.series_uid,
                s.modality,
                str(s.n_slices),
                "" if s.slice_thickness_mm is None else f"{s.slice_thickness_mm:g}",
                "\\".join(s.image_type),
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(s.series_uid)
                self.table.setItem(row, col, item)
        if self.series:
            best = max(range(len(self.series)), key=lambda i: self.series[i].n_slices)
            self.table.selectRow(best)
        self.table.doubleClicked.connect(lambda _i: self.accept())
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 300)

    def chosen_uid(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.series[rows[0].row()].series_uid if rows else None


def choose_series_dialog(parent: QWidget | None):
    """A ``choose_series`` callable for :class:`StudyController` that asks with this dialog."""

    def choose(series: list[SeriesInfo]) -> str | None:
        dialog = SeriesChooser(series, parent)
        return dialog.chosen_uid() if dialog.exec() == QDialog.DialogCode.Accepted else None

    return choose
