"""Epoch sampling: bounded, every study sampled, fractured slices/studies oversampled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from model_training.datasets import epoch_samples


@dataclass
class Fake:
    n_slices: int


def _setup():
    # 10 studies of 50 slices; studies 0 and 1 have 3 fracture-showing slices each
    studies = [Fake(50) for _ in range(10)]
    positives = [np.array([10, 11, 12]), np.array([30, 31, 32])] + [np.array([], int)] * 8
    return studies, positives


def _is_positive(pairs, positives):
    return np.array([z in set(positives[i].tolist()) for i, z in pairs])


def test_plain_sampling_draws_slices_per_study_from_every_study():
    studies, positives = _setup()
    pairs = epoch_samples(studies, 8, 0.0, np.random.default_rng(0), positives)
    assert pairs.shape == (80, 2)
    assert np.array_equal(np.bincount(pairs[:, 0], minlength=10), np.full(10, 8))
    assert pairs[:, 1].min() >= 0 and pairs[:, 1].max() < 50
    # natural rate of fracture-showing slices is 6 / 500 = 1.2 %
    assert _is_positive(pairs, positives).mean() < 0.1


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_oversampling_reaches_the_requested_share_of_fracture_slices(share):
    studies, positives = _setup()
    pairs = epoch_samples(studies, 20, share, np.random.default_rng(1), positives)
    assert len(pairs) == 200  # the epoch stays bounded
    pos = _is_positive(pairs, positives)
    assert share <= pos.mean() <= share + 0.05
    counts = np.bincount(pairs[:, 0], minlength=10)
    assert counts[:2].min() > counts[2:].max()  # fractured studies are drawn more often
    assert counts[2:].min() > 0  # and no study is starved


def test_without_any_fracture_slice_oversampling_falls_back_to_uniform():
    studies = [Fake(20) for _ in range(3)]
    none = [np.array([], int)] * 3
    pairs = epoch_samples(studies, 5, 0.5, np.random.default_rng(0), none)
    assert np.array_equal(np.bincount(pairs[:, 0]), [5, 5, 5])
