"""The vertebra label map as NIfTI-1 (``.nii.gz``), for research tools (3D Slicer, ITK-SNAP)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ..vertebrae import N_CLASSES
from ._common import OutcomeLike, atomic_path, check_outcome

# NIfTI world space is RAS; the Volume affine maps to LPS: flip the first two world axes.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def label_nifti_image(outcome: OutcomeLike) -> nib.Nifti1Image:
    """Labels (uint8, 0 background, 1–7 = C1–C7) as a NIfTI image on the source grid.

    The NIfTI array is indexed [i, j, k] = [x=column, y=row, z=slice] (the Volume's labels are
    [z, y, x]); its affine is the Volume affine (voxel → LPS mm) turned into voxel → RAS mm,
    stored as both qform and sform with code 1 (scanner anatomical). The image's array is a
    view of ``outcome.labels`` (no copy).
    """
    check_outcome(outcome)
    labels = np.asarray(outcome.labels)
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise ValueError(f"label value {int(labels.max())} outside 0..{N_CLASSES - 1}")
    # A transposed view, no copy: [z, y, x] in C order is [x, y, z] in Fortran order, which is
    # NIfTI's order on disk, so the writer streams the slices as they are.
    data = labels.astype(np.uint8, copy=False).transpose(2, 1, 0)
    affine = LPS_TO_RAS @ np.asarray(outcome.volume.affine, dtype=np.float64)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(np.uint8)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    img.header["descrip"] = b"cspine C1-C7 labels; not for diagnostic use"
    return img


def write_label_nifti(outcome: OutcomeLike, path: str | os.PathLike[str]) -> Path:
    """Write :func:`label_nifti_image` to ``path`` (``.nii.gz`` compresses; atomic)."""
    img = label_nifti_image(outcome)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)
