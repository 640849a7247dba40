"""The audit trail, in the spirit of DICOM PS3.15 A.5 (audit trail message format).

Each event records: when (UTC), what (:data:`ACTIONS` key, with its DICOM event ID code and
event action code C/R/U/D/E), outcome (success/failure with the PS3.15 outcome indicator
0/4/8/12), who (user name), from where (source address; ``None`` = this workstation), and which
study/patient. The app can only append: the table refuses UPDATE and DELETE.

Never put secrets (passwords, tokens, hashes) in ``detail``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from typing import Any, TextIO

from ..store import AuditEvent, Store, StudyRecord, UserRecord

log = logging.getLogger(__name__)

# action → (DICOM event ID code, event action code)
# 110100 Application Activity, 110103 DICOM Instances Accessed, 110106 Export, 110107 Import,
# 110113 Security Alert, 110114 User Authentication
ACTIONS: dict[str, tuple[str, str]] = {
    "app_start": ("110100", "E"),
    "app_stop": ("110100", "E"),
    "login": ("110114", "E"),
    "logout": ("110114", "E"),
    "session_locked": ("110114", "E"),
    "session_unlocked": ("110114", "E"),
    "account_locked": ("110113", "E"),
    "signup_requested": ("110113", "C"),
    "user_created": ("110113", "C"),
    "user_changed": ("110113", "U"),
    "password_changed": ("110113", "U"),
    "token_issued": ("110113", "C"),
    "token_revoked": ("110113", "D"),
    "settings_changed": ("110113", "U"),
    "study_imported": ("110107", "C"),
    "study_viewed": ("110103", "R"),
    "study_deleted": ("110103", "D"),
    "analysis_queued": ("110103", "E"),
    "analysis_run": ("110103", "E"),
    "analysis_cancelled": ("110103", "E"),
    "export": ("110106", "R"),
    "report": ("110106", "R"),
    "backup": ("110106", "R"),
    "restore": ("110107", "C"),
}

OUTCOME_CODES = {"success": 0, "failure": 4, "serious_failure": 8, "major_failure": 12}

CSV_COLUMNS = (
    "time_utc",
    "action",
    "outcome",
    "user_name",
    "address",
    "study_uid",
    "patient_id",
    "event_code",
    "action_code",
    "outcome_code",
    "detail",
)


class AuditLog:
    """Append and query audit events. Recording never raises into the caller's operation:
    a failure to write the trail is logged as an error (and the caller's action proceeds)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        action: str,
        *,
        outcome: str = "success",
        user: str | UserRecord | None = None,
        address: str | None = None,
        study: StudyRecord | None = None,
        study_uid: str | None = None,
        patient_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int | None:
        """Append one event; returns its id (None if it could not be written).

        ``address`` is the remote peer's IP address, or None for this workstation.
        ``study`` fills ``study_uid``/``patient_id`` unless they are given explicitly.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if outcome not in OUTCOME_CODES:
            raise ValueError(f"unknown outcome {outcome!r}")
        event_code, action_code = ACTIONS[action]
        user_name = user.name if isinstance(user, UserRecord) else user
        if study is not None:
            study_uid = study_uid or study.study_uid or None
            patient_id = patient_id or study.patient_id or None
        try:
            return self.store.audit.append(
                action=action,
                event_code=event_code,
                action_code=action_code,
                outcome="success" if outcome == "success" else "failure",
                outcome_code=OUTCOME_CODES[outcome],
                user_name=user_name,
                address=address,
                study_uid=study_uid,
                patient_id=patient_id,
                detail=detail,
            )
        except Exception:
            log.exception("could not write audit event %s", action)
            return None

    def query(
        self,
        since: float | None = None,
        until: float | None = None,
        user: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        study_uid: str | None = None,
        patient_id: str | None = None,
        address: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events oldest first; times are epoch seconds (UTC)."""
        return self.store.audit.query(
            since=since,
            until=until,
            user_name=user,
            action=action,
            outcome=outcome,
            study_uid=study_uid,
            patient_id=patient_id,
            address=address,
            limit=limit,
        )


def write_csv(events: Iterable[AuditEvent], out: TextIO) -> int:
    """Write events as CSV (header + one row each); returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for ev in events:
        row = ev.to_dict()
        row["detail"] = "" if ev.detail is None else _compact(ev.detail)
        writer.writerow([_csv_safe("" if row[c] is None else str(row[c])) for c in CSV_COLUMNS])
        n += 1
    return n


def events_csv(events: Iterable[AuditEvent]) -> str:
    buf = io.StringIO()
    write_csv(events, buf)
    return buf.getvalue()


def _compact(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False)


def _csv_safe(text: str) -> str:
    """Defuse spreadsheet formula injection (a user name like ``=HYPERLINK(...)``)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
