"""What the DICOM SEG and SR exports share: source headers, equipment, algorithm identity."""

from __future__ import annotations

import zipfile
from pathlib import Path

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
from ._common import require_dicom_source

MANUFACTURER = "cspine"
# Series numbers of the derived objects, high so they sort after the scanner's series.
SEG_SERIES_NUMBER = 9701
FRACTURE_SEG_SERIES_NUMBER = 9702
SR_SERIES_NUMBER = 9703
# ContentQualification: the model is decision support, not a cleared product.
CONTENT_QUALIFICATION = "RESEARCH"


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


def equipment_kwargs() -> dict[str, str]:
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


def slab(per_slice: np.ndarray) -> tuple[int, int] | None:
    """(first, last + 1) of the slices where ``per_slice`` is true, or None."""
    zs = np.nonzero(per_slice)[0]
    return (int(zs[0]), int(zs[-1]) + 1) if zs.size else None


def frame_of_reference(headers: list[Dataset], volume: Volume) -> str:
    """The FrameOfReferenceUID shared by the source images."""
    uid = headers[0].get("FrameOfReferenceUID") or (volume.meta or {}).get("FrameOfReferenceUID")
    if not uid:
        raise ExportNotAvailableError(
            "The source images carry no Frame of Reference UID, so a DICOM SEG cannot be "
            "placed on them."
        )
    return str(uid)
