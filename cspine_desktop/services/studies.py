"""Importing, finding, viewing and deleting studies, and attaching their derived files.

An import copies (streams) the input files into the data folder; the study appears in lists only
once ALL its files are safely on disk (see :class:`cspine_desktop.store.StudyStaging`). The
files are kept exactly as received — the original images are never altered; masks, heat-maps
and reports are separate artifacts under the study's ``results/`` folder.

Permission checks belong to the caller (front ends decide who may delete); every operation here
is written to the audit trail with the user and source address it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import StudyNotFoundError
from ..settings import Settings
from ..store import (
    STUDY_FIELDS,
    AnalysisRecord,
    ArtifactRecord,
    Store,
    StudyRecord,
    StudyStaging,
    UserRecord,
)
from .audit import AuditLog

if TYPE_CHECKING:
    from _typeshed import SupportsRead

log = logging.getLogger(__name__)

_DICOM_KEYS = {
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "patient_id": "PatientID",
    "patient_name": "PatientName",
    "study_date": "StudyDate",
    "description": "StudyDescription",
    "modality": "Modality",
}


def _user_name(user: str | UserRecord | None) -> str | None:
    return user.name if isinstance(user, UserRecord) else user


def read_dicom_meta(files: Sequence[Path]) -> dict[str, str]:
    """Study fields from the header of the first readable DICOM file among ``files``
    (pixels are not read). Empty dict when none is DICOM."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:  # pragma: no cover
        return {}
    for path in files[:50]:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
            continue
        meta = {k: str(ds.get(tag, "") or "") for k, tag in _DICOM_KEYS.items()}
        if not meta["description"]:
            meta["description"] = str(ds.get("SeriesDescription", "") or "")
        return meta
    return {}


@dataclass(frozen=True)
class WorklistRow:
    study: StudyRecord
    latest_job: AnalysisRecord | None  # newest analysis of the study, any state


class StudyImport:
    """One import in progress. ``add``/``add_path`` files, then ``commit(**meta)``.

    Use as a context manager; leaving without commit (or with an exception) discards all
    files written so far and records a failed import in the audit trail.
    """

    def __init__(
        self,
        service: StudyService,
        staging: StudyStaging,
        user: str | None,
        source: str,
        address: str | None,
    ) -> None:
        self.service = service
        self.staging = staging
        self.user = user
        self.source = source
        self.address = address
        self.record: StudyRecord | None = None

    @property
    def n_files(self) -> int:
        return self.staging.n_files

    @property
    def size_bytes(self) -> int:
        return self.staging.size_bytes

    def add(self, name: str, data: bytes | SupportsRead[bytes]) -> Path:
        """Store one file (``name`` is a relative path; it is sanitised)."""
        return self.staging.add(name, data)

    def add_path(self, src: Path | str, name: str | None = None) -> Path:
        return self.staging.add_path(Path(src), name)

    def commit(self, **meta: Any) -> StudyRecord:
        """Publish the study. ``meta`` keys: study_uid, series_uid, patient_id, patient_name,
        study_date, description, modality; missing ones are read from a DICOM header."""
        meta = {k: v for k, v in meta.items() if v not in (None, "")}
        if set(STUDY_FIELDS) - set(meta):
            files = sorted(p for p in (self.staging.dir / "files").rglob("*") if p.is_file())
            for key, value in read_dicom_meta(files).items():
                meta.setdefault(key, value)
        self.record = self.staging.commit(self.user, self.source, self.address, **meta)
        self.service.audit.record(
            "study_imported",
            user=self.user,
            address=self.address,
            study=self.record,
            detail={
                "study_id": self.record.id,
                "source": self.source,
                "files": self.record.n_files,
                "bytes": self.record.size_bytes,
            },
        )
        return self.record

    def __enter__(self) -> StudyImport:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.record is None:
            self.staging.abort()
            self.service.audit.record(
                "study_imported",
                outcome="failure",
                user=self.user,
                address=self.address,
                detail={"source": self.source, "error": str(exc) if exc else "not completed"},
            )


class StudyService:
    def __init__(self, store: Store, audit: AuditLog, settings: Settings) -> None:
        self.store = store
        self.audit = audit
        self.settings = settings

    # ------------------------------------------------------------------ import
    def begin_import(
        self,
        *,
        user: str | UserRecord | None = None,
        source: str = "local",
        address: str | None = None,
        max_files: int | None = None,
        max_bytes: int | None = None,
    ) -> StudyImport:
        """Start an import (for streamed uploads). ``source`` is "local" or "remote";
        ``address`` the uploader's IP address for remote imports."""
        if source not in ("local", "remote"):
            raise ValueError(f"source must be 'local' or 'remote', not {source!r}")
        staging = self.store.studies.stage(max_files=max_files, max_bytes=max_bytes)
        return StudyImport(self, staging, _user_name(user), source, address)

    def import_paths(
        self,
        paths: Sequence[Path | str] | Path | str,
        *,
        user: str | UserRecord | None = None,
        source: str = "local",
        address: str | None = None,
        **meta: Any,
    ) -> StudyRecord:
        """Copy files and/or folders (recursively, keeping relative names) as one study."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        sources: list[tuple[Path, str]] = []
        for raw in paths:
            path = Path(raw).expanduser()
            if path.is_dir():
                for f in sorted(path.rglob("*")):
                    if f.is_file() and not f.name.startswith("."):
                        sources.append((f, f.relative_to(path).as_posix()))
            elif path.is_file():
                sources.append((path, path.name))
            else:
                raise StudyNotFoundError(f"{path} does not exist.")
        if not sources:
            raise StudyNotFoundError("The folder holds no files.")
        with self.begin_import(user=user, source=source, address=address) as imp:
            for src, name in sources:
                imp.add_path(src, name)
            return imp.commit(**meta)

    # ------------------------------------------------------------------ queries
    def get(self, study_id: str) -> StudyRecord:
        """The study (NotFoundError if it does not exist). Not audited: see :meth:`view`."""
        return self.store.studies.get(study_id)

    def view(
        self, study_id: str, *, user: str | UserRecord | None, address: str | None = None
    ) -> StudyRecord:
        """Get a study for display and record that ``user`` viewed it."""
        study = self.store.studies.get(study_id)
        self.audit.record(
            "study_viewed",
            user=_user_name(user),
            address=address,
            study=study,
            detail={"study_id": study.id},
        )
        return study

    def find(
        self,
        text: str | None = None,
        *,
        study_uid: str | None = None,
        patient_id: str | None = None,
        source: str | None = None,
        since: float | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[StudyRecord]:
        """Newest first; ``text`` is a substring of patient id/name, description or UID."""
        return self.store.studies.find(
            text,
            study_uid=study_uid,
            patient_id=patient_id,
            source=source,
            since=since,
            limit=limit,
            offset=offset,
        )

    def worklist(
        self,
        text: str | None = None,
        *,
        source: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[WorklistRow]:
        """Studies newest first, each with its newest analysis (or None): the GUI worklist
        and the HTTP study list. Not audited (no images are shown)."""
        studies = self.find(text, source=source, limit=limit, offset=offset)
        jobs = self.store.studies.latest_jobs([s.id for s in studies])
        return [WorklistRow(s, jobs.get(s.id)) for s in studies]

    def update(self, study_id: str, **meta: Any) -> StudyRecord:
        return self.store.studies.update(study_id, **meta)

    # ------------------------------------------------------------------ delete
    def delete(
        self, study_id: str, *, user: str | UserRecord | None, address: str | None = None
    ) -> StudyRecord:
        """Delete the study's rows (analyses, artifacts) and files. Cancel its jobs first
        (``Services.delete_study`` does both)."""
        study = self.store.studies.delete(study_id)
        self.audit.record(
            "study_deleted",
            user=_user_name(user),
            address=address,
            study=study,
            detail={"study_id": study.id},
        )
        return study

    # ------------------------------------------------------------------ artifacts
    @contextmanager
    def artifact_path(
        self, study_id: str, name: str, kind: str, analysis_id: str | None = None
    ) -> Iterator[Path]:
        """Yield a temporary path; write the file there; it is published atomically on exit."""
        with self.store.studies.artifact_path(study_id, name, kind, analysis_id) as tmp:
            yield tmp

    def attach(
        self,
        study_id: str,
        name: str,
        kind: str,
        data: bytes | BinaryIO,
        analysis_id: str | None = None,
    ) -> ArtifactRecord:
        """Store a derived file (mask, heat-map, report, export) atomically."""
        return self.store.studies.write_artifact(study_id, name, kind, data, analysis_id)

    def artifacts(self, study_id: str, analysis_id: str | None = None) -> list[ArtifactRecord]:
        return self.store.studies.artifacts(study_id, analysis_id)

    def record_export(
        self,
        study: StudyRecord,
        *,
        user: str | UserRecord | None,
        address: str | None = None,
        kind: str = "export",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Audit an export or report (``kind`` "export" or "report") of a study's data."""
        self.audit.record(
            kind,
            user=_user_name(user),
            address=address,
            study=study,
            detail={"study_id": study.id, **(detail or {})},
        )
