"""Who is calling: bearer tokens (and HTTP Basic) for the API, sessions + CSRF for web pages.

Every API route except health and the OpenAPI document needs ``Authorization: Bearer <token>``
(a token from ``POST /api/v1/auth/token``); STOW-RS senders such as a PACS may use HTTP Basic
instead, which goes through the same sign-in checks and lockout. An upload's credentials are
checked from its headers before its body is read (see :mod:`.gate`, which hands the checked user
to the app in the WSGI environ). Web pages keep a session token in Flask's signed session cookie
(HttpOnly, SameSite=Strict, Secure under TLS): a server-side token like an API token, so signing
out, a password reset or disabling the user ends the session even for a copied cookie. Every
form is protected with a per-session CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import flask

from ..errors import AuthenticationError, CspineInputError
from ..store import UserRecord
from .gate import USER_KEY

F = TypeVar("F", bound=Callable[..., Any])

NO_CREDENTIALS = (
    "Sign in first: send 'Authorization: Bearer <token>' with a token from POST /api/v1/auth/token."
)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TOKEN = "tok"  # the session cookie's server-side token (revocable)


class CsrfError(CspineInputError):
    """A form without the session's CSRF token (stale page or a forged request)."""

    http_status = 400


def services():
    return flask.current_app.extensions["cspine"].services


def remote_address() -> str | None:
    return flask.request.remote_addr


def bearer_token() -> str | None:
    kind, _, value = flask.request.headers.get("Authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" and value.strip() else None


def api_user() -> UserRecord:
    """The caller of an API request (401 :class:`AuthenticationError` otherwise)."""
    user = flask.g.get("user")
    if user is not None:
        return user
    checked = flask.request.environ.get(USER_KEY)  # the gate checked the headers already
    if checked is not None:
        user = services().store.accounts.get_user_by_id(int(checked))
        if user is None or not user.is_active:
            raise AuthenticationError(NO_CREDENTIALS)
        flask.g.user = user
        return user
    header = flask.request.headers.get("Authorization", "")
    kind, _, value = header.partition(" ")
    users = services().users
    if kind.lower() == "bearer" and value.strip():
        user = users.verify_token(value.strip(), address=remote_address())
    elif kind.lower() == "basic" and value.strip():
        try:
            name, sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthenticationError(NO_CREDENTIALS) from None
        if not sep:
            raise AuthenticationError(NO_CREDENTIALS)
        user = users.authenticate(name, password, address=remote_address(), audit_success=False)
    else:
        raise AuthenticationError(NO_CREDENTIALS)
    flask.g.user = user
    return user


def api_login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        api_user()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def can_see(user: UserRecord, owner: str | None) -> bool:
    """Only the owner of a job/study, or an admin, may see it."""
    return user.is_admin or (owner is not None and owner == user.name)


# ---------------------------------------------------------------------- web sessions
def csrf_token() -> str:
    token = flask.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        flask.session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing web request without the session's CSRF token."""
    sent = flask.request.headers.get(CSRF_HEADER) or flask.request.form.get(CSRF_FIELD, "")
    expected = flask.session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfError("This form has expired or did not come from cspine; reload the page.")


def start_session(user: UserRecord) -> None:
    """Sign the browser in: a new server-side session token in the (signed) cookie."""
    issued = services().users.issue_token(user, label="web session", address=remote_address())
    flask.session.clear()
    flask.session[SESSION_TOKEN] = issued.token
    flask.session["seen"] = time.time()
    flask.session["csrf"] = secrets.token_urlsafe(32)


def session_user_from(session: Any, address: str | None = None) -> UserRecord | None:
    """The active user of a session whose token is still valid and which has not been idle
    for longer than the configured time (None otherwise). Needs an app context."""
    token = session.get(SESSION_TOKEN)
    if not token:
        return None
    cfg = flask.current_app.extensions["cspine"].config
    if time.time() - float(session.get("seen", 0)) > cfg.session_idle_s:
        return None
    try:
        return services().users.verify_token(str(token), address=address)
    except AuthenticationError:  # signed out, password reset, user disabled, expired
        return None


def session_token() -> str | None:
    token = flask.session.get(SESSION_TOKEN)
    return str(token) if token else None


def session_user() -> UserRecord | None:
    """The signed-in, still active user of this browser session (None when signed out, when
    the session's token was revoked, or idle for longer than the configured idle time)."""
    if not flask.session.get(SESSION_TOKEN):
        return None
    user = session_user_from(flask.session, remote_address())
    if user is None:
        flask.session.clear()
        return None
    flask.session["seen"] = time.time()
    return user


def web_login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = session_user()
        if user is None:
            return flask.redirect(flask.url_for("web.login", next=flask.request.path))
        flask.g.user = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
