"""The worklist panel: search, table, open / re-analyse / delete (admin).

Job-queue events arrive on worker threads; :class:`JobEventBridge` turns them into a queued Qt
signal. Progress events update the row in place; "queued"/"finished"/"requeued" events trigger a
(debounced, off-thread) re-read of the list, so studies uploaded through the HTTP endpoint appear
without the user doing anything. Events only reach this process: a slow poll (every
``poll_s``) also picks up what another process (``cspine serve`` on the same data folder)
stored.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..errors import show_error
from ..workers import run_in_background
from .model import STUDY_ID_ROLE, WorklistModel
from .rows import fetch_rows

REFRESH_DEBOUNCE_MS = 250
POLL_S = 30.0
MAX_PATIENT_PX, MAX_STUDY_PX = 170, 160  # longer names are elided (full text in the tooltip)


class JobEventBridge(QObject):
    """Subscribes to the job queue; re-emits each JobEvent in the GUI thread."""

    event = Signal(object)

    def __init__(self, jobs: Any, parent=None) -> None:
        super().__init__(parent)
        self._unsubscribe = jobs.subscribe(self.event.emit)  # emitted from worker threads

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class WorklistPanel(QWidget):
    """``open_requested(study_id)``, ``reanalyse_requested(study_id)`` go to the main window;
    delete is done here (admin only, after confirmation). ``refreshed`` fires after each
    reload (tests wait on it)."""

    open_requested = Signal(str)
    reanalyse_requested = Signal(str)
    refreshed = Signal()
    deleted = Signal(str)

    def __init__(self, services: Any, user: Any, parent=None, poll_s: float = POLL_S) -> None:
        super().__init__(parent)
        self.services = services
        self.user = user
        self.model = WorklistModel(self)
        self._refreshing = False
        self._again = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search patient, study, UID…")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda idx: self._emit_for(idx.row(), self.open_requested))
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.reanalyse_button = QPushButton("Re-analyse")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setVisible(bool(getattr(user, "is_admin", False)))
        for b in (self.open_button, self.reanalyse_button, self.delete_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.open_button.clicked.connect(lambda: self._emit_selected(self.open_requested))
        self.reanalyse_button.clicked.connect(lambda: self._emit_selected(self.reanalyse_requested))
        self.delete_button.clicked.connect(self.delete_selected)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(REFRESH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.bridge = JobEventBridge(services.jobs, self)
        self.bridge.event.connect(self.on_job_event)
        self._poll = QTimer(self)
        self._poll.setInterval(int(poll_s * 1000))
        self._poll.timeout.connect(self.refresh)
        self._poll.start()
        self.refresh()

    # ---------------------------------------------------------------- data
    def refresh(self) -> None:
        """Re-read the list off the GUI thread (coalescing requests made meanwhile)."""
        if self._refreshing:
            self._again = True
            return
        self._refreshing = True
        text = self.search.text().strip()
        run_in_background(
            lambda _p, _c: fetch_rows(self.services, text),
            name="worklist",
            on_result=self._set_rows,
            on_error=lambda exc: show_error(self, exc),
            on_finished=self._refresh_done,
        )

    def _set_rows(self, rows) -> None:
        selected = self.selected_study_id()
        self.model.set_rows(rows)
        self.table.resizeColumnsToContents()
        for col, widest in ((0, MAX_PATIENT_PX), (4, MAX_STUDY_PX)):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), widest))
        if selected is not None and (i := self.model.row_of(selected)) >= 0:
            self.table.selectRow(i)

    def _refresh_done(self) -> None:
        self._refreshing = False
        if self._again:
            self._again = False
            self.refresh()
        else:
            self.refreshed.emit()

    def on_job_event(self, event: Any) -> None:
        i = self.model.row_of(event.study_id)
        if event.kind == "progress" and i >= 0:
            self.model.update_row(self.model.rows[i].with_job(event))
        else:
            self._debounce.start()

    def close_bridge(self) -> None:
        """Stop following the job queue (the window is closing)."""
        self.bridge.close()
        self._debounce.stop()
        self._poll.stop()

    # ---------------------------------------------------------------- selection / actions
    def selected_study_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.data(rows[0], STUDY_ID_ROLE) if rows else None

    def select_study(self, study_id: str) -> None:
        i = self.model.row_of(study_id)
        if i >= 0:
            self.table.selectRow(i)

    def _emit_for(self, row: int, signal) -> None:
        if 0 <= row < len(self.model.rows):
            signal.emit(self.model.rows[row].study_id)

    def _emit_selected(self, signal) -> None:
        study_id = self.selected_study_id()
        if study_id is not None:
            signal.emit(study_id)

    def delete_selected(self, confirm: bool = True) -> None:
        """Delete the selected study and its results (admin only), after a confirmation."""
        study_id = self.selected_study_id()
        if study_id is None or not getattr(self.user, "is_admin", False):
            return
        row = self.model.rows[self.model.row_of(study_id)]
        if confirm:
            answer = QMessageBox.question(
                self,
                "Delete study",
                f"Delete the study of {row.patient or 'this patient'} ({row.description}) with "
                "all its results? This cannot be undone.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        user = self.user
        run_in_background(
            lambda _p, _c: self.services.delete_study(study_id, user=user),
            name="delete",
            on_result=lambda _s: (self.deleted.emit(study_id), self.refresh()),
            on_error=lambda exc: show_error(self, exc),
        )
