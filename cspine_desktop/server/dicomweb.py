"""DICOMweb STOW-RS: ``POST /dicomweb/studies[/{StudyInstanceUID}]`` (DICOM PS3.18 §10.5).

The body is ``multipart/related; type="application/dicom"``, split by
:mod:`.multipart_related` with each instance spooled to the data folder. Each instance is read
(headers only) and either stored into its study's collection (see :mod:`.settle`; the study is
queued for analysis once it has settled) or listed as failed with a PS3.18 failure reason.
Replies (``application/dicom+json`` Store Instances Response):

* 200 — every instance was stored;
* 202 — some were stored, some failed (FailedSOPSequence says which and why);
* 409 — none could be stored;
* 400 — the body is not valid multipart, or holds no instance;
* 415 — not ``multipart/related`` or a ``type`` other than ``application/dicom``.
"""

from __future__ import annotations

from typing import Any

import flask
import pydicom
from pydicom.errors import InvalidDicomError
from werkzeug.http import parse_options_header

from ..errors import QueueFullError, UnsupportedFormatError, UserFacingError, http_status_of
from .auth import api_login_required, api_user, remote_address
from .multipart_related import MalformedMultipartError, check_boundary, iter_parts
from .uploads import new_spool_file

bp = flask.Blueprint("dicomweb", __name__, url_prefix="/dicomweb")

DICOM = "application/dicom"
# PS3.18 Table 10.5.3-2 / PS3.4 failure reasons
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
CT_MODALITIES = {"CT"}


def _state():
    return flask.current_app.extensions["cspine"]


@bp.post("/studies")
@bp.post("/studies/<study_uid>")
@api_login_required
def stow(study_uid: str | None = None):
    user = api_user()
    mimetype, options = parse_options_header(flask.request.headers.get("Content-Type", ""))
    if mimetype != "multipart/related":
        raise UnsupportedFormatError(
            f'STOW-RS needs Content-Type multipart/related; type="{DICOM}".'
        )
    part_type = options.get("type", DICOM).lower()
    if part_type != DICOM:
        raise UnsupportedFormatError(f"Only {DICOM} instances are accepted here, not {part_type}.")
    boundary = check_boundary(options.get("boundary"))
    state = _state()
    sv = state.services
    if sv.jobs.pending_count() >= sv.settings.queue_max:
        raise QueueFullError(
            "The analysis queue is full; please send the study later.",
            retry_after_s=state.config.queue_retry_after_s,
        )
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    n_parts = 0
    address = remote_address()
    stream = flask.request.stream
    for part in iter_parts(stream.read, boundary, lambda: new_spool_file(state.config)):
        n_parts += 1
        with part.file:
            outcome = _store_one(part.headers, part.file, user, address, study_uid)
        (failed if "reason" in outcome else stored).append(outcome)
    if n_parts == 0:
        raise MalformedMultipartError("The request holds no DICOM instances.")
    status = 200 if not failed else (202 if stored else 409)
    body: dict[str, Any] = {}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [_ref(o) for o in stored]}
    if failed:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {**_ref(o), "00081197": {"vr": "US", "Value": [o["reason"]]}} for o in failed
            ],
        }
    response = flask.make_response(flask.json.dumps(body), status)
    response.mimetype = "application/dicom+json"
    return response


def _ref(outcome: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if outcome.get("sop_class"):
        item["00081150"] = {"vr": "UI", "Value": [outcome["sop_class"]]}
    if outcome.get("sop_instance"):
        item["00081155"] = {"vr": "UI", "Value": [outcome["sop_instance"]]}
    return item


def _store_one(headers, fh, user, address, url_study: str | None) -> dict[str, Any]:
    ptype, _ = parse_options_header(headers.get("content-type", DICOM))
    if ptype.lower() != DICOM:
        return {"reason": CANNOT_UNDERSTAND}
    try:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        sop_class = str(ds.get("SOPClassUID", "") or "")
        sop_instance = str(ds.get("SOPInstanceUID", "") or "")
        study = str(ds.get("StudyInstanceUID", "") or "")
        modality = str(ds.get("Modality", "") or "").upper()
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, AttributeError):
        return {"reason": CANNOT_UNDERSTAND}
    ids = {"sop_class": sop_class, "sop_instance": sop_instance}
    if not (sop_class and sop_instance and study):
        return {**ids, "reason": CANNOT_UNDERSTAND}
    if url_study is not None and study != url_study:
        return {**ids, "reason": DOES_NOT_MATCH}
    if modality not in CT_MODALITIES:
        return {**ids, "reason": SOP_CLASS_NOT_SUPPORTED}
    fh.seek(0)
    try:
        _state().collector.add(user, address, study, sop_instance, fh)
    except UserFacingError as err:
        reason = OUT_OF_RESOURCES if http_status_of(err) in (413, 507) else PROCESSING_FAILURE
        return {**ids, "reason": reason}
    return ids
