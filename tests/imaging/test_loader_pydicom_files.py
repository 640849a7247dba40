"""pydicom's own test files (shipped with pydicom and pydicom-data, read offline)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from cspine_desktop.errors import CorruptFileError, UnsupportedModalityError
from cspine_desktop.imaging import load_study


def _testfile(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} is not installed"
    return path


def _reference_hu(path: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_small_matches_pydicom_with_rescale():
    path = _testfile("CT_small.dcm")
    vol = load_study(path)
    assert vol.shape == (1, 128, 128)
    np.testing.assert_array_equal(vol.hu[0], _reference_hu(path))
    ds = pydicom.dcmread(path)
    np.testing.assert_allclose(vol.affine[:3, 3], [float(v) for v in ds.ImagePositionPatient])
    assert vol.meta["PatientID"] == ds.PatientID


def test_real_ct_jpeg2000_lossless_equals_uncompressed():
    a = load_study(_testfile("693_UNCR.dcm"))
    b = load_study(_testfile("693_J2KR.dcm"))
    np.testing.assert_array_equal(a.hu, b.hu)
    assert a.hu.min() <= -1000


def test_enhanced_multiframe_ct_uses_functional_groups():
    path = _testfile("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    vol = load_study(path)
    assert vol.shape == (2, 512, 512)
    frames = ds.pixel_array
    positions = []
    shared = ds.SharedFunctionalGroupsSequence[0]
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pv = item if "PixelValueTransformationSequence" in item else shared
        pv = pv.PixelValueTransformationSequence[0]
        ref = frames[f] * float(pv.RescaleSlope) + float(pv.RescaleIntercept)
        positions.append([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        # the loader sorts along the normal; find which output slice holds this frame
        z = vol.meta["source_frames"].index(f)
        np.testing.assert_array_equal(vol.hu[z], ref)
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    first = min(positions, key=lambda p: float(np.dot(p, normal)))  # sorted along the normal
    np.testing.assert_allclose(vol.voxel_to_lps(0, 0, 0), first, atol=1e-4)
    assert vol.spacing[0] == pytest.approx(10.0)


@pytest.mark.parametrize("name", ["MR_small.dcm", "emri_small.dcm", "MR_small_bigendian.dcm"])
def test_mr_files_are_refused(name):
    with pytest.raises(UnsupportedModalityError, match="MR series: cspine reads CT"):
        load_study(_testfile(name))


def test_truncated_file_is_a_corrupt_file_error_naming_it():
    with pytest.raises(CorruptFileError, match=r"MR_truncated\.dcm") as info:
        load_study(_testfile("MR_truncated.dcm"))
    assert "truncated" in str(info.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("rtplan.dcm", "without images"),
        ("test-SR.dcm", "without images"),
        ("SC_rgb.dcm", "(?i)secondary capture"),
        ("liver.dcm", "SEG series"),
        ("ExplVR_BigEndNoMeta.dcm", "without images"),
    ],
)
def test_non_image_and_non_ct_objects_are_refused_in_words(name, words):
    with pytest.raises(UnsupportedModalityError, match=words):
        load_study(_testfile(name))
