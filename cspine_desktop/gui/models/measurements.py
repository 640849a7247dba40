"""Measurements a reader draws on a slice: ruler (mm), angle, Cobb angle, elliptical ROI
(mean and SD of HU, area). Qt-free.

Points are displayed-pixel coordinates (row, col) of one slice of one orientation; lengths use
the plane's pixel size in mm (calibrated from the DICOM pixel spacing and slice spacing), so a
ruler on a sagittal view with 0.5 × 2 mm pixels measures true millimetres. Each measurement is
stored with its plane and slice and comes back as JSON with the study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .events import Event
from .geometry import Orientation, SlicePlane

KINDS = ("ruler", "angle", "cobb", "roi")
POINTS_NEEDED = {"ruler": 2, "angle": 3, "cobb": 4, "roi": 2}


@dataclass
class Measurement:
    kind: str
    orientation: Orientation
    slice_index: int
    points: list[tuple[float, float]] = field(default_factory=list)  # (row, col)

    @property
    def complete(self) -> bool:
        return len(self.points) >= POINTS_NEEDED[self.kind]

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "orientation": self.orientation.value,
            "slice": self.slice_index,
            "points": [[round(float(r), 3), round(float(c), 3)] for r, c in self.points],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Measurement:
        kind = str(d["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown measurement {kind!r}")
        points = [(float(r), float(c)) for r, c in d["points"]]
        return cls(kind, Orientation(d["orientation"]), int(d["slice"]), points)


def _mm(plane: SlicePlane, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    row_mm, col_mm = plane.pixel_mm
    return np.array(((b[1] - a[1]) * col_mm, (b[0] - a[0]) * row_mm))  # (x, y) in mm


def length_mm(plane: SlicePlane, a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(*_mm(plane, a, b)))


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return math.degrees(math.acos(float(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0))))


def angle_deg(plane: SlicePlane, a, vertex, c) -> float:
    """The angle at ``vertex`` between the arms to ``a`` and ``c``."""
    return _angle(_mm(plane, vertex, a), _mm(plane, vertex, c))


def cobb_deg(plane: SlicePlane, a0, a1, b0, b1) -> float:
    """The Cobb angle: between the lines a0–a1 and b0–b1 (0–90°)."""
    angle = _angle(_mm(plane, a0, a1), _mm(plane, b0, b1))
    return min(angle, 180.0 - angle)


def roi_stats(plane: SlicePlane, hu_slice: np.ndarray, a, b) -> tuple[float, float, float, int]:
    """(mean HU, SD HU, area mm², pixels) inside the ellipse inscribed in the box a–b."""
    r0, r1 = sorted((a[0], b[0]))
    c0, c1 = sorted((a[1], b[1]))
    rows, cols = np.ogrid[: hu_slice.shape[0], : hu_slice.shape[1]]
    cr, cc = (r0 + r1) / 2, (c0 + c1) / 2
    hr, hc = max((r1 - r0) / 2, 0.5), max((c1 - c0) / 2, 0.5)
    inside = ((rows + 0.5 - cr) / hr) ** 2 + ((cols + 0.5 - cc) / hc) ** 2 <= 1.0
    n = int(inside.sum())
    if n == 0:
        return float("nan"), float("nan"), 0.0, 0
    values = hu_slice[inside].astype(np.float64)
    row_mm, col_mm = plane.pixel_mm
    return float(values.mean()), float(values.std()), n * row_mm * col_mm, n


def describe(m: Measurement, plane: SlicePlane, hu_slice: np.ndarray | None = None) -> str:
    """ "23.4 mm", "37.2°", "Cobb 12.5°", "mean 320 HU, SD 45, 78.5 mm²"."""
    p = m.points
    if m.kind == "ruler" and len(p) >= 2:
        return f"{length_mm(plane, p[0], p[1]):.1f} mm"
    if m.kind == "angle" and len(p) >= 3:
        return f"{angle_deg(plane, p[0], p[1], p[2]):.1f}°"
    if m.kind == "cobb" and len(p) >= 4:
        return f"Cobb {cobb_deg(plane, p[0], p[1], p[2], p[3]):.1f}°"
    if m.kind == "roi" and len(p) >= 2 and hu_slice is not None:
        mean, sd, area, n = roi_stats(plane, hu_slice, p[0], p[1])
        return f"mean {mean:.0f} HU, SD {sd:.0f}, {area:.1f} mm²" if n else "empty ROI"
    return ""


class MeasurementSet:
    """The measurements of the open study plus the one being drawn. ``changed`` fires on every
    edit; ``committed`` only when the stored list changed (what is saved with the study)."""

    def __init__(self) -> None:
        self.changed = Event()
        self.committed = Event()
        self.items: list[Measurement] = []
        self.pending: Measurement | None = None
        self.tool = "navigate"  # or one of KINDS

    def set_tool(self, tool: str) -> None:
        if tool != "navigate" and tool not in KINDS:
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self.pending = None
        self.changed.emit()

    def on_slice(self, orientation: Orientation, index: int) -> list[Measurement]:
        shown = [m for m in self.items if m.orientation == orientation and m.slice_index == index]
        p = self.pending
        if p is not None and p.orientation == orientation and p.slice_index == index:
            shown.append(p)
        return shown

    def press(self, orientation: Orientation, index: int, point: tuple[float, float]) -> None:
        """Mouse pressed: start a measurement, or add the next point of the pending one."""
        p = self.pending
        if p is None or p.orientation != orientation or p.slice_index != index:
            self.pending = Measurement(self.tool, orientation, index, [point, point])
        elif self.tool == "angle":  # third point: the second arm's end
            p.points[2:] = [point]
        else:  # Cobb: the second line starts here
            p.points[2:] = [point, point]
        self.changed.emit()

    def drag(self, point: tuple[float, float]) -> None:
        if self.pending is not None:
            self.pending.points[-1] = point
            self.changed.emit()

    def release(self, point: tuple[float, float]) -> None:
        """Mouse released: the pending measurement is kept when it has all its points."""
        p = self.pending
        if p is None:
            return
        p.points[-1] = point
        if p.complete:
            self.pending = None
            if p.points[0] != p.points[1] or p.kind in ("angle", "cobb"):
                self.items.append(p)
                self.committed.emit()
        self.changed.emit()

    def clear(self) -> None:
        self.items, self.pending = [], None
        self.changed.emit()
        self.committed.emit()

    def load(self, items: list[Measurement]) -> None:
        """Show the measurements stored with a study (not a change to save)."""
        self.items, self.pending = list(items), None
        self.changed.emit()

    def to_json(self) -> list[dict]:
        return [m.to_dict() for m in self.items]
