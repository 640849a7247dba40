"""Stage-1 training data: model-grid planes from a stream of fresh phantom studies.

The U-Net of demo models up to 0.7.0 was trained on 300 fixed studies written to disk (and
fine-tuned on another 300); its errors at the cervicothoracic junction (T1 called C7) and on the
skull base are what the plausibility checks catch most. Here worker processes generate new
phantom studies without end — head-and-neck and trauma coverage, shoulders and ribs, every
scanner the phantom simulates — put each on the model grid through the one preprocessing
(:func:`~cspine_desktop.imaging.preprocess.prepare_volume`, :func:`model_input`), sample a few
planes (most of them through the spine, a share of them showing a fracture) and augment them
exactly as :mod:`.pipeline` does. A rotating pool of recent planes feeds the batches, so no
study is trained on for long and none is seen twice.

Everything is numpy (no TensorFlow): the same stream feeds Keras on any backend. Batches have
the element structure of :mod:`.pipeline`::

    x: float32 [B, S, S, C] in [0, 1]
    {"vertebrae": int32 [B, S, S] (0 bg, 1–7), "fracture_map": float32 [B, S, S, 1],
     "fracture_cls": float32 [B, 7]}   1 fractured, 0 not, -1 (targets.IGNORE) not in the slice
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from cspine_desktop.imaging.preprocess import PreprocessConfig, model_input

from .augment import AugmentConfig, augment_slice
from .samples import build_sample
from .seed_workers import PlanePool, map_seeds
from .targets import cls_targets, min_pixels

# stream seeds: TRAIN_SEED0 + i, open-ended above every other seed range; validation
# VAL_SEED0 + i (never trained on). Apart from the classifier's stream (10/20/30 million), the
# int8 gate and calibration (7, 8, 41, 42 million), the demo study (9 million) and the
# benchmarks' (777000, 50 million).
TRAIN_SEED0 = 100_000_000
VAL_SEED0 = 60_000_000


@dataclass(frozen=True)
class GridStreamConfig:
    """What the stream samples; stored with the run."""

    planes_per_study: int = 8
    spine_share: float = 0.8  # planes drawn within the labelled spine (± 10 mm); the rest anywhere
    oversample: float = 0.3  # planes drawn from those showing a fracture (when the study has one)
    augment: bool = True
    phantom: dict[str, Any] = field(default_factory=dict)  # PhantomConfig overrides

    def phantom_config(self) -> Any:
        from model_training.phantom.config import PhantomConfig

        return PhantomConfig(**self.phantom)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GridStreamConfig:
        return cls(**d)


@dataclass
class GridPlanes:
    """Model-grid planes with their targets: ``x`` float16 [n, S, S, C], ``labels`` uint8
    [n, S, S], ``fracture`` uint8 [n, S, S], ``cls`` float32 [n, 7], ``study`` int64 [n]."""

    x: np.ndarray
    labels: np.ndarray
    fracture: np.ndarray
    cls: np.ndarray
    study: np.ndarray

    @staticmethod
    def concat(parts: list[GridPlanes]) -> GridPlanes:
        return GridPlanes(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def take(self, idx: np.ndarray) -> GridPlanes:
        return GridPlanes(*(getattr(self, f)[idx] for f in _FIELDS))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """These planes as one Keras batch (see the module docstring)."""
        return self.x.astype(np.float32), {
            "vertebrae": self.labels.astype(np.int32),
            "fracture_map": self.fracture.astype(np.float32)[..., None],
            "fracture_cls": self.cls,
        }


_FIELDS = ("x", "labels", "fracture", "cls", "study")


def spine_planes(labels: np.ndarray, step_mm: float, margin_mm: float = 10.0) -> np.ndarray:
    """Grid planes from ``margin_mm`` above the first labelled plane to as far below the last."""
    z = np.nonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[0]
    if z.size == 0:
        return np.arange(labels.shape[0])
    m = round(margin_mm / step_mm)
    return np.arange(max(0, int(z[0]) - m), min(labels.shape[0], int(z[-1]) + m + 1))


def study_planes(
    seed: int,
    pre: PreprocessConfig,
    stream: GridStreamConfig,
    *,
    train: bool,
    plane_stride: int = 2,
) -> GridPlanes:
    """Planes of one phantom study on the model grid. ``train``: ``planes_per_study`` planes
    (see :class:`GridStreamConfig`), augmented; otherwise every ``plane_stride``-th plane of the
    whole study, unaugmented, as the segmentation is judged: the app runs stage 1 on every
    plane, and vertebra labels it puts in the skull or the chest cost it the level count (a
    fine-tune judged on the spine's planes alone labelled the skull C1 in 36 of 280 studies,
    docs/training.md)."""
    from model_training.phantom.study import generate_study

    st = generate_study(seed, stream.phantom_config())
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5E6])) if train else None
    sample = build_sample(
        st.to_volume(),
        st.in_volume_order(st.labels),
        st.in_volume_order(st.fracture_mask),
        st.fractured,
        pre,
    )
    labels, fracture = sample.labels, sample.fracture
    assert labels is not None and fracture is not None  # the phantom always has both
    if rng is None:
        zs = np.arange(labels.shape[0])[::plane_stride]
    else:
        shows = np.asarray(sample.flags.any(axis=1), bool)
        spine = spine_planes(labels, pre.slice_step_mm)
        zs = _draw_planes(rng, spine, shows, labels.shape[0], stream)
    x = model_input(sample.prepared, zs)
    lab = labels[zs].copy()
    frac = fracture[zs].astype(np.float32)
    min_px = min_pixels(pre.pixel_spacing_mm)
    flags = sample.flags.astype(np.float32)
    cls = np.empty((len(zs), 7), np.float32)
    aug = AugmentConfig() if train and stream.augment else None
    for i, z in enumerate(zs.tolist()):
        if aug is not None and rng is not None:
            x[i], lab[i], f = augment_slice(x[i], lab[i], frac[i], aug, rng)
            frac[i] = np.asarray(f).reshape(frac[i].shape)
        cls[i] = cls_targets(flags[z], lab[i], min_px)
    return GridPlanes(
        x.astype(np.float16),
        lab.astype(np.uint8),
        (frac > 0.5).astype(np.uint8),
        cls,
        np.full(len(zs), int(seed), np.int64),
    )


def _draw_planes(
    rng: np.random.Generator,
    spine: np.ndarray,
    fractured: np.ndarray,
    n_planes: int,
    stream: GridStreamConfig,
) -> np.ndarray:
    """``planes_per_study`` distinct planes: fracture-showing ones first (``oversample``), then
    the spine (``spine_share``), then anywhere (the skull, the thorax, air above the head)."""
    n = stream.planes_per_study
    chosen: list[int] = []

    def add(cands: np.ndarray, k: int) -> None:
        cands = np.setdiff1d(cands, chosen)
        if k > 0 and cands.size:
            chosen.extend(rng.choice(cands, min(k, cands.size), replace=False).tolist())

    add(np.nonzero(fractured)[0], round(n * stream.oversample))
    add(spine, round(n * stream.spine_share) - len(chosen))
    add(np.arange(n_planes), n - len(chosen))
    return np.sort(np.asarray(chosen, dtype=int))


def _train_planes(pre: dict, stream: dict, seed: int) -> GridPlanes:
    """One stream study's training planes (run in a worker process)."""
    pc, sc = PreprocessConfig.from_dict(pre), GridStreamConfig.from_dict(stream)
    return study_planes(seed, pc, sc, train=True)


class GridStream(PlanePool[GridPlanes]):
    """Worker processes generating training planes; :meth:`batch` draws uniformly from a
    rotating pool of the most recent ``pool_size`` planes. ``start_index`` continues the seed
    sequence of an earlier chunk of training (resume)."""

    def __init__(
        self,
        pre: PreprocessConfig,
        stream: GridStreamConfig,
        *,
        workers: int = 1,
        pool_size: int = 2000,
        start_index: int = 0,
        rng_seed: int = 0,
    ) -> None:
        super().__init__(
            partial(_train_planes, pre.to_dict(), stream.to_dict()),
            TRAIN_SEED0,
            workers=workers,
            pool_size=pool_size,
            start_index=start_index,
            rng_seed=rng_seed,
        )
        self.pre, self.stream = pre, stream

    def batch(self, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        self.refill()
        if self.n_pool == 0:
            self.fill(1)
        parts = list(self.pool)
        sizes = np.array([len(p) for p in parts])
        flat = self.rng.choice(int(sizes.sum()), size, replace=int(sizes.sum()) < size)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        part = np.searchsorted(starts, flat, side="right") - 1
        rows = [parts[p].take(np.array([flat[i] - starts[p]])) for i, p in enumerate(part)]
        return GridPlanes.concat(rows).batch()


def evaluation_planes(
    seeds: list[int],
    pre: PreprocessConfig,
    stream: GridStreamConfig,
    plane_stride: int = 2,
    workers: int = 1,
) -> GridPlanes:
    """Every ``plane_stride``-th plane of the given studies, unaugmented (:func:`study_planes`)."""
    args = [(s, pre.to_dict(), stream.to_dict(), plane_stride) for s in seeds]
    return GridPlanes.concat(map_seeds(_eval_one, args, workers))


@dataclass(frozen=True)
class WholeStudy:
    """One phantom study on the model grid, every plane, as an analysis has it: the model's
    input ``x`` float16 [Z, S, S, C], the grid CT ``hu`` float32 [Z, S, S], the true labels
    ``truth`` uint8 [Z, S, S], and what the checks of the input say (``volume_input_reasons``)."""

    seed: int
    x: np.ndarray
    hu: np.ndarray
    truth: np.ndarray
    problems: tuple[str, ...]
    step_mm: float
    pixel_mm: float


def whole_studies(
    seeds: list[int], pre: PreprocessConfig, stream: GridStreamConfig, workers: int = 1
) -> list[WholeStudy]:
    """The given studies whole (:class:`WholeStudy`), for judging stage 1 as the app runs it:
    its labels of every plane through the level assignment and the plausibility checks."""
    return map_seeds(_whole_one, [(s, pre.to_dict(), stream.to_dict()) for s in seeds], workers)


def _whole_one(args: tuple) -> WholeStudy:
    from cspine_desktop.analysis.plausibility import volume_input_reasons
    from cspine_desktop.imaging.preprocess import prepare_volume, to_grid
    from model_training.phantom.study import generate_study

    seed, pre_d, stream_d = args
    pre, stream = PreprocessConfig.from_dict(pre_d), GridStreamConfig.from_dict(stream_d)
    st = generate_study(seed, stream.phantom_config())
    volume = st.to_volume()
    prepared = prepare_volume(volume, pre)
    return WholeStudy(
        int(seed),
        model_input(prepared, range(prepared.n_slices)).astype(np.float16),
        prepared.hu.astype(np.float32),
        to_grid(st.in_volume_order(st.labels), prepared).astype(np.uint8),
        volume_input_reasons(volume),
        pre.slice_step_mm,
        pre.pixel_spacing_mm,
    )


def _eval_one(args: tuple) -> GridPlanes:
    seed, pre, stream, stride = args
    return study_planes(
        seed,
        PreprocessConfig.from_dict(pre),
        GridStreamConfig.from_dict(stream),
        train=False,
        plane_stride=stride,
    )
