"""NIfTI-1/2 volumes (``.nii``, ``.nii.gz``) → :class:`Volume`.

NIfTI stores data[i, j, k] with an affine from (i, j, k) to RAS+ mm (sform when set, else
qform). The Volume wants hu[z, y, x] with an affine from (x, y, z) to LPS mm, so
``hu = data.transpose(2, 1, 0)`` and ``affine = diag(-1, -1, 1, 1) @ ras_affine`` (x and y
flip sign between RAS and LPS). scl_slope/scl_inter are applied; values are taken as HU. 4-D
files give their first volume (with a warning). NIfTI has no modality or patient header: the
volume is assumed to be CT in HU, and the meta holds UIDs derived from the file content.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from ..errors import CorruptFileError, ImageTooLargeError, UnsupportedFormatError
from .provenance import headerless_meta
from .volume import Volume

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load_nifti(
    file: Path,
    source_path: Path | None = None,
    archive: Path | None = None,
    max_voxels: int | None = None,
) -> Volume:
    """Read one NIfTI file into a Volume (HU, [z, y, x], LPS affine).

    ``max_voxels``: a file whose header declares more voxels (of its first volume) is refused
    with :class:`~cspine_desktop.errors.ImageTooLargeError` before any voxel is read."""
    import nibabel as nib

    try:
        # a NIfTI file loads as a spatial image; nibabel annotates load() with the base class
        img = cast("SpatialImage", nib.load(str(file)))
        shape = tuple(int(n) for n in img.shape)
    except Exception as exc:  # nibabel raises many kinds on damaged files
        raise CorruptFileError(f"{file.name} is not a readable NIfTI file ({exc}).") from exc
    declared = int(np.prod(shape[:3], dtype=np.int64)) if shape else 0
    if max_voxels is not None and declared > max_voxels:
        raise ImageTooLargeError(
            f"{file.name} declares {' × '.join(map(str, shape[:3]))} = {declared:,} voxels, "
            f"more than this computer's limit of {max_voxels:,} (setting max_image_voxels)."
        )
    try:
        data = np.asanyarray(img.dataobj)
        ras = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # nibabel raises many kinds on damaged files
        raise CorruptFileError(f"{file.name} is not a readable NIfTI file ({exc}).") from exc
    warnings = [
        "NIfTI files carry no modality: the volume is assumed to be CT in Hounsfield units."
    ]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 4:
        warnings.append(f"{file.name} holds {data.shape[3]} volumes; the first was loaded.")
        data = data[..., 0]
    if data.ndim != 3 or min(data.shape) < 1:
        raise UnsupportedFormatError(f"{file.name} is not a 3-D image (shape {data.shape}).")
    if data.dtype.kind not in "iuf":
        raise UnsupportedFormatError(f"{file.name} holds {data.dtype} data, not intensities.")
    if not np.all(np.isfinite(ras)) or abs(np.linalg.det(ras[:3, :3])) < 1e-9:
        raise CorruptFileError(f"{file.name} has an invalid orientation (affine).")
    hu = _to_hu(data, warnings)
    affine = RAS_TO_LPS @ ras
    z_mm, y_mm, x_mm = (float(np.linalg.norm(affine[:3, i])) for i in (2, 1, 0))
    spacing = (z_mm, y_mm, x_mm)
    meta = headerless_meta(file, source_path or file, archive, "nifti", "CT")
    return Volume(hu=hu, affine=affine, spacing=spacing, meta=meta, warnings=warnings)


def _to_hu(data: np.ndarray, warnings: list[str]) -> np.ndarray:
    """[i, j, k] data → contiguous [z, y, x], int16 when the values are integral and fit."""
    zyx = data.transpose(2, 1, 0)
    if data.dtype.kind == "f":
        finite = np.isfinite(zyx)
        if not finite.all():
            warnings.append(
                f"{int((~finite).sum())} voxels are not numbers (NaN/inf); set to -1024 HU."
            )
            zyx = np.where(finite, zyx, -1024.0)
        lo, hi = (float(zyx.min()), float(zyx.max())) if zyx.size else (0.0, 0.0)
        integral = bool(np.all(np.equal(np.mod(zyx, 1), 0)))
    else:
        lo, hi = int(zyx.min()), int(zyx.max())
        integral = True
    if integral and lo >= -32768 and hi <= 32767:
        return np.ascontiguousarray(zyx, dtype=np.int16)
    return np.ascontiguousarray(zyx, dtype=np.float32)
