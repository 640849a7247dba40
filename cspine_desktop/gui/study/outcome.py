"""Read a finished analysis back from the store: verdicts (result JSON) plus the label map and
heat-map artifacts the analysis runner saved, on the source grid of the study's volume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ...analysis.result import AnalysisResult
from ...imaging.volume import Volume

log = logging.getLogger(__name__)

LABEL_NAMES = ("labels", "label", "mask", "vertebrae")
HEATMAP_NAMES = ("heatmap", "fracture_map", "fracture")


def _stem(path: Path) -> str:
    name = path.name.lower()
    for ext in (".nii.gz", ".nii", ".npy", ".npz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return ""


def read_array(path: Path) -> np.ndarray:
    """A [z, y, x] array from ``.npy``/``.npz`` (stored [z, y, x]) or NIfTI (stored [x, y, z],
    as :mod:`cspine_desktop.reports.nifti` writes it)."""
    name = path.name.lower()
    if name.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            return z[z.files[0]]
    import nibabel as nib

    return np.asarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)


def _find(artifacts: list[Any], kinds: tuple[str, ...]) -> Path | None:
    """The first array artifact (.npy/.npz/.nii[.gz]) whose kind or file stem is in ``kinds``."""
    for art in artifacts:
        stem = _stem(Path(art.name))
        if stem and (art.kind in kinds or stem in kinds):
            return Path(art.path)
    return None


def read_outcome(
    services: Any, study_id: str, job: Any, volume: Volume
) -> tuple[AnalysisResult, np.ndarray | None, np.ndarray | None, list[str]]:
    """(result, labels uint8 | None, heat-map float32 | None, warnings) of a succeeded job.
    Arrays that are missing or do not match the volume's shape are left out with a warning."""
    result = AnalysisResult.from_dict(job.result)
    warnings: list[str] = []
    artifacts = services.studies.artifacts(study_id, job.id)
    arrays: dict[str, np.ndarray | None] = {}
    for key, kinds, dtype in (
        ("labels", LABEL_NAMES, np.uint8),
        ("heatmap", HEATMAP_NAMES, np.float32),
    ):
        path = _find(artifacts, kinds)
        arr = None
        if path is not None and path.exists():
            try:
                arr = read_array(path).astype(dtype, copy=False)
            except (OSError, ValueError) as exc:
                log.warning("could not read %s: %s", path, exc)
        if arr is not None and arr.shape != volume.hu.shape:
            warnings.append(
                f"The stored {key} do not match the images ({arr.shape} vs {volume.hu.shape}); "
                "they are not shown."
            )
            arr = None
        elif arr is None:
            warnings.append(f"This analysis has no stored {key}; the overlay is unavailable.")
        arrays[key] = arr
    return result, arrays["labels"], arrays["heatmap"], warnings


def attach_outcome(opened: Any, services: Any, job: Any) -> None:
    """Fill ``opened`` (an OpenStudy) from a succeeded ``job``: verdicts, arrays, warnings and
    which exports it can have. Runs in a worker thread."""
    from ... import reports

    result, labels, heat, warnings = read_outcome(services, opened.study_id, job, opened.volume)
    opened.result, opened.labels, opened.heatmap = result, labels, heat
    opened.job_id = job.id
    opened.warnings.extend(warnings)
    opened.export_formats = reports.available_formats(opened) if labels is not None else {}
