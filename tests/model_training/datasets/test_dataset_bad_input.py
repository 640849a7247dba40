"""Bad input is skipped and reported, in words; reading, caching and the epoch go on."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from rsna_fixture import TINY_CFG, make_neck, nifti_dicom_order, write_dicom_series, write_rsna

from model_training.datasets import SkipReport, build_cache, cache_key, make_dataset, read_rsna
from model_training.datasets.report import NOTE, PARTIAL, SKIPPED

GOOD, BADMASK, BADFRAC, CORRUPT = "1.9.1", "1.9.2", "1.9.3", "1.9.4"
MISSING, ORPHAN, BADROW = "1.9.5", "1.9.6", "1.9.7"


@pytest.fixture(scope="module")
def messy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    necks = {GOOD: make_neck(1, 3), BADMASK: make_neck(2, None), BADFRAC: make_neck(3, 5)}
    write_rsna(root, necks)
    # a segmentation with half the slices: its affine cannot cover the images
    half = necks[BADMASK]
    nib.save(
        nifti_dicom_order(half.labels[: len(half.labels) // 2], half.affine),
        root / "segmentations" / f"{BADMASK}.nii",
    )
    # a fracture mask that is not a NIfTI file
    (root / "fracture_masks" / f"{BADFRAC}.nii.gz").write_bytes(b"\x1f\x8b garbage")
    # a study whose every DICOM file is garbage
    (root / "train_images" / CORRUPT).mkdir()
    for n in range(1, 4):
        (root / "train_images" / CORRUPT / f"{n}.dcm").write_bytes(b"\0" * 64)
    # images without a train.csv row
    write_dicom_series(root / "train_images" / ORPHAN, make_neck(5, None), ORPHAN, "PO")
    with (root / "train.csv").open("a", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([CORRUPT, 0, 0, 0, 0, 0, 0, 0, 0])
        w.writerow([MISSING, 1, 1, 0, 0, 0, 0, 0, 0])  # no images at all
        w.writerow([BADROW, 1, "x", 0, 0, 0, 0, 0, 0])  # not a 0/1 value
    # a boxes file without its height column
    (root / "train_bounding_boxes.csv").write_text(
        "StudyInstanceUID,x,y,width,slice_number\n1.9.1,1,2,3,4\n"
    )
    return root


def _reasons(report: SkipReport, uid: str) -> list[tuple[str, str, str]]:
    return [(i.stage, i.action, i.reason) for i in report.for_study(uid)]


def test_reader_reports_rows_folders_and_files_it_cannot_use(messy_root):
    index = read_rsna(messy_root)
    uids = [s.study_uid for s in index.studies]
    assert uids == [GOOD, BADMASK, BADFRAC, CORRUPT]
    r = index.report
    assert _reasons(r, MISSING) == [("images", SKIPPED, "listed in train.csv but has no images")]
    assert _reasons(r, ORPHAN) == [("csv", SKIPPED, "has images but no row in train.csv")]
    ((stage, action, reason),) = _reasons(r, BADROW)
    assert (stage, action) == ("csv", SKIPPED) and "expected 0 or 1" in reason
    boxes = [i for i in r.items if i.stage == "boxes"]
    assert len(boxes) == 1 and boxes[0].action == PARTIAL and "height" in boxes[0].reason


def test_cache_build_skips_bad_studies_and_writes_the_report(messy_root, tmp_path):
    index = read_rsna(messy_root)
    cached = build_cache(index, TINY_CFG, tmp_path, workers=1)
    by = {c.study_uid: c for c in cached}
    assert set(by) == {GOOD, BADMASK, BADFRAC}
    assert by[GOOD].has_labels and by[GOOD].has_location
    assert not by[BADMASK].has_labels  # kept for study-level evaluation only
    assert by[BADFRAC].has_labels and not by[BADFRAC].has_location

    saved = SkipReport.read(tmp_path / cache_key(TINY_CFG) / "report.json")
    assert saved.skipped_studies == {CORRUPT, MISSING, ORPHAN, BADROW}
    ((stage, action, reason),) = _reasons(saved, CORRUPT)
    assert (stage, action) == ("images", SKIPPED) and "cannot be read" in reason
    ((stage, action, reason),) = _reasons(saved, BADMASK)
    assert (stage, action) == ("segmentation", PARTIAL) and "does not fit its images" in reason
    ((stage, action, reason),) = _reasons(saved, BADFRAC)
    assert (stage, action) == ("fracture_mask", PARTIAL) and "cannot be read" in reason
    raw = json.loads((tmp_path / cache_key(TINY_CFG) / "report.json").read_text())
    assert raw["n_items"] == len(saved.items) and CORRUPT in raw["skipped_studies"]


def test_epoch_uses_the_complete_studies_and_notes_the_rest(messy_root, tmp_path):
    cached = build_cache(read_rsna(messy_root), TINY_CFG, tmp_path, workers=1)
    report = SkipReport()
    ds = make_dataset(cached, batch_size=4, slices_per_study=4, augment=True, seed=0, report=report)
    n = sum(int(x.shape[0]) for x, _ in ds)
    assert n == 4  # only GOOD: 1 study × 4 slices
    assert {i.study_uid for i in report.items} == {BADMASK, BADFRAC}
    assert all(i.action == NOTE for i in report.items)


def test_a_cache_file_lost_during_training_drops_samples_not_the_epoch(messy_root, tmp_path):
    cached = build_cache(read_rsna(messy_root), TINY_CFG, tmp_path, workers=1)
    good = [c for c in cached if c.study_uid == GOOD]
    ds = make_dataset(good, batch_size=2, slices_per_study=6, augment=False, seed=0)
    (good[0].path / "labels.npy").write_bytes(b"truncated")
    batches = list(ds)  # must not raise
    assert sum(int(x.shape[0]) for x, _ in batches) < 6
    assert np.all([np.isfinite(x.numpy()).all() for x, _ in batches])
