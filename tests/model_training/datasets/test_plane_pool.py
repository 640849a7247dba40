"""The rotating pool both training streams draw from (``PlanePool``), with real worker
processes making items from seeds."""

from __future__ import annotations

import pytest

from model_training.datasets.seed_workers import PlanePool


def _planes_of(seed: int) -> list[int]:
    """A stand-in for one study's planes: ``seed % 3 + 1`` of them, each the seed."""
    return [seed] * (seed % 3 + 1)


def _nothing(seed: int) -> list[int]:
    return []


class Pool(PlanePool[list[int]]):
    def batch(self, size: int):  # not drawn from here: the pool itself is under test
        raise AssertionError("not called")


def test_the_pool_keeps_the_most_recent_planes_and_continues_the_seeds():
    pool = Pool(_planes_of, 100, workers=1, pool_size=6, start_index=5, wait_s=60)
    try:
        pool.fill(20)  # more than the pool holds: filled up to pool_size
        assert pool.n_pool >= 6
        for _ in range(5):  # and it goes on rotating
            pool.refill(block=True)
    finally:
        pool.close()
    seeds = [item[0] for item in pool.pool]
    assert seeds == sorted(seeds) and seeds[0] >= 105  # in seed order, from start_index on
    assert pool.n_pool == sum(len(i) for i in pool.pool)
    # the oldest study goes once the rest hold pool_size planes
    assert pool.n_pool - len(pool.pool[0]) < 6 <= pool.n_pool
    assert seeds[-1] - seeds[0] + 1 == len(seeds) < pool.seeds_used - 5


def test_workers_that_make_nothing_fail_the_fill_instead_of_hanging():
    pool = Pool(_nothing, 0, workers=1, pool_size=6, wait_s=1.0)
    try:
        with pytest.raises(RuntimeError, match="produced nothing"):
            pool.fill(1)
    finally:
        pool.close()
