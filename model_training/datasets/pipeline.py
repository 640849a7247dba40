"""The training input pipeline (tf.data) and the whole-study iterator for evaluation.

An epoch is ``slices_per_study × n_studies`` samples, drawn afresh (seeded by ``seed`` and the
epoch number) every time the dataset is iterated — so ``.repeat()`` or Keras epochs see new
slices. Each sample is one model-grid slice of a cached study: the model input comes from
``model_input`` (the one preprocessing) on the memory-mapped cache, targets from the cached
label/fracture grids and slice flags. Loading and augmentation run in a parallel ``map``
(OpenCV and NumPy release the GIL), batches are prefetched.

Element structure::

    x: float32 [B, S, S, C] in [0, 1]
    {"vertebrae": int32 [B, S, S] (0 bg, 1–7), "fracture_map": float32 [B, S, S, 1],
     "fracture_cls": float32 [B, 7]}   1 fractured, 0 not, -1 (targets.IGNORE) not in the slice
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cspine_desktop.imaging.preprocess import PreparedVolume, model_input

from .augment import AugmentConfig, augment_slice
from .cache import CachedStudy
from .report import NOTE, SkipReport
from .targets import cls_targets, min_pixels

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sampling
def _positive_slices(study: CachedStudy) -> np.ndarray:
    return np.nonzero(study.flags().any(axis=1))[0]


def epoch_samples(
    studies: Sequence[CachedStudy],
    slices_per_study: int,
    oversample: float,
    rng: np.random.Generator,
    positives: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """The (study index, grid slice) pairs of one epoch: int64 [n_studies·slices_per_study, 2],
    shuffled.

    ``oversample`` in [0, 1): that share of the epoch is drawn from fracture-showing slices
    (a fractured study chosen uniformly, then one of its flagged slices) — oversampling both
    fractured studies and fractured slices; the rest is drawn uniformly per study. 0 → plain
    uniform sampling. Without any flagged slice, everything is drawn uniformly.
    """
    if positives is None:
        positives = [_positive_slices(s) for s in studies]
    total = len(studies) * slices_per_study
    pos_studies = [i for i, p in enumerate(positives) if len(p)]
    n_pos = round(total * oversample) if pos_studies and oversample > 0 else 0
    n_rest = total - n_pos
    per_study = np.full(len(studies), n_rest // len(studies))
    per_study[rng.permutation(len(studies))[: n_rest % len(studies)]] += 1
    rows = [
        np.stack([np.full(m, i), rng.integers(0, s.n_slices, size=m)], axis=1)
        for i, (s, m) in enumerate(zip(studies, per_study))
    ]
    if n_pos:
        picks = rng.choice(pos_studies, size=n_pos)
        zs = [positives[i][rng.integers(0, len(positives[i]))] for i in picks]
        rows.append(np.stack([picks, np.array(zs)], axis=1))
    out = np.concatenate(rows).astype(np.int64)
    return out[rng.permutation(len(out))]


# --------------------------------------------------------------------------- loading
_Handles = tuple[PreparedVolume, np.ndarray, np.ndarray, np.ndarray]  # prepared, labels, …


class _SliceSource:
    """Reads one training sample from the memory-mapped cache (thread-safe, lazy)."""

    def __init__(
        self,
        studies: Sequence[CachedStudy],
        augment: AugmentConfig | None,
        size: int,
        channels: int,
        min_px: int = 1,
    ):
        self.studies = list(studies)
        self.augment = augment
        self.size, self.channels = size, channels
        self.min_px = min_px
        self._open: dict[int, _Handles] = {}

    def _handles(self, i: int) -> _Handles:
        h = self._open.get(i)
        if h is None:
            s = self.studies[i]
            prepared = s.prepared()
            labels, fracture = s.labels(), s.fracture()
            if labels is None or fracture is None:  # a cache file lost during training
                raise FileNotFoundError(f"{s.path}: the labels or the fracture mask are gone")
            h = (prepared, labels, fracture, s.flags().astype(np.float32))
            self._open[i] = h
        return h

    def sample(
        self, i: int, z: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One sample: x [S, S, C], labels [S, S], fracture [S, S, 1], fracture_cls target [7]
        (flags of the vertebrae the augmented slice shows, IGNORE for the others)."""
        prepared, labels, fracture, flags = self._handles(i)
        x = model_input(prepared, [z])[0]
        lab = np.asarray(labels[z], dtype=np.uint8)
        frac = np.asarray(fracture[z], dtype=np.float32)[..., None]
        if self.augment is not None:
            x, lab, frac = augment_slice(x, lab, frac, self.augment, np.random.default_rng(seed))
        return x, lab, frac, cls_targets(flags[z], lab, self.min_px)

    def batch(self, idx: np.ndarray, zs: np.ndarray, seeds: np.ndarray):
        """Stacked samples; one that cannot be read (a cache file lost during training) is
        left out of its batch with a logged warning."""
        xs, labs, fracs, flags = [], [], [], []
        for i, z, seed in zip(idx.tolist(), zs.tolist(), seeds.tolist()):
            try:
                x, lab, frac, fl = self.sample(i, z, seed)
            except (OSError, ValueError, IndexError, EOFError) as exc:
                log.warning("sample %s slice %d left out: %s", self.studies[i].study_uid, z, exc)
                self._open.pop(i, None)
                continue
            xs.append(x)
            labs.append(lab)
            fracs.append(frac)
            flags.append(fl)
        size = self.size
        if not xs:
            return (
                np.zeros((0, size, size, self.channels), np.float32),
                np.zeros((0, size, size), np.int32),
                np.zeros((0, size, size, 1), np.float32),
                np.zeros((0, 7), np.float32),
            )
        return (np.stack(xs), np.stack(labs).astype(np.int32), np.stack(fracs), np.stack(flags))


def _why_unusable(s: CachedStudy) -> str | None:
    """Why a cached study cannot give training samples, or None when it can."""
    if not s.has_labels:
        return "no vertebra labels (used for study-level evaluation only)"
    if not s.has_location:
        return "fracture location unknown (used for study-level evaluation only)"
    try:
        hu, labels, fracture, flags = s.hu(), s.labels(), s.fracture(), s.flags()
    except (OSError, ValueError, EOFError) as exc:
        return f"cache files cannot be read ({exc}); rebuild the cache"
    if (
        hu is None
        or labels is None
        or fracture is None
        or hu.ndim != 3
        or hu.shape[0] != s.n_slices
        or labels.shape != hu.shape
        or fracture.shape != hu.shape
        or flags.shape != (s.n_slices, 7)
    ):
        return "cache files are incomplete or disagree in shape; rebuild the cache"
    return None


def _usable(cached: Iterable[CachedStudy], report: SkipReport | None = None) -> list[CachedStudy]:
    out = []
    for s in cached:
        why = _why_unusable(s)
        if why is None:
            out.append(s)
            continue
        log.info("study %s not used for training: %s", s.study_uid, why)
        if report is not None:
            report.add(s.study_uid, "training", why, s.path, action=NOTE)
    return out


def _training_source(
    cached: Sequence[CachedStudy], augment: AugmentConfig | bool | None, report: SkipReport | None
) -> _SliceSource:
    """The samples of the studies that can train (see :func:`make_dataset`), all prepared alike."""
    studies = _usable(cached, report)
    if not studies:
        raise ValueError("no cached study has vertebra labels and a known fracture location")
    cfgs = {json.dumps(s.meta()["preprocessing"], sort_keys=True) for s in studies}
    if len(cfgs) != 1:
        raise ValueError("cached studies were prepared with different configurations")
    cfg = studies[0].prepared().cfg
    aug = AugmentConfig() if augment is True else (augment or None)
    min_px = min_pixels(cfg.pixel_spacing_mm)
    return _SliceSource(studies, aug, cfg.input_size, cfg.n_channels, min_px)


def _epoch_draws(
    studies: Sequence[CachedStudy],
    slices_per_study: int,
    oversample: float,
    seed: int,
    resample: bool,
) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """A generator function yielding, per call, one epoch's (study index, slice, augmentation
    seed) columns: epoch ``e`` is drawn from the seed ``[seed, e]`` (e = 0 every time unless
    ``resample``)."""
    positives = [_positive_slices(s) for s in studies]
    epochs = itertools.count()

    def one_epoch() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        e = next(epochs) if resample else 0
        rng = np.random.default_rng([seed, e])
        pairs = epoch_samples(studies, slices_per_study, oversample, rng, positives)
        seeds = rng.integers(0, 2**62, size=len(pairs), dtype=np.int64)
        yield pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32), seeds

    return one_epoch


def make_dataset(
    cached: Sequence[CachedStudy],
    batch_size: int = 8,
    slices_per_study: int = 16,
    augment: AugmentConfig | bool | None = True,
    oversample: float = 0.3,
    seed: int = 0,
    *,
    parallel_calls: int | None = None,
    drop_remainder: bool = False,
    resample: bool = True,
    report: SkipReport | None = None,
) -> Any:
    """A ``tf.data.Dataset`` of one epoch of training batches (see module docstring).

    Only studies with both vertebra labels and a known fracture location (a mask, boxes, or
    no fracture at all) are used; the others are logged and left out (they still serve
    study-level evaluation through :func:`iter_eval_studies`). ``augment``: True → default
    :class:`AugmentConfig`, False/None → none. ``oversample``: see :func:`epoch_samples`.
    ``parallel_calls``: batches loaded in parallel (default: tf.data AUTOTUNE).
    ``resample=False`` draws the same slices every epoch (steady validation loss). Studies left
    out are added to ``report`` when given. A sample that fails to load later (a cache file
    removed during training) is left out of its batch with a logged warning instead of
    ending the epoch.
    """
    import tensorflow as tf

    source = _training_source(cached, augment, report)
    size, channels = source.size, source.channels
    one_epoch = _epoch_draws(source.studies, slices_per_study, oversample, seed, resample)
    spec = (
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.int64),
    )
    ds = tf.data.Dataset.from_generator(one_epoch, output_signature=spec).unbatch()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def load(i, z, s):
        x, lab, frac, flags = tf.numpy_function(
            source.batch,
            [i, z, s],
            [tf.float32, tf.int32, tf.float32, tf.float32],
            stateful=False,
        )
        x.set_shape([None, size, size, channels])
        lab.set_shape([None, size, size])
        frac.set_shape([None, size, size, 1])
        flags.set_shape([None, 7])
        return x, {"vertebrae": lab, "fracture_map": frac, "fracture_cls": flags}

    ds = ds.map(load, num_parallel_calls=parallel_calls or tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda x, _y: tf.shape(x)[0] > 0)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(
    cached: Sequence[CachedStudy],
    batch_size: int,
    slices_per_study: int,
    drop_remainder: bool = False,
) -> int:
    """Number of batches :func:`make_dataset` yields per epoch for these arguments."""
    n = len(_usable(cached)) * slices_per_study
    return n // batch_size if drop_remainder else -(-n // batch_size)


# --------------------------------------------------------------------------- evaluation
@dataclass
class EvalStudy:
    """One whole study for study-level evaluation.

    prepared : PreparedVolume (hu float32 [Zg, S, S]); feed ``model_input(prepared)``
    labels   : uint8 [Zg, S, S] or None; fracture: uint8 [Zg, S, S] or None
    flags    : bool [Zg, 7]; fractured: C1…C7 truth; patient_overall: study truth
    """

    study_uid: str
    patient_id: str
    prepared: PreparedVolume
    labels: np.ndarray | None
    fracture: np.ndarray | None
    flags: np.ndarray
    fractured: tuple[bool, ...]
    patient_overall: bool
    fractures: list[dict[str, Any]] = field(default_factory=list)


def iter_eval_studies(
    cached: Sequence[CachedStudy], uids: Iterable[str] | None = None
) -> Iterator[EvalStudy]:
    """Yield whole cached studies (all of them, or those in ``uids``, in ``cached`` order),
    loaded into memory one at a time."""
    wanted = set(uids) if uids is not None else None
    for s in cached:
        if wanted is not None and s.study_uid not in wanted:
            continue
        labels, fracture = s.labels(), s.fracture()
        yield EvalStudy(
            study_uid=s.study_uid,
            patient_id=s.patient_id,
            prepared=s.prepared(in_memory=True),
            labels=np.array(labels) if labels is not None else None,
            fracture=np.array(fracture) if fracture is not None else None,
            flags=np.array(s.flags(), dtype=bool),
            fractured=tuple(s.fractured),
            patient_overall=s.patient_overall,
            fractures=list(s.fractures),
        )
