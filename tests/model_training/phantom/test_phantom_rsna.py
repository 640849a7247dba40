"""RSNA-layout writer, DICOM writer and CLI: files, CSVs and voxel-exact round trips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import UID, RLELossless

from cspine_desktop.imaging import load_study
from model_training.phantom import PhantomConfig, generate_study, write_rsna_dataset
from model_training.phantom.cli import main as phantom_main
from model_training.phantom.dicom_writer import write_ct_series
from model_training.phantom.rsna import LPS_TO_RAS, study_seed

TINY = PhantomConfig.tiny(fracture_prevalence=1.0)
NAMES = [f"C{k}" for k in range(1, 8)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("rsna")
    summaries = write_rsna_dataset(out, 3, seed=5, config=TINY)
    return out, summaries


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _nifti_on_volume_grid(path: Path, vol) -> np.ndarray:
    """Resample a NIfTI label image onto the grid of ``vol`` through both affines (nearest)."""
    img = nib.load(path)
    m = np.linalg.inv(img.affine) @ LPS_TO_RAS @ vol.affine
    nz, ny, nx = vol.shape
    zz, yy, xx = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    idx = np.stack([xx.ravel(), yy.ravel(), zz.ravel(), np.ones(xx.size)])
    ijk = (m @ idx)[:3]
    assert np.allclose(ijk, np.rint(ijk), atol=1e-3)  # the grids coincide voxel for voxel
    i, j, k = np.rint(ijk).astype(int)
    data = np.asarray(img.dataobj)
    assert (i >= 0).all() and (i < data.shape[0]).all() and (k < data.shape[2]).all()
    return data[i, j, k].reshape(vol.shape)


def test_layout_and_csvs(dataset):
    out, _ = dataset
    for name in (
        "train.csv",
        "train_bounding_boxes.csv",
        "cspine_phantom.csv",
        "cspine_phantom.json",
    ):
        assert (out / name).is_file()
    cols, rows = _read_csv(out / "train.csv")
    assert cols == ["StudyInstanceUID", "patient_overall", *NAMES]
    assert len(rows) == 3
    uids = [r["StudyInstanceUID"] for r in rows]
    assert len(set(uids)) == 3 and all(UID(u).is_valid for u in uids)
    for r in rows:
        flags = [int(r[c]) for c in NAMES]
        assert set(flags) <= {0, 1}
        assert int(r["patient_overall"]) == max(flags) == 1  # prevalence 1.0
        assert (out / "train_images" / r["StudyInstanceUID"]).is_dir()
        assert (out / "segmentations" / f"{r['StudyInstanceUID']}.nii").is_file()
        assert (out / "fracture_masks" / f"{r['StudyInstanceUID']}.nii.gz").is_file()
    cols, boxes = _read_csv(out / "train_bounding_boxes.csv")
    assert cols == ["StudyInstanceUID", "x", "y", "width", "height", "slice_number"]
    assert boxes and {b["StudyInstanceUID"] for b in boxes} <= set(uids)
    for b in boxes:
        n_files = len(list((out / "train_images" / b["StudyInstanceUID"]).glob("*.dcm")))
        assert 1 <= int(b["slice_number"]) <= n_files
        assert float(b["width"]) > 0 and float(b["height"]) > 0
        assert float(b["x"]) + float(b["width"]) <= TINY.matrix
    cols, fr = _read_csv(out / "cspine_phantom.csv")
    assert {"StudyInstanceUID", "vertebra", "kind", "severity"} <= set(cols)
    for f in fr:
        assert f["vertebra"] in NAMES and f["severity"] in ("minor", "severe")
        row = next(r for r in rows if r["StudyInstanceUID"] == f["StudyInstanceUID"])
        assert row[f["vertebra"]] == "1"
    meta = json.loads((out / "cspine_phantom.json").read_text())
    assert [s["StudyInstanceUID"] for s in meta["studies"]] == uids
    assert "RAS" in meta["conventions"]["nifti"]


def test_dicom_headers(dataset):
    out, summaries = dataset
    uid = summaries[0]["StudyInstanceUID"]
    files = sorted((out / "train_images" / uid).glob("*.dcm"), key=lambda p: int(p.stem))
    assert [int(p.stem) for p in files] == list(range(1, len(files) + 1))
    z_prev = None
    sop = set()
    for p in files:
        ds = pydicom.dcmread(p)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.StudyInstanceUID == uid and UID(ds.SeriesInstanceUID).is_valid
        assert int(ds.InstanceNumber) == int(p.stem)
        assert [float(x) for x in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
        assert ds.Rows == ds.Columns == TINY.matrix and float(ds.SliceThickness) >= 3.0
        z = float(ds.ImagePositionPatient[2])
        if z_prev is not None:
            assert z == pytest.approx(z_prev - 3.0, abs=1e-3)  # instance 1 = most superior
        z_prev = z
        sop.add(ds.SOPInstanceUID)
    assert len(sop) == len(files)


def test_round_trip_load_study_and_nifti_voxel_exact(dataset):
    out, summaries = dataset
    for s in summaries:
        uid = s["StudyInstanceUID"]
        study = generate_study(s["seed"], TINY)
        assert study.study_uid == uid
        vol = load_study(out / "train_images" / uid)
        assert vol.shape == study.hu.shape
        assert np.allclose(vol.affine, study.volume_affine(), atol=1e-4)
        assert np.array_equal(vol.hu, study.in_volume_order(study.hu))
        labels = _nifti_on_volume_grid(out / "segmentations" / f"{uid}.nii", vol)
        assert np.array_equal(labels, study.in_volume_order(study.labels))
        mask = _nifti_on_volume_grid(out / "fracture_masks" / f"{uid}.nii.gz", vol)
        assert np.array_equal(mask, study.in_volume_order(study.fracture_mask))
        assert mask.any()


def test_rle_compressed_series_reads_back_identical(tmp_path):
    study = generate_study(study_seed(5, 0), TINY)
    write_ct_series(
        tmp_path,
        study.hu,
        study.affine,
        study_uid=study.study_uid,
        series_uid=study.series_uid,
        patient_id=study.patient_id,
        compress=True,
    )
    ds = pydicom.dcmread(tmp_path / "1.dcm")
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    vol = load_study(tmp_path)
    assert np.array_equal(vol.hu, study.in_volume_order(study.hu))


def test_same_seed_same_dataset(tmp_path, dataset):
    out, _ = dataset
    again = write_rsna_dataset(tmp_path, 2, seed=5, config=TINY)
    _, rows = _read_csv(out / "train.csv")
    assert [s["StudyInstanceUID"] for s in again] == [r["StudyInstanceUID"] for r in rows[:2]]
    a = pydicom.dcmread(out / "train_images" / rows[0]["StudyInstanceUID"] / "2.dcm")
    b = pydicom.dcmread(tmp_path / "train_images" / rows[0]["StudyInstanceUID"] / "2.dcm")
    assert a.PixelData == b.PixelData and a.SOPInstanceUID == b.SOPInstanceUID


def test_segmentation_fraction(tmp_path):
    write_rsna_dataset(tmp_path, 3, seed=2, config=PhantomConfig.tiny(), segmentation_fraction=0.34)
    assert len(list((tmp_path / "segmentations").glob("*.nii"))) == 1
    assert len(list((tmp_path / "fracture_masks").glob("*.nii.gz"))) == 3


def test_cli_writes_dataset_and_refuses_non_empty_dir(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--n", "2", "--out", str(out), "--seed", "1", "--matrix", "48", "--slice-spacing", "3"]
    assert phantom_main(args) == 0
    _, rows = _read_csv(out / "train.csv")
    assert len(rows) == 2
    assert phantom_main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert phantom_main([*args, "--force"]) == 0
    assert phantom_main(["--n", "0", "--out", str(tmp_path / "x")]) == 2
