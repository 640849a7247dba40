"""Plain records the store hands to the layers above (no SQLite rows leak out).

Times are seconds since the Unix epoch (UTC); :func:`iso_utc` formats them for people.
Password hashes are deliberately NOT part of :class:`UserRecord`, so a record can be logged,
shown or serialised without leaking a secret.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROLES = ("admin", "radiologist")
USER_STATES = ("pending", "active", "disabled")
JOB_STATES = ("pending", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")


def iso_utc(ts: float | None) -> str:
    """``2024-05-01T12:00:00.123Z`` for an epoch time; ``""`` for None."""
    if ts is None:
        return ""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    full_name: str
    role: str  # "admin" | "radiologist"
    status: str  # "pending" | "active" | "disabled"
    created_at: float
    updated_at: float
    password_changed_at: float
    last_login_at: float | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TokenRecord:
    """An API token's metadata; the token itself is shown once at issue and never stored."""

    id: int
    user_id: int
    user_name: str
    label: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    last_used_at: float | None

    def is_valid(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class StudyRecord:
    """One imported study: metadata plus the folder holding its files (``path``)."""

    id: str
    study_uid: str
    series_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str
    modality: str
    source: str  # "local" | "remote"
    address: str | None  # remote address it came from (None for local imports)
    imported_by: str | None
    received_at: float
    relpath: str
    n_files: int
    size_bytes: int
    path: Path = field(compare=False)

    @property
    def files_dir(self) -> Path:
        """Folder with the study's input files exactly as received."""
        return self.path / "files"

    def files(self) -> list[Path]:
        """The input files, sorted by relative path."""
        return sorted(p for p in self.files_dir.rglob("*") if p.is_file())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["received_at_utc"] = iso_utc(self.received_at)
        return d


@dataclass(frozen=True)
class AnalysisRecord:
    """One analysis job and (when it succeeded) its result JSON."""

    id: str
    study_id: str
    requested_by: str | None
    state: str  # one of JOB_STATES
    progress: int  # 0–100
    stage: str
    error: str | None
    model_sha256: str | None
    backend: str | None
    result: dict[str, Any] | None
    timings: dict[str, Any] | None
    attempts: int
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("created_at", "started_at", "finished_at"):
            d[key + "_utc"] = iso_utc(d[key])
        return d


JobRecord = AnalysisRecord


@dataclass(frozen=True)
class ArtifactRecord:
    """A file derived from a study (mask, heat-map, report, export)."""

    id: int
    study_id: str
    analysis_id: str | None
    kind: str
    name: str
    relpath: str
    size_bytes: int
    sha256: str
    created_at: float
    path: Path = field(compare=False)


@dataclass(frozen=True)
class AuditEvent:
    """One audit-trail entry (DICOM PS3.15 A.5 in spirit)."""

    id: int
    ts: float
    time_utc: str
    action: str
    event_code: str  # DCM code of the event, e.g. "110114" User Authentication
    action_code: str  # C create, R read, U update, D delete, E execute
    outcome: str  # "success" | "failure"
    outcome_code: int  # 0 success, 4 minor failure, 8 serious failure, 12 major failure
    user_name: str | None
    address: str | None
    study_uid: str | None
    patient_id: str | None
    detail: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_user(row: Any) -> UserRecord:
    return UserRecord(
        id=row["id"],
        name=row["name"],
        full_name=row["full_name"],
        role=row["role"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        password_changed_at=row["password_changed_at"],
        last_login_at=row["last_login_at"],
    )


def row_token(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def row_study(row: Any, root: Path) -> StudyRecord:
    keys = row.keys()
    values = {k: row[k] for k in keys if k in StudyRecord.__dataclass_fields__}
    return StudyRecord(**values, path=root / row["relpath"])


def row_analysis(row: Any) -> AnalysisRecord:
    return AnalysisRecord(
        id=row["id"],
        study_id=row["study_id"],
        requested_by=row["requested_by"],
        state=row["state"],
        progress=row["progress"],
        stage=row["stage"],
        error=row["error"],
        model_sha256=row["model_sha256"],
        backend=row["backend"],
        result=_loads(row["result_json"]),
        timings=_loads(row["timings_json"]),
        attempts=row["attempts"],
        cancel_requested=bool(row["cancel_requested"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def row_artifact(row: Any, root: Path) -> ArtifactRecord:
    values = {k: row[k] for k in row.keys() if k in ArtifactRecord.__dataclass_fields__}  # noqa: SIM118
    return ArtifactRecord(**values, path=root / row["relpath"])


def row_audit(row: Any) -> AuditEvent:
    values = {k: row[k] for k in row.keys() if k in AuditEvent.__dataclass_fields__}  # noqa: SIM118
    values["detail"] = _loads(row["detail"])
    return AuditEvent(**values)
