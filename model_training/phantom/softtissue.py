"""Soft tissue of the neck: skin, fat, muscle, airway, larynx, thyroid, spinal canal.

Everything is drawn per slice from a cranio-caudal profile: the level z of each slice in the
anatomy frame (X left, Y posterior, Z superior, mm; origin at the T1 body centre) selects the
neck size, airway shape and spine position. In-plane anatomy coordinates of a pixel are an
affine function of its index, so each structure is computed on a [z, y, x] box with
broadcasting and no per-voxel Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AIR, FAT, MUSCLE, CSF = -1000.0, -100.0, 50.0, 18.0


@dataclass(frozen=True)
class SoftTissueParams:
    """Per-study soft-tissue shape (mm) and densities (HU)."""

    neck_a: float  # half width of the neck
    neck_b: float  # half AP depth
    shoulder: float  # extra half width at the shoulders
    fat: float  # subcutaneous fat thickness
    muscle_hu: float
    fat_hu: float
    airway_scale: float
    cartilage_hu: float  # laryngeal cartilage (calcified in the elderly)
    fat_planes: tuple[tuple[float, float, float, float], ...]  # (x, y-offset, a, b)


def sample_params(rng: np.random.Generator) -> SoftTissueParams:
    planes = tuple(
        (
            float(sx * rng.uniform(18, 34)),
            float(rng.uniform(-25, 40)),
            float(rng.uniform(8, 16)),
            float(rng.uniform(6, 14)),
        )
        for sx in (-1, 1, -1, 1)[: int(rng.integers(2, 5))]
    )
    return SoftTissueParams(
        neck_a=float(rng.uniform(52, 64)),
        neck_b=float(rng.uniform(50, 60)),
        shoulder=float(rng.uniform(60, 120)),
        fat=float(rng.uniform(3, 12)),
        muscle_hu=float(rng.uniform(42, 60)),
        fat_hu=float(rng.uniform(-115, -80)),
        airway_scale=float(rng.uniform(0.85, 1.15)),
        cartilage_hu=float(rng.uniform(120, 450)),
        fat_planes=planes,
    )


def _smooth(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


@dataclass(frozen=True)
class Profile:
    """Cranio-caudal landmarks in the anatomy frame: Z (mm) of vertebra centres C1..C7, T1 and
    the Y of their body centres; body half depth and canal size per level."""

    z: np.ndarray  # [8] C1..T1 centre Z, decreasing
    y: np.ndarray  # [8] body-centre Y
    half_depth: np.ndarray  # [8]
    canal_w: np.ndarray  # [8]
    canal_d: np.ndarray  # [8]

    def at(self, zq: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.interp(zq, self.z[::-1], values[::-1])


@dataclass(frozen=True)
class Plane:
    """Anatomy (X, Y) of pixel (x=i, y=j) in slice k: ``m @ (i, j) + off[k]`` (mm)."""

    m: np.ndarray  # 2×2
    off: np.ndarray  # [z, 2]
    shape: tuple[int, int, int]

    def coords(self, zb: slice, ys: slice, xs: slice) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(xs.start, xs.stop, dtype=np.float32)[None, None, :]
        j = np.arange(ys.start, ys.stop, dtype=np.float32)[None, :, None]
        o = self.off[zb].astype(np.float32)
        x = self.m[0, 0] * i + self.m[0, 1] * j + o[:, 0, None, None]
        y = self.m[1, 0] * i + self.m[1, 1] * j + o[:, 1, None, None]
        return x, y

    def box(self, zb: slice, xc, yc, rx, ry) -> tuple[slice, slice] | None:
        """Pixel box holding the per-slice rectangles centre ± radius over slices ``zb``."""
        inv = np.linalg.inv(self.m)
        pts = []
        for sx in (-1, 1):
            for sy in (-1, 1):
                d = np.stack([xc + sx * rx, yc + sy * ry], -1) - self.off[zb]
                pts.append(d @ inv.T)
        ij = np.concatenate(pts)
        i0, j0 = np.floor(ij.min(0)).astype(int) - 1
        i1, j1 = np.ceil(ij.max(0)).astype(int) + 2
        _, ny, nx = self.shape
        i0, i1, j0, j1 = max(i0, 0), min(i1, nx), max(j0, 0), min(j1, ny)
        if i0 >= i1 or j0 >= j1:
            return None
        return slice(j0, j1), slice(i0, i1)


def draw_soft_tissue(
    hu: np.ndarray, plane: Plane, zs: np.ndarray, prof: Profile, p: SoftTissueParams
) -> dict[str, np.ndarray]:
    """Fill ``hu`` [z, y, x] in place; ``zs`` [z] is the anatomy Z of each slice.

    Returns per-slice neck centre Y and half axes (mm, anatomy frame).
    """
    z_c1, z_c3, z_c5, z_c6, z_c7 = prof.z[0], prof.z[2], prof.z[4], prof.z[5], prof.z[6]
    nz = hu.shape[0]
    yb = prof.at(zs, prof.y)
    bd = prof.at(zs, prof.half_depth)
    below = _smooth((z_c7 + 6.0 - zs) / 40.0)  # shoulders
    above = _smooth((zs - z_c3) / 35.0)  # jaw and skull base
    a = p.neck_a + p.shoulder * below + 10.0 * above
    b = p.neck_b + 8.0 * below + 12.0 * above
    cy = yb + 14.0 - 10.0 * above + 4.0 * below
    fat = p.fat * (1 + 1.2 * below)

    def col(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)[:, None, None]

    full = slice(0, nz), slice(0, hu.shape[1]), slice(0, hu.shape[2])
    x, y = plane.coords(*full)
    x *= col(1.0 / a)
    y -= col(cy)
    y *= col(1.0 / b)
    x *= x
    y *= y
    q = 0.55 * (x + y) + 0.45 * (x * x + y * y)  # a rounded-square neck outline
    del x, y
    inner = col((1.0 - fat / np.minimum(a, b)) ** 2)
    hu[...] = np.where(q > 1.0, AIR, np.where(q > inner, p.fat_hu, p.muscle_hu))
    del q

    everywhere = np.ones(nz, bool)
    # thin fat planes between muscle groups (visible in the soft-tissue window)
    for fx, fy, fa, fb in p.fat_planes:
        _ellipse(
            hu,
            plane,
            np.full(nz, fx),
            yb + fy,
            np.full(nz, fa),
            np.full(nz, fb),
            p.fat_hu,
            zs > z_c7 - 10,
            band=1.2,
        )

    # spinal canal (CSF / cord), drawn before bone
    cw = prof.at(zs, prof.canal_w)
    cd = prof.at(zs, prof.canal_d)
    _ellipse(hu, plane, np.zeros(nz), yb + bd + cd / 2 + 0.5, cw / 2 - 2.0, cd / 2, CSF, everywhere)

    # airway: pharynx above C4, larynx C4–C6, trachea below
    s = p.airway_scale
    t_lar = _smooth((prof.z[3] - zs) / 8.0)  # 0 above C4, 1 below
    t_tra = _smooth((z_c6 - zs) / 10.0)
    rx = s * ((16.0 * (1 - t_lar) + 9.5 * t_lar) * (1 - t_tra) + 8.5 * t_tra)
    ry = s * ((7.5 * (1 - t_lar) + 10.0 * t_lar) * (1 - t_tra) + 8.0 * t_tra)
    prevert = 4.0 + 11.0 * _smooth((z_c5 - zs) / 25.0 + 0.4)
    ay = yb - bd - prevert - ry
    top = zs < z_c1 + 15.0
    _ellipse(hu, plane, np.zeros(nz), ay, rx, ry, AIR, top)
    # thyroid cartilage around the larynx, tracheal rings below
    _ellipse(
        hu,
        plane,
        np.zeros(nz),
        ay - 1.5,
        rx + 4.0,
        ry + 3.5,
        p.cartilage_hu,
        (t_lar > 0.2) & top,
        band=1.1,
        front_only=True,
    )
    # thyroid gland and oesophagus low in the neck
    low = t_tra > 0.3
    for sx in (-1.0, 1.0):
        _ellipse(
            hu, plane, sx * (rx + 9.0), ay + 2.0, np.full(nz, 7.0), np.full(nz, 10.0), 95.0, low
        )
    _ellipse(
        hu,
        plane,
        np.full(nz, -3.0),
        yb - bd - 4.0,
        np.full(nz, 7.0),
        np.full(nz, 3.5),
        p.muscle_hu - 10.0,
        low,
    )
    return {"cy": cy, "a": a, "b": b}


def _ellipse(
    hu,
    plane: Plane,
    xc,
    yc,
    ra,
    rb,
    value: float,
    zmask: np.ndarray,
    band: float = 0.0,
    front_only: bool = False,
) -> None:
    """Set pixels inside the per-slice ellipses (or, with ``band`` > 0, on an elliptic band
    that thick, mm) to ``value`` in the slices where ``zmask``."""
    zsel = np.flatnonzero(zmask)
    if zsel.size == 0:
        return
    zb = slice(zsel[0], zsel[-1] + 1)
    box = plane.box(zb, xc[zb], yc[zb], ra[zb] + band, rb[zb] + band)
    if box is None:
        return
    ys, xs = box
    x, y = plane.coords(zb, ys, xs)

    def c(v):
        return np.asarray(v[zb], dtype=np.float32)[:, None, None]

    dx, dy = x - c(xc), y - c(yc)
    r2 = (dx / c(ra)) ** 2 + (dy / c(rb)) ** 2
    inside = r2 < 1.0
    sel = np.abs(np.sqrt(r2) - 1.0) * np.minimum(c(ra), c(rb)) < band / 2 if band else inside
    if front_only:
        sel &= dy < 0
    sel &= np.asarray(zmask)[zb][:, None, None]
    hu[zb, ys, xs][sel] = value
