"""One synthetic cervical-spine CT study: :func:`generate_study` and :class:`PhantomStudy`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from cspine_desktop.imaging.volume import Volume

from . import artifacts, skeleton, texture
from .config import Acquisition, Confounders, FractureSpec, PhantomConfig
from .confounders import apply_confounders, sample_confounders
from .fractures import apply_fracture, sample_fractures
from .layout import Pose, Spine, build_spine, level_table, place, sample_acquisition
from .render import render_structure
from .sdf import Ellipsoid
from .softtissue import Plane, Profile, draw_soft_tissue, sample_params
from .structure import Canvas, Grid, Structure
from .vertebrae import atlas, axis, subaxial

UID_ROOT = "cspine-phantom"


@dataclass
class PhantomStudy:
    """A generated CT study with its ground truth.

    hu            : int16 HU, [z, y, x]; z index 0 is the most superior slice (RSNA instance 1).
    labels        : uint8 [z, y, x]: 0 background (also occiput, T1, ribs), 1..7 = C1..C7.
    fracture_mask : uint8 [z, y, x]: 1 = fractured bone near a fracture line / collapsed region.
    spacing       : (z, y, x) mm. affine: voxel (x, y, z, 1) → patient LPS mm.
    fractures     : one :class:`FractureSpec` per fracture; ``fractured`` = per vertebra C1..C7.
    boxes         : fracture boxes per slice, (slice index z, x, y, width, height, fracture
                    index) in pixels, as in RSNA's train_bounding_boxes.csv.
    """

    hu: np.ndarray
    labels: np.ndarray
    fracture_mask: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    fractures: list[FractureSpec]
    fractured: tuple[bool, ...]
    confounders: Confounders
    study_uid: str
    series_uid: str
    patient_id: str
    seed: int
    acquisition: Acquisition
    boxes: list[tuple[int, float, float, float, float, int]] = field(default_factory=list)

    @property
    def patient_overall(self) -> bool:
        return any(self.fractured)

    def in_volume_order(self, array_zyx: np.ndarray) -> np.ndarray:
        """A [z, y, x] array of this study in :meth:`to_volume` slice order (a view)."""
        return array_zyx[::-1]

    def volume_affine(self) -> np.ndarray:
        """Affine of :meth:`to_volume`: voxel (x, y, z, 1) → LPS with z ascending (inferior
        slice first, as ``load_study`` sorts along the slice normal)."""
        flip = np.eye(4)
        flip[2, 2], flip[2, 3] = -1.0, self.hu.shape[0] - 1
        return self.affine @ flip

    def to_volume(self) -> Volume:
        """The study as an imaging :class:`Volume`, slices sorted along the slice normal
        (inferior first, like ``load_study`` of the written series); HU is a view, not a copy.
        Use :meth:`in_volume_order` for labels and masks on the same grid."""
        return Volume(
            hu=self.in_volume_order(self.hu),
            affine=self.volume_affine(),
            spacing=self.spacing,
            meta={
                "PatientID": self.patient_id,
                "StudyInstanceUID": self.study_uid,
                "SeriesInstanceUID": self.series_uid,
                "Modality": "CT",
                "SeriesDescription": "cspine phantom",
                "WindowCenter": 480.0,
                "WindowWidth": 2500.0,
                "SliceThickness": self.acquisition.slice_thickness_mm,
                "source": "phantom",
            },
        )

    def summary(self) -> dict[str, Any]:
        return {
            "StudyInstanceUID": self.study_uid,
            "patient_id": self.patient_id,
            "seed": self.seed,
            "patient_overall": int(self.patient_overall),
            **{f"C{k + 1}": int(f) for k, f in enumerate(self.fractured)},
            "fractures": [f.to_dict() for f in self.fractures],
            "confounders": self.confounders.to_dict(),
            "acquisition": self.acquisition.to_dict(),
        }


def study_uids(seed: int) -> tuple[str, str, str]:
    """Deterministic (study UID, series UID, patient ID) for a seed."""
    return (
        generate_uid(entropy_srcs=[UID_ROOT, "study", str(seed)]),
        generate_uid(entropy_srcs=[UID_ROOT, "series", str(seed)]),
        f"PHANTOM-{seed:010d}",
    )


def generate_study(seed: int, config: PhantomConfig | None = None) -> PhantomStudy:
    """Generate one study; the same (seed, config) always gives the same arrays."""
    cfg = config or PhantomConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC5]))
    acq = sample_acquisition(rng, cfg)
    conf = sample_confounders(rng, cfg)
    fractures = sample_fractures(rng, cfg)
    spine = build_spine(rng, cfg, conf)
    pose, grid = place(rng, cfg, spine, acq)
    nz, ny, nx = grid.shape
    hu = np.empty(grid.shape, np.float32)
    canvas = Canvas(hu, np.zeros(grid.shape, np.uint8), np.zeros(grid.shape, np.uint8))

    # soft tissue
    rt = pose.r.T
    aff = grid.affine
    zk = aff[2, 3] + aff[2, 2] * np.arange(nz)
    mid = np.array([aff[0, 3] + aff[0, 0] * (nx - 1) / 2, aff[1, 3] + aff[1, 1] * (ny - 1) / 2])
    rel = np.stack([np.full(nz, aff[0, 3]), np.full(nz, aff[1, 3]), zk], -1) - pose.t
    plane = Plane(rt[:2, :2] * grid.pixel_mm, rel @ rt[:2, :].T, grid.shape)
    relc = np.stack([np.full(nz, mid[0]), np.full(nz, mid[1]), zk], -1) - pose.t
    zs = relc @ rt[2, :]
    prof = Profile(**level_table(spine))
    tissue = sample_params(rng)
    acq.extras["artery_hu"] = round(tissue.vessel_hu, 1)  # > 60: contrast in the vessels
    draw_soft_tissue(hu, plane, zs, prof, tissue)

    for st in _structures(rng, cfg, spine, pose, conf, fractures):
        render_structure(st, grid, canvas)
    metal = _metal(rng, spine, pose, conf, grid, canvas) if conf.dental_metal else []
    acq.extras["metal_in_fov"] = len(metal)

    # scanner effects
    below = np.clip((prof.z[6] + 6.0 - zs) / 40.0, 0.0, 1.0)
    kernel = artifacts.Kernel(**acq.kernel)
    artifacts.slice_profile(hu, acq.slice_thickness_mm / grid.thickness_mm)
    artifacts.beam_hardening(hu, grid.pixel_mm, acq.extras["beam_hardening_hu"])
    artifacts.reconstruct(hu, kernel, grid.pixel_mm)
    if metal:
        artifacts.metal_streaks(hu, metal, rng, grid.pixel_mm, grid.slice_mm)
    artifacts.shoulder_streaks(hu, below, rng)
    # noise_hu: SD in the soft tissue of the neck; more through the shoulders
    sigma = acq.noise_hu * (1.0 + 0.8 * below)
    artifacts.add_noise(hu, sigma, rng, kernel.nps_peak * grid.pixel_mm)
    if acq.table:
        ys = aff[1, 3] + aff[1, 1] * np.arange(ny)
        xs = aff[0, 3] + aff[0, 0] * np.arange(nx) - mid[0]
        back = pose.to_lps(spine.centers[4])[1] + 75.0 + float(rng.uniform(0, 15))
        artifacts.table(hu, ys, xs, back, rng)
    if acq.fov_circle:
        artifacts.fov_circle(hu)
    np.clip(hu, -3024, 8000, out=hu)

    boxes = _finish_fractures(fractures, canvas, grid)
    fractured = tuple(any(f.vertebra == k for f in fractures) for k in range(1, 8))
    study_uid, series_uid, patient_id = study_uids(seed)
    return PhantomStudy(
        hu=np.rint(hu).astype(np.int16),
        labels=canvas.labels,
        fracture_mask=canvas.fracture,
        spacing=(grid.slice_mm, grid.pixel_mm, grid.pixel_mm),
        affine=grid.affine.copy(),
        fractures=fractures,
        fractured=fractured,
        confounders=conf,
        study_uid=study_uid,
        series_uid=series_uid,
        patient_id=patient_id,
        seed=int(seed),
        acquisition=acq,
        boxes=boxes,
    )


def _materials(rng: np.random.Generator, osteoporosis: bool) -> tuple[float, float, float]:
    """(cortex HU, marrow HU, cortex thickness mm) for one vertebra.

    Cancellous bone 150–300 HU (osteoporotic 60–150 HU); a thin shell of 0.4–0.9 mm
    (0.35–0.7 mm) at 800–1300 HU (650–950 HU): after partial volume and the reconstruction
    kernel the shell reads about 500–1500 HU on the image, as on clinical neck CT."""
    if osteoporosis:
        return (
            float(rng.uniform(650, 950)),
            float(rng.uniform(60, 150)),
            float(rng.uniform(0.35, 0.7)),
        )
    return (
        float(rng.uniform(800, 1300)),
        float(rng.uniform(150, 300)),
        float(rng.uniform(0.4, 0.9)),
    )


def _structures(
    rng,
    cfg: PhantomConfig,
    spine: Spine,
    pose: Pose,
    conf: Confounders,
    fractures: list[FractureSpec],
) -> list[Structure]:
    s = spine.scale
    base = _materials(rng, conf.osteoporosis)

    def make(
        name: str,
        label: int,
        level: int,
        parts: dict[str, list],
        offset=(0.0, 0.0, 0.0),
        hu: tuple[float, float, float] | None = None,
    ) -> Structure:
        c = spine.centers[level] + spine.rots[level] @ np.asarray(offset)
        ch, mh, cm = hu or base
        return Structure(
            name,
            label,
            pose.to_lps(c),
            pose.r @ spine.rots[level],
            parts,
            ch,
            mh,
            cm,
            mask_margin=cfg.fracture_mask_margin_mm,
        )

    out: list[Structure] = []
    disc_hu = float(rng.uniform(70, 110))
    for k in range(2, 8):  # disc below level k sits on top of level k + 1
        lower = spine.geoms[k + 1]
        parts = {"disc": skeleton.disc(lower.a, lower.b, lower.h_top, spine.discs[k])}
        out.append(make(f"disc C{k}", 0, k + 1, parts, hu=(disc_hu, disc_hu, 0.5)))
    skull_hu = (float(rng.uniform(1300, 1800)), float(rng.uniform(500, 800)), 2.0)
    out.append(
        make("occiput", 0, 1, {"bone": skeleton.occiput(s, spine.c1_condyle_w())}, hu=skull_hu)
    )
    t1_parts, _ = subaxial(8, s, spine.up[8], spine.down[8])
    out.append(make("T1", 0, 8, t1_parts))
    for k in (9, 10):  # T2, T3 with their ribs and discs; the scapulae and humeral heads
        tk_parts, gk = subaxial(k, s, spine.up[k], spine.down[k])
        out.append(make(f"T{k - 7}", 0, k, tk_parts))
        parts = {"disc": skeleton.disc(gk.a, gk.b, gk.h_top, 4.5 * s)}
        out.append(make(f"disc T{k - 8}", 0, k, parts, hu=(disc_hu, disc_hu, 0.5)))
        for side in (-1, 1):
            out.append(
                make(
                    f"rib{k - 7} {side:+d}", 0, k, {"rib": skeleton.rib(side, gk.a, gk.b, s, k - 7)}
                )
            )
    g9 = spine.geoms[9]
    for side in (-1, 1):
        out.append(
            make(f"scapula {side:+d}", 0, 9, {"bone": skeleton.scapula(side, g9.a, g9.b, s)})
        )
    g8 = spine.geoms[8]
    for side in (-1, 1):
        out.append(make(f"rib1 {side:+d}", 0, 8, {"rib": skeleton.first_rib(side, g8.a, g8.b, s)}))
        out.append(
            make(
                f"clavicle {side:+d}",
                0,
                8,
                {"clavicle": skeleton.clavicle(side, g8.b, s)},
                hu=(1300.0, 400.0, 1.5),
            )
        )
    if rng.random() < cfg.mandible_probability:
        bone, teeth = skeleton.mandible(s, rng)
        out.append(make("mandible", 0, 2, {"bone": bone}, hu=(1500.0, 450.0, 2.0)))
        out.append(make("teeth", 0, 2, {"teeth": teeth}, hu=(2400.0, 1700.0, 1.2)))
    out.append(make("hyoid", 0, 3, {"bone": skeleton.hyoid(s)}, hu=(1000.0, 350.0, 1.0)))

    for k in range(7, 0, -1):
        if k == 1:
            parts, g = atlas(s)
        elif k == 2:
            parts, g = axis(s, spine.down[2])
        else:
            parts, g = subaxial(k, s, spine.up[k], spine.down[k])
        ch, mh, cm = base
        st = make(
            f"C{k}",
            k,
            k,
            parts,
            hu=(ch * float(rng.uniform(0.93, 1.07)), mh * float(rng.uniform(0.9, 1.1)), cm),
        )
        st.texture_hu = float(rng.uniform(40.0, 80.0)) * (0.6 if conf.osteoporosis else 1.0)
        st.texture = texture.sample_params(rng, conf.osteoporosis)
        st.compact_parts = ("lamina", "spinous", "transverse", "arch")
        apply_confounders(st, g, conf, rng)
        for i, spec in enumerate(fractures):
            if spec.vertebra == k:
                apply_fracture(st, g, spec, i, rng)
        out.append(st)
    return out


def _metal(
    rng, spine: Spine, pose: Pose, conf: Confounders, grid: Grid, canvas: Canvas
) -> list[tuple[float, float, float]]:
    """Dental fillings (> 3000 HU) on 1–4 teeth; returns their voxel (z, y, x) positions."""
    s = spine.scale
    prims, centers = [], []
    inv = np.linalg.inv(grid.affine)
    molars = np.concatenate([np.linspace(-0.85, -0.4, 4), np.linspace(0.4, 0.85, 4)])
    for t in rng.choice(molars, size=int(rng.integers(1, 5)), replace=False):
        u, v = float(t * 42.0 * s * 0.95), float(-62.0 * s + 32.0 * s * t * t)
        w = -12.0 * s + 17.0 * s
        prims.append(Ellipsoid((u, v, w), (2.2 * s, 2.6 * s, 2.2 * s)))
        lps = pose.to_lps(spine.centers[2] + spine.rots[2] @ np.array([u, v, w]))
        x, y, z, _ = inv @ np.append(lps, 1.0)
        nz, ny, nx = grid.shape
        if 0 <= z < nz and 0 <= y < ny and 0 <= x < nx:
            centers.append((float(z), float(y), float(x)))
    hu = float(rng.uniform(6000, 12000))  # beyond the scale: partial volume still > 3000
    st = Structure(
        "metal",
        0,
        pose.to_lps(spine.centers[2]),
        pose.r @ spine.rots[2],
        {"metal": prims},
        hu,
        hu,
        1.0,
    )
    render_structure(st, grid, canvas)
    return centers


def _finish_fractures(fractures: list[FractureSpec], canvas: Canvas, grid: Grid):
    """Slice ranges, voxel counts, centres and per-slice boxes of each fracture's mask."""
    boxes: list[tuple[int, float, float, float, float, int]] = []
    for i, spec in enumerate(fractures):
        parts = canvas.fracture_boxes.get(i, [])
        flat = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        spec.n_voxels = int(flat.size)
        if not flat.size:
            continue
        zz, yy, xx = np.unravel_index(flat, grid.shape)
        c = grid.affine @ np.array([xx.mean(), yy.mean(), zz.mean(), 1.0])
        x, y, z = (round(float(v), 2) for v in c[:3])
        spec.center_lps = (x, y, z)
        spec.slice_range = (int(zz.min()), int(zz.max()))
        for z in np.unique(zz):
            sel = zz == z
            x0, x1 = int(xx[sel].min()), int(xx[sel].max())
            y0, y1 = int(yy[sel].min()), int(yy[sel].max())
            boxes.append((int(z), float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1), i))
    boxes.sort()
    return boxes
