"""Auto-lock after idle: the open study stays loaded, but nothing of it is shown until the
signed-in user types the password again.

:class:`SessionGuard` watches the application's input events (mouse, keys, wheel) and feeds the
users service's :class:`~cspine_desktop.services.autolock.AutoLock` policy; a timer polls it and
emits ``locked``. :class:`LockScreen` is the page the main window shows instead of the workspace.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import plain_message
from ..workers import run_in_background

ACTIVITY_EVENTS = {
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.KeyPress,
    QEvent.Type.Wheel,
}


class SessionGuard(QObject):
    """Locks the session when ``autolock`` says so; unlocks after re-authentication.

    ``users`` provides ``session_locked(user)`` and ``unlock_session(name, password)``;
    ``autolock`` is an AutoLock (``touch``, ``should_lock``, ``lock``, ``unlock``).
    """

    locked = Signal()
    unlocked = Signal()
    unlock_failed = Signal(str)

    def __init__(self, users: Any, user: Any, autolock: Any, poll_ms: int = 1000, parent=None):
        super().__init__(parent)
        self.users = users
        self.user = user
        self.autolock = autolock
        self.is_locked = False
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if not self.is_locked and event.type() in ACTIVITY_EVENTS:
            self.autolock.touch()
        return False

    def poll(self) -> None:
        if not self.is_locked and self.autolock.should_lock():
            self._enter_lock()

    def lock_now(self) -> None:
        """The user chose "Lock screen"."""
        if not self.is_locked:
            self.autolock.lock()
            self._enter_lock()

    def _enter_lock(self) -> None:
        self.is_locked = True
        self.users.session_locked(self.user)
        self.locked.emit()

    def try_unlock(self, password: str) -> None:
        """Check ``password`` for the signed-in user off the GUI thread."""
        name = self.user.name
        run_in_background(
            lambda _p, _c: self.users.unlock_session(name, password),
            name="unlock",
            on_result=self._unlocked,
            on_error=lambda exc: self.unlock_failed.emit(plain_message(exc)),
        )

    def _unlocked(self, _user: Any) -> None:
        self.autolock.unlock()
        self.is_locked = False
        self.unlocked.emit()


class LockScreen(QWidget):
    """Shown instead of the workspace while locked: who is signed in, a password field,
    and "Sign out" (which closes the study)."""

    sign_out_requested = Signal()

    def __init__(self, guard: SessionGuard, parent=None) -> None:
        super().__init__(parent)
        self.guard = guard
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.title)
        row = QHBoxLayout()
        row.addStretch(1)
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("unlockPassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("Password")
        self.password_edit.setMaximumWidth(260)
        self.password_edit.returnPressed.connect(self.submit)
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.clicked.connect(self.submit)
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self.sign_out_requested)
        for w in (self.password_edit, self.unlock_button, self.sign_out_button):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        self.message = QLabel("")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("color: #b00020;")
        layout.addWidget(self.message)
        layout.addStretch(2)
        guard.unlock_failed.connect(self._failed)
        guard.unlocked.connect(self._reset)
        guard.locked.connect(self._reset)

    def _reset(self) -> None:
        user = self.guard.user
        who = f"{user.full_name} ({user.name})" if user.full_name else user.name
        who = html.escape(who)
        self.title.setText(
            f"<h2>Session locked</h2><p>Signed in as {who}. Enter your password to continue; "
            "the open study is kept.</p>"
        )
        self.password_edit.clear()
        self.message.setText("")
        self.unlock_button.setEnabled(True)

    def submit(self) -> None:
        self.unlock_button.setEnabled(False)
        self.message.setText("Checking…")
        self.guard.try_unlock(self.password_edit.text())

    def _failed(self, message: str) -> None:
        self.password_edit.clear()
        self.unlock_button.setEnabled(True)
        self.message.setText(message)
