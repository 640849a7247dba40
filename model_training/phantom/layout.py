"""Where everything is: the spine curve in the anatomy frame, the pose of the neck in the
scanner, and the image grid.

Anatomy frame: X = patient left, Y = posterior, Z = superior (mm), origin at the T1 body centre.
Patient LPS = ``T + R @ anatomy``. Each vertebra has its own frame (u, v, w) rotated by the
sagittal tilt of the lordotic curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from . import artifacts
from .config import Acquisition, Confounders, PhantomConfig
from .structure import Grid
from .vertebrae import DISC_MM, LEVELS, VertebraGeometry, geometry


def rot_x(deg: float) -> np.ndarray:
    """Rotation about the left–right axis; positive tips the top toward anterior (−Y)."""
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@dataclass
class Spine:
    """Vertebra centres and frames in the anatomy frame, index 1..8 (C1..C7, T1)."""

    scale: float
    centers: dict[int, np.ndarray]
    rots: dict[int, np.ndarray]
    geoms: dict[int, VertebraGeometry]
    discs: dict[int, float]  # disc height below level k (k = 2..7)
    up: dict[int, float]  # centre → middle of the disc above (mm)
    down: dict[int, float]  # centre → middle of the disc below (mm)
    lordosis_deg: float

    def c1_condyle_w(self) -> float:
        return 8.0 * self.scale + 1.5

    def skull(self) -> tuple[float, float, float, float, float]:
        """Cranial vault (see :func:`.skeleton.occiput`): centre Z, Y and half axes X, Y, Z in
        the anatomy frame."""
        s = self.scale
        cz = self.c1_condyle_w() + 4.5 * s
        c = self.centers[1] + self.rots[1] @ np.array([0.0, 18.0 * s, cz + 72.0 * s])
        return (float(c[2]), float(c[1]), 66.0 * s, 80.0 * s, 74.0 * s)


def build_spine(rng: np.random.Generator, cfg: PhantomConfig, conf: Confounders) -> Spine:
    s = float(rng.uniform(*cfg.size_scale))
    lordosis = float(rng.uniform(*cfg.lordosis_deg))
    flex = float(rng.uniform(-cfg.tilt_deg, cfg.tilt_deg))
    geoms = {k: geometry(k, s) for k in range(1, 9)}
    discs = {}
    for k in range(2, 8):
        h = DISC_MM[k] * s * float(rng.uniform(0.9, 1.1))
        if k in conf.disc_narrowing:
            h *= float(rng.uniform(0.3, 0.55))
        discs[k] = h
    phi = {k: flex + lordosis / 2 - (7 - k) * lordosis / 5 for k in range(2, 8)}
    phi[8] = phi[7] + float(rng.uniform(4, 12))
    phi[1] = phi[2] - float(rng.uniform(0, 8))
    centers = {8: np.zeros(3)}
    for k in range(8, 2, -1):
        up_k = geoms[k].h_top + discs[k - 1] / 2
        dn = discs[k - 1] / 2 + geoms[k - 1].h_bottom
        centers[k - 1] = (
            centers[k]
            + rot_x(phi[k]) @ np.array([0, 0, up_k])
            + rot_x(phi[k - 1]) @ np.array([0, 0, dn])
        )
    g2 = geoms[2]
    c1_in_c2 = np.array([0.0, g2.dens_v + 1.0 * s, 17.5 * s + 1.5])
    centers[1] = centers[2] + rot_x(phi[2]) @ c1_in_c2
    rots = {k: rot_x(phi[k]) @ rot_z(float(rng.normal(0, 1.5))) for k in range(1, 9)}
    up = {k: geoms[k].h_top + discs[k - 1] / 2 for k in range(3, 9)}
    down = {k: geoms[k].h_bottom + discs[k] / 2 for k in range(2, 8)}
    # upper thoracic spine (background): T2, T3 below T1, the kyphosis beginning
    for k in (9, 10):
        geoms[k] = geometry(k, s)
        phi[k] = phi[k - 1] + float(rng.uniform(2, 6))
        d = 4.5 * s
        centers[k] = (
            centers[k - 1]
            - rot_x(phi[k - 1]) @ np.array([0, 0, geoms[k - 1].h_bottom + d / 2])
            - rot_x(phi[k]) @ np.array([0, 0, d / 2 + geoms[k].h_top])
        )
        rots[k] = rot_x(phi[k])
        up[k] = geoms[k].h_top + d / 2
        down[k] = geoms[k].h_bottom + d / 2
    down[8] = geoms[8].h_bottom + 2.25 * s
    # the head nods and turns mostly at C0–C2: C1 (and the skull on it) relative to C2
    nod = float(rng.uniform(-cfg.head_flexion_deg, cfg.head_flexion_deg))
    turn = float(rng.uniform(-cfg.head_rotation_deg, cfg.head_rotation_deg))
    rots[1] = rots[1] @ rot_z(turn) @ rot_x(nod * 0.3)
    return Spine(s, centers, rots, geoms, discs, up, down, lordosis)


@dataclass
class Pose:
    """Rigid placement of the anatomy frame in patient LPS: lps = t + r @ anatomy."""

    r: np.ndarray
    t: np.ndarray

    def to_lps(self, p: np.ndarray) -> np.ndarray:
        return self.t + self.r @ p


def sample_acquisition(rng: np.random.Generator, cfg: PhantomConfig) -> Acquisition:
    u = rng.random()
    coverage = (
        "head_neck"
        if u < cfg.head_neck_probability
        else "trauma"
        if u < cfg.head_neck_probability + cfg.trauma_probability
        else "neck"
    )
    lo, hi = cfg.pixel_spacing_mm
    floor = cfg.min_fov_mm / cfg.matrix
    ps = float(rng.uniform(max(lo, floor), max(hi, floor)))
    if coverage != "neck":  # a wider field of view: head and shoulders in the image
        flo, fhi = cfg.wide_fov_mm
        fov = float(rng.uniform(flo, 0.5 * (flo + fhi)) if coverage == "head_neck" else fhi)
        fov = float(rng.uniform(fov * 0.8, fov)) if coverage == "trauma" else fov
        ps = max(ps, fov / cfg.matrix)
    zlo, zhi = cfg.slice_spacing_mm
    dz = float(np.exp(rng.uniform(np.log(zlo), np.log(zhi))))
    dz = round(dz, 3)
    overlap = rng.random() < cfg.overlap_probability
    factor = float(rng.uniform(1.3, 2.0) if overlap else rng.uniform(1.0, 1.1))
    thick = round(max(dz, min(dz * factor, max(3.0, dz))), 3)
    kname = "soft" if rng.random() < cfg.soft_kernel_probability else "bone"
    kernel = artifacts.sample_kernel(rng, kname)
    nlo, nhi = cfg.noise_hu
    mid = float(np.sqrt(nlo * nhi))
    a, b = (nlo, min(nhi, 1.25 * mid)) if kname == "soft" else (max(nlo, 0.8 * mid), nhi)
    noise = float(np.exp(rng.uniform(np.log(a), np.log(b))))
    return Acquisition(
        matrix=cfg.matrix,
        pixel_spacing_mm=round(ps, 4),
        slice_spacing_mm=dz,
        slice_thickness_mm=thick,
        n_slices=0,
        noise_hu=round(noise, 2),
        fov_circle=bool(rng.random() < cfg.fov_circle_probability),
        table=bool(rng.random() < cfg.table_probability),
        kernel=kernel.to_dict(),
        extras={
            "beam_hardening_hu": round(float(rng.uniform(*cfg.beam_hardening_hu)), 4),
            "coverage": coverage,
        },
    )


def place(
    rng: np.random.Generator, cfg: PhantomConfig, spine: Spine, acq: Acquisition
) -> tuple[Pose, Grid]:
    """Pose the neck (rotation, tilt, position in the FOV) and build the image grid so that
    C1 to C7 are inside it, with the skull base above and T1 below."""
    r = rot_z(float(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))) @ rot_y(
        float(rng.uniform(-cfg.tilt_deg, cfg.tilt_deg))
    )
    # gantry tilt: the slices cut the neck obliquely (the image content of a tilted gantry;
    # the written geometry stays axial)
    tilt = 0.0
    if rng.random() < cfg.gantry_tilt_probability:
        tilt = float(rng.uniform(-cfg.gantry_tilt_deg, cfg.gantry_tilt_deg))
        r = rot_x(tilt) @ r
    acq.extras["gantry_tilt_deg"] = round(tilt, 2)
    n, ps, dz = acq.matrix, acq.pixel_spacing_mm, acq.slice_spacing_mm
    fov = n * ps
    ref = np.mean(
        [spine.centers[k] + spine.rots[k] @ np.array([0, 8.0, 0]) for k in range(1, 8)], axis=0
    )
    jit = min(cfg.position_jitter_mm, max(0.0, fov / 2 - 52.0))
    center = np.array([rng.uniform(-30, 30), rng.uniform(-30, 30) + 60.0, 0.0])
    target = center[:2] + rng.uniform(-jit, jit, 2)
    t = np.zeros(3)
    t[:2] = target - (r @ ref)[:2]
    t[2] = float(rng.uniform(-150, 50))
    pose = Pose(r, t)
    c1 = spine.centers[1]
    tops = [
        pose.to_lps(c1 + spine.rots[1] @ np.array([u, v, 5.0 * spine.scale]))
        for u in (-20, 20)
        for v in (-10, 28)
    ]
    g2 = spine.geoms[2]
    tops.append(pose.to_lps(spine.centers[2] + spine.rots[2] @ np.array([0, 0, g2.dens_top])))
    c7, g7 = spine.centers[7], spine.geoms[7]
    bots = [
        pose.to_lps(c7 + spine.rots[7] @ np.array([u, v, -g7.h_bottom]))
        for u in (-g7.a, g7.a)
        for v in (-g7.b, g7.b)
    ]
    above, below = cfg.margin_above_mm, cfg.margin_below_mm
    coverage = acq.extras.get("coverage", "neck")
    if coverage == "head_neck":  # skull base to the orbits or higher; down to T1–T2
        above, below = (50.0, 140.0), (25.0, 55.0)
    elif coverage == "trauma":  # head to the upper thorax (T3–T4)
        above, below = (40.0, 110.0), (60.0, 100.0)
    z_top = max(p[2] for p in tops) + float(rng.uniform(*above))
    z_bot = min(p[2] for p in bots) - float(rng.uniform(*below))
    nz = math.ceil((z_top - z_bot) / dz) + 1
    x0 = center[0] - (n - 1) / 2 * ps
    y0 = center[1] - (n - 1) / 2 * ps
    affine = np.array([[ps, 0, 0, x0], [0, ps, 0, y0], [0, 0, -dz, z_top], [0, 0, 0, 1.0]])
    acq.n_slices = nz
    acq.extras["fov_mm"] = round(fov, 2)
    acq.extras["lordosis_deg"] = round(spine.lordosis_deg, 2)
    # overlapping slices are drawn at their spacing, then averaged along z (slice_profile)
    drawn = acq.slice_thickness_mm if acq.slice_thickness_mm <= 1.1 * dz else dz
    grid = Grid((nz, n, n), affine, ps, dz, drawn)
    return pose, grid


class LevelTable(TypedDict):
    """:func:`level_table`: arrays [8] per level C1..T1, and the cranial vault."""

    z: np.ndarray
    y: np.ndarray
    half_depth: np.ndarray
    canal_w: np.ndarray
    canal_d: np.ndarray
    skull: tuple[float, float, float, float, float]


def level_table(spine: Spine) -> LevelTable:
    """Per level C1..T1: centre Z/Y (anatomy), body half depth, canal width/depth (mm)."""
    ks = range(1, 9)
    g = spine.geoms
    return {
        "z": np.array([spine.centers[k][2] for k in ks]),
        "y": np.array([spine.centers[k][1] for k in ks]),
        "half_depth": np.array([8.0 * spine.scale if k == 1 else g[k].b for k in ks]),
        "canal_w": np.array([g[k].canal_w for k in ks]),
        "canal_d": np.array([g[k].canal_d if k > 1 else 22.0 * spine.scale for k in ks]),
        "skull": spine.skull(),
    }


__all__ = ["LEVELS", "Pose", "Spine", "build_spine", "level_table", "place", "sample_acquisition"]
