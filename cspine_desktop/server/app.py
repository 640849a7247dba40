"""``create_app(config, services)``: the Flask app of the HTTP endpoint (flaskr-style factory).

Blueprints: ``api`` (JSON under ``/api/v1``), ``dicomweb`` (STOW-RS under ``/dicomweb``) and
``web`` (server-rendered pages). Errors the user caused become their ``http_status`` with the
plain message (JSON for the API and DICOMweb, a page for the web); anything else is logged and
answered with a 500 that tells nothing about the inside.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import AccountLockedError, QueueFullError, UserFacingError, http_status_of
from ..imaging.loader import set_max_voxels
from ..services import Services
from ..settings import Settings
from .config import ServerConfig
from .gate import SMALL_BODY_MAX, SMALL_BODY_WORDS, is_upload
from .settle import StudyCollector
from .uploads import UploadRequest

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


@dataclass
class EndpointState:
    """What the views share: the services façade, the config, the STOW-RS collector."""

    services: Services
    config: ServerConfig
    collector: StudyCollector
    cache: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Publish studies still collecting (STOW-RS) and stop the collector's thread."""
        self.collector.close()


def create_app(
    config: ServerConfig | Settings | None, services: Services, **overrides: Any
) -> flask.Flask:
    """Build the app. ``config``: a ServerConfig, or Settings (→ ``ServerConfig.from_settings``
    with ``overrides``), or None (the services' settings)."""
    if config is None:
        config = services.settings
    if isinstance(config, Settings):
        config = ServerConfig.from_settings(config, **overrides)
    elif overrides:
        config = config.replace(**overrides)
    config.upload_tmp_dir.mkdir(parents=True, exist_ok=True)
    set_max_voxels(config.settings.max_image_voxels)

    app = flask.Flask(__name__)
    app.request_class = UploadRequest
    app.config.update(
        SECRET_KEY=config.secret_key or secrets.token_bytes(32),
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        MAX_FORM_PARTS=config.max_upload_files + 16,
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        SESSION_COOKIE_NAME="cspine_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.tls,
        PERMANENT_SESSION_LIFETIME=int(config.settings.token_ttl_hours * 3600),
        JSON_SORT_KEYS=False,
    )
    state = EndpointState(services, config, StudyCollector(services, config))
    app.extensions["cspine"] = state

    from . import api, dicomweb, web

    app.register_blueprint(api.bp)
    app.register_blueprint(dicomweb.bp)
    app.register_blueprint(web.bp)
    _register_errors(app)

    @app.before_request
    def _small_bodies():
        """Only uploads may send large bodies (waitress refuses them earlier, from the headers;
        this covers any other WSGI server)."""
        length = flask.request.content_length or 0
        if length > SMALL_BODY_MAX and not is_upload(flask.request.method, flask.request.path):
            raise RequestEntityTooLarge()

    @app.after_request
    def _headers(response: flask.Response) -> flask.Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if config.tls:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return app


def wants_json() -> bool:
    if flask.request.path.startswith(("/api/", "/dicomweb/")):
        return True
    return flask.request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    if wants_json():
        response = flask.jsonify({"error": message, "status": status})
    else:
        response = flask.make_response(
            flask.render_template("error.html", status=status, message=message)
        )
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _register_errors(app: flask.Flask) -> None:
    @app.errorhandler(UserFacingError)
    def _user_facing_error(err: UserFacingError):
        headers = {}
        status = http_status_of(err)
        if isinstance(err, (AccountLockedError, QueueFullError)):
            headers["Retry-After"] = str(max(1, math.ceil(err.retry_after_s)))
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="cspine"'
        return error_response(status, str(err), headers)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(err: RequestEntityTooLarge):
        cfg: ServerConfig = app.extensions["cspine"].config
        if not is_upload(flask.request.method, flask.request.path):
            return error_response(413, SMALL_BODY_WORDS)
        from .api import audit_refused_upload

        audit_refused_upload(flask.g.get("user"), 413, "too_large")
        return error_response(
            413,
            f"The upload is larger than the limit of {cfg.max_upload_bytes / 2**20:.1f} MiB "
            f"or has more than {cfg.max_upload_files} files.",
        )

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        headers = {}
        if err.code == 405 and err.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        return error_response(err.code or 500, err.description or err.name, headers)

    @app.errorhandler(Exception)
    def _internal(err: Exception):
        log.exception("internal error in %s %s", flask.request.method, flask.request.path)
        return error_response(500, "Internal error (a bug, not your request); see the log.")
