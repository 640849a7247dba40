"""The gate: what waitress checks from a request's headers, before it reads the body.

waitress reads a whole request body (spooled to a temporary file) before the app sees it. So a
caller without credentials could make the server read and store hundreds of MiB, and a large
JSON body to ``/auth/token`` would be parsed in memory. :class:`GatedChannel` (waitress's
``HTTPChannel`` with a check between the headers and the body) refuses from the headers alone:

* a body to anything but an upload larger than :data:`SMALL_BODY_MAX` (64 KiB) — 413;
* an upload (``POST /api/v1/studies``, ``/dicomweb/studies…``, ``/upload``) larger than the
  upload limit — 413 — or without valid credentials — 401/429: a bearer token, HTTP Basic (both
  checked with the same lockout as sign-in), or a web session with its CSRF header.

Credentials are checked on a small thread pool (bcrypt must not stall the event loop) while the
connection is not read; ``Expect: 100-continue`` is answered only once they pass. The checked
user is handed to the app in the WSGI environ (``cspine.user_id``) so it is not checked twice.
Every refusal waitress makes itself (bad HTTP, oversized headers or bodies, its own internal
errors) is answered as JSON too (:class:`JsonErrorTask`). Refused uploads and oversized sign-in
bodies are written to the audit trail.

A connection closed after its answer closes the way Apache and nginx close it ("lingering
close"): the server stops writing (FIN), then reads and throws away what the client still sends,
for at most :data:`LINGER_SECONDS` and :data:`LINGER_BYTES`, before it closes the socket. A
client that sends its body after a refusal (most do, unless they ask ``Expect: 100-continue``)
otherwise meets a socket closed with unread data, which the kernel answers with a reset; the
reset can reach the client before it reads the refusal, so it sees "connection reset" instead of
the 413 or 401 and its words. The refused bytes are still never parsed or stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import math
import re
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import Error

from ..errors import AccountLockedError, AuthenticationError, UserFacingError, http_status_of

log = logging.getLogger(__name__)

SMALL_BODY_MAX = 64 * 1024  # every body that is not an upload (sign-in, sign-up, forms)
LINGER_SECONDS = 2.0  # lingering close: how long a closing connection's input is thrown away
LINGER_BYTES = 4 * 2**20  # ... and how much of it, before the socket is closed regardless
UPLOAD_PATH = re.compile(r"^/(api/v1/studies|dicomweb/studies(/[^/]+)?|upload)/?$")
SIGN_IN_PATHS = ("/api/v1/auth/token", "/login", "/signup")
USER_KEY = "cspine.user_id"  # WSGI environ: the user the gate checked (server-set only)
NO_CREDENTIALS = (
    "Sign in first: send 'Authorization: Bearer <token>' with a token from POST "
    "/api/v1/auth/token (or HTTP Basic for DICOMweb)."
)
SMALL_BODY_WORDS = (
    f"The request body is larger than the limit of {SMALL_BODY_MAX // 1024} KiB for this "
    "request (only uploads may be larger)."
)
PLAIN = {
    400: "The request is not valid HTTP.",
    413: "The request body is too large.",
    431: "The request headers are too large.",
    501: "This Transfer-Encoding is not supported; send the body plainly or chunked.",
    500: "Internal error (a bug, not your request); see the log.",
}


class Refusal(Error):
    """A refusal from the headers, answered as JSON (waitress's ``Error`` interface)."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = _REASONS.get(code, "Error")
        self.headers = headers or {}

    def to_response(self, ident: str | None = None):
        return json_response(self.code, self.reason, self.body, self.headers)


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def json_response(code: int, reason: str, message: str, extra: dict[str, str] | None = None):
    body = json.dumps({"error": message, "status": code}).encode("utf-8")
    headers = [
        ("Content-Type", "application/json"),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
        *(extra or {}).items(),
    ]
    return f"{code} {reason}", headers, body


class JsonErrorTask(ErrorTask):
    """waitress's error answers (bad request, too large, …) as JSON with a plain message."""

    def execute(self) -> None:
        err = self.request.error
        if isinstance(err, Refusal):
            status, headers, body = err.to_response()
        else:
            code = int(getattr(err, "code", 500))
            message = PLAIN.get(code, PLAIN[500])
            if code == 413:
                message = self.channel.server.cspine_gate.too_large_words()
            status, headers, body = json_response(code, getattr(err, "reason", "Error"), message)
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class GatedTask(WSGITask):
    """Hands the user the gate checked to the app (a key no client header can produce)."""

    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        user_id = getattr(self.request, "cspine_user_id", None)
        if user_id is not None:
            environ[USER_KEY] = user_id
        return environ


def is_upload(method: str, path: str) -> bool:
    return method == "POST" and bool(UPLOAD_PATH.match(path))


class Gate:
    """The checks and the thread pool; one per running server (see ``HttpEndpoint``)."""

    def __init__(self, app: flask.Flask, workers: int = 4) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cspine-gate")

    @property
    def state(self):
        return self.app.extensions["cspine"]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def too_large_words(self) -> str:
        cfg = self.state.config
        return (
            f"The upload is larger than the limit of {cfg.max_upload_bytes / 2**20:.1f} MiB "
            f"or has more than {cfg.max_upload_files} files."
        )

    # ------------------------------------------------------------------ from the headers
    def quick(self, request) -> tuple[Refusal | None, bool]:
        """(refusal, needs_check) from the headers alone, on the event loop: no I/O here."""
        method, path = request.command, request.path
        headers = request.headers
        length = int(getattr(request, "content_length", 0) or 0)
        address = _address(request)
        if not is_upload(method, path):
            if length > SMALL_BODY_MAX:
                self.audit_later(path, address, length)
                return self.small_refusal(), False
            return None, False
        if length > self.state.config.max_upload_bytes:
            self.audit_later(path, address, length)
            return Refusal(413, self.too_large_words()), False
        if headers.get("AUTHORIZATION") or path.rstrip("/") == "/upload":
            return None, True
        return Refusal(401, NO_CREDENTIALS, {"WWW-Authenticate": 'Bearer realm="cspine"'}), False

    def small_refusal(self) -> Refusal:
        return Refusal(413, SMALL_BODY_WORDS)

    def check(self, request) -> Refusal | None:
        """Credentials of an upload, on the gate's thread pool (may take a bcrypt check)."""
        try:
            with self.app.app_context():
                user = self._user(request)
        except AccountLockedError as err:
            return Refusal(
                429, str(err), {"Retry-After": str(max(1, math.ceil(err.retry_after_s)))}
            )
        except UserFacingError as err:
            status = http_status_of(err)
            return Refusal(
                status if status in _REASONS else 401,
                str(err),
                {"WWW-Authenticate": 'Bearer realm="cspine"'} if status == 401 else {},
            )
        except Exception:
            log.exception("checking the credentials of an upload failed")
            return Refusal(500, PLAIN[500])
        request.cspine_user_id = user.id
        return None

    def _user(self, request):
        users = self.state.services.users
        address = _address(request)
        kind, _, value = request.headers.get("AUTHORIZATION", "").partition(" ")
        value = value.strip()
        if kind.lower() == "bearer" and value:
            return users.verify_token(value, address=address)
        if kind.lower() == "basic" and value:
            try:
                name, sep, password = base64.b64decode(value).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise AuthenticationError(NO_CREDENTIALS) from None
            if not sep:
                raise AuthenticationError(NO_CREDENTIALS)
            return users.authenticate(name, password, address=address, audit_success=False)
        if request.path.rstrip("/") == "/upload" and not kind:
            return self._session_user(request)
        raise AuthenticationError(NO_CREDENTIALS)

    def _session_user(self, request):
        """The web session's user, with the CSRF header the upload script sends checked."""
        from .auth import session_user_from

        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": request.path,
            "SERVER_NAME": "cspine",
            "SERVER_PORT": "0",
            "wsgi.url_scheme": request.url_scheme,
            "HTTP_COOKIE": request.headers.get("COOKIE", ""),
        }
        req = self.app.request_class(environ)
        session = self.app.session_interface.open_session(self.app, req)
        user = session_user_from(session, _address(request)) if session is not None else None
        if session is None or user is None:
            raise AuthenticationError("Sign in first: your session has ended.")
        sent = request.headers.get("X_CSRF_TOKEN")
        expected = session.get("csrf")
        if sent is not None and not (expected and hmac.compare_digest(str(sent), str(expected))):
            raise AuthenticationError("This form has expired or did not come from cspine.")
        return user

    # ------------------------------------------------------------------ audit
    def audit_later(self, path: str, address: str | None, length: int) -> None:
        """Record a refused body in the audit trail (off the event loop)."""
        if is_upload("POST", path):
            action, detail = "study_imported", {"reason": "too_large", "status": 413}
        elif path in SIGN_IN_PATHS:
            action, detail = "login", {"reason": "body_too_large", "status": 413}
        else:
            log.warning("refused a %d-byte body to %s from %s", length, path, address)
            return
        detail["bytes"] = length

        def write() -> None:
            try:
                self.state.services.audit.record(
                    action, outcome="failure", address=address, detail=detail
                )
            except Exception:
                log.exception("could not audit a refused request")

        with contextlib.suppress(RuntimeError):  # RuntimeError: shutting down
            self.pool.submit(write)


def _address(request) -> str | None:
    return getattr(request, "cspine_address", None)


class GatedChannel(HTTPChannel):
    """``HTTPChannel`` that asks the :class:`Gate` between a request's headers and its body."""

    task_class = GatedTask
    error_task_class = JsonErrorTask
    _held: bytes | None = None  # bytes received while the gate's check runs
    # waitress has no types; these declare what its HTTPChannel sets up
    request: Any  # the HTTPRequestParser being filled, or None between requests
    sent_continue: bool

    _linger_until: float | None = None  # set while a closing connection's input is discarded
    _lingered = 0  # bytes discarded so far
    _closing_flushed = False  # handle_close comes from "close once the answer is flushed"

    def readable(self) -> bool:
        if self._linger_until is not None:
            return True
        return self._held is None and super().readable()

    def writable(self) -> bool:
        if self._linger_until is not None:  # wake the loop to close when the time is up
            return time.monotonic() > self._linger_until
        return super().writable()

    def handle_write(self) -> None:
        if self._linger_until is not None:
            self.handle_close()
            return
        self._closing_flushed = self.close_when_flushed and not self.will_close
        try:
            super().handle_write()
        finally:
            self._closing_flushed = False

    def handle_close(self) -> None:
        """Close, lingering first when the answer has just been flushed (see the module)."""
        if (
            self._closing_flushed
            and self._linger_until is None
            and self.connected
            and not self.total_outbufs_len
        ):
            try:
                self._stop_writing()
            except OSError:  # the client is gone already
                pass
            else:
                self.will_close = False
                self._linger_until = time.monotonic() + LINGER_SECONDS
                return
        self._linger_until = None
        super().handle_close()

    def _stop_writing(self) -> None:
        """Half-close: the client reads the end of the answer, and may still send."""
        self.socket.shutdown(socket.SHUT_WR)

    def handle_read(self) -> None:
        if self._linger_until is None:
            super().handle_read()
            return
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:
            data = b""
        self._lingered += len(data)
        if not data or self._lingered > LINGER_BYTES or time.monotonic() > self._linger_until:
            self.handle_close()

    def received(self, data: bytes) -> bool:
        """waitress's ``received`` with the gate after the headers (same locking)."""
        if not data:
            return False
        with self.requests_lock:
            if self.will_close or self.close_when_flushed:
                return False
            while data:
                if self.request is None:
                    self.request = self.parser_class(self.adj)
                    self.request.cspine_address = self.addr[0] if self.addr else None
                request = self.request
                in_headers = not request.headers_finished
                n = request.received(data)
                if in_headers and request.headers_finished and not request.completed:
                    refusal, needs_check = self.server.cspine_gate.quick(request)
                    if refusal is not None:
                        self._refuse(request, refusal)
                        return True
                    if needs_check:
                        self._held = data[n:]
                        self.server.cspine_gate.pool.submit(self._check, request)
                        return True
                    request.cspine_small = not is_upload(request.command, request.path)
                if (
                    getattr(request, "cspine_small", False)
                    and not request.completed
                    and request.body_bytes_received > SMALL_BODY_MAX
                ):  # a chunked body has no length to check up front
                    self._refuse(request, self.server.cspine_gate.small_refusal())
                    return True
                self._continue_or_queue(request)
                if n >= len(data):
                    break
                data = data[n:]
        return True

    def _continue_or_queue(self, request) -> None:
        if (
            request.expect_continue
            and request.headers_finished
            and not self.requests
            and not self.sent_continue
        ):
            self.send_continue()
        if request.completed:
            self.sent_continue = False
            if not request.empty:
                self.requests.append(request)
                if len(self.requests) == 1:
                    self.server.add_task(self)
            self.request = None

    def _refuse(self, request, refusal: Refusal) -> None:
        """Answer ``refusal`` and close: the body that follows is never read."""
        request.error = refusal
        request.completed = True
        request.expect_continue = False
        self._continue_or_queue(request)

    def _check(self, request) -> None:
        try:
            refusal = self.server.cspine_gate.check(request)
        except Exception:  # never leave the connection stalled
            log.exception("the upload gate failed")
            refusal = Refusal(500, PLAIN[500])
        with self.requests_lock:
            held, self._held = self._held or b"", None
            if refusal is not None:
                self._refuse(request, refusal)
                held = b""
            elif (
                request.expect_continue
                and not self.requests
                and not self.sent_continue
                and self.connected
            ):
                self.send_continue()
        if held and self.connected:
            self.received(held)
        self.server.pull_trigger()
