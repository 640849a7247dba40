"""Stage-2 training data: crop planes from a stream of fresh phantom studies.

A fixed set of a few hundred studies is memorised (the training AUC of the last U-Net rose while
its validation AUC fell). Here worker processes generate new phantom studies without end, cut
every vertebra into high-resolution crop planes (:mod:`cspine_desktop.imaging.crops`, the same
code inference runs) and hand a few planes per vertebra to a rotating pool; batches are drawn
from the pool balanced by fracture kind and severity, with degenerative mimics as hard
negatives. No study is seen twice, so the training AUC can only rise by learning fractures.

Plane labels are dense: a plane is positive when the phantom's voxel fracture mask of that
vertebra covers ≥ ``min_fracture_px`` crop pixels on it; the localisation target is the same
mask max-pooled to the map grid. Everything is numpy (no TensorFlow), so the same stream feeds
Keras on any backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from cspine_desktop.imaging.crops import (
    CropConfig,
    PlaneSpacing,
    crop_input,
    geometry,
    sample_planes,
)

from .crop_augment import augment_hu, perturb_mask
from .seed_workers import PlanePool, map_seeds

TRAIN_SEED0 = 10_000_000  # stream seeds: TRAIN_SEED0 + i (never used for validation or test)
VAL_SEED0 = 20_000_000
TEST_SEED0 = 30_000_000


@dataclass(frozen=True)
class StreamConfig:
    """What the stream samples; stored with the run."""

    pixel_spacing_mm: tuple[float, float] = (0.3, 0.7)
    slice_spacing_mm: tuple[float, float] = (0.5, 2.5)
    fracture_prevalence: float = 0.7
    head_neck_probability: float = 0.1  # wider scans are rarer here: 256² phantoms of a 220+
    trauma_probability: float = 0.05  # mm field have ≥ 0.86 mm pixels, coarser than a real 512²
    positives_per_vertebra: int = 4
    negatives_per_vertebra: int = 2
    min_fracture_px: int = 6
    centre_jitter_mm: float = 4.0
    augment: bool = True
    phantom_defaults: bool = False  # evaluation: the phantom's own default distribution

    def phantom_config(self) -> Any:
        from model_training.phantom.config import PhantomConfig

        if self.phantom_defaults:
            return PhantomConfig()
        return PhantomConfig(
            pixel_spacing_mm=self.pixel_spacing_mm,
            slice_spacing_mm=self.slice_spacing_mm,
            fracture_prevalence=self.fracture_prevalence,
            head_neck_probability=self.head_neck_probability,
            trauma_probability=self.trauma_probability,
        )


@dataclass
class Planes:
    """Crop planes with their targets. ``x`` float16 [n, S, S, 4], ``y`` uint8 [n] plane label,
    ``maps`` uint8 [n, m, m], ``group`` str [n] ("kind/severity" for positives, "mimic" or
    "plain" for negatives), ``vertebra`` [n] 1..7, ``study`` [n] seed, ``fractured`` [n]
    vertebra-level label, ``view`` [n] index into ``VIEWS``."""

    x: np.ndarray
    y: np.ndarray
    maps: np.ndarray
    group: np.ndarray
    vertebra: np.ndarray
    study: np.ndarray
    fractured: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    view: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))

    @staticmethod
    def concat(parts: list[Planes]) -> Planes:
        return Planes(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def take(self, idx: np.ndarray) -> Planes:
        return Planes(*(getattr(self, f)[idx] for f in _FIELDS))

    def __len__(self) -> int:
        return int(self.y.shape[0])


_FIELDS = ("x", "y", "maps", "group", "vertebra", "study", "fractured", "view")
VIEWS = ("axial", "sagittal")


def study_planes(
    seed: int,
    crop: CropConfig,
    stream: StreamConfig,
    *,
    train: bool,
    spacing: PlaneSpacing | None = None,
    study: Any = None,
    labels: np.ndarray | None = None,
) -> Planes:
    """Crop planes of one phantom study. ``train``: a few planes per vertebra (positives first),
    drawn from every plane (``spacing`` None) and augmented; otherwise every plane of every
    vertebra at ``spacing`` (:meth:`PlaneSpacing.default_for` the crops when None), as
    inference does. ``labels``: the label map the crops are cut from, in the volume's order
    (stage 1's, as the app hands them to stage 2); the phantom's own when None. The targets stay
    the phantom's: a plane is positive where its fracture voxels lie inside the level's mask,
    a vertebra is fractured when the phantom's is."""
    from model_training.phantom.study import generate_study

    if spacing is None:
        spacing = PlaneSpacing() if train else PlaneSpacing.default_for(crop)
    st = study if study is not None else generate_study(seed, stream.phantom_config())
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57A6E2]))
    vol = st.to_volume()
    if labels is None:
        labels = st.in_volume_order(st.labels)
    elif labels.shape != vol.shape:
        raise ValueError(f"labels {labels.shape} do not fit study {seed}'s volume {vol.shape}")
    fmask = st.in_volume_order(st.fracture_mask)
    conf = st.confounders
    mimic_levels = set(conf.osteophytes) | set(conf.sclerosis) | set(conf.vascular_channels)
    kinds: dict[int, str] = {}
    for f in st.fractures:
        kinds.setdefault(f.vertebra, f"{f.kind}/{f.severity}")
    parts: list[Planes] = []
    for level in range(1, 8):
        vmask = labels == level
        src = _LevelSource(vol, labels, vmask & (fmask > 0), vmask)
        if train:
            src = src._replace(
                mask=perturb_mask(
                    vmask, rng, labels, level, float(vol.spacing[0]), float(vol.spacing[1])
                )
            )
        neg_group = "mimic" if level in mimic_levels or conf.osteoporosis else "plain"
        for view in crop.views:
            part = _level_planes(src, level, view, crop, stream, rng, train=train, spacing=spacing)
            if part is None:
                continue
            y, x, maps = part
            n = len(y)
            group = np.where(y, kinds.get(level, "unknown"), neg_group)
            parts.append(
                Planes(
                    x.astype(np.float16),
                    y.astype(np.uint8),
                    maps.astype(np.uint8),
                    group.astype("U32"),
                    np.full(n, level, np.int8),
                    np.full(n, int(seed), np.int64),
                    np.full(n, bool(st.fractured[level - 1])),
                    np.full(n, VIEWS.index(view), np.int8),
                )
            )
    if not parts:
        s = crop.size
        return Planes(
            np.zeros((0, s, s, 4), np.float16),
            np.zeros(0, np.uint8),
            np.zeros((0, crop.map_size, crop.map_size), np.uint8),
            np.zeros(0, "U32"),
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
            np.zeros(0, bool),
            np.zeros(0, np.int8),
        )
    return Planes.concat(parts)


class _LevelSource(NamedTuple):
    """One vertebra's source arrays: the volume, the label map, the vertebra's voxel fracture
    mask and the mask its crops carry (true or perturbed like stage 1's)."""

    vol: Any
    labels: np.ndarray
    fracture: np.ndarray
    mask: np.ndarray


def _level_planes(
    src: _LevelSource,
    level: int,
    view: str,
    crop: CropConfig,
    stream: StreamConfig,
    rng: np.random.Generator,
    *,
    train: bool,
    spacing: PlaneSpacing,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(plane labels, model input, localisation targets) of one vertebra in one view; training
    keeps a few planes per vertebra (positives first) and augments them."""
    jitter = (0.0, 0.0)
    if train:
        jitter = tuple(rng.uniform(-1, 1, 2) * stream.centre_jitter_mm)
    geom = geometry(
        src.vol, src.labels, level, crop, view, centre_jitter_mm=jitter, spacing=spacing
    )
    if geom is None:
        return None
    frac = sample_planes(src.fracture, geom, crop.size) > 0.5
    count = frac.reshape(frac.shape[0], -1).sum(axis=1)
    y = count >= stream.min_fracture_px
    if train:
        idx = np.arange(len(y))
        pos = rng.permutation(idx[y])[: stream.positives_per_vertebra]
        neg = rng.permutation(idx[~y])[: stream.negatives_per_vertebra]
        idx = np.sort(np.concatenate([pos, neg]))
        if idx.size == 0:
            return None
        geom.planes = geom.planes[idx]
        frac, y = frac[idx], y[idx]
    hu = [
        sample_planes(src.vol.hu, geom, crop.size, border=-1000.0, offset_mm=off)
        for off in (crop.context_mm, 0.0, -crop.context_mm)
    ]
    mask = sample_planes(src.mask, geom, crop.size)
    if train and stream.augment:
        augment_hu(hu, rng, crop.pixel_mm)
    x = crop_input(hu, mask, crop)
    if train and stream.augment and rng.random() < 0.5:  # gamma on the windowed image
        g = float(rng.uniform(0.8, 1.25))
        x[..., :3] = np.clip(x[..., :3], 0, 1) ** g
    m = crop.map_size
    maps = frac.reshape(len(y), m, crop.map_stride, m, crop.map_stride).max(axis=(2, 4))
    return y, x, maps


def _train_planes(crop: dict, stream: StreamConfig, seed: int) -> Planes:
    """One stream study's training planes (run in a worker process)."""
    return study_planes(seed, CropConfig.from_dict(crop), stream, train=True)


class CropStream(PlanePool[Planes]):
    """Worker processes generating training planes; :meth:`batches` draws balanced batches
    from a rotating pool of the most recent ``pool_size`` planes.

    ``start_index`` continues the seed sequence of an earlier chunk of training (resume).
    """

    def __init__(
        self,
        crop: CropConfig,
        stream: StreamConfig,
        *,
        workers: int = 1,
        pool_size: int = 3000,
        start_index: int = 0,
        rng_seed: int = 0,
    ) -> None:
        super().__init__(
            partial(_train_planes, crop.to_dict(), stream),
            TRAIN_SEED0,
            workers=workers,
            pool_size=pool_size,
            start_index=start_index,
            rng_seed=rng_seed,
            wait_s=120.0,
        )
        self.crop, self.stream = crop, stream

    def _index(self) -> tuple[np.ndarray, ...]:
        """(part, row, label, group, level, vertebra fractured) of every pooled plane."""
        parts = list(self.pool)
        part = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
        row = np.concatenate([np.arange(len(p)) for p in parts])
        y = np.concatenate([p.y for p in parts])
        group = np.concatenate([p.group for p in parts])
        level = np.concatenate([p.vertebra for p in parts])
        fractured = np.concatenate([p.fractured for p in parts]).astype(bool)
        return part, row, y, group, level, fractured

    def batch(self, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One batch: half positive planes spread evenly over fracture kind/severity, half
        negatives, half of those from vertebrae with degenerative mimics when there are any.

        Negatives come from the same levels as the batch's positives: else recognising C2 and
        C7, where fractures are most common, scores well (model 0.5.0's pooled vertebra AUC was
        what the level alone gives; within C2 and C7 it was at chance).

        Negatives come from intact vertebrae (while the pool has any): a plane of a fractured
        vertebra without enough of the line to be labelled positive often shows it in its
        context channels (the planes 1 mm either side) or its partial volume, a negative label
        on a fracture. Inference scores those planes too; the top-k score takes the worst."""
        self.refill()
        part, row, y, group, level, fractured = self._index()
        pos = np.nonzero(y == 1)[0]
        neg = np.nonzero(y == 0)[0]
        intact = neg[~fractured[neg]]
        if intact.size:
            neg = intact
        chosen: list[np.ndarray] = []
        n_pos = size // 2 if pos.size else 0
        if n_pos:
            names = np.unique(group[pos])
            pick = self.rng.choice(names, n_pos)
            for name in np.unique(pick):
                cand = pos[group[pos] == name]
                chosen.append(self.rng.choice(cand, int((pick == name).sum())))
        n_neg = size - n_pos
        levels = level[np.concatenate(chosen)] if chosen else None
        mimic = neg[group[neg] == "mimic"]
        n_mimic = n_neg // 2 if mimic.size else 0
        if n_mimic:
            chosen.append(self._same_levels(mimic, level, levels, n_mimic))
        chosen.append(self._same_levels(neg, level, levels, n_neg - n_mimic))
        idx = self.rng.permutation(np.concatenate(chosen))
        parts = list(self.pool)
        x = np.stack([parts[part[i]].x[row[i]] for i in idx]).astype(np.float32)
        maps = np.stack([parts[part[i]].maps[row[i]] for i in idx]).astype(np.float32)
        return x, {"fracture": y[idx].astype(np.float32)[:, None], "fracture_map": maps[..., None]}

    def _same_levels(
        self, cand: np.ndarray, level: np.ndarray, levels: np.ndarray | None, n: int
    ) -> np.ndarray:
        """``n`` of ``cand`` with levels drawn like ``levels`` (any when None; a level with no
        candidate falls back to all)."""
        if levels is None or n == 0:
            return self.rng.choice(cand, n)
        want = self.rng.choice(levels, n)
        out = []
        for lv in np.unique(want):
            here = cand[level[cand] == lv]
            out.append(self.rng.choice(here if here.size else cand, int((want == lv).sum())))
        return np.concatenate(out)


def evaluation_planes(
    seeds: list[int],
    crop: CropConfig,
    stream: StreamConfig,
    spacing: PlaneSpacing | None = None,
    workers=1,
    labels: Mapping[int, np.ndarray] | None = None,
) -> Planes:
    """Every plane at ``spacing`` (the crops' default when None) of every vertebra of
    the given studies, as inference scores them; for per-epoch plane and vertebra AUC. The
    crops follow the true masks, or each study's map in ``labels`` (seed → label map, stage 1's:
    :func:`model_training.stages.stage1_masks.stage1_label_maps`)."""
    args = [
        (s, crop.to_dict(), stream, spacing, None if labels is None else labels[s]) for s in seeds
    ]
    return Planes.concat(map_seeds(_eval_one, args, workers))


def _eval_one(args: tuple) -> Planes:
    seed, crop, stream, spacing, labels = args
    return study_planes(
        seed, CropConfig.from_dict(crop), stream, train=False, spacing=spacing, labels=labels
    )
