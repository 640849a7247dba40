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
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..confirm import confirm, describe_record
from ..errors import show_error
from ..workers import run_in_background
from .model import STUDY_ID_ROLE, WorklistModel
from .rows import fetch_rows

REFRESH_DEBOUNCE_MS = 250
POLL_S = 30.0
# widest Patient / State / Study columns in characters: longer texts are elided (full text in
# the tooltip), so Patient, Verdict and State fit side by side in the panel
MAX_PATIENT_CHARS, MAX_STATE_CHARS, MAX_STUDY_CHARS = 16, 14, 20


class JobEventBridge(QObject):
    """Subscribes to the job queue; re-emits each JobEvent in the GUI thread."""

    job_event = Signal(object)

    def __init__(self, jobs: Any, parent=None) -> None:
        super().__init__(parent)
        self._unsubscribe = jobs.subscribe(self.job_event.emit)  # emitted from worker threads

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
        self._follow: str | None = None  # the open study's row, to select once it is listed
        self._refreshing = False
        self._again = False
        self._closed = False  # the window closed: late answers are dropped
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
        self.table.setWordWrap(False)
        char = self.table.fontMetrics().averageCharWidth()
        # Patient, Verdict ("fracture suspected (0.92)") and State in view without scrolling
        self.table.setMinimumWidth((MAX_PATIENT_CHARS + 26 + MAX_STATE_CHARS) * char + 60)
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
        # clicked(bool) must not reach delete_selected's arguments: the confirmation always shows
        self.delete_button.clicked.connect(lambda _checked=False: self.delete_selected())

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(REFRESH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.bridge = JobEventBridge(services.jobs, self)
        self.bridge.job_event.connect(self.on_job_event)
        self._poll = QTimer(self)
        self._poll.setInterval(int(poll_s * 1000))
        self._poll.timeout.connect(self.refresh)
        self._poll.start()
        self.refresh()

    # ---------------------------------------------------------------- data
    def refresh(self) -> None:
        """Re-read the list off the GUI thread (coalescing requests made meanwhile)."""
        if self._closed:
            return
        if self._refreshing:
            self._again = True
            return
        self._refreshing = True
        text = self.search.text().strip()
        run_in_background(
            lambda _p, _c: fetch_rows(self.services, text),
            name="worklist",
            on_result=self._set_rows,
            on_error=self._refresh_failed,
            on_finished=self._refresh_done,
        )

    def _refresh_failed(self, exc: BaseException) -> None:
        if not self._closed:
            show_error(self, exc)

    def _set_rows(self, rows) -> None:
        if self._closed:
            return
        selected = self.selected_study_id()
        self.model.set_rows(rows)
        if self._follow is not None and self.model.row_of(self._follow) >= 0:
            selected, self._follow = self._follow, None
        self.table.resizeColumnsToContents()
        char = self.table.fontMetrics().averageCharWidth()
        for col, chars in ((0, MAX_PATIENT_CHARS), (2, MAX_STATE_CHARS), (4, MAX_STUDY_CHARS)):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), chars * char + 12))
        if selected is not None and (i := self.model.row_of(selected)) >= 0:
            self.table.selectRow(i)
        else:
            self.table.clearSelection()

    def _refresh_done(self) -> None:
        self._refreshing = False
        if self._closed:
            return
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
        self._closed = True
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

    def follow(self, study_id: str | None) -> None:
        """The study on screen changed: select its row (None: a study not stored yet —
        select nothing) and show it in bold, so the highlighted patient is the one on screen.
        A row not listed yet is selected when the next reload brings it."""
        self.model.set_open_study(study_id)
        i = self.model.row_of(study_id) if study_id else -1
        self._follow = study_id if study_id and i < 0 else None
        if i >= 0:
            self.table.selectRow(i)
        else:
            self.table.clearSelection()
        if self._follow is not None:
            self.refresh()

    def _emit_for(self, row: int, signal) -> None:
        if 0 <= row < len(self.model.rows):
            signal.emit(self.model.rows[row].study_id)

    def _emit_selected(self, signal) -> None:
        study_id = self.selected_study_id()
        if study_id is not None:
            signal.emit(study_id)

    def delete_selected(self) -> None:
        """Delete the selected study and its results (admin only), after a confirmation that
        names the patient and the study."""
        study_id = self.selected_study_id()
        if study_id is None or not getattr(self.user, "is_admin", False):
            return
        row = self.model.rows[self.model.row_of(study_id)]
        if not confirm(
            self,
            "Delete study",
            f"Delete {describe_record(row)} with all its analyses and results?\n\n"
            "This cannot be undone.",
            "Delete study",
        ):
            return
        user = self.user

        def deleted(_study: object) -> None:
            self.deleted.emit(study_id)
            self.refresh()

        run_in_background(
            lambda _p, _c: self.services.delete_study(study_id, user=user),
            name="delete",
            on_result=deleted,
            on_error=lambda exc: show_error(self, exc),
        )
