"""Display and model windows (width/level in HU) — one definition for viewer, reports and model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Window:
    """A grey-level window: HU ``center`` ± ``width``/2 maps to black…white."""

    center: float
    width: float
    name: str = ""

    @property
    def lower(self) -> float:
        return self.center - self.width / 2.0

    @property
    def upper(self) -> float:
        return self.center + self.width / 2.0


# Viewer presets, keys 1–4, in the order radiologists know them (OHIF values).
DISPLAY_PRESETS: tuple[Window, ...] = (
    Window(480.0, 2500.0, "Bone"),
    Window(40.0, 400.0, "Soft tissue"),
    Window(40.0, 80.0, "Brain"),
    Window(-600.0, 1500.0, "Lung"),
)
BONE, SOFT_TISSUE, BRAIN, LUNG = DISPLAY_PRESETS


def apply_window(hu: np.ndarray, window: Window, out: np.ndarray | None = None) -> np.ndarray:
    """Map HU to float32 in [0, 1] through ``window`` (clipped at both ends)."""
    scale = np.float32(1.0 / max(window.width, 1e-6))
    res = np.subtract(np.asarray(hu), np.float32(window.lower), out=out, dtype=np.float32)
    res = np.asarray(res)  # a 0-d input gives a numpy scalar; keep an array to clip in place
    res *= scale
    return np.clip(res, 0.0, 1.0, out=res)


def header_window(meta: dict[str, Any]) -> Window | None:
    """The first display window stored in the DICOM header (``WindowCenter``/``WindowWidth``)."""
    center, width = meta.get("WindowCenter"), meta.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        center = float(center[0] if isinstance(center, list | tuple) else center)
        width = float(width[0] if isinstance(width, list | tuple) else width)
    except (TypeError, ValueError, IndexError):
        return None
    return Window(center, width, "Header") if width > 1 else None
