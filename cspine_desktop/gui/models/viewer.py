"""The viewer's state: the open volume, the shared crosshair, window/level, zoom and pan.

All three views share one crosshair ``cursor`` (voxel index z, y, x): the axial view shows slice
``cursor[0]``, the coronal ``cursor[1]``, the sagittal ``cursor[2]``. Window/level and invert are
shared too (as in OHIF's linked viewports); zoom and pan are per view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...imaging.volume import Volume
from ...imaging.windows import BONE, DISPLAY_PRESETS, Window, header_window
from .events import Event
from .geometry import Orientation, SlicePlane
from .measurements import MeasurementSet
from .overlays import OverlayModel

MIN_ZOOM, MAX_ZOOM = 0.25, 16.0
MIN_WIDTH_HU = 1.0
SLAB_MODES = ("off", "mip", "minip")  # thick-slab maximum / minimum intensity projection
PAGE_SLICES = 10  # PageUp / PageDown


@dataclass
class ViewTransform:
    """Per-view zoom (× the fit-to-window scale) and pan (widget pixels)."""

    zoom: float = 1.0
    pan_x: float = 0.0
    pan_y: float = 0.0


@dataclass(frozen=True)
class Probe:
    """What lies under the mouse: slice number, voxel index, LPS position (mm), HU."""

    orientation: Orientation
    slice_index: int
    n_slices: int
    voxel: tuple[int, int, int]  # (z, y, x)
    lps_mm: tuple[float, float, float]
    hu: float
    label: int  # 0 background, 1–7 C1–C7 (0 when no labels)
    heat: float | None

    def describe(self) -> str:
        """Status-bar text, e.g. "axial 41/120  (12.3, -40.1, 88.0) mm LPS  HU 1034"."""
        from ...vertebrae import VERTEBRAE

        x, y, z = self.lps_mm
        parts = [
            f"{self.orientation.value} {self.slice_index + 1}/{self.n_slices}",
            f"voxel z{self.voxel[0]} y{self.voxel[1]} x{self.voxel[2]}",
            f"L {x:.1f}  P {y:.1f}  S {z:.1f} mm (LPS)",
            f"HU {self.hu:.0f}",
        ]
        if self.label:
            parts.append(VERTEBRAE[self.label - 1].name)
        if self.heat is not None:
            parts.append(f"heat {self.heat:.2f}")
        return "   ".join(parts)


class ViewerModel:
    """State shared by the three views. Emits ``changed(kind)`` with kind one of
    "volume", "cursor", "window", "view"; overlay edits come from ``overlays.changed``."""

    def __init__(self) -> None:
        self.changed = Event()
        self.overlays = OverlayModel()
        self.measurements = MeasurementSet()
        self.slab_mode = "off"
        self.slab_mm = 10.0
        self.volume: Volume | None = None
        self.planes: dict[Orientation, SlicePlane] = {}
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.initial_window: Window = BONE
        self.window: Window = BONE
        self.invert = False
        self.views = {o: ViewTransform() for o in Orientation}
        self.active = Orientation.SAGITTAL

    # ---------------------------------------------------------------- volume
    def set_volume(self, volume: Volume | None) -> None:
        """Show ``volume`` (or nothing): crosshair at the centre, header window when present."""
        self.volume = volume
        self.overlays.clear()
        self.measurements.load([])
        if volume is None:
            self.planes = {}
            self.cursor = (0, 0, 0)
        else:
            self.planes = {o: SlicePlane.of(volume, o) for o in Orientation}
            self.cursor = tuple(int(n) // 2 for n in volume.hu.shape)  # type: ignore[assignment]
            self.initial_window = header_window(volume.meta) or BONE
        self.window = self.initial_window
        self.invert = False
        self.views = {o: ViewTransform() for o in Orientation}
        self.changed.emit("volume")

    @property
    def has_volume(self) -> bool:
        return self.volume is not None

    # ---------------------------------------------------------------- slices and crosshair
    def slice_index(self, orientation: Orientation) -> int:
        return self.cursor[orientation.index_axis]

    def set_slice(self, orientation: Orientation, index: int) -> None:
        """Show slice ``index`` (clamped) in ``orientation``."""
        if not self.planes:
            return
        n = self.planes[orientation].n_slices
        zyx = list(self.cursor)
        zyx[orientation.index_axis] = int(np.clip(index, 0, n - 1))
        self.set_cursor(tuple(zyx))  # type: ignore[arg-type]

    def step_slice(self, orientation: Orientation, steps: int) -> None:
        self.set_slice(orientation, self.slice_index(orientation) + int(steps))

    def first_slice(self, orientation: Orientation) -> None:
        self.set_slice(orientation, 0)

    def last_slice(self, orientation: Orientation) -> None:
        self.set_slice(orientation, self.planes[orientation].n_slices - 1 if self.planes else 0)

    def set_cursor(self, zyx: tuple[float, float, float]) -> None:
        """Move the shared crosshair to voxel (z, y, x), clamped to the volume."""
        if self.volume is None:
            return
        shape = self.volume.hu.shape
        new = tuple(int(np.clip(round(v), 0, n - 1)) for v, n in zip(zyx, shape))
        if new != self.cursor:
            self.cursor = new  # type: ignore[assignment]
            self.changed.emit("cursor")

    def jump_to_vertebra(self, label: int, z: int | None) -> None:
        """Show vertebra ``label`` (1–7): axial slice ``z`` (its most suspicious source slice;
        None → the middle of its labelled slices) with the crosshair on the vertebra's centre
        there, so sagittal and coronal cut through it too."""
        labels = self.overlays.labels
        if self.volume is None:
            return
        if z is None or z < 0:
            if labels is None:
                return
            zs = np.nonzero((labels == label).any(axis=(1, 2)))[0]
            if zs.size == 0:
                return
            z = int(zs[zs.size // 2])
        y, x = self.cursor[1], self.cursor[2]
        if labels is not None and 0 <= z < labels.shape[0]:
            ys, xs = np.nonzero(labels[z] == label)
            if ys.size:  # the labelled pixel nearest the centroid (rings have hollow centres)
                i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
                y, x = int(ys[i]), int(xs[i])
        self.set_cursor((z, y, x))

    # ---------------------------------------------------------------- thick slab
    def set_slab(self, mode: str, thickness_mm: float | None = None) -> None:
        """Thick-slab MIP / MinIP of ``thickness_mm`` around each view's slice ("off": none)."""
        if mode not in SLAB_MODES:
            raise ValueError(f"unknown slab mode {mode!r}")
        self.slab_mode = mode
        if thickness_mm is not None:
            self.slab_mm = float(max(0.0, thickness_mm))
        self.changed.emit("window")

    def slab_range(self, orientation: Orientation) -> tuple[int, int]:
        """First and last slice (inclusive) the current slab of ``orientation`` covers."""
        index = self.slice_index(orientation)
        if self.slab_mode == "off" or not self.planes:
            return index, index
        plane = self.planes[orientation]
        step = plane.spacing[orientation.index_axis] or 1.0
        half = round(self.slab_mm / step / 2.0)
        return max(0, index - half), min(plane.n_slices - 1, index + half)

    def slab_caption(self, orientation: Orientation) -> str:
        if self.slab_mode == "off" or not self.planes:
            return ""
        lo, hi = self.slab_range(orientation)
        step = self.planes[orientation].spacing[orientation.index_axis]
        name = "MIP" if self.slab_mode == "mip" else "MinIP"
        return f"  {name} {(hi - lo + 1) * step:.0f} mm"

    def page_slice(self, orientation: Orientation, pages: int) -> None:
        self.step_slice(orientation, pages * PAGE_SLICES)

    # ---------------------------------------------------------------- window / level
    def set_window(self, window: Window) -> None:
        self.window = Window(
            float(window.center), max(MIN_WIDTH_HU, float(window.width)), window.name
        )
        self.changed.emit("window")

    def apply_preset(self, number: int) -> None:
        """Presets 1–4: bone, soft tissue, brain, lung (``DISPLAY_PRESETS`` order)."""
        if not 1 <= number <= len(DISPLAY_PRESETS):
            raise ValueError(f"no window preset {number}")
        self.set_window(DISPLAY_PRESETS[number - 1])

    def drag_window(self, dx: float, dy: float) -> None:
        """Left-drag: right widens the window (less contrast), down raises the level (darker).
        Sensitivity grows with the current width so narrow and wide windows both feel right."""
        step = max(1.0, self.window.width / 256.0)
        self.set_window(
            Window(self.window.center + dy * step, self.window.width + dx * step, "Custom")
        )

    def toggle_invert(self) -> None:
        self.invert = not self.invert
        self.changed.emit("window")

    # ---------------------------------------------------------------- zoom / pan
    def drag_pan(self, orientation: Orientation, dx: float, dy: float) -> None:
        t = self.views[orientation]
        t.pan_x += dx
        t.pan_y += dy
        self.changed.emit("view")

    def drag_zoom(self, orientation: Orientation, dy: float) -> None:
        """Right-drag: up zooms in, down zooms out (exponential, clamped 0.25×–16×)."""
        t = self.views[orientation]
        t.zoom = float(np.clip(t.zoom * math.exp(-dy / 100.0), MIN_ZOOM, MAX_ZOOM))
        self.changed.emit("view")

    def reset(self) -> None:
        """Space: window from the header (or bone), no invert, fit to window, no pan."""
        self.window = self.initial_window
        self.invert = False
        self.views = {o: ViewTransform() for o in Orientation}
        self.changed.emit("window")
        self.changed.emit("view")

    # ---------------------------------------------------------------- probing
    def probe(self, orientation: Orientation, row: float, col: float) -> Probe | None:
        """What is at displayed pixel (row, col) of the current slice in ``orientation``
        (``None`` outside the image)."""
        if self.volume is None:
            return None
        plane = self.planes[orientation]
        rows, cols = plane.image_shape
        if not (0 <= row < rows and 0 <= col < cols):
            return None
        idx = self.slice_index(orientation)
        z, y, x = (int(v) for v in plane.to_voxel(int(row), int(col), idx))
        lps = self.volume.voxel_to_lps(x, y, z)
        labels, heat = self.overlays.labels, self.overlays.heatmap
        return Probe(
            orientation=orientation,
            slice_index=idx,
            n_slices=plane.n_slices,
            voxel=(z, y, x),
            lps_mm=(float(lps[0]), float(lps[1]), float(lps[2])),
            hu=float(self.volume.hu[z, y, x]),
            label=int(labels[z, y, x]) if labels is not None else 0,
            heat=float(heat[z, y, x]) if heat is not None else None,
        )
