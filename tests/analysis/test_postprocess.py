"""Label cleanup: largest connected part per vertebra, anatomical order, scan edges."""

from __future__ import annotations

import numpy as np

from cspine_desktop.analysis.postprocess import (
    clean_labels,
    edge_notes,
    largest_component_3d,
    order_warnings,
    with_dens,
)


def _stacked(z=12, s=32):
    """C1 on planes 1–3, C2 on 4–7, C3 on 8–10: blocks in the middle of the image."""
    labels = np.zeros((z, s, s), np.uint8)
    labels[1:4, 10:20, 10:20] = 1
    labels[4:8, 10:20, 10:20] = 2
    labels[8:11, 10:20, 10:20] = 3
    return labels


def test_largest_component_joins_planes_through_overlap_only():
    m = np.zeros((4, 10, 10), bool)
    m[0:3, 1:4, 1:4] = True  # 27 voxels, connected through planes
    m[3, 6:9, 6:9] = True  # 9 voxels on the next plane but not overlapping: separate
    keep = largest_component_3d(m)
    assert keep.sum() == 27 and not keep[3].any()


def test_largest_component_handles_diagonal_in_plane_and_empty_masks():
    m = np.zeros((1, 5, 5), bool)
    m[0, 0, 0] = m[0, 1, 1] = m[0, 2, 2] = True  # 8-connected diagonal
    assert largest_component_3d(m).sum() == 3
    assert not largest_component_3d(np.zeros((2, 3, 3), bool)).any()


def test_clean_labels_drops_stray_islands_and_noise():
    labels = _stacked()
    labels[9, 0:2, 0:2] = 2  # a stray C2 island far from C2: 4 voxels
    labels[0, 30, 30] = 5  # a single C5 voxel: below min_voxels → absent
    clean = clean_labels(labels, min_voxels=10)
    assert (clean.labels == 2).sum() == 4 * 100
    assert not (clean.labels == 5).any()
    assert clean.removed_voxels[1] == 4 and clean.removed_voxels[4] == 1
    assert clean.warnings == ()


def test_c2_keeps_a_dens_cut_off_from_its_body_and_nothing_else():
    """2 mm planes, 1.25 mm pixels: C2's body on planes 6–10, its dens on planes 2–4, one
    plane of background between them (as a type II fracture line, or partial volume, leaves)."""
    c2 = np.zeros((14, 40, 40), bool)
    c2[6:11, 12:28, 12:28] = True  # the body
    c2[2:5, 16:21, 18:23] = True  # the dens, over the body's middle
    body = largest_component_3d(c2)
    assert not body[2:5].any()  # the largest part alone loses the dens
    kept = with_dens(c2, body, 2.0, 1.25)
    assert kept[2:5].sum() == 3 * 25 and kept[6:11].all(axis=0)[12:28, 12:28].all()

    for stray in (
        (slice(2, 5), slice(33, 38), slice(33, 38)),  # above, but beside the body
        (slice(0, 2), slice(16, 21), slice(18, 23)),  # over the body, 8 mm above its top
        (slice(12, 14), slice(16, 21), slice(18, 23)),  # below the body
    ):
        other = body.copy()
        other[stray] = True
        assert (with_dens(other, body, 2.0, 1.25) == body).all(), stray


def test_clean_labels_keeps_the_dens_of_c2():
    labels = _stacked(z=16)
    labels[4:8] = 0
    labels[4:5, 13:17, 13:17] = 2  # the dens
    labels[6:10, 10:20, 10:20] = 2  # C2's body, one empty plane below the dens
    labels[10:13, 10:20, 10:20] = 3
    clean = clean_labels(labels, min_voxels=10, slice_step_mm=2.0, pixel_mm=1.25)
    assert (clean.labels[4] == 2).sum() == 16 and clean.removed_voxels[1] == 0
    assert clean_labels(labels, min_voxels=10).removed_voxels[1] == 16  # without the spacing


def test_upside_down_vertebrae_are_warned_about():
    labels = _stacked()
    swapped = labels.copy()
    swapped[labels == 1], swapped[labels == 3] = 3, 1  # C3 on top, C1 at the bottom
    warnings = order_warnings(swapped)
    assert len(warnings) == 2
    assert "C2 was found at or above C1" in warnings[0]
    assert order_warnings(labels) == ()


def test_vertebrae_touching_the_scan_edge_get_a_note():
    labels = _stacked()
    labels[0, 10:20, 10:20] = 1  # C1 now starts on the first plane
    notes = edge_notes(labels)
    assert set(notes) == {"C1"}
