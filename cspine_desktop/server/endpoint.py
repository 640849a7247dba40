"""``HttpEndpoint``: serve the app with waitress in a background thread (desktop or headless).

The desktop app starts and stops it from Settings; ``cspine serve`` runs it in the foreground.
``start()`` binds the socket first (so "port in use" or a bad TLS file is a plain
:class:`~cspine_desktop.errors.SettingsError` raised to the caller, not a dead thread), then
runs waitress's loop in a thread and returns the base URL. Binding to anything but loopback
needs TLS, or ``allow_insecure_lan`` (then a warning is logged).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import Any

import flask
from waitress.server import create_server

from ..errors import SettingsError
from ..settings import Settings
from .config import is_loopback_host
from .gate import Gate, GatedChannel
from .tls import TLSChannel, server_context

log = logging.getLogger(__name__)


class GatedTLSChannel(GatedChannel, TLSChannel):
    """The gate's checks (see :mod:`.gate`) on a TLS connection."""

    def _stop_writing(self) -> None:
        """No half-close under TLS (shutting the raw socket would drop the TLS layer): the
        answer's length and ``Connection: close`` end it; the lingering read still runs."""


STATES = ("stopped", "starting", "running", "stopping", "failed")


def check_exposure(host: str, tls: bool, allow_insecure_lan: bool) -> None:
    """Refuse a non-loopback address without TLS unless explicitly allowed (then warn)."""
    if is_loopback_host(host) or tls:
        return
    if not allow_insecure_lan:
        raise SettingsError(
            f"Serving on {host} without TLS would send patient data unencrypted over the "
            "network. Set a TLS certificate and key (in Settings, or --tls-cert/--tls-key), "
            "or allow an insecure LAN (--allow-insecure-lan) if the network is trusted."
        )
    log.warning(
        "serving on %s WITHOUT TLS (allow_insecure_lan): patient data and passwords cross the "
        "network unencrypted",
        host,
    )


class HttpEndpoint:
    """Start/stop waitress for ``app`` per ``settings`` (host, port, TLS, LAN permission).

    ``port=0`` (tests) binds an ephemeral port; :attr:`port` is the one actually bound.
    """

    def __init__(
        self,
        app: flask.Flask,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        threads: int = 8,
    ) -> None:
        self.app = app
        self.settings = settings
        self.host = host if host is not None else settings.server_host
        self.requested_port = settings.server_port if port is None else int(port)
        self.threads = threads
        self.port: int | None = None
        self._state = "stopped"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> str:
        return self._state

    def is_running(self) -> bool:
        return self._state == "running"

    @property
    def tls(self) -> bool:
        return self.settings.tls_cert is not None

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        """Bind and serve in a background thread; returns the base URL."""
        with self._lock:
            if self._state == "running":
                return self.url or ""
            self._state = "starting"
            try:
                self._server = self._create()
            except BaseException:
                self._state = "failed"
                raise
            self._thread = threading.Thread(target=self._serve, name="cspine-http", daemon=True)
            self._state = "running"
            self._thread.start()
        log.info("HTTP endpoint listening on %s", self.url)
        return self.url or ""

    def _create(self) -> Any:
        check_exposure(self.host, self.tls, self.settings.allow_insecure_lan)
        ctx = None
        cert, key = self.settings.tls_cert, self.settings.tls_key
        if cert is not None:
            if key is None:  # Settings refuses one without the other; this keeps it so here
                raise SettingsError("A TLS certificate needs its key.")
            ctx = server_context(cert, key)
        sock = _bind(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        cfg = self.app.extensions["cspine"].config
        try:
            server = create_server(
                self.app,
                sockets=[sock],
                threads=self.threads,
                ident="cspine",
                url_scheme="https" if self.tls else "http",
                max_request_body_size=cfg.max_upload_bytes + 1024 * 1024,
                channel_timeout=120,
                clear_untrusted_proxy_headers=True,
            )
        except BaseException:
            sock.close()
            raise
        server.channel_class = GatedTLSChannel if ctx is not None else GatedChannel
        server.cspine_gate = Gate(self.app)
        return server

    def _serve(self) -> None:
        server = self._server
        try:
            server.run()
        except Exception as exc:  # the loop died: say so in the state
            if self._state != "stopping":
                log.exception("HTTP endpoint stopped unexpectedly")
                self.error = exc
                self._state = "failed"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close every connection, publish STOW-RS studies still collecting."""
        with self._lock:
            server, thread = self._server, self._thread
            if server is None:
                self._state = "stopped"
                return
            self._state = "stopping"
            try:
                server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
            except Exception:
                log.exception("could not stop the HTTP worker threads")
            for channel in list(server._map.values()):  # ends waitress's loop (map empty)
                try:
                    channel.close()
                except Exception:
                    log.debug("closing a channel failed", exc_info=True)
            server._map.clear()
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
            try:
                self.app.extensions["cspine"].close()
            except Exception:
                log.exception("could not publish collected STOW-RS studies")
            gate = getattr(server, "cspine_gate", None)
            if gate is not None:
                gate.close()
            self._server = self._thread = None
            self._state = "stopped"
        log.info("HTTP endpoint stopped")

    def __enter__(self) -> HttpEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingsError(f"The server address {host!r} cannot be resolved ({exc}).") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if hasattr(socket, "SO_REUSEADDR") and not _windows():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"Port {port} on {host} is already in use.") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise SettingsError(f"cspine may not listen on port {port} of {host}.") from None
        raise SettingsError(f"Cannot listen on {host}:{port} ({exc.strerror}).") from None
    return sock


def _windows() -> bool:
    import os

    return os.name == "nt"
