"""What every export shares: the outcome it reads, atomic file writing, DICOM-source checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..analysis.result import AnalysisResult
from ..errors import ExportNotAvailableError
from ..imaging.volume import Volume


class OutcomeLike(Protocol):
    """The attributes of ``cspine_desktop.analysis.pipeline.AnalysisOutcome`` exports read.

    result  : the verdicts (``AnalysisResult``).
    volume  : the analysed series; ``volume.meta["source_files"]`` and
              ``volume.meta["sop_instance_uids"]`` list the DICOM files/instances in slice
              order (absent or empty for NIfTI/PNG input).
    labels  : uint8 [z, y, x] on the source grid, 0 background, 1–7 = C1–C7.
    heatmap : float32 [z, y, x] on the source grid, fracture likelihood in [0, 1] (or None).
    """

    result: AnalysisResult
    volume: Volume
    labels: np.ndarray
    heatmap: np.ndarray | None


def result_of(obj: OutcomeLike | AnalysisResult) -> AnalysisResult:
    """The ``AnalysisResult`` of an outcome, or ``obj`` itself if it is one."""
    return obj if isinstance(obj, AnalysisResult) else obj.result


def check_outcome(outcome: OutcomeLike) -> None:
    """Raise ValueError (a programming error, not a user one) when arrays do not fit the volume."""
    shape = tuple(outcome.volume.hu.shape)
    if tuple(outcome.labels.shape) != shape:
        raise ValueError(f"labels shape {outcome.labels.shape} != volume shape {shape}")
    if outcome.heatmap is not None and tuple(outcome.heatmap.shape) != shape:
        raise ValueError(f"heatmap shape {outcome.heatmap.shape} != volume shape {shape}")


def slice_label_counts(labels: np.ndarray) -> np.ndarray:
    """Voxel count per label value in each slice, int64[slices, 256], for uint8 label maps.

    One histogram per slice (OpenCV's, which never copies the slice; ``np.bincount`` would
    widen each one to int64 first). Gives both which slices hold a label and, summed, how many
    voxels each label has.
    """
    labels = np.asarray(labels)
    planes = labels.reshape(labels.shape[0], -1) if labels.ndim > 1 else labels.reshape(1, -1)
    counts = np.zeros((planes.shape[0], 256), np.int64)
    if planes.dtype == np.uint8 and planes.shape[1] <= 2**24:  # float32 counts stay exact
        import cv2

        for z, plane in enumerate(planes):
            counts[z] = cv2.calcHist([plane[None]], [0], None, [256], [0, 256]).ravel()
    else:
        for z, plane in enumerate(planes):
            counts[z] = np.bincount(plane, minlength=256)[:256]
    return counts


def label_counts(labels: np.ndarray) -> np.ndarray:
    """Voxel count per label value, int64[256], for uint8 label maps of any size.

    Counted slice by slice (:func:`slice_label_counts`): ``np.bincount`` on the whole map
    would first copy it to int64 (8 bytes per voxel, over 600 MB for a 300-slice study).
    """
    return slice_label_counts(labels).sum(axis=0)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    If the body raises, the temporary file is removed and ``path`` is untouched, so a failed
    export never leaves a half-written file. The temporary name keeps the final suffixes
    (``.nii.gz``, ``.png``) for writers that choose the format from the name. Files are
    created readable by the owner only: exports hold patient data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix="-" + path.name, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def dicom_source_files(volume: Volume) -> list[str]:
    """The DICOM files the volume was read from (slice order), or [] for NIfTI/PNG input."""
    meta: dict[str, Any] = volume.meta or {}
    files = list(meta.get("source_files") or [])
    uids = list(meta.get("sop_instance_uids") or [])
    return files if files and uids else []


_KIND_WORDS = {
    "nifti": "a NIfTI volume",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "jpg": "a JPEG image",
    "image": "a PNG/JPEG image",
}


def require_dicom_source(volume: Volume, what: str) -> list[str]:
    """The source DICOM files, or ExportNotAvailableError saying why ``what`` cannot be made."""
    files = dicom_source_files(volume)
    if not files:
        kind = str((volume.meta or {}).get("source_kind") or "").lower()
        kind = _KIND_WORDS.get(kind, "a non-DICOM file")
        raise ExportNotAvailableError(
            f"{what} is only available for studies opened from DICOM files; this study was "
            f"read from {kind}, so there are no DICOM images for it to refer to. "
            "Export the PDF report, key images, NIfTI labels or JSON instead."
        )
    return files


NO_SOP_UIDS = (
    "{what} must refer to the original images by their SOP Class and SOP Instance UIDs, and "
    "some of these images carry none (an anonymiser may have removed them)."
)
NO_FRAME_OF_REFERENCE = (
    "The source images carry no Frame of Reference UID, so a DICOM SEG cannot be placed on them."
)


def unreferenceable_dicom_source(volume: Volume) -> dict[str, str]:
    """{what DICOM export cannot be made: why}, from the identifiers the loader kept: instances
    without a SOP Instance UID can be referred to by nothing; without a Frame of Reference UID
    a segmentation cannot be placed on them (an SR, which refers to the instances only, can
    still be made)."""
    meta: dict[str, Any] = volume.meta or {}
    if not all(str(u or "") for u in meta.get("sop_instance_uids") or [""]):
        return {
            "seg": NO_SOP_UIDS.format(what="DICOM SEG"),
            "fracture_seg": NO_SOP_UIDS.format(what="DICOM SEG"),
            "sr": NO_SOP_UIDS.format(what="DICOM SR"),
        }
    if not meta.get("FrameOfReferenceUID"):
        return {"seg": NO_FRAME_OF_REFERENCE, "fracture_seg": NO_FRAME_OF_REFERENCE}
    return {}


def missing_dicom_source(volume: Volume) -> str | None:
    """Why the source DICOM files can no longer be read (moved, deleted, the zip gone), or
    None when they are all still there. Checks existence only (cheap), not content."""
    meta: dict[str, Any] = volume.meta or {}
    archive = meta.get("source_archive")
    paths = [str(archive)] if archive else list(dict.fromkeys(dicom_source_files(volume)))
    gone = [p for p in paths if not os.path.isfile(p)]
    if not gone:
        return None
    more = f" and {len(gone) - 1} more" if len(gone) > 1 else ""
    return (
        "The original DICOM files of this study are no longer where they were read from "
        f"({Path(gone[0]).name}{more}), so DICOM SEG/SR cannot refer to them. "
        "Open the study again to export these."
    )
