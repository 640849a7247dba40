"""A drawn cervical spine label map on the model grid, for the plausibility checks.

Each level is the same axial outline on every plane it spans: a vertebral body in front
(C2–C7), a ring of bone around the canal, transverse processes across and a spinous process
behind — sizes from ANATOMY (C3–C7 ≈ 48 mm wide, C1 ≈ 80 mm, C7 ≈ 60 mm). Levels run head to
feet (z toward the feet), one 2 mm plane apart. HU: bone 700, everything else 30 (soft tissue,
also in the canal).
"""

from __future__ import annotations

import cv2
import numpy as np

DZ, PX = 2.0, 1.25  # mm: the demo model's grid
SPACING = (DZ, PX, PX)
SIZE = 128
# level → (height mm, width with transverse processes mm); C1 has no body
LEVELS = {
    1: (16.0, 80.0),
    2: (40.0, 50.0),
    3: (26.0, 48.0),
    4: (26.0, 48.0),
    5: (26.0, 50.0),
    6: (26.0, 50.0),
    7: (28.0, 60.0),
}


def _mm(v: float) -> int:
    return round(v / PX)


def outline(level: int) -> np.ndarray:
    """uint8 [SIZE, SIZE] axial outline of one level (1 = bone); rows run posterior."""
    _, width = LEVELS[level]
    img = np.zeros((SIZE, SIZE), np.uint8)
    c = SIZE // 2
    canal = (c, c + _mm(6))  # (x, y): the canal centre, behind the body
    if level == 1:
        cv2.ellipse(img, canal, (_mm(17), _mm(20)), 0, 0, 360, 1, -1)
        cv2.ellipse(img, canal, (_mm(13), _mm(16)), 0, 0, 360, 0, -1)
    else:
        cv2.ellipse(img, (c, c - _mm(10)), (_mm(9), _mm(8)), 0, 0, 360, 1, -1)  # body
        cv2.ellipse(img, canal, (_mm(16), _mm(12)), 0, 0, 360, 1, -1)  # arch
        cv2.ellipse(img, canal, (_mm(12), _mm(8)), 0, 0, 360, 0, -1)  # canal
        cv2.rectangle(img, (c - _mm(2.5), c + _mm(17)), (c + _mm(2.5), c + _mm(28)), 1, -1)
    half = _mm(width / 2)
    cv2.rectangle(img, (c - half, canal[1] - _mm(4)), (c - _mm(13), canal[1]), 1, -1)
    cv2.rectangle(img, (c + _mm(13), canal[1] - _mm(4)), (c + half - 1, canal[1]), 1, -1)
    return img


def toy_spine(margin_mm: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8 [Z, SIZE, SIZE], hu float32) of C1–C7 with ``margin_mm`` above and below."""
    planes = []
    for level, (height, _) in LEVELS.items():
        shape = outline(level) * level
        planes += [shape] * round(height / DZ)
        planes.append(np.zeros_like(shape))  # a disc between levels
    pad = [np.zeros((SIZE, SIZE), np.uint8)] * round(margin_mm / DZ)
    labels = np.stack(pad + planes + pad).astype(np.uint8)
    hu = np.where(labels > 0, 700.0, 30.0).astype(np.float32)
    return labels, hu
