"""Start the workstation: Qt application, services, sign-in, main window; sign-out returns to
the sign-in dialog, closing the window ends the app."""

from __future__ import annotations

import logging
import sys
from typing import Any

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication

from .. import __version__
from ..settings import Settings
from .auth import sign_in
from .main_window import MainWindow
from .server_control import ServerControl
from .warmup import warm_up_in_background

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 30_000


def run_app(
    settings: Settings, services: Any, server: ServerControl | None = None, argv=None
) -> int:
    """Run the GUI event loop until the user quits; returns the exit code. ``services`` is an
    open :class:`cspine_desktop.services.Services` (the caller closes it)."""
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("cspine")
    app.setOrganizationName("cspine")
    services.audit.record("app_start", detail={"version": __version__, "front_end": "desktop"})
    last_user = None
    warming = warm_up_in_background()  # while the sign-in dialog is shown
    try:
        while True:
            user = sign_in(services.users)
            if user is None:
                return 0
            last_user = user
            window = MainWindow(services, user, settings, server)
            window.show()
            app.exec()
            QThreadPool.globalInstance().waitForDone(SHUTDOWN_WAIT_MS)  # workers use services
            settings = window.settings  # the admin may have changed them
            window.server.stop()
            window.deleteLater()
            if not window.user_signed_out:
                return 0
    finally:
        # the warm-up imports native libraries (ONNX Runtime, OpenVINO): the process must not
        # start shutting down while one is half-loaded on another thread
        warming.join(SHUTDOWN_WAIT_MS / 1000)
        services.audit.record(
            "app_stop",
            user=last_user,
            detail={"version": __version__, "front_end": "desktop"},
        )
