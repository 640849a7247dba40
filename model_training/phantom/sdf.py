"""Bone building blocks as (approximate) signed distance functions, vectorised in numpy.

Every primitive is evaluated on local coordinate arrays ``u, v, w`` (mm, float32, any common
shape): u = patient left, v = posterior, w = superior in the structure's own frame. The result is
the signed distance in mm (negative inside). ``bounds()`` gives the local axis-aligned box that
holds the primitive, so callers evaluate it only where it can be non-empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Vec3 = tuple[float, float, float]


def _rounded_box2(qa: np.ndarray, qb: np.ndarray, rr: float) -> np.ndarray:
    """2D rounded-box combination of two signed slab distances (both already shrunk by rr)."""
    oa = np.maximum(qa, 0.0)
    ob = np.maximum(qb, 0.0)
    return np.sqrt(oa * oa + ob * ob) + np.minimum(np.maximum(qa, qb), 0.0) - rr


def _ellipse_distance(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance to the ellipse (x/a)² + (y/b)² = 1 (Quilez bound)."""
    k0 = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    k1 = np.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with radii ``r``, optionally rotated by ``tilt_deg`` about the u axis."""

    c: Vec3
    r: Vec3
    tilt_deg: float = 0.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.c), np.asarray(self.r, dtype=float)
        if self.tilt_deg:
            r = np.array([r[0], max(r[1:]), max(r[1:])])
        return c - r, c + r

    def __call__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        x, y, z = u - self.c[0], v - self.c[1], w - self.c[2]
        if self.tilt_deg:
            t = np.deg2rad(self.tilt_deg)
            y, z = np.cos(t) * y + np.sin(t) * z, -np.sin(t) * y + np.cos(t) * z
        a, b, c = self.r
        k0 = np.sqrt((x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2)
        k1 = np.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2 + (z / (c * c)) ** 2)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


@dataclass(frozen=True)
class Capsule:
    """A rod from ``a`` to ``b`` of radius ``r``; ``w_scale`` stretches it cranio-caudally
    (laminae and spinous processes are taller than thick)."""

    a: Vec3
    b: Vec3
    r: float
    w_scale: float = 1.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.asarray(self.a), np.asarray(self.b)
        pad = np.array([self.r, self.r, self.r * self.w_scale])
        return np.minimum(a, b) - pad, np.maximum(a, b) + pad

    def __call__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        s = self.w_scale
        ex, ey, ez = (self.b[0] - self.a[0], self.b[1] - self.a[1], (self.b[2] - self.a[2]) / s)
        x, y, z = u - self.a[0], v - self.a[1], (w - self.a[2]) / s
        ee = max(ex * ex + ey * ey + ez * ez, 1e-9)
        h = np.clip((x * ex + y * ey + z * ez) / ee, 0.0, 1.0)
        dx, dy, dz = x - ex * h, y - ey * h, z - ez * h
        return np.sqrt(dx * dx + dy * dy + dz * dz) - self.r


@dataclass(frozen=True)
class Body:
    """A vertebral body: elliptic cylinder (half width ``a``, half depth ``b``) from
    ``-h_bottom`` to ``h_top`` around ``c``, with a flat posterior wall; the upper end-plate
    rises by ``uncinate`` mm at the lateral rims (concave side to side), edges rounded by
    ``round_mm``."""

    c: Vec3
    a: float
    b: float
    h_top: float
    h_bottom: float
    uncinate: float = 0.0
    round_mm: float = 1.5

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.c)
        lo = c - np.array([self.a, self.b, self.h_bottom])
        hi = c + np.array([self.a, self.b, self.h_top + self.uncinate])
        return lo, hi

    def __call__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        x, y, z = u - self.c[0], v - self.c[1], w - self.c[2]
        rr = self.round_mm
        # rounded front and sides, flat posterior wall (facing the canal)
        d_r = np.maximum(
            _ellipse_distance(x, y - 0.25 * self.b, self.a * 1.02, self.b * 1.25), y - self.b
        )
        top = self.h_top + self.uncinate * np.minimum((x / self.a) ** 4, 1.0)
        d_z = np.maximum(z - top, -z - self.h_bottom)
        return _rounded_box2(d_r + rr, d_z + rr, rr)


@dataclass(frozen=True)
class Ring:
    """A horizontal bony ring around the ellipse of half axes ``(A, B)`` centred at ``c``:
    in-plane half thickness ``t``, half height ``hh``. ``v_range`` keeps only the part with
    v in [lo, hi] (an arch)."""

    c: Vec3
    A: float
    B: float
    t: float
    hh: float
    v_range: tuple[float, float] | None = None
    round_mm: float = 1.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.c)
        pad = np.array([self.A + self.t, self.B + self.t, self.hh])
        lo, hi = c - pad, c + pad
        if self.v_range is not None:
            lo[1] = max(lo[1], self.v_range[0])
            hi[1] = min(hi[1], self.v_range[1])
        return lo, hi

    def __call__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        x, y, z = u - self.c[0], v - self.c[1], w - self.c[2]
        rr = min(self.round_mm, self.t * 0.9, self.hh * 0.9)
        d = np.abs(_ellipse_distance(x, y, self.A, self.B)) - self.t
        sd = _rounded_box2(d + rr, np.abs(z) - self.hh + rr, rr)
        if self.v_range is not None:
            lo, hi = self.v_range
            sd = np.maximum(sd, np.maximum(lo - v, v - hi))
        return sd


@dataclass(frozen=True)
class Shell:
    """An ellipsoidal shell (skull) of thickness ``t`` with a vertical cylindrical hole of half
    axes ``hole`` (foramen magnum) through it around (c_u + hole_c[0], c_v + hole_c[1])."""

    c: Vec3
    r: Vec3
    t: float
    hole: tuple[float, float] = (0.0, 0.0)
    hole_c: tuple[float, float] = (0.0, 0.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.c), np.asarray(self.r, dtype=float)
        return c - r, c + r

    def __call__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        outer = Ellipsoid(self.c, self.r)(u, v, w)
        sd = np.abs(outer + self.t / 2) - self.t / 2
        if self.hole[0] > 0:
            x = u - self.c[0] - self.hole_c[0]
            y = v - self.c[1] - self.hole_c[1]
            sd = np.maximum(sd, -_ellipse_distance(x, y, self.hole[0], self.hole[1]))
        return sd


@dataclass(frozen=True)
class Pillar:
    """Articular pillar: a vertical elliptic column (half axes ``ru``, ``rv`` around
    (c_u, c_v)) cut by two parallel facet planes sloping down toward posterior (``slope`` =
    tan of the facet angle): top w = up − slope·(v − c_v), bottom w = −down − slope·(v − c_v).
    Neighbouring pillars meet along these oblique facet joints."""

    c: tuple[float, float]
    ru: float
    rv: float
    up: float
    down: float
    slope: float = 1.0
    round_mm: float = 1.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        dw = abs(self.slope) * self.rv
        lo = np.array([self.c[0] - self.ru, self.c[1] - self.rv, -self.down - dw])
        hi = np.array([self.c[0] + self.ru, self.c[1] + self.rv, self.up + dw])
        return lo, hi

    def __call__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        x, y = u - self.c[0], v - self.c[1]
        rr = self.round_mm
        d_r = _ellipse_distance(x, y, self.ru, self.rv)
        tilt = w + self.slope * y
        d_z = np.maximum(tilt - self.up, -tilt - self.down) / np.sqrt(1.0 + self.slope**2)
        return _rounded_box2(d_r + rr, d_z + rr, rr)
