"""The workstation window: worklist | three-view viewer | results and overlays.

It wires panels to the study controller and to the session guard; it holds no analysis logic.
While the session is locked the whole workspace (patient names included) is replaced by the
lock screen, but the open study stays loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..settings import Settings
from .annotations import AnnotationKeeper
from .auth import LockScreen, SessionGuard
from .confirm import confirm
from .dialogs.about import AboutDialog
from .dialogs.series_chooser import choose_series_dialog
from .dialogs.settings_dialog import SettingsDialog
from .dialogs.users_dialog import UsersDialog
from .errors import show_error
from .exports import ExportMenu
from .models import ViewerModel
from .models.overlays import heat_threshold_of
from .panels.overlay_panel import OverlayPanel
from .panels.results_panel import ResultsPanel
from .server_control import ServerControl, ServerStatus
from .settings_apply import apply_settings
from .status_bar import WorkstationStatusBar
from .study import OpenStudy, StudyController
from .viewer import ViewerWidget
from .worklist import WorklistPanel

log = logging.getLogger(__name__)

OPEN_FILTER = (
    "Studies (*.dcm *.DCM *.zip *.nii *.nii.gz *.png *.jpg *.jpeg);;"
    "DICOM (*.dcm *.DCM);;Zip (*.zip);;NIfTI (*.nii *.nii.gz);;Images (*.png *.jpg *.jpeg);;"
    "All files (*)"
)


class MainWindow(QMainWindow):
    """``signed_out`` is emitted when the user signs out (the app shows the login again)."""

    signed_out = Signal()

    def __init__(
        self,
        services: Any,
        user: Any,
        settings: Settings,
        server: ServerControl | None = None,
        *,
        choose_series=None,
        autolock: Any = None,
        lock_poll_ms: int = 1000,
    ) -> None:
        super().__init__()
        self.services, self.user, self.settings = services, user, settings
        self.user_signed_out = False
        self.setWindowTitle(f"cspine {__version__}")
        self.setAcceptDrops(True)
        self.resize(1500, 900)
        self.setMinimumSize(1024, 700)

        self.viewer_model = ViewerModel()
        self.viewer = ViewerWidget(self.viewer_model)
        self.worklist = WorklistPanel(services, user)
        self.results = ResultsPanel()
        self.overlay_panel = OverlayPanel(self.viewer_model.overlays)
        self.controller = StudyController(
            services, user, choose_series or choose_series_dialog(self), self
        )
        self.exports = ExportMenu(services, user, self)
        self.annotations = AnnotationKeeper(services, user, self.viewer_model.measurements, self)
        self.server = ServerStatus(server, self)
        self.guard = SessionGuard(
            services.users, user, autolock or services.users.autolock(), lock_poll_ms, self
        )
        self.lock_screen = LockScreen(self.guard)

        # verdicts on top at their full height (a plain layout enforces it); the overlay
        # controls take what is left and scroll when the screen is short
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.results, 3)
        self.overlay_scroll = QScrollArea()
        self.overlay_scroll.setWidgetResizable(True)
        self.overlay_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.overlay_scroll.setWidget(self.overlay_panel)
        self.overlay_scroll.setMinimumHeight(4 * self.fontMetrics().lineSpacing())
        column.addWidget(self.overlay_scroll, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.worklist)
        split.addWidget(self.viewer)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        self.splitter = split
        self._user_sized = False
        split.splitterMoved.connect(lambda *_: setattr(self, "_user_sized", True))
        self.workspace = QWidget()
        box = QVBoxLayout(self.workspace)
        box.addWidget(split)
        box.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.workspace)
        self.stack.addWidget(self.lock_screen)
        self.setCentralWidget(self.stack)
        self.status = WorkstationStatusBar(self)
        self.setStatusBar(self.status)
        self._build_menus()
        self._connect()
        self.status.show_server(self.server.text)
        if settings.server_enabled:
            self.server.apply(settings)

    def resizeEvent(self, event) -> None:
        """Worklist and verdicts keep the width their columns need (font-based, so it scales
        with DPI); the viewer takes the rest, until the user drags a splitter."""
        super().resizeEvent(event)
        if self._user_sized:
            return
        w = self.splitter.width() or self.width()
        worklist = max(self.worklist.minimumSizeHint().width(), int(0.26 * w))
        right = max(self.results.minimumSizeHint().width() + 8, int(0.24 * w))
        self.splitter.setSizes([worklist, max(200, w - worklist - right), right])

    # ---------------------------------------------------------------- wiring
    def _connect(self) -> None:
        c = self.controller
        self.worklist.bridge.job_event.connect(c.on_job_event)
        self.worklist.open_requested.connect(c.open_study)
        self.worklist.reanalyse_requested.connect(c.reanalyse)
        self.worklist.deleted.connect(self._study_deleted)
        c.progress.connect(self.status.show_progress)
        c.busy_changed.connect(self.status.set_busy)
        c.volume_loaded.connect(self._show_volume)
        c.analysis_finished.connect(self._show_results)
        c.analysis_started.connect(self._analysis_started)
        c.study_stored.connect(self._study_stored)
        c.failed.connect(lambda exc: show_error(self, exc))
        c.cancelled.connect(lambda: self.status.showMessage("Cancelled.", 5000))
        self.status.cancel_button.clicked.connect(c.cancel)
        self.viewer.probed.connect(self.status.show_probe)
        self.results.vertebra_selected.connect(
            lambda label, z: self.viewer_model.jump_to_vertebra(label, z if z >= 0 else None)
        )
        self.exports.exported.connect(
            lambda files: self.status.showMessage(
                f"Exported {len(files)} file(s) to {next(iter(files.values())).parent}", 8000
            )
        )
        self.server.changed.connect(self.status.show_server)
        self.server.error.connect(lambda exc: show_error(self, exc, "Network endpoint"))
        self.guard.locked.connect(self._locked)
        self.guard.unlocked.connect(self._unlocked)
        self.lock_screen.sign_out_requested.connect(self.sign_out)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_folder_action = self._action(
            file_menu, "Open &folder…", self.ask_open_folder, QKeySequence.StandardKey.Open
        )
        self._action(file_menu, "Open fi&le or zip…", self.ask_open_file, "Ctrl+Shift+O")
        file_menu.addMenu(self.exports.menu)
        file_menu.addSeparator()
        self._action(file_menu, "&Lock screen", self.guard.lock_now, "Ctrl+L")
        self._action(file_menu, "Sign &out", self.sign_out)
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        study_menu = bar.addMenu("&Study")
        self.reanalyse_action = self._action(
            study_menu, "&Re-analyse", lambda: self.controller.reanalyse()
        )
        self.cancel_action = self._action(study_menu, "&Cancel", self.ask_cancel, "Esc")
        view_menu = bar.addMenu("&View")
        for n, name in enumerate(("Bone", "Soft tissue", "Brain", "Lung"), start=1):
            self._action(view_menu, f"{name} window\t{n}", lambda n=n: self._preset(n))
        self._action(view_menu, "Invert\ti", self._invert)
        self._action(view_menu, "Reset view\tSpace", self.viewer_model.reset)
        tools = bar.addMenu("&Tools")
        self.settings_action = self._action(tools, "&Settings…", self.edit_settings)
        self.settings_action.setEnabled(bool(getattr(self.user, "is_admin", False)))
        self.users_action = self._action(tools, "&Users…", self.manage_users)
        self.users_action.setEnabled(self.settings_action.isEnabled())
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About cspine", lambda: AboutDialog(self.settings, self).exec())

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _preset(self, n: int) -> None:
        if self.viewer_model.has_volume:
            self.viewer_model.apply_preset(n)

    def _invert(self) -> None:
        if self.viewer_model.has_volume:
            self.viewer_model.toggle_invert()

    # ---------------------------------------------------------------- opening
    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a study folder")
        if folder:
            self.open_path(folder)

    def ask_open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a study file", "", OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        if not self.controller.open_path(path):
            self.status.showMessage("Another study is still opening; cancel it first.", 5000)

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    # ---------------------------------------------------------------- showing
    def _show_volume(self, opened: OpenStudy) -> None:
        self.viewer_model.set_volume(opened.volume)
        self.results.show_result(None, opened.warnings)
        self.exports.set_study(opened)
        self.setWindowTitle(f"cspine {__version__} — {opened.title()}")
        self.worklist.follow(opened.study_id)  # None until a new study is stored
        self.annotations.set_study(opened.study_id)
        self.viewer.setFocus()

    def _show_results(self, opened: OpenStudy) -> None:
        overlays = self.viewer_model.overlays
        r = opened.result
        overlays.set_heat_threshold(
            heat_threshold_of(r.thresholds, r.patient_overall.threshold) if r else None
        )
        overlays.set_arrays(opened.labels, opened.heatmap)
        self.results.show_result(opened.result, opened.warnings)
        self.exports.set_study(opened)
        if opened.study_id:
            self.worklist.follow(opened.study_id)

    def _study_stored(self, study) -> None:
        self.worklist.follow(study.id)
        self.annotations.set_study(study.id)

    def _analysis_started(self, _job_id: str) -> None:
        current = self.controller.current
        if current is not None and current.analysed:  # the earlier result stays until then
            self.status.showMessage(
                "Analysing again; the earlier result stays on screen until the new one is ready.",
                8000,
            )
        else:
            self.results.show_result(None, current.warnings if current else ())

    def _study_deleted(self, study_id: str) -> None:
        current = self.controller.current
        if current is not None and current.study_id == study_id:
            self.controller.current = None
            self.viewer_model.set_volume(None)
            self.results.show_result(None)
            self.exports.set_study(None)
            self.setWindowTitle(f"cspine {__version__}")
            self.worklist.follow(None)
            self.annotations.set_study(None)

    # ---------------------------------------------------------------- session
    def _locked(self) -> None:
        self.stack.setCurrentWidget(self.lock_screen)
        self.menuBar().setEnabled(False)
        self.status.show_probe(None)
        self.setWindowTitle(f"cspine {__version__} — locked")
        self.lock_screen.password_edit.setFocus()

    def _unlocked(self) -> None:
        self.stack.setCurrentWidget(self.workspace)
        self.menuBar().setEnabled(True)
        current = self.controller.current
        title = f" — {current.title()}" if current is not None else ""
        self.setWindowTitle(f"cspine {__version__}{title}")

    def sign_out(self) -> None:
        locked = self.stack.currentWidget() is self.lock_screen  # never name a patient there
        if (
            self.controller.busy
            and not locked
            and not confirm(
                self,
                "Sign out",
                f"cspine is still working on {self._busy_text()}.\n\nSign out and cancel it?",
                "Sign out and cancel",
            )
        ):
            return
        self.controller.cancel()
        self.services.users.logout(self.user)
        self.user_signed_out = True
        self.signed_out.emit()
        self.close()

    # ---------------------------------------------------------------- settings
    def edit_settings(self) -> None:
        if not getattr(self.user, "is_admin", False):
            return
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted or dialog.result_settings is None:
            return
        self.apply_settings(dialog.result_settings)

    def apply_settings(self, new: Settings) -> None:
        """Save ``new``, audit what changed, and apply what can change while running."""
        apply_settings(self, new)

    def manage_users(self) -> None:
        if getattr(self.user, "is_admin", False):
            UsersDialog(self.services.users, self.user, self).exec()

    # ---------------------------------------------------------------- cancel / closing
    def _busy_text(self) -> str:
        current = self.controller.current
        return current.describe() if current is not None else "the study being opened"

    def ask_cancel(self) -> bool:
        """Esc: cancel what runs, after asking (a stray key must not stop an analysis)."""
        if not self.controller.busy:
            return False
        if confirm(
            self,
            "Cancel analysis",
            f"Cancel the work on {self._busy_text()}?\n\nAn earlier result of this study stays.",
            "Cancel analysis",
        ):
            self.controller.cancel()
            return True
        return False

    def closeEvent(self, event) -> None:
        if (
            self.controller.busy
            and not self.user_signed_out
            and not confirm(
                self,
                "Quit cspine",
                f"cspine is still working on {self._busy_text()}.\n\n"
                "Quit and cancel it? An earlier result of this study stays.",
                "Quit and cancel",
            )
        ):
            event.ignore()
            return
        self.controller.cancel()
        self.guard.stop()
        self.worklist.close_bridge()
        super().closeEvent(event)
