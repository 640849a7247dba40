"""Label counting shared by the exports: per slice and in total, exact for any map size."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.reports._common import label_counts, slice_label_counts


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_counts_per_slice_and_in_total_match_bincount(dtype):
    labels = np.random.default_rng(3).integers(0, 8, (6, 9, 11)).astype(dtype)
    per_slice = slice_label_counts(labels)
    assert per_slice.shape == (6, 256) and per_slice.dtype == np.int64
    for z in range(6):
        np.testing.assert_array_equal(per_slice[z, :8], np.bincount(labels[z].ravel(), minlength=8))
    assert not per_slice[:, 8:].any()
    np.testing.assert_array_equal(label_counts(labels)[:8], np.bincount(labels.ravel()))


def test_a_one_dimensional_map_is_one_slice():
    assert label_counts(np.array([0, 7, 7, 255], np.uint8))[[0, 7, 255]].tolist() == [1, 2, 1]
    assert slice_label_counts(np.array([3, 3], np.uint8)).shape == (1, 256)


def test_non_contiguous_views_are_counted_too():
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[:, 2:5, 3:9] = 2
    view = labels.transpose(0, 2, 1)[:, ::2]  # strided, not contiguous
    np.testing.assert_array_equal(
        slice_label_counts(view)[:, 2], [np.count_nonzero(p == 2) for p in view]
    )
