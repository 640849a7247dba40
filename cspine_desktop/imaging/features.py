"""Feature maps the viewer can show: edges and gradient magnitude.

These are the "feature extraction" layer for the reader, not model inputs.
"""

from __future__ import annotations

import cv2
import numpy as np

from .windows import BONE, Window, apply_window


def gradient_magnitude(hu_slice: np.ndarray, window: Window = BONE) -> np.ndarray:
    """Sobel gradient magnitude of the windowed slice [y, x], scaled to [0, 1]."""
    img = apply_window(hu_slice, window)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    peak = float(mag.max())
    return mag / peak if peak > 0 else mag


def edge_map(hu_slice: np.ndarray, window: Window = BONE) -> np.ndarray:
    """Bone edges of one slice [y, x] as float32 in [0, 1] (Canny on the bone-windowed slice,
    thresholds from the gradient distribution so it adapts to noise)."""
    img = (apply_window(hu_slice, window) * 255.0).astype(np.uint8)
    blurred = cv2.GaussianBlur(img, (3, 3), 0)
    mag = gradient_magnitude(hu_slice, window)
    nz = mag[mag > 0]
    hi = float(np.percentile(nz, 95)) * 255.0 if nz.size else 100.0
    edges = cv2.Canny(blurred, max(1.0, hi * 0.4), max(2.0, hi))
    return edges.astype(np.float32) / 255.0
