"""PNG/JPEG slices (screenshots, exported images) → a one-slice :class:`Volume`.

These files hold display values, not Hounsfield units, so the mapping is a documented guess
and every load says so in ``Volume.warnings``:
- colour images are converted to grey (ITU-R BT.601 luma), alpha is dropped;
- 8-bit grey value v (0..255) is read as a bone-window display: HU = c - w/2 + v·w/255 with
  (c, w) = ``EIGHT_BIT_WINDOW`` = (400, 1800), i.e. 0 → -500 HU and 255 → 1300 HU;
- 16-bit values v are read as the common CT export convention HU = v - 1024;
- pixel spacing is unknown: the image width is assumed to span ``ASSUMED_FOV_MM`` (250 mm,
  a typical neck field of view), giving square pixels; z spacing is 1 mm.
Burned-in text is not touched here (the source is never modified); see
``imaging.features.remove_burned_in_text`` for the preprocessing step.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import CorruptFileError, UnsupportedFormatError
from .provenance import headerless_meta
from .volume import Volume

EIGHT_BIT_WINDOW = (400.0, 1800.0)  # (center, width) HU
SIXTEEN_BIT_OFFSET = -1024.0
ASSUMED_FOV_MM = 250.0
MAX_SIDE = 8192


def load_raster(file: Path, source_path: Path | None = None, archive: Path | None = None) -> Volume:
    """Read one PNG/JPEG image as a single axial slice of approximate HU."""
    try:
        buf = np.fromfile(file, dtype=np.uint8)
        raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except (OSError, cv2.error) as exc:
        raise CorruptFileError(f"{file.name} cannot be read as an image ({exc}).") from exc
    if raw is None or raw.size == 0:
        raise CorruptFileError(f"{file.name} is damaged or not a PNG/JPEG image.")
    if max(raw.shape[:2]) > MAX_SIDE:
        raise UnsupportedFormatError(
            f"{file.name} is {raw.shape[1]}×{raw.shape[0]} pixels; at most {MAX_SIDE} are read."
        )
    gray = _to_gray(raw, buf)
    if gray.dtype == np.uint8:
        c, w = EIGHT_BIT_WINDOW
        hu = np.rint(c - w / 2 + gray.astype(np.float32) * (w / 255.0))
        mapping = f"8-bit grey 0..255 read as a bone window ({c - w / 2:.0f}..{c + w / 2:.0f} HU)"
    elif gray.dtype == np.uint16:
        hu = gray.astype(np.float32) + SIXTEEN_BIT_OFFSET
        mapping = "16-bit values read as HU + 1024"
    else:
        raise UnsupportedFormatError(f"{file.name} holds {gray.dtype} pixels; 8/16-bit only.")
    hu = np.clip(hu, -32768, 32767).astype(np.int16)[None]
    rows, cols = hu.shape[1:]
    s = ASSUMED_FOV_MM / cols
    affine = np.diag([s, s, 1.0, 1.0])
    affine[:3, 3] = (-(cols - 1) / 2 * s, -(rows - 1) / 2 * s, 0.0)
    warnings = [
        f"{file.name} is a picture, not CT data: intensities are not calibrated Hounsfield "
        f"units ({mapping}) and the pixel size is assumed ({s:.3f} mm, a {ASSUMED_FOV_MM:.0f} "
        "mm wide field of view). Results are indicative only."
    ]
    meta = headerless_meta(file, source_path or file, archive, "image", "OT")
    meta["hu_mapping"] = mapping
    meta["assumed_fov_mm"] = ASSUMED_FOV_MM
    return Volume(hu=hu, affine=affine, spacing=(1.0, s, s), meta=meta, warnings=warnings)


def _to_gray(raw: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Grey image of the original bit depth; 8-bit images honour EXIF orientation."""
    if raw.dtype == np.uint8:
        gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)  # applies EXIF rotation, BT.601 luma
        return gray if gray is not None else raw
    if raw.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if raw.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(raw, code)
    return raw
