"""The sign-in dialog (local accounts; bcrypt check off the GUI thread).

Wrong credentials get the users service's one message; a locked account shows the remaining
time, counting down, with the button disabled until it has passed. While it counts down, the
lock is re-read from the store every few seconds (off the GUI thread), so an administrator
lifting it (``cspine users unlock`` or the Users screen) takes effect at once.
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
    QLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ... import __version__
from ...errors import AccountLockedError
from ...services.account_admin import lock_remaining
from ..errors import plain_message
from ..panels.results_panel import DisclaimerLabel
from ..workers import run_in_background
from .first_run import FirstRunDialog

LOCK_POLL_MS = 3000  # how often a shown lock is re-read from the store


def format_wait(seconds: float) -> str:
    """``14:59`` (minutes:seconds), rounded up so it never shows 0:00 while still locked."""
    s = max(0, math.ceil(seconds))
    return f"{s // 60}:{s % 60:02d}"


class LoginDialog(QDialog):
    """Asks for user name and password; ``self.user`` holds the UserRecord after accept.
    ``users`` is the users service (``authenticate(name, password)``)."""

    attempt_finished = Signal()  # after each check (success or failure), for tests

    def __init__(
        self,
        users: Any,
        parent: QWidget | None = None,
        clock=time.monotonic,
        lock_poll_ms: int = LOCK_POLL_MS,
    ) -> None:
        super().__init__(parent)
        self.users = users
        self.user = None
        self.clock = clock
        self._locked_until = 0.0
        self._locked_name = ""
        self._lock_message = ""
        self._was_lock = False
        self._polling = False
        self.setWindowTitle(f"cspine {__version__} — sign in")
        layout = QVBoxLayout(self)
        # the dialog grows with its wrapped texts (lock message, notice) instead of clipping them
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
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
        notice = DisclaimerLabel()
        layout.addWidget(notice)
        # wrapped texts get the lines they need at a fixed width (font-based, so it scales)
        self._text_width = self.fontMetrics().horizontalAdvance("x") * 56
        for label in (self.message, notice):
            label.setMinimumWidth(self._text_width)
        notice.setMinimumHeight(notice.heightForWidth(self._text_width))
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._tick)
        self._lock_poll = QTimer(self)
        self._lock_poll.setInterval(lock_poll_ms)
        self._lock_poll.timeout.connect(self._poll_lock)

    # ---------------------------------------------------------------- sign-in
    def submit(self) -> None:
        if not self.sign_in_button.isEnabled():
            return
        name, password = self.name_edit.text(), self.password_edit.text()
        self._busy(True)
        self._say("Checking…")
        run_in_background(
            lambda _progress, _cancel: self.users.authenticate(name, password),
            name="sign-in",
            on_result=self._signed_in,
            on_error=self._failed,
        )

    def _signed_in(self, user) -> None:
        self.user = user
        self._say("")
        self._busy(False)
        self.attempt_finished.emit()
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        self.password_edit.clear()
        if isinstance(exc, AccountLockedError):
            self._locked_until = self.clock() + exc.retry_after_s
            self._lock_message = str(exc)
            self._locked_name = self.name_edit.text()
            self._was_lock = "locked" in str(exc).lower()
            self._tick()
            self._countdown.start()
            self._lock_poll.start()
        else:
            self._say(plain_message(exc))
        self.attempt_finished.emit()

    def _tick(self) -> None:
        remaining = self._locked_until - self.clock()
        if remaining <= 0:
            self._ready_again(
                "The lock has ended. Type your password again to sign in."
                if self._was_lock
                else "That attempt was not checked: sign-in was paused after a failed one. "
                "Type your password again to sign in."
            )
            return
        self.sign_in_button.setEnabled(False)
        self._say(f"{self._lock_message}\nTime remaining: {format_wait(remaining)}")

    def _ready_again(self, text: str) -> None:
        self._countdown.stop()
        self._lock_poll.stop()
        self._locked_until = 0.0
        self.sign_in_button.setEnabled(True)
        self._say(text)

    def _poll_lock(self) -> None:
        """Re-read the lock; an administrator may have lifted it."""
        if self._polling or self._locked_until <= 0:
            return
        self._polling = True
        users, name = self.users, self._locked_name
        run_in_background(
            lambda _p, _c: lock_remaining(users, name),
            name="lock check",
            on_result=self._lock_read,
            on_finished=lambda: setattr(self, "_polling", False),
        )

    def _lock_read(self, remaining: float) -> None:
        if self._locked_until <= 0:
            return
        if remaining <= 0 and self._locked_until - self.clock() <= 0:
            self._tick()  # the wait simply ran out
        elif remaining <= 0:
            self._ready_again("An administrator has lifted the lock. You may sign in now.")
        else:
            self._locked_until = self.clock() + remaining

    def _say(self, text: str) -> None:
        """Show ``text`` under the form, growing the dialog so no line is cut off."""
        self.message.setText(text)
        width = max(self.message.width(), self._text_width)
        self.message.setMinimumHeight(self.message.heightForWidth(width) if text else 0)
        self.adjustSize()

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
        created = first.created  # set when the dialog was accepted
        suggested = created.name if created is not None else ""
    dialog = LoginDialog(users, parent)
    if suggested:
        dialog.name_edit.setText(suggested)
        dialog.password_edit.setFocus()
    return dialog.user if dialog.exec() == QDialog.DialogCode.Accepted else None
