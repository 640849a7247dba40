"""Artifact removal on copies of the image data (sources are never modified).

- the patient table/bed and anything else outside the patient's body (CT);
- burned-in text and markers in PNG/JPEG screenshots.
"""

from __future__ import annotations

import cv2
import numpy as np

AIR_HU = -1000.0
BODY_THRESHOLD_HU = -500.0
# a region besides the largest is body when it has at least this share of the largest's area
# and is thicker than 2 × this radius (a table top's shells are 1.5–3 mm, a head holder ≤ 5 mm,
# a chin cut off from the neck about 12 mm)
MIN_PART_SHARE = 0.1
MIN_PART_RADIUS_MM = 8.0


def body_mask(hu_slice: np.ndarray, pixel_mm: float = 1.0) -> np.ndarray:
    """Boolean mask of the patient's body in one axial slice [y, x] (HU).

    The body is the largest connected region denser than −500 HU after a small opening (which
    cuts the thin bridges between the body and the table), with internal holes (airway) kept
    inside and a 2 mm margin added back — together with every other region that is at least
    ``MIN_PART_SHARE`` of its area and thicker than a table: in a plane cut through the lungs
    within a neck-sized field of view, the lungs split the body into a front (sternum,
    clavicles) and a back (the spine), and neither is outside the patient. A table, head
    holder or cable is a thin shell (at most ``2 × MIN_PART_RADIUS_MM`` thick).
    """
    fg = (hu_slice > BODY_THRESHOLD_HU).astype(np.uint8)
    if not fg.any():
        return fg.astype(bool)
    r = max(1, round(2.0 / max(pixel_mm, 1e-3)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    opened = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
    n, cc, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        return fg.astype(bool)
    areas = stats[:, cv2.CC_STAT_AREA]
    largest = 1 + int(np.argmax(areas[1:]))
    parts = [largest]
    others = [
        i for i in range(1, n) if i != largest and areas[i] >= MIN_PART_SHARE * areas[largest]
    ]
    if others:
        # mm to the outside; beyond the image's edge counts as outside
        depth = cv2.distanceTransform(np.pad(opened, 1), cv2.DIST_L2, 5)[1:-1, 1:-1] * pixel_mm
        parts += [i for i in others if float(depth[cc == i].max()) >= MIN_PART_RADIUS_MM]
    body = np.isin(cc, parts).astype(np.uint8)
    # fill holes: everything not reachable from the border through background is body
    contours, _ = cv2.findContours(body, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(body)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    grown: np.ndarray = cv2.dilate(filled, kernel)
    return grown > 0


def remove_table(hu_slice: np.ndarray, pixel_mm: float = 1.0) -> np.ndarray:
    """A copy of ``hu_slice`` with everything outside the body set to air (−1000 HU)."""
    out = np.array(hu_slice, dtype=np.float32, copy=True)
    mask = body_mask(out, pixel_mm)
    if mask.any():
        out[~mask] = AIR_HU
    return out


def remove_burned_in_text(image: np.ndarray) -> np.ndarray:
    """A copy of an 8-bit greyscale screenshot with burned-in text/markers inpainted.

    Text in screenshots is drawn at (near) full white; it forms small, thin, high-contrast
    components. Bone is never saturated in a sensibly windowed image, except for metal, whose
    blobs are compact and large — so only small components whose bounding box is thin or
    sparsely filled are treated as text.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    bright = (img >= 245).astype(np.uint8)
    n, cc, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    h, w = img.shape
    mask = np.zeros_like(bright)
    max_area = 0.002 * h * w
    for i in range(1, n):
        _, _, bw, bh, area = stats[i]
        fill = area / float(bw * bh)
        if area <= max_area and (fill < 0.6 or min(bw, bh) <= 3):
            mask[cc == i] = 1
    if not mask.any():
        unchanged: np.ndarray = img.copy()
        return unchanged
    grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return cv2.inpaint(img, grown, 3, cv2.INPAINT_TELEA)
