"""Copy an opened input into the store as a study (the files exactly as they were read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...imaging._control import Control
from ...imaging.archive import extract_zip_safely
from ...imaging.volume import Volume

_META = {
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "patient_id": "PatientID",
    "patient_name": "PatientName",
    "study_date": "StudyDate",
    "modality": "Modality",
}


def study_meta(volume: Volume) -> dict[str, str]:
    """Study fields for the store from the loaded volume's metadata."""
    meta = {k: str(volume.meta.get(tag) or "") for k, tag in _META.items()}
    meta["description"] = str(
        volume.meta.get("StudyDescription") or volume.meta.get("SeriesDescription") or ""
    )
    return {k: v for k, v in meta.items() if v}


def store_study(services: Any, path: Path, volume: Volume, user: Any, cancel=None) -> Any:
    """Import what ``volume`` was read from: the DICOM files of its series, the NIfTI/PNG file,
    or the unpacked zip. Returns the StudyRecord. The store publishes the study atomically."""
    meta = study_meta(volume)
    archive = volume.meta.get("source_archive")
    if archive:
        with extract_zip_safely(Path(archive), Control(None, cancel)) as (folder, _m, _d):
            return services.studies.import_paths(folder, user=user, **meta)
    files = [Path(f) for f in volume.meta.get("source_files") or () if Path(f).is_file()]
    if files:
        return services.studies.import_paths(list(dict.fromkeys(files)), user=user, **meta)
    return services.studies.import_paths(path, user=user, **meta)


def find_same_series(services: Any, volume: Volume) -> Any:
    """The stored study holding the series ``volume`` was read from (same StudyInstanceUID
    and SeriesInstanceUID, files still present), or None. Opening a series again reuses its
    study and adds an analysis to it instead of adding another worklist row."""
    study_uid = str(volume.meta.get("StudyInstanceUID") or "")
    series_uid = str(volume.meta.get("SeriesInstanceUID") or "")
    if not study_uid or not series_uid:
        return None
    for study in services.studies.find(study_uid=study_uid, limit=50):
        if study.series_uid == series_uid and Path(study.files_dir).is_dir():
            return study
    return None
