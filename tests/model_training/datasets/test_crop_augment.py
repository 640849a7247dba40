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
