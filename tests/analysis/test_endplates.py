"""Endplates as evidence of where two bodies meet, where no bone threshold separates them:
osteoporotic bodies whose cores read under every threshold and narrow discs whose planes read
over it (partial volume) form one block; the endplates still show as the brightest planes of
the column's front."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.analysis.anchors import endplate_planes, find_anchors
from cspine_desktop.analysis.levels import assign_levels

STEP, PX = 2.0, 1.25
HEIGHTS = (12, 8, 8, 8, 8, 8)  # C2, then C3–C7: 7 planes of body and 1 of disc each


def _osteoporotic_column() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """C2–C7 on 2 mm planes: hollow bodies (shell 260 HU, core 100 HU) with endplates of 380 HU
    and one plane of 230 HU between them for each narrow disc; the arches behind, labelled with
    their body, fill the disc's planes as they do in a lordotic neck. Returns the HU, the true
    labels and the planes where C3…C7 start."""
    hu = np.full((70, 96, 96), 30.0, np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    tops = []
    z = 6
    for level, height in zip(range(2, 8), HEIGHTS, strict=True):
        tops.append(z)
        body = slice(z, z + height - 1)
        hu[body, 30:46, 40:56] = 260.0
        hu[body, 32:44, 42:54] = 100.0
        hu[z, 30:46, 40:56] = 380.0  # upper endplate
        hu[z + height - 2, 30:46, 40:56] = 380.0  # lower endplate
        hu[z + height - 1, 30:46, 40:56] = 230.0  # the disc's plane
        labels[body, 30:46, 40:56] = level
        hu[z : z + height, 50:60, 44:52] = 300.0
        labels[z : z + height, 50:60, 44:52] = level
        z += height
    return hu, labels, tops[1:]


def _dice(a: np.ndarray, b: np.ndarray, k: int) -> float:
    x, y = a == k, b == k
    return 2.0 * float((x & y).sum()) / float(x.sum() + y.sum())


def test_the_endplates_show_where_no_bone_threshold_parts_the_bodies():
    hu, labels, tops = _osteoporotic_column()
    anchors = find_anchors(hu, labels, STEP, PX)
    assert not any(tops[0] <= t <= tops[-1] for t in anchors.body_tops)  # one block
    found = endplate_planes(hu, labels, STEP, PX)
    assert all(top in found for top in tops), (tops, found)
    assert endplate_planes(hu, np.zeros_like(labels), STEP, PX) == ()


@pytest.mark.parametrize(("level", "into"), [(4, 3), (4, 5), (5, 4), (5, 6), (6, 7)])
def test_a_squeezed_level_is_split_again_at_the_endplates(level, into):
    """Three fifths of a level's planes labelled as its neighbour: the three levels are split
    again at the endplates and the squeezed one gets its vertebra back; without the CT the
    labels stay as they are."""
    hu, labels, _ = _osteoporotic_column()
    planes = np.flatnonzero((labels == level).any(axis=(1, 2)))
    n = round(len(planes) * 0.6)
    taken_planes = planes[:n] if into < level else planes[len(planes) - n :]
    taken = labels.copy()
    part = taken[taken_planes]
    part[part == level] = into
    taken[taken_planes] = part
    assert _dice(taken, labels, level) < 0.6

    res = assign_levels(taken, STEP, hu=hu, pixel_mm=PX)
    assert _dice(res.labels, labels, level) > 0.9
    assert any(f"Part of C{level} had been labelled" in w for w in res.warnings)
    assert _dice(assign_levels(taken, STEP).labels, labels, level) < 0.6
