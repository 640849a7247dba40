"""Soft tissue that confuses models: vessels with and without contrast beside the airway."""

from __future__ import annotations

import numpy as np

from model_training.phantom import PhantomConfig, generate_study
from model_training.phantom.softtissue import sample_params


def test_vessel_phases_are_mixed():
    rng = np.random.default_rng(0)
    ps = [sample_params(rng) for _ in range(600)]
    plain = np.mean([p.vessel_hu < 60 for p in ps])
    arterial = np.mean([p.vessel_hu > 190 and p.jugular_hu < 150 for p in ps])
    venous = np.mean([120 < p.vessel_hu < 230 and p.vessel_hu == p.jugular_hu for p in ps])
    assert 0.5 < plain < 0.7 and 0.17 < arterial < 0.33 and 0.08 < venous < 0.22


def _round_bright_blobs(img: np.ndarray, lab: np.ndarray, px: float) -> int:
    """Round 20–60 mm² blobs of 180–420 HU outside the vertebrae (a contrast-filled carotid
    is ≈ 35 mm²; calcified cartilage is a thin arc, bone is denser or labelled)."""
    import cv2

    bright = ((img > 180) & (img < 420) & (lab == 0)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    count = 0
    for i in range(1, n):
        w, h, area = stats[i, 2], stats[i, 3], stats[i, 4]
        if 20.0 <= area * px * px <= 60.0 and max(w, h) <= 1.5 * min(w, h) and area > 0.6 * w * h:
            count += 1
    return count


def test_contrast_filled_arteries_are_bright_soft_tissue_not_bone():
    cfg = PhantomConfig(
        matrix=160,
        pixel_spacing_mm=(0.6, 0.6),
        slice_spacing_mm=(3.0, 3.0),
        noise_hu=(5.0, 5.0),
        soft_kernel_probability=1.0,
        fov_circle_probability=0.0,
        head_neck_probability=0.0,
        trauma_probability=0.0,
    )
    arterial = plain = 0
    for seed in range(16):
        st = generate_study(seed, cfg)
        z = int(np.argmax((st.labels == 5).sum(axis=(1, 2))))
        blobs = _round_bright_blobs(st.hu[z].astype(float), st.labels[z], st.spacing[1])
        artery = st.acquisition.extras["artery_hu"]
        if artery > 250:  # arterial phase: both carotids stand out
            assert blobs >= 2, (seed, artery, blobs)
            arterial += 1
        elif artery < 60:  # no contrast: nothing round and bright outside the bone
            assert blobs == 0, (seed, artery, blobs)
            plain += 1
    assert arterial >= 1 and plain >= 5
