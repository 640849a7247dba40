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
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..settings import Settings
from .auth import LockScreen, SessionGuard
from .dialogs.about import AboutDialog
from .dialogs.series_chooser import choose_series_dialog
from .dialogs.settings_dialog import SettingsDialog
from .errors import show_error
from .exports import ExportMenu
from .models import ViewerModel
from .panels.overlay_panel import OverlayPanel
from .panels.results_panel import ResultsPanel
from .server_control import ServerControl, ServerStatus
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
SERVER_FIELDS = (
    "server_enabled",
    "server_host",
    "server_port",
    "tls_cert",
    "tls_key",
    "allow_insecure_lan",
)
RESTART_FIELDS = ("model_dir", "backend")


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

        self.viewer_model = ViewerModel()
        self.viewer = ViewerWidget(self.viewer_model)
        self.worklist = WorklistPanel(services, user)
        self.results = ResultsPanel()
        self.overlay_panel = OverlayPanel(self.viewer_model.overlays)
        self.controller = StudyController(
            services, user, choose_series or choose_series_dialog(self), self
        )
        self.exports = ExportMenu(services, user, self)
        self.server = ServerStatus(server, self)
        self.guard = SessionGuard(
            services.users, user, autolock or services.users.autolock(), lock_poll_ms, self
        )
        self.lock_screen = LockScreen(self.guard)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.results)
        right.addWidget(self.overlay_panel)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.worklist)
        split.addWidget(self.viewer)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 6)
        split.setStretchFactor(2, 2)
        split.setSizes([330, 860, 330])
        self.workspace = QWidget()
        QVBoxLayout(self.workspace).addWidget(split)
        self.workspace.layout().setContentsMargins(0, 0, 0, 0)
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

    # ---------------------------------------------------------------- wiring
    def _connect(self) -> None:
        c = self.controller
        self.worklist.bridge.event.connect(c.on_job_event)
        self.worklist.open_requested.connect(c.open_study)
        self.worklist.reanalyse_requested.connect(c.reanalyse)
        self.worklist.deleted.connect(self._study_deleted)
        c.progress.connect(self.status.show_progress)
        c.busy_changed.connect(self.status.set_busy)
        c.volume_loaded.connect(self._show_volume)
        c.analysis_finished.connect(self._show_results)
        c.analysis_started.connect(lambda _j: self.results.show_result(None))
        c.study_stored.connect(lambda study: self.worklist.refresh())
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
        self._action(study_menu, "&Cancel", self.controller.cancel, "Esc")
        view_menu = bar.addMenu("&View")
        for n, name in enumerate(("Bone", "Soft tissue", "Brain", "Lung"), start=1):
            self._action(view_menu, f"{name} window\t{n}", lambda n=n: self._preset(n))
        self._action(view_menu, "Invert\ti", self._invert)
        self._action(view_menu, "Reset view\tSpace", self.viewer_model.reset)
        tools = bar.addMenu("&Tools")
        self.settings_action = self._action(tools, "&Settings…", self.edit_settings)
        self.settings_action.setEnabled(bool(getattr(self.user, "is_admin", False)))
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
        self.viewer.setFocus()

    def _show_results(self, opened: OpenStudy) -> None:
        self.viewer_model.overlays.set_arrays(opened.labels, opened.heatmap)
        self.results.show_result(opened.result, opened.warnings)
        self.exports.set_study(opened)
        if opened.study_id:
            self.worklist.select_study(opened.study_id)

    def _study_deleted(self, study_id: str) -> None:
        current = self.controller.current
        if current is not None and current.study_id == study_id:
            self.controller.current = None
            self.viewer_model.set_volume(None)
            self.results.show_result(None)
            self.exports.set_study(None)
            self.setWindowTitle(f"cspine {__version__}")

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
        before, after = self.settings.describe(), new.describe()
        changed = [k for k in after if after[k] != before[k]]
        if not changed:
            return
        try:
            new.save()
        except OSError as exc:
            QMessageBox.warning(self, "Settings", f"The settings could not be saved: {exc}.")
            return
        self.settings = new
        self.services.audit.record(
            "settings_changed", user=self.user, detail={"changed": sorted(changed)}
        )
        self.guard.autolock.timeout_s = new.autolock_minutes * 60.0
        if any(k in changed for k in SERVER_FIELDS):
            self.server.apply(new)
        if any(k in changed for k in RESTART_FIELDS):
            QMessageBox.information(
                self, "Settings", "The new model settings take effect when cspine next starts."
            )

    # ---------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:
        self.controller.cancel()
        self.guard.stop()
        self.worklist.close_bridge()
        super().closeEvent(event)
