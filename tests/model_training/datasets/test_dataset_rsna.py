"""RSNA layout → index → cache, voxel-exact, through load_study and the one preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rsna_fixture import TINY_CFG, make_neck, write_rsna

from cspine_desktop.errors import CorruptFileError, StudyNotFoundError
from cspine_desktop.imaging import load_study
from cspine_desktop.imaging.preprocess import PreprocessConfig, prepare_volume, to_grid
from model_training.datasets import (
    KNOWN_BAD_STUDIES,
    build_cache,
    cache_key,
    load_cache,
    read_rsna,
)
from model_training.datasets.masks import mask_on_volume


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    necks = {
        "1.2.826.9.1": make_neck(1, 3),
        "1.2.826.9.2": make_neck(2, None),
        "1.2.826.9.3": make_neck(3, 6),
    }
    write_rsna(
        root,
        necks,
        patients={"1.2.826.9.1": "PA", "1.2.826.9.2": "PA", "1.2.826.9.3": "PB"},
        boxes_for=("1.2.826.9.3",),
    )
    return root, necks


def test_index_reads_truths_patients_masks_and_boxes(rsna_root):
    root, necks = rsna_root
    index = read_rsna(root)
    assert [s.study_uid for s in index.studies] == list(necks)
    by = index.by_uid()
    assert by["1.2.826.9.1"].fractured == necks["1.2.826.9.1"].fractured
    assert by["1.2.826.9.1"].patient_overall and not by["1.2.826.9.2"].patient_overall
    assert by["1.2.826.9.2"].patient_id == "PA" and by["1.2.826.9.3"].patient_id == "PB"
    assert by["1.2.826.9.1"].fracture_mask is not None and not by["1.2.826.9.1"].boxes
    assert by["1.2.826.9.3"].fracture_mask is None and len(by["1.2.826.9.3"].boxes) == 1
    assert all(s.segmentation is not None for s in index.studies)
    assert not index.report.items


def test_rsna_segmentation_is_voxel_exact_on_the_loaded_dicom(rsna_root):
    root, necks = rsna_root
    uid = "1.2.826.9.1"
    vol = load_study(root / "train_images" / uid)
    seg = mask_on_volume(root / "segmentations" / f"{uid}.nii", vol)
    # the loader may order slices either way: compare through the CT values themselves
    neck = necks[uid]
    if np.array_equal(vol.hu, neck.hu):
        assert np.array_equal(seg, neck.labels)
    else:
        assert np.array_equal(vol.hu, neck.hu[::-1]), "loader reordered the stack unexpectedly"
        assert np.array_equal(seg, neck.labels[::-1])


def test_cache_holds_the_labels_the_preprocessing_puts_on_the_grid(rsna_root, tmp_path):
    root, necks = rsna_root
    cached = build_cache(read_rsna(root), TINY_CFG, tmp_path, workers=1)
    assert [c.study_uid for c in cached] == list(necks)
    for c in cached:
        vol = load_study(root / "train_images" / c.study_uid)
        neck = necks[c.study_uid]
        flip = not np.array_equal(vol.hu, neck.hu)
        src_labels = neck.labels[::-1] if flip else neck.labels
        prepared = prepare_volume(vol, TINY_CFG)
        assert np.array_equal(np.asarray(c.labels()), to_grid(src_labels, prepared))
        assert np.array_equal(np.asarray(c.hu()), np.rint(prepared.hu).astype(np.int16))
        assert c.has_labels and c.has_location
        flags = c.flags()
        for v in range(7):
            assert flags[:, v].any() == neck.fractured[v]
    # the box-only study got its fracture map from the boxes, on the fractured vertebra C6
    boxed = next(c for c in cached if c.study_uid == "1.2.826.9.3")
    frac, labels = np.asarray(boxed.fracture()), np.asarray(boxed.labels())
    assert frac.any() and set(np.unique(labels[frac > 0])) <= {0, 6}
    assert json.loads((tmp_path / cache_key(TINY_CFG) / "report.json").read_text())["n_items"] == 0


def test_cache_is_reused_and_a_config_change_starts_a_new_one(rsna_root, tmp_path):
    root, _ = rsna_root
    index = read_rsna(root)
    first = build_cache(index, TINY_CFG, tmp_path, workers=1)
    stamp = {c.study_uid: (c.path / "hu.npy").stat().st_mtime_ns for c in first}
    again = build_cache(index, TINY_CFG, tmp_path, workers=1)
    assert {c.study_uid: (c.path / "hu.npy").stat().st_mtime_ns for c in again} == stamp
    other = PreprocessConfig(input_size=48, pixel_spacing_mm=2.0, slice_step_mm=2.0)
    assert cache_key(other) != cache_key(TINY_CFG)
    assert load_cache(tmp_path, other) == []
    assert [c.study_uid for c in load_cache(tmp_path, TINY_CFG)] == sorted(stamp)


def test_parallel_build_matches_the_serial_one(rsna_root, tmp_path):
    root, _ = rsna_root
    index = read_rsna(root)
    serial = build_cache(index, TINY_CFG, tmp_path / "a", workers=1)
    parallel = build_cache(index, TINY_CFG, tmp_path / "b", workers=2)
    assert [c.study_uid for c in parallel] == [c.study_uid for c in serial]
    for a, b in zip(serial, parallel):
        assert np.array_equal(np.asarray(a.hu()), np.asarray(b.hu()))
        assert np.array_equal(a.flags(), b.flags())


def test_skip_list_leaves_known_bad_studies_out(rsna_root):
    root, _ = rsna_root
    index = read_rsna(root, skip={"1.2.826.9.2"})
    assert "1.2.826.9.2" not in index.by_uid()
    assert index.report.skipped_studies == {"1.2.826.9.2"}
    assert "1.2.826.0.1.3680043.20574" in KNOWN_BAD_STUDIES


def test_a_folder_without_train_csv_or_its_columns_is_refused_in_words(tmp_path):
    with pytest.raises(StudyNotFoundError, match=r"train\.csv is missing"):
        read_rsna(tmp_path)
    (tmp_path / "train.csv").write_text("StudyInstanceUID,patient_overall,C1,C2\n1.2,0,0,0\n")
    with pytest.raises(CorruptFileError, match="C3, C4, C5, C6, C7"):
        read_rsna(tmp_path)


def test_boxes_follow_their_image_file_when_instance_numbers_run_feet_to_head(tmp_path):
    """Some RSNA studies number their files from the feet up: a box names a file, not a
    position, so it must land where that file's slice is."""
    neck = make_neck(8, 4)
    cached = {}
    for reverse in (False, True):
        root = tmp_path / f"rev{int(reverse)}"
        write_rsna(root, {"1.7.1": neck}, boxes_for=("1.7.1",), reverse_numbers=reverse)
        (c,) = build_cache(read_rsna(root), TINY_CFG, root / "cache", workers=1)
        cached[reverse] = c
    forward, backward = (np.asarray(cached[r].fracture()) for r in (False, True))
    assert forward.any() and np.array_equal(forward, backward)
    labels = np.asarray(cached[True].labels())
    assert set(np.unique(labels[backward > 0])) <= {0, 4}
