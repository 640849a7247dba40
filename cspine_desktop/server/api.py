"""The JSON API under ``/api/v1`` (paths and status codes are a contract; see openapi.py).

Jobs and studies are visible to their owner (the user who uploaded / queued them) and to
admins only; anyone else gets the same 404 as for an id that does not exist. Every import and
every result fetch is written to the audit trail with the caller's address.
"""

from __future__ import annotations

import logging
from typing import Any

import flask

from .. import DISCLAIMER, __version__
from ..analysis import wording
from ..errors import (
    AuthenticationError,
    ConflictError,
    CspineInputError,
    NotFoundError,
    QueueFullError,
    UnsupportedFormatError,
)
from ..services import WorklistRow
from ..store import AnalysisRecord, StudyRecord, UserRecord, iso_utc
from .auth import api_login_required, api_user, bearer_token, can_see, remote_address, services
from .openapi import openapi_document
from .uploads import UPLOAD_HINT, import_upload

log = logging.getLogger(__name__)

bp = flask.Blueprint("api", __name__, url_prefix="/api/v1")

# result files: URL name → (artifact kind written by the analysis handler, MIME type)
RESULT_FILES: dict[str, tuple[str, str]] = {
    "mask.nii.gz": ("nifti", "application/gzip"),
    "seg.dcm": ("seg", "application/dicom"),
    "report.pdf": ("pdf", "application/pdf"),
}
MAX_LIST = 500


def _state():
    return flask.current_app.extensions["cspine"]


# ---------------------------------------------------------------------- public
@bp.get("/health")
def health():
    """No authentication: is the endpoint up, which model and backend will run."""
    return flask.jsonify(
        {
            "status": "ok",
            "version": __version__,
            "model": model_info(),
            "backend": services().settings.backend,
            "queue": {
                "pending": services().jobs.pending_count(),
                "max": services().settings.queue_max,
            },
            "disclaimer": DISCLAIMER,
        }
    )


def model_info() -> dict[str, Any]:
    """Name/version/sha256 of the configured model bundle (read once), or why it is missing."""
    cache = _state().cache
    if "model" not in cache:
        from ..inference import demo_model_dir, load_bundle

        settings = services().settings
        try:
            bundle = load_bundle(settings.model_dir or demo_model_dir())
            files = bundle.card.get("files", {})
            cache["model"] = {
                "available": True,
                "name": bundle.name,
                "version": bundle.version,
                "sha256": {name: entry.get("sha256") for name, entry in files.items()},
            }
        except CspineInputError as err:
            log.warning("model bundle unusable: %s", err)
            cache["model"] = {
                "available": False,
                "error": "The configured model bundle cannot be used; see the log.",
            }
    return cache["model"]


@bp.get("/openapi.json")
def openapi():
    return flask.jsonify(openapi_document())


# ---------------------------------------------------------------------- tokens
@bp.post("/auth/token")
def issue_token():
    body = flask.request.get_json(silent=True)  # JSON only (form bodies are not accepted)
    if not isinstance(body, dict):
        raise CspineInputError('Send JSON: {"username": "...", "password": "..."}.')
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise CspineInputError('Send JSON: {"username": "...", "password": "..."}.')
    users = services().users
    address = remote_address()
    user = users.authenticate(name, password, address=address)
    given = body.get("label")
    label = given if isinstance(given, str) else "api"
    issued = users.issue_token(user, label=label[:80], address=address)
    return flask.jsonify(
        {
            "token": issued.token,
            "token_type": "Bearer",
            "expires_at": iso_utc(issued.record.expires_at),
        }
    )


@bp.delete("/auth/token")
@api_login_required
def revoke_token():
    """Sign out: revoke the token this request carries."""
    token = bearer_token()
    if token is None:
        raise AuthenticationError("Only a bearer token can be revoked.")
    services().users.logout(api_user(), address=remote_address(), token=token)
    return "", 204


# ---------------------------------------------------------------------- studies
@bp.post("/studies")
@api_login_required
def upload_study():
    job = receive_upload(api_user())
    url = flask.url_for("api.job_status", job_id=job, _external=False)
    response = flask.jsonify({"job_id": job, "status_url": url})
    response.status_code = 202
    response.headers["Location"] = url
    return response


def receive_upload(user: UserRecord) -> str:
    """Import the request's files as a study and queue it; returns the job id."""
    state = _state()
    sv = services()
    address = remote_address()
    if sv.jobs.pending_count() >= sv.settings.queue_max:  # refuse before reading the body
        sv.audit.record(
            "analysis_queued",
            outcome="failure",
            user=user,
            address=address,
            detail={"reason": "queue_full", "status": 503},
        )
        raise QueueFullError(
            f"The analysis queue is full ({sv.settings.queue_max} studies waiting); please "
            "try again later.",
            retry_after_s=state.config.queue_retry_after_s,
        )
    if flask.request.mimetype != "multipart/form-data":
        audit_refused_upload(user, 415, "unsupported_media_type")
        raise UnsupportedFormatError(UPLOAD_HINT)
    files = [f for key in flask.request.files for f in flask.request.files.getlist(key)]
    study = import_upload(sv, state.config, files, user, address)
    try:
        return sv.jobs.enqueue(study.id, user=user, address=address)
    except QueueFullError as err:
        sv.delete_study(study.id, user=user, address=address)  # nothing half-done remains
        err.retry_after_s = state.config.queue_retry_after_s
        raise


def audit_refused_upload(user: UserRecord | str | None, status: int, reason: str) -> None:
    """An upload refused before its files were looked at (size, media type): audited."""
    services().audit.record(
        "study_imported",
        outcome="failure",
        user=user,
        address=remote_address(),
        detail={"reason": reason, "status": status},
    )


@bp.get("/studies")
@api_login_required
def list_studies():
    user = api_user()
    rows: list[WorklistRow] = []
    offset = 0
    while len(rows) < MAX_LIST:
        page = services().studies.worklist(limit=MAX_LIST, offset=offset)
        rows += [r for r in page if can_see(user, r.study.imported_by)]
        if len(page) < MAX_LIST:
            break
        offset += MAX_LIST
    return flask.jsonify({"studies": [study_json(r.study, r.latest_job) for r in rows[:MAX_LIST]]})


def study_json(study: StudyRecord, job: AnalysisRecord | None) -> dict[str, Any]:
    return {
        "study_id": study.id,
        "study_instance_uid": study.study_uid,
        "patient_id": study.patient_id,
        "description": study.description,
        "modality": study.modality,
        "source": study.source,
        "imported_by": study.imported_by,
        "received_at": iso_utc(study.received_at),
        "latest_job": None if job is None else job_json(job),
    }


# ---------------------------------------------------------------------- jobs
def visible_job(job_id: str, user: UserRecord) -> AnalysisRecord:
    """The job if ``user`` may see it; the same NotFoundError otherwise."""
    try:
        job = services().jobs.get(job_id)
    except NotFoundError:
        job = None
    if job is None or not can_see(user, job.requested_by):
        raise NotFoundError(f"No job with id {job_id}.")
    return job


def verdict_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The patient verdict in short: status (assessed/indeterminate), fractured (null when
    indeterminate), its words, probability, threshold and the reasons."""
    return wording.summary(result)


def job_json(job: AnalysisRecord) -> dict[str, Any]:
    out = {
        "job_id": job.id,
        "study_id": job.study_id,
        "state": job.state,
        "progress": int(job.progress),
        "stage": job.stage,
        "error": job.error,
        "created_at": iso_utc(job.created_at),
        "finished_at": iso_utc(job.finished_at) or None,
        "verdict": verdict_summary(job.result),
    }
    if job.state == "succeeded":
        out["result_url"] = flask.url_for("api.job_result", job_id=job.id)
    return out


@bp.get("/jobs/<job_id>")
@api_login_required
def job_status(job_id: str):
    return flask.jsonify(job_json(visible_job(job_id, api_user())))


@bp.delete("/jobs/<job_id>")
@api_login_required
def cancel_job(job_id: str):
    user = api_user()
    visible_job(job_id, user)
    job = services().jobs.cancel(job_id, user=user, address=remote_address())
    response = flask.jsonify(job_json(job))
    response.status_code = 202
    return response


def finished_job(job_id: str, user: UserRecord) -> AnalysisRecord:
    job = visible_job(job_id, user)
    if job.state in ("pending", "running"):
        raise ConflictError(f"The analysis is still {job.state} ({job.progress}%).")
    if job.state != "succeeded" or job.result is None:
        detail = f": {job.error}" if job.error else "."
        raise ConflictError(f"The analysis {job.state} and has no result{detail}")
    return job


@bp.get("/jobs/<job_id>/result")
@api_login_required
def job_result(job_id: str):
    user = api_user()
    job = finished_job(job_id, user)
    sv = services()
    study = sv.studies.get(job.study_id)
    sv.studies.record_export(
        study, user=user, address=remote_address(), detail={"job_id": job.id, "format": "json"}
    )
    return flask.jsonify(job.result)


def job_result_file(job_id: str, name: str):
    """``/jobs/<id>/result/<name>`` for each name in :data:`RESULT_FILES`."""
    user = api_user()
    job = finished_job(job_id, user)
    kind, mimetype = RESULT_FILES[name]
    return send_artifact(job, kind, mimetype, name, user)


for _name in RESULT_FILES:
    bp.add_url_rule(
        f"/jobs/<job_id>/result/{_name}",
        endpoint=f"job_result_{_name.split('.')[0]}",
        view_func=api_login_required(job_result_file),
        methods=["GET"],
        defaults={"name": _name},
    )


def send_artifact(job: AnalysisRecord, kind: str, mimetype: str, name: str, user: UserRecord):
    """Send the job's artifact of ``kind`` (audited), or a plain 404 when it does not exist."""
    sv = services()
    study = sv.studies.get(job.study_id)
    found = [a for a in sv.studies.artifacts(study.id, job.id) if a.kind == kind]
    if not found or not found[0].path.is_file():
        raise NotFoundError(f"This analysis has no {name} (not produced for this study).")
    artifact = found[0]
    sv.studies.record_export(
        study,
        user=user,
        address=remote_address(),
        kind="report" if kind == "pdf" else "export",
        detail={"job_id": job.id, "format": kind, "file": artifact.name},
    )
    return flask.send_file(
        artifact.path,
        mimetype=mimetype,
        as_attachment=True,
        download_name=f"cspine_{job.id}_{name}",
        max_age=0,
        etag=artifact.sha256,
    )
