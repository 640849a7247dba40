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


def perturb_mask(
    mask: np.ndarray,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
    level: int | None = None,
    slice_mm: float | None = None,
) -> np.ndarray:
    """A stage-1-like mask: the true one dilated or eroded by up to 2 px per slice and, given
    the study's ``labels`` [z, y, x], this mask's ``level`` and the slice spacing, its ends along
    the slices moved toward or away from each neighbouring level (:func:`shift_level_ends`)."""
    r = int(rng.integers(-2, 3))
    if r == 0:
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
