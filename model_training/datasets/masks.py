"""NIfTI label masks onto a DICOM Volume's voxel grid — by their affines, never by array order.

RSNA 2022 segmentations are stored with another axis order and orientation than the DICOM
stack (nibabel arrays are (i, j, k) with a RAS affine); reading the array as if it were
[z, y, x] gives flipped or transposed masks. Here every voxel of the Volume is sent through

    mask index = inv(RAS→LPS · A_nifti) · A_volume · (x, y, z, 1)

and takes the label of the nearest mask voxel (0 outside the mask's extent). When that map is
a signed axis permutation with integer offsets (the usual case: same grid, other order) the
result is computed exactly by transposing/flipping/slicing; otherwise voxel by voxel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from cspine_desktop.imaging.volume import Volume

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class MaskMismatchError(ValueError):
    """A mask that cannot be placed on its images (geometry or values); message in words."""


def _load_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        if not isinstance(img, nib.spatialimages.SpatialImage):
            raise TypeError(f"{type(img).__name__} is not an image with a geometry")
        data = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # nibabel raises many types for truncated/garbled files
        raise MaskMismatchError(f"cannot be read ({type(exc).__name__}: {exc})") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MaskMismatchError(f"is {data.ndim}-D with shape {data.shape}; expected 3-D")
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise MaskMismatchError("has no usable affine (singular or not finite)")
    return data, affine


def _as_labels(data: np.ndarray, max_label: int) -> np.ndarray:
    """Integer labels 0…max_label; values above max_label become 0 (e.g. thoracic 8+)."""
    if not np.issubdtype(data.dtype, np.integer):
        rounded = np.rint(data)
        if not np.allclose(rounded, data, atol=1e-3):
            raise MaskMismatchError("holds non-integer values; expected labels")
        data = rounded
    if data.min() < 0:
        raise MaskMismatchError(f"holds negative label {int(data.min())}")
    out = data.astype(np.int32, copy=False)
    out = np.where(out > max_label, 0, out)
    return out.astype(np.uint8)


def _signed_permutation(m: np.ndarray, tol: float = 1e-3) -> list[tuple[int, int, int]] | None:
    """For a volume→mask index map ``m`` that is a signed axis permutation with integer
    offsets: per volume axis (x, y, z) the (mask axis, sign, offset). Else None."""
    lin, off = m[:3, :3], m[:3, 3]
    out = []
    for vol_axis in range(3):
        col = lin[:, vol_axis]
        mask_axis = int(np.argmax(np.abs(col)))
        others = np.delete(col, mask_axis)
        if abs(abs(col[mask_axis]) - 1.0) > tol or np.any(np.abs(others) > tol):
            return None
        o = off[mask_axis]
        if abs(o - round(o)) > tol:
            return None
        out.append((mask_axis, int(np.sign(col[mask_axis])), round(o)))
    if len({a for a, _, _ in out}) != 3:
        return None
    return out


def _resample_exact(mask: np.ndarray, perm, shape_zyx) -> tuple[np.ndarray, float]:
    """Exact gather for a signed permutation: index arrays per volume axis."""
    nz, ny, nx = shape_zyx
    idx = []
    for vol_axis, n in zip((2, 1, 0), (nz, ny, nx)):  # volume array order z, y, x
        mask_axis, sign, off = perm[vol_axis]
        idx.append((mask_axis, sign * np.arange(n) + off))
    # mask array is indexed (i, j, k) = mask axes 0, 1, 2
    inside = [(v >= 0) & (v < mask.shape[a]) for a, v in idx]
    safe = [np.clip(v, 0, mask.shape[a] - 1) for a, v in idx]
    order = [a for a, _ in idx]  # mask axes in volume (z, y, x) order
    view = np.transpose(mask, order)  # now indexed [z-like, y-like, x-like]
    out = view[np.ix_(*safe)]
    valid = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
    return np.where(valid, out, 0).astype(mask.dtype), float(valid.mean())


def _resample_general(mask: np.ndarray, m: np.ndarray, shape_zyx) -> tuple[np.ndarray, float]:
    """Nearest-neighbour gather, one volume slice at a time."""
    nz, ny, nx = shape_zyx
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    out = np.zeros(shape_zyx, dtype=mask.dtype)
    n_inside = 0
    lim = np.array(mask.shape)[:, None, None]
    for z in range(nz):
        ijk = (
            m[:3, 0, None, None] * xx
            + m[:3, 1, None, None] * yy
            + (m[:3, 2] * z + m[:3, 3])[:, None, None]
        )
        ijk = np.floor(ijk + 0.5).astype(np.int64)
        ok = np.all((ijk >= 0) & (ijk < lim), axis=0)
        n_inside += int(ok.sum())
        out[z][ok] = mask[ijk[0][ok], ijk[1][ok], ijk[2][ok]]
    return out, n_inside / float(nz * ny * nx)


def mask_on_volume(
    path: str | os.PathLike[str],
    volume: Volume,
    *,
    max_label: int = 7,
    binary: bool = False,
    min_coverage: float = 0.95,
    values: Sequence[int] | None = None,
) -> np.ndarray:
    """The NIfTI label mask at ``path`` resampled onto ``volume``'s grid: uint8 [z, y, x].

    ``binary=True`` → any non-zero value is 1 (fracture masks). Labels above ``max_label``
    become 0 (RSNA segmentations label thoracic vertebrae 8+). ``values``: the file's value of
    each label 1, 2, … (TotalSegmentator's C1 … C7 are 50 … 44); any other value becomes 0. Raises
    :class:`MaskMismatchError` when the file cannot be read, its values are not labels, its
    extent covers less than ``min_coverage`` of the volume (shape or affine disagree with the
    images), or labels present in the file all fall outside the images.
    """
    data, affine = _load_nifti(path)
    if binary:
        labels = (data != 0).astype(np.uint8)
    elif values is None:
        labels = _as_labels(data, max_label)
    else:
        found = _as_labels(data, max(values))
        labels = np.zeros_like(found)
        for k, v in enumerate(values, start=1):
            labels[found == v] = k
    m = np.linalg.inv(RAS_TO_LPS @ affine) @ np.asarray(volume.affine, dtype=np.float64)
    perm = _signed_permutation(m)
    shape = tuple(volume.hu.shape)
    if perm is not None:
        out, coverage = _resample_exact(labels, perm, shape)
    else:
        out, coverage = _resample_general(labels, m, shape)
    if coverage < min_coverage:
        raise MaskMismatchError(
            f"does not fit its images: shape {tuple(data.shape)} with its affine covers "
            f"{coverage:.0%} of the image volume {shape[::-1]} (x, y, z)"
        )
    if labels.any() and not out.any():
        raise MaskMismatchError("has labels, but none of them fall on the images")
    return out
