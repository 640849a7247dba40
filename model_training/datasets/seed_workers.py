"""Worker processes that turn an endless sequence of phantom seeds into training items.

Both training streams (:mod:`.crops_stream` for stage 2, :mod:`.grid_stream` for stage 1) run
the same machinery: spawned processes draw the next seed from a shared counter (``seed0`` +
index, so a resumed run continues the sequence), build one study's training item with
``make(seed)`` and put it on a bounded queue; the trainer takes items as it wants them.
:class:`PlanePool` keeps the most recent items for the trainer to draw batches from. Also
:func:`map_seeds`, the evaluation sets built in a pool of processes.

``make`` must be picklable (a top-level function, or a ``functools.partial`` of one).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sized
from typing import Any, Generic, TypeVar

import cv2
import numpy as np


def _worker(
    q: Any, seeds: Any, seed0: int, make: Callable[[int], Any], stop: Any, parent: int
) -> None:  # pragma: no cover - runs in a spawned process
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cv2.setNumThreads(1)
    # the trainer comes first: fresh studies fill the CPU it leaves idle
    os.nice(5)
    # items still buffered when the trainer stops reading are dropped: otherwise the queue's
    # feeder thread holds the worker at exit until a reader that is gone drains the pipe
    q.cancel_join_thread()

    def wanted() -> bool:
        # a trainer killed before close() (a signal, a crash) leaves no worker generating
        # studies for nobody: orphaned, the worker's parent is no longer the trainer
        return not stop.is_set() and os.getppid() == parent

    while wanted():
        with seeds.get_lock():
            seed = seed0 + seeds.value
            seeds.value += 1
        item = make(seed)
        while wanted():
            try:
                q.put(item, timeout=0.5)
                break
            except queue.Full:
                continue


class SeedWorkers:
    """``workers`` processes running ``make`` on seeds ``seed0 + start_index`` onwards."""

    def __init__(
        self,
        make: Callable[[int], Any],
        seed0: int,
        *,
        workers: int = 1,
        start_index: int = 0,
        queue_size: int = 8,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.queue = ctx.Queue(maxsize=queue_size)
        self.seeds = ctx.Value("q", int(start_index))
        self.stop = ctx.Event()
        args = (self.queue, self.seeds, int(seed0), make, self.stop, os.getpid())
        self.procs = [
            ctx.Process(target=_worker, args=args, daemon=True) for _ in range(max(1, workers))
        ]
        for p in self.procs:
            p.start()

    @property
    def seeds_used(self) -> int:
        return int(self.seeds.value)

    def get(self, block: bool, timeout: float) -> Any | None:
        """The next item, or None when there is none (within ``timeout`` s when blocking)."""
        try:
            return self.queue.get(block=block, timeout=timeout if block else None)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()


ItemT = TypeVar("ItemT", bound=Sized)


class PlanePool(ABC, Generic[ItemT]):
    """:class:`SeedWorkers` feeding a rotating pool of the most recent ``pool_size`` planes
    (each item holds one study's planes); subclasses draw batches from ``pool``. Fresh items
    are taken as they come, without waiting, before each batch."""

    def __init__(
        self,
        make: Callable[[int], ItemT],
        seed0: int,
        *,
        workers: int = 1,
        pool_size: int,
        start_index: int = 0,
        rng_seed: int = 0,
        wait_s: float = 300.0,
    ) -> None:
        self.workers = SeedWorkers(make, seed0, workers=workers, start_index=start_index)
        self.pool_size, self.wait_s = pool_size, wait_s
        self.pool: deque[ItemT] = deque()
        self.n_pool = 0
        self.rng = np.random.default_rng(rng_seed)

    @property
    def seeds_used(self) -> int:
        return self.workers.seeds_used

    @property
    def procs(self) -> list[Any]:
        """The worker processes."""
        return self.workers.procs

    def add(self, item: ItemT) -> None:
        """Pool one study's planes, dropping the oldest beyond ``pool_size``."""
        if len(item):
            self.pool.append(item)
            self.n_pool += len(item)
        while self.pool and self.n_pool - len(self.pool[0]) >= self.pool_size:
            self.n_pool -= len(self.pool.popleft())

    def refill(self, block: bool = False) -> None:
        """Pool what the workers have made (with ``block``, wait up to ``wait_s`` for one)."""
        while True:
            item = self.workers.get(block, timeout=self.wait_s)
            if item is None:
                return
            block = False
            self.add(item)

    def fill(self, n: int) -> None:
        """Wait until ``n`` planes (at most ``pool_size``) are pooled."""
        while self.n_pool < min(n, self.pool_size):
            before = self.n_pool
            self.refill(block=True)
            if self.n_pool == before:
                raise RuntimeError(f"the phantom workers produced nothing for {self.wait_s:.0f} s")

    @abstractmethod
    def batch(self, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One training batch (inputs, targets) drawn from ``pool``."""

    def close(self) -> None:
        self.workers.close()


def map_seeds(fn: Callable[[Any], Any], args: list[Any], workers: int = 1) -> list[Any]:
    """``[fn(a) for a in args]``, in a pool of ``workers`` spawned processes when > 1."""
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            return list(pool.map(fn, args))
    return [fn(a) for a in args]
