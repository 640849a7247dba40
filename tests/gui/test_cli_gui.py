"""``cspine gui`` is registered, and the embedded endpoint control it hands the GUI works."""

from __future__ import annotations

import json
import socket
import urllib.request

from fake_analysis import FakeHandler

from cspine_desktop.cli import build_parser
from cspine_desktop.cli.gui import EmbeddedServer, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gui_subcommand_is_registered():
    args = build_parser().parse_args(["gui"])
    assert args.func is run


def test_embedded_server_starts_serves_and_stops(settings):
    from cspine_desktop.services import Services

    services = Services.open(settings, handler=FakeHandler(), bcrypt_rounds=4)
    server = EmbeddedServer(services)
    try:
        url = server.start(settings.replace(server_enabled=True, server_port=_free_port()))
        assert server.is_running() and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/api/v1/health", timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["status"] == "ok"
        server.stop()
        assert not server.is_running()
    finally:
        server.stop()
        services.close()


def test_run_app_returns_when_sign_in_is_closed(qtbot, settings, monkeypatch):
    from cspine_desktop.gui import app as gui_app
    from cspine_desktop.services import Services

    services = Services.open(settings, handler=FakeHandler(), bcrypt_rounds=4)
    try:
        monkeypatch.setattr(gui_app, "sign_in", lambda users: None)
        assert gui_app.run_app(settings, services) == 0
    finally:
        services.close()


def test_run_app_waits_for_its_warm_up_before_returning(qtbot, settings, monkeypatch):
    """Closing the sign-in dialog at once ends the app only after the warm-up thread has
    finished its imports: a process that exits while a native library is half-loaded on
    another thread can crash."""
    import time

    from cspine_desktop.gui import app as gui_app
    from cspine_desktop.gui import warmup
    from cspine_desktop.services import Services

    finished: list[str] = []

    def slow_warm_up():
        time.sleep(0.5)
        finished.append("done")
        return {}

    monkeypatch.setattr(warmup, "warm_up", slow_warm_up)
    monkeypatch.setattr(gui_app, "sign_in", lambda users: None)
    services = Services.open(settings, handler=FakeHandler(), bcrypt_rounds=4)
    try:
        assert gui_app.run_app(settings, services) == 0
        assert finished == ["done"]
    finally:
        services.close()


def test_run_app_shows_the_window_and_sign_out_returns_to_sign_in(qtbot, settings, monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from cspine_desktop.gui import app as gui_app
    from cspine_desktop.gui.main_window import MainWindow
    from cspine_desktop.services import Services

    services = Services.open(settings, handler=FakeHandler(), bcrypt_rounds=4)
    user = services.users.create_first_admin("admin", "Root-secret-77x")
    answers = [user, user, None]  # sign in, sign out → sign in again, quit → closed dialog
    shown = []

    def fake_sign_in(users):
        return answers.pop(0)

    def act():
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
        shown.append(window.windowTitle())
        if len(shown) == 1:
            window.sign_out()
        else:
            window.close()

    def schedule():
        QTimer.singleShot(200, act)

    monkeypatch.setattr(gui_app, "sign_in", lambda users: (schedule(), fake_sign_in(users))[1])
    try:
        assert gui_app.run_app(settings, services) == 0
        assert len(shown) == 2 and all(t.startswith("cspine") for t in shown)
        assert answers == [None]  # the second window was closed, not signed out
    finally:
        services.close()
