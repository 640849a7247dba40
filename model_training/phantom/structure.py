"""What the phantom draws: bony structures in their own frames, the edits fractures and
mimics make to them, and the grid and arrays they are drawn into (see :mod:`.render`).

A :class:`Structure` is a set of SDF primitives (see :mod:`.sdf`) in its own frame (u left,
v posterior, w superior, mm) placed in patient LPS space by ``center`` and ``rot`` (columns =
the u, v, w axes in LPS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Grid:
    """Voxel grid: ``shape`` (z, y, x); ``affine`` maps voxel (x, y, z, 1) → LPS mm."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    pixel_mm: float
    slice_mm: float
    thickness_mm: float

    @property
    def nsub(self) -> int:
        """Sub-slices per slice so bone is sampled at least every 1.1 mm along z."""
        return max(1, math.ceil(self.thickness_mm / 1.1 - 1e-6))


@dataclass(frozen=True)
class Shift:
    """Fracture displacement: the side ``n·(p − p0) > 0`` moves by ``vec`` mm, fading to zero
    at ``radius`` mm from p0 (a fragment step-off at the line, no second break)."""

    p0: Vec3
    n: Vec3
    vec: Vec3
    radius: float
    parts: tuple[str, ...] | None = None  # the parts that move (None: all)


@dataclass(frozen=True)
class Compression:
    """Body height loss: end-plate at ``w_top`` sinks by ``loss`` × (its height above
    ``w_bottom``), weighted ``anterior`` (1 = wedge, 0 = uniform) toward the front."""

    w_top: float
    w_bottom: float
    half_depth: float
    half_width: float
    loss: float
    anterior: float = 1.0


@dataclass(frozen=True)
class Cut:
    """A lucent line: bone within ``gap``/2 of the (wavy) plane through p0 with normal n,
    inside radius mm of p0, becomes ``hu`` (clot/fragments 50–300 HU). ``fracture`` is the
    index into the study's fracture list, or -1 for a mimic (vascular channel)."""

    p0: Vec3
    n: Vec3
    gap: float
    radius: float
    hu: float = 150.0
    wave: float = 0.4
    fracture: int = -1


@dataclass(frozen=True)
class Lucency:
    """A lucent tube (vascular channel, mimic) from a to b, radius r, filled with ``hu``."""

    a: Vec3
    b: Vec3
    r: float
    hu: float = 60.0


@dataclass(frozen=True)
class Dense:
    """Extra marrow density ``add_hu`` (sclerosis / impaction) inside an ellipsoid."""

    c: Vec3
    r: Vec3
    add_hu: float


@dataclass(frozen=True)
class MaskRegion:
    """Fractured bone of fracture ``fracture`` inside an ellipsoid (compression, burst)."""

    c: Vec3
    r: Vec3
    fracture: int


@dataclass
class Structure:
    name: str
    label: int  # 0 = background bone (occiput, T1, ribs…), 1..7 = C1..C7
    center: np.ndarray  # LPS mm
    rot: np.ndarray  # 3×3, columns = local u, v, w in LPS
    parts: dict[str, list] = field(default_factory=dict)  # part name → SDF primitives
    cortex_hu: float = 1300.0
    marrow_hu: float = 350.0
    cortex_mm: float = 1.0
    shifts: list[Shift] = field(default_factory=list)
    compressions: list[Compression] = field(default_factory=list)
    cuts: list[Cut] = field(default_factory=list)
    lucencies: list[Lucency] = field(default_factory=list)
    dense: list[Dense] = field(default_factory=list)
    mask_regions: list[MaskRegion] = field(default_factory=list)
    mask_margin: float = 2.5
    compact_parts: tuple[str, ...] = ()  # name prefixes of parts with compact (dense) marrow
    texture_hu: float = 0.0  # trabecular texture amplitude (SD, HU) in the marrow
    texture: tuple[float, ...] = ()  # lookup parameters of :func:`.texture.lookup`

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        los, his = zip(*(p.bounds() for ps in self.parts.values() for p in ps))
        return np.min(los, axis=0), np.max(his, axis=0)

    def to_lps(self, p: Vec3) -> np.ndarray:
        return self.center + self.rot @ np.asarray(p, dtype=float)


@dataclass
class Canvas:
    """The arrays a study is drawn into ([z, y, x])."""

    hu: np.ndarray  # float32
    labels: np.ndarray  # uint8
    fracture: np.ndarray  # uint8
    # fracture index → flat indices (into [z, y, x]) of its fracture_mask voxels
    fracture_boxes: dict[int, list[np.ndarray]] = field(default_factory=dict)
