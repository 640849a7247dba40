"""What the DICOM SEG and SR exports share: source headers, equipment, algorithm identity."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes

from .. import __version__
from ..analysis.result import AnalysisResult
from ..errors import ExportNotAvailableError
from ..imaging import source_datasets
from ..imaging.volume import Volume
from ._common import NO_FRAME_OF_REFERENCE, NO_SOP_UIDS, require_dicom_source

MANUFACTURER = "cspine"
# Series numbers of the derived objects, high so they sort after the scanner's series.
SEG_SERIES_NUMBER = 9701
FRACTURE_SEG_SERIES_NUMBER = 9702
SR_SERIES_NUMBER = 9703
# ContentQualification: the model is decision support, not a cleared product.
CONTENT_QUALIFICATION = "RESEARCH"


def _memoize_iod_lookups() -> None:
    """Remember highdicom's answers to "is attribute X part of the IOD of SOP class Y?".

    highdicom asks it once or twice for every source image it references
    (``is_multiframe_image``, ``does_iod_have_pixel_data``), and every answer walks all
    attributes of all modules of that IOD (about a millisecond each): for a SEG over a 400-slice
    series that is most of a second, asked again for each SEG. The answer depends only on the
    question (the standard tables do not change while running), so it is cached.
    """
    from highdicom import _standard_utils as standard

    lookup = getattr(standard, "is_attribute_in_iod", None)
    if lookup is None or getattr(lookup, "cspine_memoized", False):
        return

    @functools.lru_cache(maxsize=4096)
    def cached(attribute: str, sop_class_uid: str, exclude: tuple[str, ...] | None) -> bool:
        return lookup(attribute, sop_class_uid, None if exclude is None else list(exclude))

    @functools.wraps(lookup)
    def is_attribute_in_iod(
        attribute: str, sop_class_uid: str, exclude_path_elements: Sequence[str] | None = None
    ) -> bool:
        exclude = None if exclude_path_elements is None else tuple(exclude_path_elements)
        return cached(str(attribute), str(sop_class_uid), exclude)

    # a marker on the replacement, so it is not wrapped twice (functions take attributes; their
    # type does not declare them)
    is_attribute_in_iod.cspine_memoized = True  # type: ignore[attr-defined]
    standard.is_attribute_in_iod = is_attribute_in_iod


_memoize_iod_lookups()


def load_standard_tables() -> None:
    """Load highdicom's tables of the standard now (about half a second, once per process).

    highdicom reads them on first use, through caches that do not lock: two SEGs built at once
    in two threads would each parse them. Call this before starting such threads.
    """
    from highdicom import _standard_utils as standard

    for name in ("get_sop_class_iod_map", "get_iod_module_map", "get_module_attribute_map"):
        loader = getattr(standard, name, None)
        if loader is not None:
            loader()


# Patient/study attributes derived objects must carry (Type 2: present, may be empty).
_TYPE2_IDENTIFIERS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


class Equipment(TypedDict):
    """Keyword arguments of highdicom's SOP classes naming the equipment."""

    manufacturer: str
    manufacturer_model_name: str
    software_versions: str
    device_serial_number: str


def equipment_kwargs() -> Equipment:
    """Enhanced General Equipment attributes of the objects cspine creates."""
    return {
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": "cspine",
        "software_versions": __version__,
        "device_serial_number": "0",
    }


def algorithm_identification(result: AnalysisResult) -> hd.AlgorithmIdentificationSequence:
    """AlgorithmIdentificationSequence naming the model (family Artificial Intelligence)."""
    return hd.AlgorithmIdentificationSequence(
        name=result.model.name,
        version=result.model.version,
        family=codes.cid7162.ArtificialIntelligence,
        source=MANUFACTURER,
        parameters={"sha256": result.model.sha256, "backend": result.backend},
    )


def read_source_headers(volume: Volume, what: str) -> list[Dataset]:
    """Headers (no pixel data) of the source CT instances, one per file, in slice order.

    Read through :func:`cspine_desktop.imaging.source_datasets` (plain files or members of the
    zip the study came in). Raises ExportNotAvailableError when the study is not from DICOM,
    when a source file has gone (moved, deleted, an unpacked copy cleaned up) or no longer
    holds the instance that was analysed.
    """
    require_dicom_source(volume, what)
    try:
        headers = source_datasets(volume, stop_before_pixels=True)
    except (OSError, KeyError, zipfile.BadZipFile, InvalidDicomError) as exc:
        where = getattr(exc, "filename", None) or (exc.args[0] if exc.args else "")
        raise ExportNotAvailableError(
            f"{what} needs the original DICOM files, but they can no longer be read "
            f"({Path(str(where)).name or 'file missing'}). Open the study again from its "
            "DICOM files and export once more."
        ) from exc
    if any(not str(h.get(k, "") or "") for h in headers for k in ("SOPClassUID", "SOPInstanceUID")):
        raise ExportNotAvailableError(NO_SOP_UIDS.format(what=what))
    found = {str(h.get("SOPInstanceUID", "")) for h in headers}
    uids = dict.fromkeys(str(u) for u in volume.meta["sop_instance_uids"])
    missing = [u for u in uids if u not in found]
    if missing:
        raise ExportNotAvailableError(
            f"{what} needs the original DICOM files, but {len(missing)} of the analysed images "
            "are no longer in them. Open the study again and export once more."
        )
    for ds in headers:
        for keyword in _TYPE2_IDENTIFIERS:  # anonymised series often drop these
            if keyword not in ds:
                setattr(ds, keyword, "")
    return headers


def hd_volume(
    volume: Volume, array: np.ndarray, frame_of_reference_uid: str, z0: int = 0
) -> hd.Volume:
    """``array`` [z, y, x] (Volume slices ``z0 …``) as a highdicom Volume in patient (LPS) space.

    highdicom indexes (frame, row, column) = (z, y, x); our affine maps (x, y, z), so its
    columns are reordered, and its origin moves to slice ``z0``. Frame ↔ source-image
    correspondence is then inferred from positions, independent of file order.
    """
    affine = np.asarray(volume.affine, dtype=np.float64).copy()
    affine[:3, 3] = (affine @ np.array([0.0, 0.0, float(z0), 1.0]))[:3]
    return hd.Volume(
        array=array,
        affine=affine[:, [2, 1, 0, 3]],
        coordinate_system="PATIENT",
        frame_of_reference_uid=frame_of_reference_uid,
    )


def on_source_grid(volume: Volume, headers: list[Dataset], atol_mm: float = 0.01) -> bool:
    """True when ``headers[z]`` is a single-frame image of exactly volume slice ``z``: same
    rows and columns, orientation, pixel spacing and position (to ``atol_mm``).

    That is the usual case; it is false for a volume the loader resampled (gantry tilt) and for
    multi-frame sources, whose frames must be matched to the volume by position instead.
    """
    nz, ny, nx = volume.hu.shape
    if len(headers) != nz:
        return False
    affine = np.asarray(volume.affine, dtype=np.float64)
    col_step, row_step = affine[:3, 0], affine[:3, 1]  # one column right, one row down
    orientation = np.concatenate(
        [col_step / np.linalg.norm(col_step), row_step / np.linalg.norm(row_step)]
    )
    spacing = [np.linalg.norm(row_step), np.linalg.norm(col_step)]
    positions = affine[:3, 3] + np.arange(nz)[:, None] * affine[:3, 2]
    try:
        if any(int(ds.get("NumberOfFrames") or 1) != 1 for ds in headers):
            return False
        if any((int(ds.Rows), int(ds.Columns)) != (ny, nx) for ds in headers):
            return False
        got_orientation = np.array(
            [[float(v) for v in ds.ImageOrientationPatient] for ds in headers]
        )
        got_spacing = np.array([[float(v) for v in ds.PixelSpacing] for ds in headers])
        got_position = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in headers])
    except (AttributeError, TypeError, ValueError):  # a header without plane geometry
        return False
    return (
        got_orientation.shape == (nz, 6)
        and got_spacing.shape == (nz, 2)
        and got_position.shape == (nz, 3)
        and bool(np.allclose(got_orientation, orientation, rtol=0, atol=1e-4))
        and bool(np.allclose(got_spacing, spacing, rtol=1e-4, atol=0))
        and bool(np.allclose(got_position, positions, rtol=0, atol=atol_mm))
    )


def slab(per_slice: np.ndarray) -> tuple[int, int] | None:
    """(first, last + 1) of the slices where ``per_slice`` is true, or None."""
    zs = np.nonzero(per_slice)[0]
    return (int(zs[0]), int(zs[-1]) + 1) if zs.size else None


def frame_of_reference(headers: list[Dataset], volume: Volume) -> str:
    """The FrameOfReferenceUID shared by the source images."""
    uid = headers[0].get("FrameOfReferenceUID") or (volume.meta or {}).get("FrameOfReferenceUID")
    if not uid:
        raise ExportNotAvailableError(NO_FRAME_OF_REFERENCE)
    return str(uid)
