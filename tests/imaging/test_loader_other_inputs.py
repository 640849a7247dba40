"""Single files other than classic DICOM slices: enhanced CT, NIfTI, PNG and JPEG."""

from __future__ import annotations

import cv2
import nibabel as nib
import numpy as np
import pytest

from cspine_desktop.errors import CorruptFileError, UnsupportedFormatError
from cspine_desktop.imaging import list_series, load_study
from cspine_desktop.imaging.raster import EIGHT_BIT_WINDOW
from tests.factories.dicom_series import write_enhanced_ct


# --- enhanced (multi-frame) CT -----------------------------------------------------------------
@pytest.mark.parametrize(
    "syntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5"], ids=["native", "rle"]
)
def test_enhanced_ct_with_shuffled_frames_equals_the_classic_series(ct_series, tmp_path, syntax):
    s = ct_series(n_slices=7)
    path = write_enhanced_ct(
        tmp_path / "enhanced.dcm", s, frame_order=[3, 0, 6, 1, 5, 2, 4], transfer_syntax=syntax
    )
    classic = load_study(s.folder)
    enhanced = load_study(path)
    np.testing.assert_array_equal(enhanced.hu, classic.hu)
    np.testing.assert_allclose(enhanced.affine, classic.affine, atol=1e-6)
    assert enhanced.meta["source_frames"] == [1, 3, 5, 0, 6, 4, 2]
    assert len(set(enhanced.meta["sop_instance_uids"])) == 1


# --- NIfTI ---------------------------------------------------------------------------------------
def _ras_volume() -> tuple[np.ndarray, np.ndarray]:
    data = np.arange(5 * 6 * 4, dtype=np.int16).reshape(5, 6, 4) - 50  # [i, j, k]
    ras = np.array([[0.8, 0, 0, -20.0], [0, 0.7, 0, 10.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
    return data, ras


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_is_transposed_to_zyx_and_converted_to_lps(tmp_path, suffix):
    data, ras = _ras_volume()
    path = tmp_path / f"neck{suffix}"
    nib.save(nib.Nifti1Image(data, ras), path)
    vol = load_study(path)
    assert vol.shape == (4, 6, 5)
    assert vol.hu.dtype == np.int16
    assert vol.spacing == pytest.approx((2.5, 0.7, 0.8))
    for i, j, k in [(0, 0, 0), (4, 5, 3), (2, 1, 3)]:
        assert vol.hu[k, j, i] == data[i, j, k]
        ras_point = (ras @ [i, j, k, 1])[:3]
        lps = vol.voxel_to_lps(i, j, k)
        np.testing.assert_allclose(lps, [-ras_point[0], -ras_point[1], ras_point[2]])
    assert vol.meta["source_kind"] == "nifti"
    assert any("assumed to be CT" in w for w in vol.warnings)
    assert load_study(path).meta["StudyInstanceUID"] == vol.meta["StudyInstanceUID"]  # stable


def test_nifti_scaling_nan_and_4d(tmp_path):
    data = np.full((4, 4, 3, 2), 10.5, dtype=np.float32)
    data[0, 0, 0, 0] = np.nan
    path = tmp_path / "float.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    vol = load_study(path)
    assert vol.shape == (3, 4, 4) and vol.hu.dtype == np.float32
    assert vol.hu[0, 0, 0] == -1024 and vol.hu[1, 1, 1] == pytest.approx(10.5)
    assert any("first was loaded" in w for w in vol.warnings)
    assert any("NaN" in w for w in vol.warnings)


def test_damaged_nifti_is_a_corrupt_file_error(tmp_path):
    data, ras = _ras_volume()
    path = tmp_path / "cut.nii"
    nib.save(nib.Nifti1Image(data, ras), path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(CorruptFileError, match=r"cut\.nii"):
        load_study(path)


# --- PNG / JPEG ---------------------------------------------------------------------------
def _gradient(h: int = 20, w: int = 30) -> np.ndarray:
    return np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))


def test_png_8bit_uses_the_documented_bone_window_mapping(tmp_path):
    img = _gradient()
    path = tmp_path / "shot.png"
    cv2.imwrite(str(path), img)
    vol = load_study(path)
    c, w = EIGHT_BIT_WINDOW
    assert vol.shape == (1, 20, 30) and vol.hu.dtype == np.int16
    np.testing.assert_allclose(vol.hu[0], np.rint(c - w / 2 + img * (w / 255)), atol=0)
    assert vol.hu.min() == -500 and vol.hu.max() == 1300
    assert any("not calibrated Hounsfield" in x for x in vol.warnings)
    assert vol.meta["source_kind"] == "image"


def test_colour_png_is_converted_to_grey(tmp_path):
    grey = _gradient()
    colour = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    path = tmp_path / "colour.png"
    cv2.imwrite(str(path), colour)
    vol = load_study(path)
    c, w = EIGHT_BIT_WINDOW
    np.testing.assert_allclose(vol.hu[0], np.rint(c - w / 2 + grey * (w / 255)), atol=8)


def test_png_16bit_is_hu_plus_1024(tmp_path):
    img = np.array([[0, 1024, 3000]], dtype=np.uint16)
    path = tmp_path / "ct16.png"
    cv2.imwrite(str(path), img)
    vol = load_study(path)
    assert vol.hu[0].tolist() == [[-1024, 0, 1976]]


def test_jpeg_loads_as_one_slice(tmp_path):
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(_gradient(32, 32), cv2.COLOR_GRAY2BGR))
    vol = load_study(path)
    assert vol.shape == (1, 32, 32)
    assert list_series(path)[0].image_type == ("IMAGE",)


def test_damaged_png_is_refused(tmp_path):
    path = tmp_path / "broken.png"
    cv2.imwrite(str(path), _gradient())
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises((CorruptFileError, UnsupportedFormatError), match=r"broken\.png"):
        load_study(path)
