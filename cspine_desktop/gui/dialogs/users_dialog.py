"""Tools ▸ Users (administrators): every account with its role, status and sign-in lock, and
the actions ``cspine users`` offers — approve a sign-up, disable / enable, reset the password,
lift a sign-in lock, set the role. Each goes through the users service as the signed-in admin
(so it is checked and audited there), off the GUI thread; disabling and resetting ask first,
naming the account."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...services.account_admin import lock_remaining, unlock_account
from ..confirm import confirm
from ..errors import plain_message
from ..workers import run_in_background

COLUMNS = ("User", "Full name", "Role", "Status", "Sign-in", "Last sign-in")
ROLES = ("radiologist", "admin")


def _account_rows(users: Any) -> list[tuple[Any, float]]:
    """(UserRecord, seconds its sign-in stays locked) for every account (off the GUI thread)."""
    return [(u, lock_remaining(users, u.name)) for u in users.list_users()]


class PasswordDialog(QDialog):
    """A new password, typed twice."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"New password for {name}")
        form = QFormLayout(self)
        self.first = QLineEdit()
        self.second = QLineEdit()
        for edit in (self.first, self.second):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("New password", self.first)
        form.addRow("Repeat", self.second)
        self.message = QLabel("")
        self.message.setStyleSheet("color: #b00020;")
        form.addRow(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _check(self) -> None:
        if not self.first.text() or self.first.text() != self.second.text():
            self.message.setText("The two passwords differ.")
            return
        self.accept()


class UsersDialog(QDialog):
    """``changed`` fires after every action (and its reload), for tests."""

    changed = Signal()

    def __init__(self, users: Any, admin: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.users, self.admin = users, admin
        self.rows: list[tuple[Any, float]] = []
        self.setWindowTitle("Users")
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._sync_buttons)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.approve_button = QPushButton("Approve")
        self.disable_button = QPushButton("Disable")
        self.enable_button = QPushButton("Enable")
        self.reset_button = QPushButton("Reset password…")
        self.unlock_button = QPushButton("Unlock")
        self.role_combo = QComboBox()
        self.role_combo.addItems(ROLES)
        self.role_button = QPushButton("Set role")
        for w in (
            self.approve_button,
            self.disable_button,
            self.enable_button,
            self.reset_button,
            self.unlock_button,
            self.role_combo,
            self.role_button,
        ):
            row.addWidget(w)
        layout.addLayout(row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.approve_button.clicked.connect(lambda: self._act("approved", self._approve))
        self.disable_button.clicked.connect(self._disable)
        self.enable_button.clicked.connect(lambda: self._act("enabled", self._enable))
        self.reset_button.clicked.connect(self._reset)
        self.unlock_button.clicked.connect(lambda: self._act("unlocked", self._unlock))
        self.role_button.clicked.connect(lambda: self._act("given the new role", self._role))
        self.resize(self.fontMetrics().horizontalAdvance("x") * 95, 420)
        self.reload()

    # ---------------------------------------------------------------- data
    def reload(self) -> None:
        users = self.users
        run_in_background(
            lambda _p, _c: _account_rows(users),
            name="users",
            on_result=self._show,
            on_error=lambda exc: self.message.setText(plain_message(exc)),
        )

    def _show(self, rows: list[tuple[Any, float]]) -> None:
        selected = self.selected_name()
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, (u, locked_s) in enumerate(rows):
            lock = f"locked, {max(1, round(locked_s / 60))} min" if locked_s > 0 else "open"
            last = (
                datetime.fromtimestamp(u.last_login_at).strftime("%Y-%m-%d %H:%M")
                if u.last_login_at
                else "never"
            )
            for col, text in enumerate((u.name, u.full_name, u.role, u.status, lock, last)):
                self.table.setItem(i, col, QTableWidgetItem(text))
            if u.name == selected:
                self.table.selectRow(i)
        self._sync_buttons()
        self.changed.emit()

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()][0].name if rows and rows[0].row() < len(self.rows) else None

    def _selected(self) -> tuple[Any, float] | None:
        name = self.selected_name()
        return next((r for r in self.rows if r[0].name == name), None)

    def _sync_buttons(self) -> None:
        sel = self._selected()
        user, locked = sel if sel else (None, 0.0)
        self.approve_button.setEnabled(user is not None and user.status == "pending")
        self.disable_button.setEnabled(user is not None and user.status == "active")
        self.enable_button.setEnabled(user is not None and user.status == "disabled")
        self.reset_button.setEnabled(user is not None)
        self.unlock_button.setEnabled(user is not None and locked > 0)
        self.role_button.setEnabled(user is not None)
        if user is not None:
            self.role_combo.setCurrentText(user.role)

    # ---------------------------------------------------------------- actions
    def _act(self, done_word: str, call) -> None:
        name = self.selected_name()
        if name is None:
            return

        def finished(_r) -> None:
            self.message.setText(f"'{name}' {done_word} ({time.strftime('%H:%M:%S')}).")
            self.reload()

        run_in_background(
            lambda _p, _c: call(name),
            name="user action",
            on_result=finished,
            on_error=lambda exc: self.message.setText(plain_message(exc)),
        )

    def _approve(self, name: str):
        return self.users.approve(name, actor=self.admin)

    def _enable(self, name: str):
        return self.users.enable(name, actor=self.admin)

    def _unlock(self, name: str):
        return unlock_account(self.users, name, actor=self.admin)

    def _role(self, name: str):
        return self.users.set_role(name, self.role_combo.currentText(), actor=self.admin)

    def _disable(self) -> None:
        name = self.selected_name()
        if name and confirm(
            self,
            "Disable account",
            f"Disable the account '{name}'? It can no longer sign in and its API tokens are "
            "revoked.",
            "Disable account",
        ):
            self._act("disabled", lambda n: self.users.disable(n, actor=self.admin))

    def _reset(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        dialog = PasswordDialog(name, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        password = dialog.first.text()
        self._act(
            "has a new password",
            lambda n: self.users.reset_password(n, password, actor=self.admin),
        )
