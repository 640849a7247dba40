"""Server-rendered web pages: sign-in, sign-up request, upload with progress, jobs, results.

No build step: Jinja templates and one small script in the package. Every form carries the
session's CSRF token; pages need a signed-in session (see :mod:`.auth`). A result page shows
the verdict table, the key images and "not for diagnostic use".
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import flask

from .. import DISCLAIMER
from ..analysis import wording
from ..analysis.result import SCHEMA
from ..errors import (
    AccountLockedError,
    AuthenticationError,
    NotFoundError,
    UserFacingError,
    http_status_of,
)
from ..vertebrae import NAMES
from .api import RESULT_FILES, finished_job, job_json, receive_upload, send_artifact, visible_job
from .auth import (
    check_csrf,
    csrf_token,
    remote_address,
    services,
    session_token,
    session_user,
    start_session,
    web_login_required,
)

bp = flask.Blueprint("web", __name__)


@bp.app_context_processor
def _template_globals():
    return {
        "csrf_token": csrf_token,
        "disclaimer": DISCLAIMER,
        "current_user": flask.g.get("user"),
    }


@bp.before_request
def _csrf():
    if flask.request.method == "POST":
        check_csrf()


def _safe_next(target: str | None) -> str:
    parts = urlsplit(target or "")
    if target and not parts.scheme and not parts.netloc and target.startswith("/"):
        return target
    return flask.url_for("web.jobs")


@bp.get("/")
def index():
    return flask.redirect(flask.url_for("web.jobs" if session_user() else "web.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if flask.request.method == "POST":
        form = flask.request.form
        try:
            user = services().users.authenticate(
                form.get("username", ""), form.get("password", ""), address=remote_address()
            )
        except AuthenticationError as err:  # includes the lock (429)
            error, status = str(err), err.http_status
        else:
            start_session(user)
            return flask.redirect(_safe_next(flask.request.args.get("next")))
    return flask.render_template("login.html", error=error), status


@bp.post("/logout")
def logout():
    user = session_user()
    if user is not None:  # revokes the session's token: a copied cookie stops working too
        services().users.logout(user, address=remote_address(), token=session_token())
    flask.session.clear()
    return flask.redirect(flask.url_for("web.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    error, done, status, headers = None, False, 200, {}
    if flask.request.method == "POST":
        form = flask.request.form
        if form.get("password", "") != form.get("password2", ""):
            error, status = "The two passwords differ.", 400
        else:
            try:
                services().users.sign_up(
                    form.get("username", ""),
                    form.get("password", ""),
                    full_name=form.get("full_name", "")[:200],
                    address=remote_address(),
                )
                done = True  # also for a taken name: the answer never tells which exist
            except AccountLockedError as err:  # too many requests from this address
                error, status = str(err), err.http_status
                headers["Retry-After"] = str(max(1, math.ceil(err.retry_after_s)))
            except UserFacingError as err:
                error, status = str(err), http_status_of(err)
    return flask.render_template("signup.html", error=error, done=done), status, headers


@bp.get("/upload")
@web_login_required
def upload_form():
    return flask.render_template("upload.html")


@bp.post("/upload")
@web_login_required
def upload():
    job_id = receive_upload(flask.g.user)
    url = flask.url_for("web.job", job_id=job_id)
    if flask.request.accept_mimetypes.best == "application/json":
        response = flask.jsonify({"job_id": job_id, "url": url})
        response.status_code = 202
        return response
    return flask.redirect(url, code=303)


@bp.get("/jobs")
@web_login_required
def jobs():
    user = flask.g.user
    rows = [
        job_json(j)
        for j in services().jobs.list(limit=500)
        if user.is_admin or j.requested_by == user.name
    ][:200]
    return flask.render_template("jobs.html", jobs=rows)


@bp.get("/jobs/<job_id>")
@web_login_required
def job(job_id: str):
    user = flask.g.user
    record = visible_job(job_id, user)
    sv = services()
    study = sv.studies.get(record.study_id)
    images, files = [], []
    if record.state == "succeeded":
        sv.studies.view(study.id, user=user, address=remote_address())
        artifacts = sv.studies.artifacts(study.id, record.id)
        images = sorted(a.name for a in artifacts if a.kind == "png")
        kinds = {a.kind for a in artifacts}
        files = [name for name, (kind, _) in RESULT_FILES.items() if kind in kinds]
    result = record.result or {}
    vertebrae = {v.get("name"): v for v in result.get("vertebrae") or []}
    return flask.render_template(
        "job.html",
        job=job_json(record),
        study=study,
        result=result,
        rows=[vertebrae.get(name, {"name": name}) for name in NAMES],
        images=images,
        files=files,
        words=wording,
        schema=SCHEMA,
        reasons=wording.reason_lines(result) if result.get("patient_overall") else [],
    )


@bp.get("/jobs/<job_id>/images/<name>")
@web_login_required
def job_image(job_id: str, name: str):
    user = flask.g.user
    record = finished_job(job_id, user)
    sv = services()
    for a in sv.studies.artifacts(record.study_id, record.id):
        if a.kind == "png" and a.name == name and a.path.is_file():
            return flask.send_file(a.path, mimetype="image/png", max_age=0)
    raise NotFoundError(f"This analysis has no image {name}.")


@bp.get("/jobs/<job_id>/files/<name>")
@web_login_required
def job_file(job_id: str, name: str):
    if name not in RESULT_FILES:
        raise NotFoundError(f"No result file '{name}'.")
    user = flask.g.user
    record = finished_job(job_id, user)
    kind, mimetype = RESULT_FILES[name]
    return send_artifact(record, kind, mimetype, name, user)


@bp.post("/jobs/<job_id>/cancel")
@web_login_required
def cancel(job_id: str):
    user = flask.g.user
    visible_job(job_id, user)
    services().jobs.cancel(job_id, user=user, address=remote_address())
    return flask.redirect(flask.url_for("web.job", job_id=job_id), code=303)
