"""Soft tissue of the neck: skin, fat, muscle, airway, larynx, thyroid, spinal canal.

Everything is drawn per slice from a cranio-caudal profile: the level z of each slice in the
anatomy frame (X left, Y posterior, Z superior, mm; origin at the T1 body centre) selects the
neck size, airway shape and spine position. In-plane anatomy coordinates of a pixel are an
affine function of its index, so each structure is computed on a [z, y, x] box with
broadcasting and no per-voxel Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

AIR, FAT, MUSCLE, CSF, LUNG = -1000.0, -100.0, 50.0, 18.0, -850.0


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
    fat_planes: tuple[tuple[float, ...], ...]  # (x, y-offset, a, b, arc start, arc length)
    vessel_hu: float = 45.0  # carotid arteries and jugular veins (contrast: 150–350 HU)
    jugular_hu: float = 45.0


def sample_params(rng: np.random.Generator) -> SoftTissueParams:
    # fat planes between muscle groups: arcs (x, y offset from the spine, half axes, arc
    # start and length as fractions of the outline)
    planes = tuple(
        (
            float(rng.choice((-1, 1)) * rng.uniform(8, 40)),
            float(rng.uniform(-30, 45)),
            float(rng.uniform(8, 22)),
            float(rng.uniform(6, 16)),
            float(rng.uniform(0, 1)),
            float(rng.uniform(0.3, 0.8)),
        )
        for _ in range(int(rng.integers(4, 9)))
    )
    return SoftTissueParams(
        neck_a=float(rng.uniform(52, 64)),
        neck_b=float(rng.uniform(50, 60)),
        shoulder=float(rng.uniform(60, 120)),
        fat=float(rng.uniform(3, 12)),
        muscle_hu=float(rng.uniform(25, 60)),
        fat_hu=float(rng.uniform(-115, -80)),
        airway_scale=float(rng.uniform(0.85, 1.15)),
        cartilage_hu=float(rng.uniform(120, 450)),
        fat_planes=planes,
        **_vessels(rng),
    )


def _vessels(rng: np.random.Generator) -> dict[str, float]:
    """Vessel HU: without contrast (blood 35–55 HU), or with contrast in an arterial (bright
    arteries, greyer veins) or venous phase — bright vessels beside the spine confuse models."""
    u = rng.random()
    blood = float(rng.uniform(35, 55))
    if u < 0.6:
        return {"vessel_hu": blood, "jugular_hu": blood}
    if u < 0.85:  # arterial phase
        return {
            "vessel_hu": float(rng.uniform(200, 380)),
            "jugular_hu": float(rng.uniform(60, 140)),
        }
    v = float(rng.uniform(130, 220))  # venous phase
    return {"vessel_hu": v, "jugular_hu": v}


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
    # cranial vault: centre Z, Y and half axes (X, Y, Z) in the anatomy frame (mm)
    skull: tuple[float, float, float, float, float] | None = None

    def at(self, zq: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.interp(zq, self.z[::-1], values[::-1])


@dataclass(frozen=True)
class Plane:
    """Anatomy (X, Y) of pixel (x=i, y=j) in slice k: ``m @ (i, j) + off[k]`` (mm)."""

    m: np.ndarray  # 2×2
    off: np.ndarray  # [z, 2]
    shape: tuple[int, int, int]

    @property
    def m_inv_t(self) -> np.ndarray:
        cached = self.__dict__.get("_m_inv_t")
        if cached is None:
            cached = np.linalg.inv(self.m).T
            object.__setattr__(self, "_m_inv_t", cached)
        return cached


_SHIFT = 4  # cv2 fractional bits
_ONE = 1 << _SHIFT
_T = np.linspace(0.0, 2 * np.pi, 73)[:-1]
_COS, _SIN = np.cos(_T), np.sin(_T)


def _outline(xc, yc, a, b, p=2.0) -> np.ndarray:
    """Points [.., 72, 2] of the superellipses |x/a|^p + |y/b|^p = 1 (p = 2: an ellipse); the
    parameters are scalars or per-slice arrays [z]."""
    e = 2.0 / np.asarray(p, dtype=float)[..., None]
    x = np.asarray(a, dtype=float)[..., None] * np.sign(_COS) * np.abs(_COS) ** e
    y = np.asarray(b, dtype=float)[..., None] * np.sign(_SIN) * np.abs(_SIN) ** e
    x = x + np.asarray(xc, dtype=float)[..., None]
    y = y + np.asarray(yc, dtype=float)[..., None]
    x, y = np.broadcast_arrays(x, y)
    return np.stack([x, y], -1)


def draw_soft_tissue(
    hu: np.ndarray, plane: Plane, zs: np.ndarray, prof: Profile, p: SoftTissueParams
) -> dict[str, np.ndarray]:
    """Fill ``hu`` [z, y, x] in place, slice by slice with filled polygons (cv2);
    ``zs`` [z] is the anatomy Z of each slice. Returns per-slice neck centre Y and half axes
    (mm, anatomy frame)."""
    z_c1, z_c3, z_c5, z_c6, z_c7 = prof.z[0], prof.z[2], prof.z[4], prof.z[5], prof.z[6]
    yb = prof.at(zs, prof.y)
    bd = prof.at(zs, prof.half_depth)
    below = _smooth((z_c5 - zs) / 40.0)  # shoulders widen the section from C5 down
    above = _smooth((zs - z_c3) / 35.0)  # jaw and skull base
    a = p.neck_a + p.shoulder * below + 10.0 * above
    b = p.neck_b + 15.0 * below + 12.0 * above
    cy = yb + 14.0 - 10.0 * above + 4.0 * below
    fat = p.fat * (1 + 0.3 * below)
    shape = 2.6 - 0.6 * below  # rounded-square neck, oval shoulders
    cw = prof.at(zs, prof.canal_w)
    cd = prof.at(zs, prof.canal_d)
    s = p.airway_scale
    t_lar = _smooth((prof.z[3] - zs) / 8.0)  # 0 above C4, 1 below
    t_tra = _smooth((z_c6 - zs) / 10.0)
    rx = s * ((16.0 * (1 - t_lar) + 9.5 * t_lar) * (1 - t_tra) + 8.5 * t_tra)
    ry = s * ((7.5 * (1 - t_lar) + 10.0 * t_lar) * (1 - t_tra) + 8.0 * t_tra)
    prevert = 4.0 + 11.0 * _smooth((z_c5 - zs) / 25.0 + 0.4)
    ay = yb - bd - prevert - ry
    px_mm = float(np.sqrt(abs(np.linalg.det(plane.m))))

    nz = hu.shape[0]
    zero = np.zeros(nz)

    def px(xy: np.ndarray) -> np.ndarray:
        """Per-slice outlines [z, n, 2] (anatomy mm) → cv2 fixed-point pixels."""
        xy = np.broadcast_to(xy, (nz, *xy.shape[-2:]))
        ij = (xy - plane.off[:, None, :]) @ plane.m_inv_t
        return np.rint(ij * _ONE).astype(np.int32)

    skin = px(_outline(zero, cy, a, b, shape))
    muscle = px(_outline(zero, cy, a - fat, b - fat, shape))
    head = None
    if prof.skull is not None:  # scalp over the cranial vault, brain inside it
        szc, syc, sa, sb, sc = prof.skull
        e = np.sqrt(np.clip(1.0 - ((zs - szc) / sc) ** 2, 0.0, 1.0))
        head_on = e * sa > 0.5 * a
        head = (
            head_on,
            px(_outline(zero, zero + syc - 4.0, sa * e + 6.0, sb * e + 8.0)),
            px(_outline(zero, zero + syc - 4.0, sa * e + 2.0, sb * e + 3.0)),
        )
    # lungs below the apices (≈ 15 mm above the T1 body centre, the anatomy origin)
    depth = 15.0 - zs
    lung_on = depth > 0
    rl = np.minimum(50.0, 6.0 + 1.1 * np.maximum(depth, 0.0))
    rb_l = np.minimum(55.0, 8.0 + 1.0 * np.maximum(depth, 0.0))
    yl = yb - 8.0 + 0.2 * np.maximum(depth, 0.0)
    lungs = [px(_outline(sx * (20.0 + 0.9 * rl), yl, rl, rb_l)) for sx in (-1.0, 1.0)]
    planes = []
    for fx, fy, fa, fb, start, length in p.fat_planes:
        pts = np.roll(_outline(zero + fx, yb + fy, fa, fb), -int(start * len(_T)), axis=1)
        planes.append(px(pts[:, : int(length * len(_T))]))
    canal = px(_outline(zero, yb + bd + cd / 2 + 0.5, cw / 2 - 2.0, cd / 2))
    thyroid = [px(_outline(sx * (rx + 9.0), ay + 2.0, 7.0, 10.0)) for sx in (-1.0, 1.0)]
    gullet = px(_outline(zero - 3.0, yb - bd - 4.0, 7.0, 3.5))
    # common/internal carotid arteries and internal jugular veins beside the airway
    vx = rx + 15.0
    carotids = [px(_outline(sx * vx, ay + 6.0, 3.3, 3.3)) for sx in (-1.0, 1.0)]
    jugulars = [px(_outline(sx * (vx + 9.0), ay + 9.0, 5.5, 4.5)) for sx in (-1.0, 1.0)]
    cartilage = px(_outline(zero, ay - 1.5, rx + 4.0, ry + 3.5)[:, _SIN < 0])
    airway = px(_outline(zero, ay, rx, ry))
    plane_hu = (p.fat_hu + p.muscle_hu) / 2
    th_plane = max(1, round(1.0 / px_mm))
    th_cart = max(1, round(1.1 / px_mm))
    line = cv2.LINE_8

    layer = np.zeros(hu.shape[1:], np.uint8)  # 0 air, 1 subcutaneous fat, 2 muscle
    for k in range(nz):
        img = hu[k]
        img.fill(p.muscle_hu)
        if zs[k] > z_c7 - 10:  # fat planes between muscle groups (inside the muscle only)
            cv2.polylines(
                img, [q[k] for q in planes], False, float(plane_hu), th_plane, line, _SHIFT
            )
        layer.fill(0)
        cv2.fillPoly(layer, [skin[k]], 1, line, _SHIFT)
        cv2.fillPoly(layer, [muscle[k]], 2, line, _SHIFT)
        if head is not None and head[0][k]:
            cv2.fillPoly(layer, [head[1][k]], 1, line, _SHIFT)
            cv2.fillPoly(layer, [head[2][k]], 2, line, _SHIFT)
        img[layer == 0] = AIR
        img[layer == 1] = p.fat_hu
        cv2.fillPoly(img, [canal[k]], CSF, line, _SHIFT)  # spinal canal, drawn before bone
        if lung_on[k]:
            cv2.fillPoly(img, [q[k] for q in lungs], LUNG, line, _SHIFT)
        if zs[k] > z_c1 + 15.0:
            continue
        if t_tra[k] > 0.3:  # thyroid lobes and oesophagus
            cv2.fillPoly(img, [q[k] for q in thyroid], 95.0, line, _SHIFT)
            cv2.fillPoly(img, [gullet[k]], float(p.muscle_hu - 10.0), line, _SHIFT)
        if t_lar[k] > 0.2:  # thyroid cartilage / tracheal rings, in front of the airway
            cv2.polylines(img, [cartilage[k]], False, float(p.cartilage_hu), th_cart, line, _SHIFT)
        cv2.fillPoly(img, [airway[k]], AIR, line, _SHIFT)
        if zs[k] < z_c1 - 5.0:
            cv2.fillPoly(img, [q[k] for q in carotids], float(p.vessel_hu), line, _SHIFT)
            cv2.fillPoly(img, [q[k] for q in jugulars], float(p.jugular_hu), line, _SHIFT)
    return {"cy": cy, "a": a, "b": b}
