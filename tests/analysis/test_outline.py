"""Stage 1's outlines moved onto the bone edge (cspine_desktop/analysis/outline.py).

A synthetic "vertebra": a disc of cancellous bone (250 HU) in a 1.5 mm cortex (1000 HU), blurred
as a scanner blurs it, in soft tissue (40 HU) with noise; its true mask is the disc. Stage 1's
errors are drawn on the true mask: a shift, a notch of soft tissue, a bump into soft tissue.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cspine_desktop.analysis.outline import OutlineConfig, outline_to_bone
from cspine_desktop.imaging.volume import Volume

PX = 0.5  # mm
N = 96
R = 12.0  # mm, the disc's radius
CFG = OutlineConfig()


def _disc(cy: float, cx: float, r_mm: float, n: int = N) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= (r_mm / PX) ** 2


def _plane(truth: np.ndarray, rng: np.random.Generator, gap: np.ndarray | None = None):
    inner = cv2.erode(truth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # 1.5 mm
    hu = np.where(truth, 1000.0, 40.0)
    hu[inner] = 250.0
    if gap is not None:
        hu[gap & truth] = 40.0
    hu = cv2.GaussianBlur(hu.astype(np.float32), (0, 0), 0.6 / PX)  # the scanner's blur
    return hu + rng.normal(0, 15, hu.shape)


def _volume(hu_planes: np.ndarray, px=(PX, PX), slice_mm=2.0) -> Volume:
    affine = np.diag([px[1], px[0], slice_mm, 1.0])
    return Volume(
        hu=hu_planes.astype(np.float32),
        affine=affine,
        spacing=(slice_mm, px[0], px[1]),
    )


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    truth = _disc(N / 2, N / 2, R)
    hu = np.stack([_plane(truth, rng) for _ in range(3)])
    return truth, hu


def test_a_shifted_outline_moves_onto_the_bone(scene):
    truth, hu = scene
    shifted = np.stack([_disc(N / 2 + 3, N / 2 - 2, R)] * 3).astype(np.uint8) * 3  # 1.5 mm, 1 mm
    out = outline_to_bone(shifted, _volume(hu), CFG)
    assert _dice(shifted[1] == 3, truth) < 0.91
    assert _dice(out[1] == 3, truth) > 0.96
    assert set(np.unique(out)) == {0, 3}


def test_a_notch_of_soft_tissue_is_peeled_and_a_bump_is_filled(scene):
    truth, hu = scene
    lab = truth.copy()
    lab[: N // 2 - int(R / PX) + 4, :] = False  # 2 mm cut off the top: a bump of bone left out
    notch = _disc(N / 2, N / 2 + R / PX + 2, 2.0)  # soft tissue up to 3 mm out on the right
    lab |= notch
    out = outline_to_bone(np.stack([lab] * 3).astype(np.uint8), _volume(hu), CFG)[1] > 0
    beyond = cv2.distanceTransform((~truth).astype(np.uint8), cv2.DIST_L2, 5) > 1.0 / PX
    assert (notch & beyond).sum() > 20
    assert not (notch & beyond & out).any()  # the blurred cortex's last millimetre may stay
    cut = truth & ~lab
    assert (cut & out).sum() > 0.8 * cut.sum()
    assert _dice(out, truth) > 0.97


def test_marrow_behind_the_cortex_stays_even_below_the_bone_level(scene):
    truth, hu = scene
    lab = np.stack([truth] * 3).astype(np.uint8)
    out = outline_to_bone(lab, _volume(hu), CFG)
    inner = cv2.erode(truth.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert out[1][inner].all()  # 250 HU marrow: below the bone level, kept


def test_a_hairline_gap_does_not_let_the_soft_tissue_in():
    rng = np.random.default_rng(1)
    truth = _disc(N / 2, N / 2, R)
    gap = np.zeros_like(truth)
    gap[N // 2, N // 2 :] = True  # one pixel wide, through the cortex on the right
    hu = np.stack([_plane(truth, rng, gap) for _ in range(3)])
    out = outline_to_bone(np.stack([truth] * 3).astype(np.uint8), _volume(hu), CFG)[1] > 0
    assert (truth & ~out).sum() < 0.01 * truth.sum()


def test_nothing_moves_further_than_the_reach(scene):
    truth, hu = scene
    far = np.stack([_disc(N / 2 + 10, N / 2, R)] * 3).astype(np.uint8)  # 5 mm off
    out = outline_to_bone(far, _volume(hu), CFG)[1] > 0
    dist = cv2.distanceTransform((far[1] == 0).astype(np.uint8), cv2.DIST_L2, 5)
    assert dist[out].max() <= CFG.reach_mm / PX + 1e-3
    assert _dice(out, truth) > _dice(far[1] > 0, truth)


def test_added_bone_takes_the_nearest_level_and_no_level_appears_where_it_was_not(scene):
    truth, hu = scene
    lab = np.zeros((3, N, N), np.uint8)
    lab[:, truth] = 4
    lab[:, : N // 2, :][:, truth[: N // 2]] = 3  # upper half "C3", lower half "C4"
    lab[:, N // 2 - int(R / PX) : N // 2 - int(R / PX) + 4, :] = 0  # C3's rim left out
    lab[2] = np.where(lab[2] == 3, 0, lab[2])  # no C3 in plane 2
    out = outline_to_bone(lab, _volume(hu), CFG)
    top = truth & (np.arange(N)[:, None] < N // 2 - int(R / PX) + 4)
    assert (out[1][top] == 3).mean() > 0.8
    assert not (out[2] == 3).any()


def test_a_plane_without_bone_contrast_keeps_its_labels():
    rng = np.random.default_rng(2)
    hu = 40.0 + rng.normal(0, 15, (3, N, N))
    lab = np.stack([_disc(N / 2, N / 2, R)] * 3).astype(np.uint8) * 2
    np.testing.assert_array_equal(outline_to_bone(lab, _volume(hu), CFG), lab)


def test_planes_of_far_from_square_pixels_are_left_alone(scene):
    _, hu = scene
    shifted = np.stack([_disc(N / 2 + 3, N / 2, R)] * 3).astype(np.uint8)
    out = outline_to_bone(shifted, _volume(hu, px=(PX, 2 * PX)), CFG)
    np.testing.assert_array_equal(out, shifted)


def test_a_sagittal_acquisition_is_refined_in_its_axial_planes(scene):
    """The same anatomy stored as sagittal slices: the result is the axial one, transposed."""
    _, hu = scene
    shifted = np.stack([_disc(N / 2 + 3, N / 2 - 2, R)] * 3).astype(np.uint8)
    axial = outline_to_bone(shifted, _volume(hu), CFG)
    # array [x, y, z] → stored axes: slices along x; affine columns: (z, y, x) steps
    sag_hu = np.ascontiguousarray(np.transpose(hu, (2, 1, 0)))
    sag_lab = np.ascontiguousarray(np.transpose(shifted, (2, 1, 0)))
    affine = np.zeros((4, 4))
    affine[2, 0] = 2.0  # array x (stored last) walks the patient's z
    affine[1, 1] = PX
    affine[0, 2] = PX  # stored slice axis walks the patient's x
    affine[3, 3] = 1.0
    sag = Volume(hu=sag_hu.astype(np.float32), affine=affine, spacing=(PX, PX, 2.0))
    out = outline_to_bone(sag_lab, sag, CFG)
    np.testing.assert_array_equal(out, np.transpose(axial, (2, 1, 0)))


def test_labels_of_another_shape_are_refused(scene):
    _, hu = scene
    with pytest.raises(ValueError, match="do not match"):
        outline_to_bone(np.zeros((2, N, N), np.uint8), _volume(hu), CFG)


def test_the_card_section():
    assert OutlineConfig.from_card(None) is None
    assert OutlineConfig.from_card({}) is None
    cfg = OutlineConfig.from_card({**CFG.to_dict(), "unknown": 1})
    assert cfg == CFG
    with pytest.raises(ValueError, match="outline"):
        OutlineConfig.from_card({"bone_level": 0.2, "soft_level": 0.3})


def test_pinholes_are_closed_and_larger_openings_kept(scene):
    """A 1 mm² gap inside the labels closes (the moved outlines on a real chest CT had four,
    0.5–2 mm²); a 38 mm² opening — the size of a canal or a transverse foramen — stays open,
    although both lie over the same cancellous bone."""
    truth, hu = scene
    lab = truth.copy()
    c = N // 2
    lab[c - 1 : c + 1, c + 8 : c + 10] = False  # 2 × 2 px = 1 mm²
    opening = _disc(c, c - 9, 3.5)
    lab &= ~opening
    out = outline_to_bone(np.stack([lab] * 3).astype(np.uint8) * 4, _volume(hu), CFG)[1]
    assert (out[c - 1 : c + 1, c + 8 : c + 10] == 4).all()
    assert (out[opening] == 0).mean() > 0.9
