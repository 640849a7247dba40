"""Open a zip, a NIfTI volume and a PNG slice through the workstation: each is stored as a
study, analysed on the queue and shown."""

from __future__ import annotations

import zipfile

import cv2
import nibabel as nib
import numpy as np
import pytest
from factories.dicom_series import write_ct_series
from fake_analysis import FakeHandler


def _zip(tmp_path):
    series = write_ct_series(tmp_path / "series", n_slices=10, rows=32, cols=32)
    path = tmp_path / "study.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in series.files:
            zf.write(f, f"CT/{f.name}")
    return path, (10, 32, 32)


def _nifti(tmp_path):
    _z, y, x = np.meshgrid(np.arange(12), np.arange(24), np.arange(20), indexing="ij")
    hu = np.where((y - 12) ** 2 + (x - 10) ** 2 < 25, 700, 40).astype(np.int16)
    path = tmp_path / "neck.nii.gz"
    nib.save(nib.Nifti1Image(hu.transpose(2, 1, 0), np.diag([0.8, 0.8, 2.0, 1.0])), path)
    return path, (12, 24, 20)


def _png(tmp_path):
    img = np.zeros((48, 40), np.uint8)
    cv2.circle(img, (20, 24), 10, 255, -1)
    path = tmp_path / "slice.png"
    cv2.imwrite(str(path), img)
    return path, (1, 48, 40)


@pytest.mark.parametrize("make", [_zip, _nifti, _png], ids=["zip", "nifti", "png"])
def test_open_other_inputs(qtbot, make_workstation, tmp_path, make):
    path, shape = make(tmp_path)
    window, services = make_workstation(FakeHandler())
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        window.open_path(path)
    opened = window.controller.current
    assert opened.volume.hu.shape == shape
    assert opened.labels.shape == shape  # the queue analysed the same images
    assert opened.study is not None and opened.study.n_files >= 1
    assert services.jobs.list(study_id=opened.study_id)[0].state == "succeeded"
    assert window.results.result is not None
