"""End to end on the phantom's RSNA-layout output: read → load_study → cache, voxel-exact."""

from __future__ import annotations

import numpy as np
import pytest
from rsna_fixture import TINY_CFG

from cspine_desktop.imaging import load_study
from cspine_desktop.imaging.preprocess import prepare_volume, to_grid
from model_training.datasets import build_cache, make_dataset, read_rsna
from model_training.datasets.masks import mask_on_volume
from model_training.phantom import PhantomConfig, generate_study, write_rsna_dataset
from model_training.phantom.rsna import study_seed

SEED = 11


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    cfg = PhantomConfig.tiny(fracture_prevalence=0.7)
    summaries = write_rsna_dataset(root, 3, SEED, cfg)
    studies = {
        s["StudyInstanceUID"]: generate_study(study_seed(SEED, i), cfg)
        for i, s in enumerate(summaries)
    }
    return root, studies


def _in_loaded_order(array_zyx, study_affine, volume):
    """The phantom's [z, y, x] array in the voxel order of the loaded volume, derived from
    the two affines (must be the same grid up to axis flips)."""
    m = np.linalg.inv(study_affine) @ volume.affine
    assert np.allclose(np.abs(m[:3, :3]), np.eye(3), atol=1e-4), "grids differ beyond flips"
    out = array_zyx
    for vol_axis, arr_axis in ((0, 2), (1, 1), (2, 0)):
        if m[vol_axis, vol_axis] < 0:
            out = np.flip(out, axis=arr_axis)
    return out


def test_reader_sees_every_phantom_study_with_its_truths_and_extras(phantom_set):
    root, studies = phantom_set
    index = read_rsna(root)
    assert not index.report.items
    by = index.by_uid()
    assert set(by) == set(studies)
    for uid, st in studies.items():
        assert by[uid].patient_id == st.patient_id
        assert by[uid].fractured == tuple(bool(f) for f in st.fractured)
        assert len(by[uid].fractures) == len(st.fractures)
        assert by[uid].segmentation is not None and by[uid].fracture_mask is not None


def test_labels_and_fracture_masks_align_voxel_exact_with_the_loaded_dicom(phantom_set):
    root, studies = phantom_set
    for uid, st in studies.items():
        vol = load_study(root / "train_images" / uid)
        hu = _in_loaded_order(st.hu, st.affine, vol)
        assert np.abs(vol.hu.astype(np.float32) - hu).max() <= 1.0  # same voxels, same order
        seg = mask_on_volume(root / "segmentations" / f"{uid}.nii", vol)
        assert np.array_equal(seg, _in_loaded_order(st.labels, st.affine, vol))
        frac = mask_on_volume(root / "fracture_masks" / f"{uid}.nii.gz", vol, binary=True)
        assert np.array_equal(frac, _in_loaded_order(st.fracture_mask, st.affine, vol))


def test_cached_phantom_studies_feed_the_pipeline(phantom_set, tmp_path):
    root, studies = phantom_set
    cached = build_cache(read_rsna(root), TINY_CFG, tmp_path, workers=1)
    assert len(cached) == len(studies)
    for c in cached:
        st = studies[c.study_uid]
        vol = load_study(root / "train_images" / c.study_uid)
        prepared = prepare_volume(vol, TINY_CFG)
        expected = to_grid(_in_loaded_order(st.labels, st.affine, vol), prepared)
        assert np.array_equal(np.asarray(c.labels()), expected)
        # a vertebra is flagged on some slice exactly when the study says it is fractured
        assert tuple(c.flags().any(axis=0)) == tuple(bool(f) for f in st.fractured)
    assert any(c.n_positive_slices for c in cached)
    x, y = next(iter(make_dataset(cached, 4, 4, augment=True, oversample=0.5, seed=0)))
    assert x.shape == (4, 64, 64, 4) and y["fracture_cls"].shape == (4, 7)
