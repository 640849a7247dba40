"""Issue items 8–11: the sign-in dialog follows an unlock, the app's start and stop are in the
audit trail, administrators manage accounts in the app, and About shows the model card in words."""

from __future__ import annotations

import json

import pytest
from dialog_bot import answering
from fake_analysis import FakeHandler
from gui_support import ADMIN_PASSWORD, PASSWORD
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog

from cspine_desktop.gui.auth import LoginDialog
from cspine_desktop.gui.dialogs.about import AboutDialog
from cspine_desktop.gui.dialogs.users_dialog import PasswordDialog, UsersDialog
from cspine_desktop.inference.resources import demo_model_dir

LEFT = Qt.MouseButton.LeftButton


def _type_and_sign_in(qtbot, dialog, name, password):
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, name)
    qtbot.keyClicks(dialog.password_edit, password)
    with qtbot.waitSignal(dialog.attempt_finished, timeout=5000):
        qtbot.mouseClick(dialog.sign_in_button, LEFT)


def test_8_an_open_sign_in_follows_an_unlock_and_says_when_a_click_was_refused(
    qtbot, users, alice, clock
):
    dialog = LoginDialog(users, clock=clock, lock_poll_ms=50)
    qtbot.addWidget(dialog)
    dialog.show()
    _type_and_sign_in(qtbot, dialog, "alice", "wrong-password-1")
    _type_and_sign_in(qtbot, dialog, "alice", "wrong-password-2")  # within the 1 s pause
    assert "wait 1 second" in dialog.message.text()
    clock.advance(2)
    qtbot.waitUntil(lambda: dialog.sign_in_button.isEnabled(), timeout=3000)
    text = dialog.message.text()
    assert "was not checked" in text and "You may try again now." not in text
    for _ in range(2):  # 3 failures in all (the fixture's limit): locked for 15 minutes
        clock.advance(10)
        _type_and_sign_in(qtbot, dialog, "alice", "wrong-password-3")
    assert "locked" in dialog.message.text().lower()
    assert not dialog.sign_in_button.isEnabled()
    users.throttle.success("alice")  # what `cspine users unlock alice` does
    qtbot.waitUntil(lambda: dialog.sign_in_button.isEnabled(), timeout=3000)
    assert "lifted" in dialog.message.text()
    _type_and_sign_in(qtbot, dialog, "alice", PASSWORD)
    assert dialog.user is not None and dialog.user.name == "alice"


def test_9_app_start_and_stop_are_audited(qtbot, settings):
    from cspine_desktop.gui.app import run_app
    from cspine_desktop.gui.main_window import MainWindow
    from cspine_desktop.services import Services

    services = Services.open(settings, handler=FakeHandler(), bcrypt_rounds=4)
    services.users.create_first_admin("admin", ADMIN_PASSWORD)
    steps: list[str] = []

    def drive() -> None:  # what the user does: sign in, then close the window
        modal = QApplication.activeModalWidget()
        if isinstance(modal, LoginDialog) and "login" not in steps:
            steps.append("login")
            qtbot.keyClicks(modal.name_edit, "admin")
            qtbot.keyClicks(modal.password_edit, ADMIN_PASSWORD)
            qtbot.mouseClick(modal.sign_in_button, LEFT)
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if "login" in steps and "close" not in steps and any(w.isVisible() for w in windows):
            steps.append("close")
            for w in windows:
                w.close()

    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(drive)
    timer.start()
    QTimer.singleShot(60000, QApplication.quit)  # never hang the suite
    try:
        assert run_app(settings, services) == 0
    finally:
        timer.stop()
        services.close(timeout=10)
    assert steps == ["login", "close"]
    from cspine_desktop.services import Services as S2

    with S2.open(settings, handler=FakeHandler(), bcrypt_rounds=4) as again:
        events = [(e.action, e.user_name) for e in again.audit.query()]
    actions = [a for a, _ in events]
    assert actions.index("app_start") < actions.index("login") < actions.index("app_stop")
    assert ("app_stop", "admin") in events


@pytest.fixture
def admin_and_users(users):
    admin = users.create_first_admin("admin", ADMIN_PASSWORD)
    users.add_user("bob", PASSWORD, actor=admin)
    users.sign_up("carol", PASSWORD, full_name="Carol Pending")
    return admin


def _select(qtbot, dialog, name):
    row = next(i for i, (u, _l) in enumerate(dialog.rows) if u.name == name)
    rect = dialog.table.visualRect(dialog.table.model().index(row, 0))
    qtbot.mouseClick(dialog.table.viewport(), LEFT, pos=rect.center())


def test_10_admin_screen_lists_approves_disables_resets_unlocks_and_sets_roles(
    qtbot, users, admin_and_users, clock
):
    dialog = UsersDialog(users, admin_and_users)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.rows) == 3, timeout=5000)
    assert {u.name: u.status for u, _ in dialog.rows} == {
        "admin": "active",
        "bob": "active",
        "carol": "pending",
    }
    _select(qtbot, dialog, "carol")
    with qtbot.waitSignal(dialog.changed, timeout=5000):
        qtbot.mouseClick(dialog.approve_button, LEFT)
    assert users.get("carol").status == "active"
    _select(qtbot, dialog, "bob")
    seen: list[str] = []
    with answering(qtbot, "Cancel", seen):
        qtbot.mouseClick(dialog.disable_button, LEFT)
    assert "'bob'" in seen[0] and users.get("bob").status == "active"
    with qtbot.waitSignal(dialog.changed, timeout=5000), answering(qtbot, "Disable account"):
        qtbot.mouseClick(dialog.disable_button, LEFT)
    assert users.get("bob").status == "disabled"
    with qtbot.waitSignal(dialog.changed, timeout=5000):
        qtbot.mouseClick(dialog.enable_button, LEFT)
    assert users.get("bob").status == "active"
    dialog.role_combo.setFocus()
    qtbot.keyClick(dialog.role_combo, Qt.Key.Key_Down)  # radiologist → admin
    with qtbot.waitSignal(dialog.changed, timeout=5000):
        qtbot.mouseClick(dialog.role_button, LEFT)
    assert users.get("bob").role == "admin"
    # lock bob by failed sign-ins, then lift the lock here
    for _ in range(3):
        clock.advance(10)
        with pytest.raises(Exception):  # noqa: B017 - wrong password or locked
            users.authenticate("bob", "wrong-password-1")
    with qtbot.waitSignal(dialog.changed, timeout=5000):
        dialog.reload()
    _select(qtbot, dialog, "bob")
    assert "locked" in dialog.table.item(dialog.table.currentRow(), 4).text()
    with qtbot.waitSignal(dialog.changed, timeout=5000):
        qtbot.mouseClick(dialog.unlock_button, LEFT)
    assert users.authenticate("bob", PASSWORD).name == "bob"

    def fill_password() -> None:
        modal = QApplication.activeModalWidget()
        if isinstance(modal, PasswordDialog):
            qtbot.keyClicks(modal.first, "New-secret-pass-9")
            qtbot.keyClicks(modal.second, "New-secret-pass-9")
            qtbot.keyClick(modal.second, Qt.Key.Key_Return)
        else:
            QTimer.singleShot(30, fill_password)

    QTimer.singleShot(30, fill_password)
    with qtbot.waitSignal(dialog.changed, timeout=10000):
        qtbot.mouseClick(dialog.reset_button, LEFT)
    clock.advance(60)
    assert users.authenticate("bob", "New-secret-pass-9").name == "bob"
    changes = [e.detail.get("change") for e in users.audit.query(action="user_changed")]
    assert "unlocked" in changes


def test_10_users_entry_is_enabled_for_an_admin(qtbot, make_workstation):
    window, _services = make_workstation(FakeHandler())
    assert window.users_action.isEnabled()


def test_11_about_shows_the_model_card_in_words(qtbot, settings):
    dialog = AboutDialog(settings)  # the bundled demo model's card
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    card = json.loads((demo_model_dir() / "model_card.json").read_text())
    assert f"cspine-demo {card['version']}" in text
    assert "synthetic cervical-spine CT phantom" in text and "300 train" in text
    assert "Patient AUC" in text and "≥ 0.97" in text
    assert "Patient sensitivity at the threshold" in text and "Dice, lowest vertebra" in text
    assert "Thresholds" in text and "C1" in text and "patient" in text
    # no raw dictionaries or lists (prose may hold an apostrophe: "stage 1's masks")
    assert "{" not in text and "['" not in text and "': " not in text
    assert dialog.result() == QDialog.DialogCode.Rejected  # not shown modally here
