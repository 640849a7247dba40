"""GUI test fixtures: a real users service on an isolated store, with a fake clock."""

from __future__ import annotations

import pytest
from factories.dicom_series import write_ct_series
from gui_support import ADMIN_PASSWORD, PASSWORD, FakeClock

from cspine_desktop.settings import Settings


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def settings(_isolated_data_dir):
    return Settings.load({"max_failed_logins": 3, "lockout_minutes": 15.0})


@pytest.fixture
def users(settings, clock):
    """A real UserService (bcrypt at the minimum cost so tests stay fast)."""
    from cspine_desktop.services.audit import AuditLog
    from cspine_desktop.services.users import UserService
    from cspine_desktop.store import Store

    store = Store.open(settings.data_dir, clock=clock)
    service = UserService(store, AuditLog(store), settings, clock=clock, rounds=4)
    yield service
    store.close()


@pytest.fixture
def alice(users):
    users.create_first_admin("admin", "Root-secret-77x")
    return users.add_user("alice", PASSWORD, "radiologist", full_name="Alice Example")


@pytest.fixture
def make_workstation(qtbot, settings):
    """Build a MainWindow over real services whose job queue runs ``handler``."""
    from cspine_desktop.gui.main_window import MainWindow
    from cspine_desktop.services import Services
    from cspine_desktop.services.autolock import AutoLock

    opened = []

    def stop_work(window) -> None:
        """Cancel what runs, so closing does not stop to ask (pytest-qt closes the window)."""
        window.controller.cancel()
        try:
            qtbot.waitUntil(lambda: not window.controller.busy, timeout=10000)
        finally:
            window.user_signed_out = True  # close without the question, whatever happened

    def make(handler, **kw):
        services = Services.open(settings, handler=handler, bcrypt_rounds=4)
        user = services.users.create_first_admin("admin", ADMIN_PASSWORD)
        window = MainWindow(
            services,
            user,
            settings,
            choose_series=kw.pop("choose_series", lambda series: series[0].series_uid),
            autolock=kw.pop("autolock", AutoLock(0)),
            **kw,
        )
        qtbot.addWidget(window, before_close_func=stop_work)
        window.resize(1400, 850)
        window.show()
        qtbot.waitExposed(window)
        opened.append((window, services))
        return window, services

    yield make
    from PySide6.QtCore import QThreadPool

    for window, services in opened:
        try:
            stop_work(window)
            window.close()
        except RuntimeError:  # already closed and deleted by pytest-qt
            pass
        QThreadPool.globalInstance().waitForDone(10000)
        services.close(timeout=10)


@pytest.fixture(autouse=True)
def _no_forgotten_dialog(qapp):
    """A message box nobody answers would block the test forever: close any that stays open
    for 5 s and fail the test with its text."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    seen: dict[int, int] = {}
    stuck: list[str] = []

    def check() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.isVisible():
            seen[id(box)] = seen.get(id(box), 0) + 1
            if seen[id(box)] >= 10:
                stuck.append(box.text())
                box.reject()

    timer = QTimer()
    timer.setInterval(500)
    timer.timeout.connect(check)
    timer.start()
    yield
    timer.stop()
    assert not stuck, f"a dialog was left unanswered: {stuck}"


@pytest.fixture
def study_dir(tmp_path):
    write_ct_series(tmp_path / "study", n_slices=14, rows=32, cols=32, spacing=(2.0, 2.5, 2.5))
    return tmp_path / "study"
