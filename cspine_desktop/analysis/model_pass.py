"""One model pass over the model grid: the engine run in bounded batches, with progress and
cancellation.

Only the planes that hold the neck are run (planes without bone are air or padding). While the
engine works on one batch, a helper thread windows the next one, so at most two input batches
exist at a time; of the outputs only compact forms are kept (labels uint8, fracture map and
class scores float32). Arrays are [Zg, S, S] on the model grid.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..imaging.preprocess import PreparedVolume, model_input
from ..progress import CancelToken, Progress, ProgressCallback, check_cancelled
from ..vertebrae import NAMES

BONE_HU = 250.0  # a plane with fewer bone pixels than MIN_BONE_MM2 holds no neck
MIN_BONE_MM2 = 20.0
MAX_BATCH = 8
# Coarse to fine: on scans of at least COARSE_MIN_PLANES neck planes, every COARSE_STRIDE-th
# plane is run first; then only the planes within FINE_MARGIN_MM of a plane where the coarse
# pass found a vertebra (≥ FINE_MIN_PX pixels). A head-and-neck or trauma scan spends a third
# or more of its planes on the skull and the chest.
COARSE_MIN_PLANES = 48
COARSE_STRIDE = 2
FINE_MARGIN_MM = 6.0
FINE_MIN_PX = 10
FLOATS_PER_PIXEL = 128  # rough peak activations per input pixel of the U-Net (float32)


class Predictor(Protocol):
    """A model analysis can run on the model grid: every ``cspine_desktop.inference.Engine``
    is one (analysis sits below inference, so it names what it needs instead of importing it)."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...  # (S, S, C) of one input slice

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass
class GridOutputs:
    """Model outputs on the full grid; planes that were not run hold zeros/background.

    labels       : uint8 [Zg, S, S] argmax of ``vertebrae`` (0 bg, 1–7 C1–C7).
    fracture_map : float32 [Zg, S, S] in [0, 1].
    fracture_cls : float32 [Zg, 7] in [0, 1].
    planes       : int [n] the grid planes that were run (sorted).
    seconds      : time spent in ``engine.predict``.
    cam          : float32 [Zg, h, w, 7] class activation (``fracture_cam``) when the engine
                   returns it, else None.
    probabilities: float16 [Zg, S, S, 8] the ``vertebrae`` output (background, C1–C7) when
                   asked for, else None.
    """

    labels: np.ndarray
    fracture_map: np.ndarray
    fracture_cls: np.ndarray
    planes: np.ndarray
    seconds: float
    cam: np.ndarray | None = None
    probabilities: np.ndarray | None = None


def neck_planes(prepared: PreparedVolume, margin: int = 1) -> np.ndarray:
    """Grid planes from the first to the last one holding bone (± ``margin`` planes).

    Planes of pure air or soft tissue above the skull or below the FOV are skipped; every plane
    in between is run, so the vertebrae are never cut. All planes when no bone is found.
    """
    px_mm2 = prepared.cfg.pixel_spacing_mm**2
    counts = (prepared.hu > BONE_HU).reshape(prepared.n_slices, -1).sum(axis=1) * px_mm2
    bone = np.nonzero(counts >= MIN_BONE_MM2)[0]
    if bone.size == 0:
        return np.arange(prepared.n_slices)
    lo = max(0, int(bone[0]) - margin)
    hi = min(prepared.n_slices - 1, int(bone[-1]) + margin)
    return np.arange(lo, hi + 1)


def choose_batch_size(input_shape: tuple[int, int, int], available_bytes: int | None = None) -> int:
    """Slices per batch: a quarter of the free memory over a rough per-slice footprint, 1–8."""
    if available_bytes is None:
        available_bytes = _available_memory()
    s1, s2, c = input_shape
    per_slice = 4 * s1 * s2 * (c + 9 + FLOATS_PER_PIXEL)
    return int(np.clip(available_bytes // 4 // max(per_slice, 1), 1, MAX_BATCH))


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil is optional at run time: assume a modest 2 GB free
        return 2 << 30


def run_model(
    engine: Predictor,
    prepared: PreparedVolume,
    planes: np.ndarray | None = None,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken = None,
    *,
    probabilities: bool = False,
) -> GridOutputs:
    """Run ``engine`` on ``planes`` of ``prepared``; by default on the :func:`neck_planes`,
    coarse to fine on a long scan (see ``COARSE_MIN_PLANES``): every plane near a vertebra the
    coarse pass found is run, the others (skull, chest) only every ``COARSE_STRIDE``-th.
    ``probabilities``: keep the ``vertebrae`` output itself too (planes not run: background)."""
    batch_size = batch_size or choose_batch_size(engine.input_shape)
    zg, s = prepared.n_slices, prepared.cfg.input_size
    out = GridOutputs(
        labels=np.zeros((zg, s, s), np.uint8),
        fracture_map=np.zeros((zg, s, s), np.float32),
        fracture_cls=np.zeros((zg, len(NAMES)), np.float32),
        planes=np.zeros(0, int),
        seconds=0.0,
    )
    if probabilities:
        out.probabilities = np.zeros((zg, s, s, len(NAMES) + 1), np.float16)
        out.probabilities[..., 0] = 1.0
    if planes is not None:
        given = np.asarray(planes, dtype=int)
        _run_planes(engine, prepared, given, out, batch_size, cancel, _Tally(progress, len(given)))
        return out
    neck = neck_planes(prepared)
    if len(neck) < COARSE_MIN_PLANES:
        _run_planes(engine, prepared, neck, out, batch_size, cancel, _Tally(progress, len(neck)))
        return out
    coarse = neck[::COARSE_STRIDE]
    # progress: the coarse pass counts for its share of the neck planes, the fine pass the rest
    tally = _Tally(progress, len(neck))
    _run_planes(engine, prepared, coarse, out, batch_size, cancel, tally)
    fine = fine_planes(out.labels, coarse, neck, prepared.cfg.slice_step_mm)
    tally.total = len(coarse) + len(fine)
    _run_planes(engine, prepared, fine, out, batch_size, cancel, tally)
    return out


def fine_planes(
    labels: np.ndarray, coarse: np.ndarray, neck: np.ndarray, step_mm: float
) -> np.ndarray:
    """The planes of ``neck`` not yet run that lie within ``FINE_MARGIN_MM`` of a coarse plane
    with a vertebra; none when the coarse pass found none. Within the spine every plane is
    near one; a stray label on the chest or skull adds only its neighbours."""
    counts = (labels[coarse] > 0).reshape(len(coarse), -1).sum(axis=1)
    hit = coarse[counts >= FINE_MIN_PX]
    rest = np.setdiff1d(neck, coarse)
    if hit.size == 0 or rest.size == 0:
        return np.zeros(0, int)
    margin = int(np.ceil(FINE_MARGIN_MM / step_mm))
    near = np.abs(rest[:, None] - hit[None, :]).min(axis=1)  # to the nearest hit plane
    out: np.ndarray = rest[near <= margin]
    return out


class _Tally:
    """Progress over the planes of one or two passes."""

    def __init__(self, progress: ProgressCallback | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            t = max(self.total, self.done, 1)
            self.progress(Progress(self.done / t, f"analysing slice {self.done} of {t}"))


def _run_planes(
    engine: Predictor,
    prepared: PreparedVolume,
    planes: np.ndarray,
    out: GridOutputs,
    batch_size: int,
    cancel: CancelToken,
    tally: _Tally,
) -> None:
    """Run ``planes`` and write their outputs into ``out`` (its ``planes`` grow by them)."""
    out.planes = np.union1d(out.planes, planes).astype(int)
    chunks = [planes[i : i + batch_size] for i in range(0, len(planes), batch_size)]
    zg = prepared.n_slices
    for idx, x in _prefetch(prepared, chunks, cancel):
        t0 = time.perf_counter()
        y = engine.predict(x)
        out.seconds += time.perf_counter() - t0
        out.labels[idx] = np.argmax(y["vertebrae"], axis=-1).astype(np.uint8)
        if out.probabilities is not None:
            out.probabilities[idx] = y["vertebrae"]
        out.fracture_map[idx] = np.clip(y["fracture_map"][..., 0], 0.0, 1.0)
        out.fracture_cls[idx] = y["fracture_cls"]
        if "fracture_cam" in y:
            if out.cam is None:
                out.cam = np.zeros((zg, *y["fracture_cam"].shape[1:]), np.float32)
            out.cam[idx] = y["fracture_cam"]
        tally.add(len(idx))
        check_cancelled(cancel)


def _prefetch(
    prepared: PreparedVolume, chunks: list[np.ndarray], cancel: CancelToken
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (plane indices, model input) with the next batch prepared on a helper thread."""
    q: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for idx in chunks:
                item = (idx, model_input(prepared, idx))
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    worker = threading.Thread(target=produce, name="cspine-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            check_cancelled(cancel)
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
