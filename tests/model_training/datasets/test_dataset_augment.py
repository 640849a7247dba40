"""Augmentation moves image and targets together; intensity changes touch only the image."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.datasets import AugmentConfig, augment_slice

S = 64
GEOMETRY_ONLY = dict(contrast=0.0, brightness=0.0, noise_std=0.0)


def _label_coded():
    """Block labels 0–7 and an image whose every channel encodes the label (v / 8)."""
    labels = np.zeros((S, S), np.uint8)
    for v in range(1, 8):
        r, c = divmod(v - 1, 3)
        labels[6 + r * 18 : 20 + r * 18, 6 + c * 18 : 20 + c * 18] = v
    x = np.repeat((labels / 8.0).astype(np.float32)[..., None], 5, axis=2)  # 5 channels
    frac = (labels == 3).astype(np.float32)[..., None]
    return x, labels, frac


def _interior(labels):
    """Pixels whose 3×3 neighbourhood holds a single label (interpolation cannot blend);
    the outer frame is excluded (there the image blends with the zero border)."""
    pad = np.pad(labels, 1, constant_values=255)
    same = np.ones_like(labels, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= pad[1 + dy : 1 + dy + S, 1 + dx : 1 + dx + S] == labels
    return same


@pytest.mark.parametrize("elastic", [0.0, 4.0], ids=["affine", "elastic"])
@pytest.mark.parametrize("seed", range(5))
def test_image_and_labels_stay_aligned(seed, elastic):
    x, labels, frac = _label_coded()
    cfg = AugmentConfig(
        rotation_deg=15,
        scale=(0.85, 1.15),
        shift_frac=0.08,
        elastic_alpha_px=elastic,
        **GEOMETRY_ONLY,
    )
    xa, la, fa = augment_slice(x, labels, frac, cfg, np.random.default_rng(seed))
    assert xa.shape == x.shape and la.shape == labels.shape and fa.shape == frac.shape
    assert xa.dtype == np.float32 and la.dtype == np.uint8
    assert not np.array_equal(la, labels)  # something moved
    decoded = np.rint(xa[..., 0] * 8).astype(np.uint8)
    inner = _interior(la)
    assert inner.mean() > 0.5
    assert np.array_equal(decoded[inner], la[inner])
    assert np.allclose(xa[..., 0], xa[..., 4])  # channels beyond cv2's 4 move the same way
    assert np.array_equal(fa[..., 0] > 0.5, la == 3)
    assert set(np.unique(la)) <= set(range(8))


def test_no_change_config_is_the_identity():
    x, labels, frac = _label_coded()
    cfg = AugmentConfig(rotation_deg=0, scale=(1, 1), shift_frac=0, **GEOMETRY_ONLY)
    xa, la, fa = augment_slice(x, labels, frac, cfg, np.random.default_rng(0))
    assert np.allclose(xa, x, atol=1e-6) and np.array_equal(la, labels)
    assert np.array_equal(fa, frac)


def test_intensity_changes_the_image_only_and_stays_in_range():
    x, labels, frac = _label_coded()
    cfg = AugmentConfig(
        rotation_deg=0, scale=(1, 1), shift_frac=0, contrast=0.3, brightness=0.1, noise_std=0.05
    )
    xa, la, fa = augment_slice(x, labels, frac, cfg, np.random.default_rng(2))
    assert not np.allclose(xa, x) and xa.min() >= 0 and xa.max() <= 1
    assert np.array_equal(la, labels) and np.array_equal(fa, frac)


def test_left_right_flip_is_off_by_default_and_mirrors_when_asked():
    x, labels, frac = _label_coded()
    geometry_off = dict(rotation_deg=0, scale=(1, 1), shift_frac=0, **GEOMETRY_ONLY)
    default = AugmentConfig(**geometry_off)
    assert not default.flip_lr
    outs = [augment_slice(x, labels, frac, default, np.random.default_rng(s))[1] for s in range(8)]
    assert all(np.array_equal(o, labels) for o in outs)
    flipping = AugmentConfig(flip_lr=True, **geometry_off)
    outs = [augment_slice(x, labels, frac, flipping, np.random.default_rng(s))[1] for s in range(8)]
    mirrored = [np.array_equal(o, labels[:, ::-1]) for o in outs]
    assert any(mirrored) and not all(mirrored)
    assert all(m or np.array_equal(o, labels) for m, o in zip(mirrored, outs))
