"""Stage-1-like masks for stage-2 training: level ends moved along the slices."""

from __future__ import annotations

import numpy as np

from model_training.datasets.crop_augment import perturb_mask, shift_level_ends


def _stack() -> np.ndarray:
    """C2 on slices 0–7, C3 on 10–19, C4 on 22–31 (discs between), one 12×12 block each."""
    labels = np.zeros((34, 20, 20), np.uint8)
    for level, (z0, z1) in {2: (0, 7), 3: (10, 19), 4: (22, 31)}.items():
        labels[z0 : z1 + 1, 4:16, 4:16] = level
    return labels


def _slices(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)).tolist()


def test_a_level_end_takes_in_the_neighbours_endplate_or_gives_up_its_own():
    labels = _stack()
    c3 = (labels == 3).astype(np.float32)
    longer = shift_level_ends(c3, labels, 4, 4)  # toward C4, across the 2-slice disc
    assert _slices(longer) == [*range(10, 20), 22, 23]
    assert longer[22:24].sum() == (labels[22:24] == 4).sum()  # C4's voxels, nothing else
    shorter = shift_level_ends(c3, labels, 2, -3)  # C3's top within 3 slices of C2 goes
    assert _slices(shorter) == list(range(11, 20))
    assert shift_level_ends(c3, labels, 5, 4) is c3  # no such neighbour: unchanged
    assert shift_level_ends(c3, labels, 4, 0) is c3


def test_training_masks_move_their_ends_only_when_the_labels_are_given():
    labels = _stack()
    c3 = labels == 3
    moved = {"into C2": 0, "into C4": 0, "shorter": 0}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        plain = perturb_mask(c3, np.random.default_rng(seed))
        assert set(_slices(plain)) == set(range(10, 20))  # in-plane only
        got = perturb_mask(c3, rng, labels, 3, 1.0)
        z = _slices(got)
        moved["into C2"] += z[0] < 10
        moved["into C4"] += z[-1] > 19
        moved["shorter"] += z[0] > 10 or z[-1] < 19
    assert all(n >= 3 for n in moved.values()), moved


def _ball(n: int = 48, r: float = 14.0) -> np.ndarray:
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2
    return (z**2 + y**2 + x**2) <= r**2


def test_a_wobbled_outline_moves_by_about_the_field_and_runs_on_through_the_slices():
    from model_training.datasets.crop_augment import wobble_outline

    ball = _ball()
    got = wobble_outline(ball, np.random.default_rng(3), (1.0, 1.0), 1.0, 6.0).astype(bool)
    assert got.shape == ball.shape
    assert not got[~ball.any(axis=(1, 2))].any()  # no slice beyond the mask's own
    changed = got ^ ball
    assert 0.05 < changed.sum() / ball.sum() < 0.30  # a millimetre in and out on a 14 mm ball
    dice = 2 * (got & ball).sum() / (got.sum() + ball.sum())
    assert dice > 0.85
    # Notches and bumps, not speckle: a voxel that changed mostly has a changed neighbour on the
    # next slice, far more often than independent changes of the same share would.
    inner = changed[20:27]
    follow = (inner & changed[21:28]).sum() / inner.sum()
    assert follow > 0.6, follow
    # A larger field moves the outline further.
    wide = wobble_outline(ball, np.random.default_rng(3), (1.0, 1.0), 2.5, 6.0).astype(bool)
    assert (wide ^ ball).sum() > 1.5 * changed.sum()


def test_training_masks_wobble_only_when_the_pixel_size_is_given():
    ball = _ball(32, 9.0)
    straight = wobbled = 0
    for seed in range(30):
        plain = perturb_mask(ball, np.random.default_rng(seed), slice_mm=1.0)
        m = plain > 0
        # Without the pixel size: the same mask dilated or eroded as a whole, slice by slice.
        straight += all(
            np.array_equal(m[z], ball[z]) or (m[z] >= ball[z]).all() or (m[z] <= ball[z]).all()
            for z in range(ball.shape[0])
        )
        got = perturb_mask(ball, np.random.default_rng(seed), slice_mm=1.0, px_mm=1.0) > 0
        wobbled += bool(((got & ~ball).any()) and ((ball & ~got).any()))  # in and out at once
    assert straight == 30
    assert 10 <= wobbled <= 28, wobbled  # WOBBLE_P of them
