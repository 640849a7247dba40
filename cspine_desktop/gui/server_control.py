"""The HTTP endpoint as the GUI sees it: something that starts and stops, and a state to show.

The GUI never imports the server package (front ends stay independent); ``cspine gui`` hands it
a :class:`ServerControl` built from the server's ``HttpEndpoint``. Start and stop run off the GUI
thread; :class:`ServerStatus` reports the state in words for the status bar.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QObject, Signal

from ..errors import UserFacingError
from ..settings import Settings
from .workers import run_in_background


class ServerControl(Protocol):
    def start(self, settings: Settings) -> str:
        """Start serving per ``settings``; returns the base URL. Raises a SettingsError
        (e.g. port in use, TLS file missing, LAN without TLS) with a plain message."""
        ...

    def stop(self) -> None: ...

    def is_running(self) -> bool: ...


class ServerStatus(QObject):
    """Wraps a ServerControl (or None: no endpoint available in this build/run)."""

    changed = Signal(str)  # status-bar text
    error = Signal(object)  # exception from start/stop

    def __init__(self, control: ServerControl | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.control = control
        self.text = "Server: not available" if control is None else "Server: off"
        self.url: str | None = None

    @property
    def available(self) -> bool:
        return self.control is not None

    def _set(self, text: str) -> None:
        self.text = text
        self.changed.emit(text)

    def apply(self, settings: Settings) -> None:
        """Start (or restart) when ``settings.server_enabled``, else stop."""
        if self.control is None:
            if settings.server_enabled:
                self.error.emit(UserFacingError("The network endpoint is not available here."))
            return
        control = self.control
        self._set("Server: starting…" if settings.server_enabled else "Server: stopping…")

        def task(_p, _c):
            if control.is_running():
                control.stop()
            return control.start(settings) if settings.server_enabled else None

        def done(url: str | None) -> None:
            self.url = url
            self._set(f"Server: on at {url}" if url else "Server: off")

        def failed(exc: BaseException) -> None:
            self.url = None
            self._set("Server: off (failed to start)")
            self.error.emit(exc)

        run_in_background(task, name="server", on_result=done, on_error=failed)

    def stop(self) -> None:
        """Stop at shutdown (blocking only as long as the endpoint takes to stop)."""
        if self.control is not None and self.control.is_running():
            self.control.stop()
            self._set("Server: off")
