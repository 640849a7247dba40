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


def perturb_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stage-1-like mask: the true one dilated or eroded by up to 2 px per slice."""
    r = int(rng.integers(-2, 3))
    if r == 0:
        return mask.astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(r) + 1, 2 * abs(r) + 1))
    op = cv2.dilate if r > 0 else cv2.erode
    m8 = mask.astype(np.uint8)
    out = np.empty(mask.shape, np.float32)
    for z in range(m8.shape[0]):
        out[z] = op(m8[z], kernel)
    return out
