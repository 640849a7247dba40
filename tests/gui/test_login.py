"""Sign-in, first-run administrator, lockout with remaining time, auto-lock and unlock."""

from __future__ import annotations

import pytest
from gui_support import PASSWORD

from cspine_desktop.gui.auth import FirstRunDialog, LockScreen, LoginDialog, SessionGuard
from cspine_desktop.gui.auth.login import format_wait
from cspine_desktop.services.autolock import AutoLock


def _attempt(qtbot, dialog, name, password):
    dialog.name_edit.setText(name)
    dialog.password_edit.setText(password)
    with qtbot.waitSignal(dialog.attempt_finished, timeout=5000):
        dialog.submit()


@pytest.fixture
def login(qtbot, users, alice, clock):
    dialog = LoginDialog(users, clock=clock)
    qtbot.addWidget(dialog)
    return dialog


def test_sign_in_succeeds_with_the_right_password(qtbot, login):
    _attempt(qtbot, login, "alice", PASSWORD)
    assert login.user is not None and login.user.name == "alice"
    assert login.result() == LoginDialog.DialogCode.Accepted


def test_wrong_password_gets_one_plain_message(qtbot, login, clock):
    _attempt(qtbot, login, "alice", "wrong-password-1")
    assert login.user is None
    assert login.message.text() == "Wrong user name or password."
    assert login.password_edit.text() == ""
    clock.advance(5)
    _attempt(qtbot, login, "nobody", "wrong-password-1")
    assert login.message.text() == "Wrong user name or password."  # no account enumeration


def test_lockout_shows_remaining_time_and_blocks_until_it_passes(qtbot, login, clock, users):
    for _ in range(3):  # max_failed_logins = 3 in the fixture settings
        clock.advance(10)  # past the growing delay between attempts
        _attempt(qtbot, login, "alice", "wrong-password-1")
    text = login.message.text()
    assert "locked" in text.lower()
    assert "Time remaining: 15:00" in text
    clock.advance(10)
    login._tick()  # the 1 s countdown timer's slot
    assert "Time remaining: 14:50" in login.message.text()
    assert not login.sign_in_button.isEnabled()
    clock.advance(14 * 60)
    login._tick()
    assert "Time remaining: 0:" in login.message.text()
    clock.advance(60)
    login._tick()
    assert login.sign_in_button.isEnabled()
    _attempt(qtbot, login, "alice", PASSWORD)
    assert login.user.name == "alice"


def test_format_wait_rounds_up():
    assert format_wait(899.2) == "15:00"
    assert format_wait(61) == "1:01"
    assert format_wait(0.1) == "0:01"


def test_first_run_creates_the_administrator(qtbot, users):
    assert users.needs_admin()
    dialog = FirstRunDialog(users)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("chief")
    dialog.password_edit.setText("short")
    dialog.repeat_edit.setText("short")
    with qtbot.waitSignal(dialog.attempt_finished, timeout=5000):
        dialog.submit()
    assert "too short" in dialog.message.text()
    assert users.needs_admin()
    dialog.password_edit.setText("Head-of-dept-9x")
    dialog.repeat_edit.setText("Head-of-dept-0x")
    with qtbot.waitSignal(dialog.attempt_finished, timeout=5000):
        dialog.submit()
    assert dialog.message.text() == "The two passwords differ."
    dialog.repeat_edit.setText("Head-of-dept-9x")
    with qtbot.waitSignal(dialog.attempt_finished, timeout=5000):
        dialog.submit()
    assert dialog.created.name == "chief" and dialog.created.is_admin
    assert not users.needs_admin()
    assert users.authenticate("chief", "Head-of-dept-9x").name == "chief"


def test_autolock_after_idle_then_unlock_with_password(qtbot, users, alice, clock):
    autolock = AutoLock(60.0, clock=clock)
    guard = SessionGuard(users, alice, autolock, poll_ms=10)
    screen = LockScreen(guard)
    qtbot.addWidget(screen)
    try:
        clock.advance(30)
        qtbot.wait(50)
        assert not guard.is_locked
        with qtbot.waitSignal(guard.locked, timeout=2000):
            clock.advance(31)  # 61 s idle ≥ 60 s
        assert guard.is_locked and "Session locked" in screen.title.text()
        screen.password_edit.setText("not-my-password")
        with qtbot.waitSignal(guard.unlock_failed, timeout=5000):
            screen.submit()
        assert guard.is_locked and screen.message.text() == "Wrong user name or password."
        clock.advance(10)
        screen.password_edit.setText(PASSWORD)
        with qtbot.waitSignal(guard.unlocked, timeout=5000):
            screen.submit()
        assert not guard.is_locked and not autolock.locked
        actions = [e.action for e in users.audit.query(user="alice")]
        assert "session_locked" in actions and "session_unlocked" in actions
    finally:
        guard.stop()


def test_user_activity_postpones_the_lock(qtbot, users, alice, clock):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLineEdit

    autolock = AutoLock(60.0, clock=clock)
    guard = SessionGuard(users, alice, autolock, poll_ms=10)
    edit = QLineEdit()
    qtbot.addWidget(edit)
    edit.show()
    try:
        clock.advance(50)
        qtbot.keyClick(edit, Qt.Key.Key_A)
        clock.advance(50)  # 100 s since start, only 50 s since the key press
        qtbot.wait(50)
        assert not guard.is_locked
        guard.lock_now()
        assert guard.is_locked
    finally:
        guard.stop()
