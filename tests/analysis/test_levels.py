"""Anatomical level assignment on the model grid."""

from __future__ import annotations

import numpy as np

from cspine_desktop.analysis.anchors import _split_at_discs
from cspine_desktop.analysis.levels import assign_levels


def _spine(step_mm=2.0, heights_mm=(12, 30, 18, 18, 18, 18, 18), s=12):
    """Truth labels: each level a run of planes, with the spinous process of the level above
    reaching one plane into the next level (as axial planes cut them)."""
    planes = [round(h / step_mm) for h in heights_mm]
    nz = sum(planes) + 4
    truth = np.zeros((nz, s, s), np.uint8)
    z = 2
    for level, n in enumerate(planes, start=1):
        truth[z : z + n, 3:8, 3:8] = level
        if level > 1:
            truth[z, 9:11, 5:7] = level - 1  # spinous process of the level above
        z += n
    return truth


def test_correct_labels_are_left_alone():
    truth = _spine()
    res = assign_levels(truth, 2.0)
    np.testing.assert_array_equal(res.labels, truth)
    assert res.relabelled_fraction == 0.0 and not res.warnings


def test_confused_middle_levels_are_put_back_in_order():
    truth = _spine()
    pred = truth.copy()
    # the model calls most of C3–C6 "C4" and a block of C6 "C3"
    mid = (truth >= 3) & (truth <= 6)
    pred[mid] = 4
    z6 = np.nonzero((truth == 6).any(axis=(1, 2)))[0]
    pred[z6[: len(z6) // 2]][pred[z6[: len(z6) // 2]] > 0] = 3
    res = assign_levels(pred, 2.0)
    body = truth.copy()
    body[:, 9:11, 5:7] = 0  # compare vertebral bodies
    agree = (res.labels[body > 0] == body[body > 0]).mean()
    before = (pred[body > 0] == body[body > 0]).mean()
    assert agree > 0.8 > before
    assert list(np.unique(res.plane_level[res.plane_level > 0])) == [1, 2, 3, 4, 5, 6, 7]
    assert res.warnings  # a big relabelling is reported


def test_a_scan_that_starts_at_c3_keeps_its_levels():
    truth = _spine()
    first_c3 = int(np.nonzero((truth == 3).any(axis=(1, 2)))[0][0])
    cut = truth[first_c3 + 1 :]
    res = assign_levels(cut, 2.0)
    assert (res.labels == cut).mean() > 0.99


def test_empty_and_too_long():
    res = assign_levels(np.zeros((5, 8, 8), np.uint8), 2.0)
    assert not res.labels.any()
    long = np.ones((400, 8, 8), np.uint8)  # 800 mm of "vertebra": impossible
    res = assign_levels(long, 2.0)
    assert res.warnings and np.array_equal(res.labels, long)


def test_column_split_at_a_disc_bridged_by_a_lip_but_not_in_a_hollow_body():
    """Midline sagittal mask (2 mm planes, 0.625 mm pixels): a body whose antero-inferior lip
    touches the body below across the disc is two bodies; a body whose core is below the
    threshold (shell only) and the dens narrowing into C2's body are not split."""
    m = np.zeros((20, 40), bool)
    m[0:8, 5:30] = True  # upper body
    m[8, 5:10] = True  # its lip in front of the disc
    m[9:17, 5:30] = True  # lower body
    m[11:15, 8:27] = False  # its hollow core (only the shell passes the threshold)
    assert _split_at_discs(m, 0, 17, 2.0) == [(0, 7), (8, 16)]
    dens = np.zeros((16, 40), bool)
    dens[0:6, 12:22] = True  # dens
    dens[6:16, 5:30] = True  # C2's body
    assert _split_at_discs(dens, 0, 16, 2.0) == [(0, 15)]
