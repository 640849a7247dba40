"""The sign-in dialog (local accounts; bcrypt check off the GUI thread).

Wrong credentials get the users service's one message; a locked account shows the remaining
time, counting down, with the button disabled until it has passed.
"""

from __future__ import annotations

import math
import time
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ... import __version__
from ...errors import AccountLockedError
from ..errors import plain_message
from ..panels.results_panel import DisclaimerLabel
from ..workers import run_in_background
from .first_run import FirstRunDialog


def format_wait(seconds: float) -> str:
    """``14:59`` (minutes:seconds), rounded up so it never shows 0:00 while still locked."""
    s = max(0, math.ceil(seconds))
    return f"{s // 60}:{s % 60:02d}"


class LoginDialog(QDialog):
    """Asks for user name and password; ``self.user`` holds the UserRecord after accept.
    ``users`` is the users service (``authenticate(name, password)``)."""

    attempt_finished = Signal()  # after each check (success or failure), for tests

    def __init__(self, users: Any, parent: QWidget | None = None, clock=time.monotonic) -> None:
        super().__init__(parent)
        self.users = users
        self.user = None
        self.clock = clock
        self._locked_until = 0.0
        self.setWindowTitle(f"cspine {__version__} — sign in")
        layout = QVBoxLayout(self)
        title = QLabel("<b>cspine</b> — cervical-spine CT fracture detection")
        layout.addWidget(title)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("userName")
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("User name", self.name_edit)
        form.addRow("Password", self.password_edit)
        layout.addLayout(form)
        self.message = QLabel("")
        self.message.setObjectName("loginMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.sign_in_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.sign_in_button.setText("Sign in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        layout.addWidget(DisclaimerLabel())
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._tick)

    # ---------------------------------------------------------------- sign-in
    def submit(self) -> None:
        if not self.sign_in_button.isEnabled():
            return
        name, password = self.name_edit.text(), self.password_edit.text()
        self._busy(True)
        self.message.setText("Checking…")
        run_in_background(
            lambda _progress, _cancel: self.users.authenticate(name, password),
            name="sign-in",
            on_result=self._signed_in,
            on_error=self._failed,
        )

    def _signed_in(self, user) -> None:
        self.user = user
        self.message.setText("")
        self._busy(False)
        self.attempt_finished.emit()
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        self.password_edit.clear()
        if isinstance(exc, AccountLockedError):
            self._locked_until = self.clock() + exc.retry_after_s
            self._lock_message = str(exc)
            self._tick()
            self._countdown.start()
        else:
            self.message.setText(plain_message(exc))
        self.attempt_finished.emit()

    def _tick(self) -> None:
        remaining = self._locked_until - self.clock()
        if remaining <= 0:
            self._countdown.stop()
            self.sign_in_button.setEnabled(True)
            self.message.setText("You may try again now.")
            return
        self.sign_in_button.setEnabled(False)
        self.message.setText(f"{self._lock_message}\nTime remaining: {format_wait(remaining)}")

    def _busy(self, busy: bool) -> None:
        for w in (self.name_edit, self.password_edit, self.sign_in_button):
            w.setEnabled(not busy)


def sign_in(users: Any, parent: QWidget | None = None):
    """First run → create the administrator; then the sign-in dialog. Returns the signed-in
    UserRecord, or None when the user closed the dialogs."""
    suggested = ""
    if users.needs_admin():
        first = FirstRunDialog(users, parent)
        if first.exec() != QDialog.DialogCode.Accepted:
            return None
        suggested = first.created.name
    dialog = LoginDialog(users, parent)
    if suggested:
        dialog.name_edit.setText(suggested)
        dialog.password_edit.setFocus()
    return dialog.user if dialog.exec() == QDialog.DialogCode.Accepted else None
