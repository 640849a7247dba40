"""Stage-2 training augmentation of a vertebra's crop sources (numpy and OpenCV only).

Domain randomisation of the HU planes — another scanner's calibration, reconstruction kernel,
dose or resolution — and a stage-1-like mask: the crops a classifier meets at inference come
from other scanners and from a segmentation that is never exact.
"""

from __future__ import annotations

import cv2
import numpy as np


def augment_hu(planes: list[np.ndarray], rng: np.random.Generator, px_mm: float) -> None:
    """Domain randomisation of a vertebra's HU planes, in place: scale/offset, blur or sharpen
    (another reconstruction kernel), extra noise (another dose), resolution down/up."""
    scale, offset = rng.uniform(0.9, 1.1), rng.uniform(-40.0, 40.0)
    kind = rng.choice(["none", "blur", "sharpen", "lowres"], p=[0.4, 0.25, 0.2, 0.15])
    sigma = float(rng.uniform(0.4, 1.2))
    noise = float(rng.uniform(0.0, 25.0)) if rng.random() < 0.5 else 0.0
    for p in planes:
        for k in range(p.shape[0]):
            img = p[k]
            if kind == "blur":
                img = cv2.GaussianBlur(img, (0, 0), sigma)
            elif kind == "sharpen":
                img = img + 0.6 * (img - cv2.GaussianBlur(img, (0, 0), sigma))
            elif kind == "lowres":
                f = float(rng.uniform(1.4, 2.0))
                s = img.shape[0]
                small = cv2.resize(img, (int(s / f), int(s / f)), interpolation=cv2.INTER_AREA)
                img = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
            if noise:
                n = rng.normal(0.0, noise, img.shape).astype(np.float32)
                img = img + cv2.GaussianBlur(n, (0, 0), 0.7) * 1.8
            p[k] = img * scale + offset


# Stage 1's level boundaries along the slices are off by a few mm: a level's mask takes in the
# neighbour's endplate and the disc between them, or gives its own end to the neighbour. Masks
# that only ever met in-plane dilation taught the classifier that a bone gap at the mask's end is
# a fracture: on validation phantoms, intact vertebrae scored 0.04–0.06 higher on stage 1's masks
# than on the true ones (docs/training.md). Each boundary moves with this probability, by up to
# Z_SHIFT_MM.
Z_SHIFT_P = 0.5
Z_SHIFT_MM = 4.0

# Stage 1's outlines are not the true ones moved as a whole: they wander in and out along the
# bone by about a millimetre (on 12 validation phantoms, stage 1's outline pixels lay at a median
# 0.6 mm inside the true outline, the middle 80 % from 1.4 mm outside to 1.5 mm inside), with
# notches and bumps a few millimetres long that run on through neighbouring slices. A sagittal
# crop cuts such a notch across the body; a classifier that only met straight-dilated masks
# read it as a break (docs/benchmarks.md, "Stage 2's views on stage 1's masks"). With this
# probability a mask's outline is moved by a smooth random field instead: standard deviation
# WOBBLE_MM, features WOBBLE_SCALE_MM long, smooth in all three directions.
WOBBLE_P = 0.6
WOBBLE_MM = (0.5, 1.5)
WOBBLE_SCALE_MM = (3.0, 8.0)


def perturb_mask(
    mask: np.ndarray,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
    level: int | None = None,
    slice_mm: float | None = None,
    px_mm: float | None = None,
) -> np.ndarray:
    """A stage-1-like mask: the true one dilated or eroded by up to 2 px per slice or, given the
    pixel size ``px_mm`` and the slice spacing, its outline moved by a smooth random field
    (:func:`wobble_outline`); and, given the study's ``labels`` [z, y, x] and this mask's
    ``level``, its ends along the slices moved toward or away from each neighbouring level
    (:func:`shift_level_ends`)."""
    r = int(rng.integers(-2, 3))
    if px_mm and slice_mm and rng.random() < WOBBLE_P:
        out = wobble_outline(
            mask,
            rng,
            (float(slice_mm), float(px_mm)),
            float(rng.uniform(*WOBBLE_MM)),
            float(rng.uniform(*WOBBLE_SCALE_MM)),
        )
    elif r == 0:
        out = mask.astype(np.float32)
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(r) + 1, 2 * abs(r) + 1))
        op = cv2.dilate if r > 0 else cv2.erode
        m8 = mask.astype(np.uint8)
        out = np.empty(mask.shape, np.float32)
        for z in range(m8.shape[0]):
            out[z] = op(m8[z], kernel)
    if labels is not None and level is not None and slice_mm:
        for neighbour in (level - 1, level + 1):
            if rng.random() < Z_SHIFT_P:
                shift = float(rng.uniform(-Z_SHIFT_MM, Z_SHIFT_MM))
                out = shift_level_ends(out, labels, neighbour, round(shift / slice_mm))
    return out


def shift_level_ends(
    mask: np.ndarray, labels: np.ndarray, neighbour: int, slices: int
) -> np.ndarray:
    """``mask`` (float32 [z, y, x]) with its boundary against level ``neighbour`` moved by
    ``slices`` along the slices, column by column: ``slices`` > 0 adds the neighbour's voxels
    within that many slices of the mask; < 0 removes the mask's voxels within that many
    slices of the neighbour."""
    n = abs(int(slices))
    other = labels == neighbour
    if n == 0 or not other.any():
        return mask
    inside = mask > 0
    near = np.zeros(mask.shape, bool)
    source = inside if slices > 0 else other
    for k in range(1, min(n, mask.shape[0] - 1) + 1):
        near[k:] |= source[:-k]
        near[:-k] |= source[k:]
    out = mask.copy()
    if slices > 0:
        out[near & other] = 1.0
    else:
        out[near & inside] = 0.0
    return out


def wobble_outline(
    mask: np.ndarray,
    rng: np.random.Generator,
    spacing_mm: tuple[float, float],
    sd_mm: float,
    scale_mm: float,
) -> np.ndarray:
    """``mask`` [z, y, x] with its outline moved in and out by a smooth random field: each slice's
    signed distance to the outline (mm, 2D) plus a Gaussian field of standard deviation ``sd_mm``
    whose features are ``scale_mm`` long across the pixels and the slices (``spacing_mm`` =
    slice, pixel), thresholded at zero. float32 in {0, 1}."""
    out = np.zeros(mask.shape, np.float32)
    zs, ys, xs = np.nonzero(mask)
    if zs.size == 0:
        return out
    dz, px = spacing_mm
    pad = int(np.ceil(3.0 * sd_mm / px)) + 2
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, mask.shape[1])
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, mask.shape[2])
    z0, z1 = int(zs.min()), int(zs.max()) + 1
    box = np.ascontiguousarray(mask[z0:z1, y0:y1, x0:x1], dtype=np.uint8)
    nz, ny, nx = box.shape
    # The field: white noise on a coarse grid (one node per scale_mm), upsampled linearly —
    # a smooth field with features about scale_mm long — then scaled to sd_mm.
    cz = max(int(np.ceil(nz * dz / scale_mm)) + 1, 2)
    cy = max(int(np.ceil(ny * px / scale_mm)) + 1, 2)
    cx = max(int(np.ceil(nx * px / scale_mm)) + 1, 2)
    coarse = rng.normal(0.0, 1.0, (cz, cy, cx)).astype(np.float32)
    planes = np.stack([cv2.resize(c, (nx, ny), interpolation=cv2.INTER_CUBIC) for c in coarse])
    at = np.linspace(0.0, cz - 1.0, nz) if nz > 1 else np.zeros(1)
    lo = np.minimum(at.astype(int), cz - 2)
    w = (at - lo).astype(np.float32)[:, None, None]
    field = planes[lo] * (1.0 - w) + planes[lo + 1] * w
    field *= sd_mm / max(float(field.std()), 1e-6)
    for k in range(nz):
        m = box[k]
        if not m.any():
            continue
        inside = np.asarray(cv2.distanceTransform(m, cv2.DIST_L2, 5))
        outside = np.asarray(cv2.distanceTransform(1 - m, cv2.DIST_L2, 5))
        out[z0 + k, y0:y1, x0:x1] = ((inside - outside) * px + field[k] > 0).astype(np.float32)
    return out
