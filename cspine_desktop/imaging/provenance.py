"""Meta for inputs that carry no DICOM header (NIfTI, PNG/JPEG): stable UIDs and blanks."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

BLANK_KEYS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyDescription",
    "Manufacturer",
    "SliceThickness",
    "WindowCenter",
    "WindowWidth",
)


def file_digest(path: Path, limit: int = 8 * 1024 * 1024) -> str:
    """SHA-256 of the file's first ``limit`` bytes plus its size (cheap and stable)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(limit))
    h.update(str(path.stat().st_size).encode())
    return h.hexdigest()


def headerless_meta(
    file: Path, source_path: Path, archive: Path | None, kind: str, modality: str
) -> dict[str, Any]:
    """Meta for a file without DICOM header; UIDs derive from its content, so loading the
    same file twice gives the same StudyInstanceUID/SeriesInstanceUID."""
    digest = file_digest(file)
    meta: dict[str, Any] = dict.fromkeys(BLANK_KEYS)
    meta.update(
        StudyInstanceUID=generate_uid(entropy_srcs=["study", digest]),
        SeriesInstanceUID=generate_uid(entropy_srcs=["series", digest]),
        StudyDescription=None,
        SeriesDescription=file.name if archive is None else source_path.name,
        Modality=modality,
        source_kind=kind,
        source_path=str(source_path),
        source_archive=str(archive) if archive else None,
        source_sha256_head=digest,
    )
    return meta
