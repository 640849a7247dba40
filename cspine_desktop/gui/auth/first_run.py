"""First run: no active administrator exists yet, so one is created before anyone signs in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ..errors import plain_message
from ..workers import run_in_background

if TYPE_CHECKING:
    from ...store import UserRecord


class FirstRunDialog(QDialog):
    """Creates the first administrator through ``users.create_first_admin``; ``self.created``
    holds the new UserRecord after accept. Policy errors are shown in plain words."""

    attempt_finished = Signal()

    def __init__(self, users: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.users = users
        self.created: UserRecord | None = None
        self.setWindowTitle("cspine — create the administrator account")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "No administrator account exists yet. Create one now: the administrator manages "
            "users, settings and the network endpoint."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.name_edit = QLineEdit("admin")
        self.full_name_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.repeat_edit = QLineEdit()
        for edit in (self.password_edit, self.repeat_edit):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("User name", self.name_edit)
        form.addRow("Full name", self.full_name_edit)
        form.addRow("Password", self.password_edit)
        form.addRow("Repeat password", self.repeat_edit)
        layout.addLayout(form)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.create_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.create_button.setText("Create administrator")
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def submit(self) -> None:
        if self.password_edit.text() != self.repeat_edit.text():
            self.message.setText("The two passwords differ.")
            self.attempt_finished.emit()
            return
        name, full, password = (
            self.name_edit.text(),
            self.full_name_edit.text(),
            self.password_edit.text(),
        )
        self.create_button.setEnabled(False)
        self.message.setText("Creating…")
        run_in_background(
            lambda _p, _c: self.users.create_first_admin(name, password, full_name=full),
            name="account creation",
            on_result=self._created,
            on_error=self._failed,
        )

    def _created(self, user) -> None:
        self.created = user
        self.create_button.setEnabled(True)
        self.attempt_finished.emit()
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.create_button.setEnabled(True)
        self.message.setText(plain_message(exc))
        self.attempt_finished.emit()
