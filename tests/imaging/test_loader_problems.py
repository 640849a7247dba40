"""Every problem a study can have is reported in words — never silently stacked."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import generate_uid

from cspine_desktop.errors import (
    CorruptFileError,
    InconsistentSeriesError,
    StudyNotFoundError,
    UnsupportedFormatError,
)
from cspine_desktop.imaging import load_study
from tests.factories.dicom_series import BALL_LPS, truncate, write_junk


def test_missing_slices_are_refused_naming_the_gap(ct_series):
    s = ct_series(n_slices=10, missing=(4, 5))
    with pytest.raises(InconsistentSeriesError) as info:
        load_study(s.folder)
    msg = str(info.value)
    assert "about 2 slice(s) missing between slice 4 and 5 of 8" in msg


def test_duplicate_positions_from_different_images_are_refused(ct_series):
    s = ct_series(n_slices=5)
    twin = s.datasets[2].copy()
    twin.SOPInstanceUID = generate_uid()
    twin.save_as(s.folder / "twin", enforce_file_format=True)
    with pytest.raises(InconsistentSeriesError, match="occur twice"):
        load_study(s.folder)


def _move_slice(s, index: int, dz: float) -> None:
    ds = s.datasets[index]
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, z + dz]
    ds.save_as(s.files[index], enforce_file_format=True)


def test_slightly_non_uniform_spacing_is_stacked_with_a_warning(ct_series):
    s = ct_series(n_slices=8)
    _move_slice(s, 3, 0.1)  # 1.1 / 0.9 mm steps around slice 3
    vol = load_study(s.folder)
    assert vol.shape[0] == 8
    assert any("non-uniform" in w for w in vol.warnings)


def test_strongly_non_uniform_spacing_is_refused(ct_series):
    s = ct_series(n_slices=8)
    _move_slice(s, 3, 0.4)  # 1.4 / 0.6 mm steps: beyond the tolerance, not yet a gap
    with pytest.raises(InconsistentSeriesError, match="not uniform"):
        load_study(s.folder)


def test_gantry_tilt_is_resampled_to_an_orthogonal_grid(ct_series):
    s = ct_series(
        n_slices=40,
        rows=48,
        cols=48,
        spacing=(1.0, 2.0, 2.0),
        tilt_deg=15.0,
        origin=(-48.0, -48.0, -5.0),
    )
    vol = load_study(s.folder)
    assert any("Gantry tilt of 15.0°" in w for w in vol.warnings)
    r = vol.affine[:3, :3]
    gram = r.T @ r
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)  # orthogonal
    assert vol.spacing[0] == pytest.approx(np.cos(np.radians(15.0)), rel=1e-6)
    z, y, x = np.nonzero(vol.hu >= 900)
    ball = vol.voxel_to_lps(x.mean(), y.mean(), z.mean())
    np.testing.assert_allclose(ball, BALL_LPS, atol=1.5)


def test_tilt_beyond_the_limit_is_refused(ct_series):
    s = ct_series(n_slices=6, tilt_deg=40.0)
    with pytest.raises(InconsistentSeriesError, match="exceeds the 30°"):
        load_study(s.folder)


def test_truncated_file_at_the_end_is_skipped_and_named(ct_series):
    s = ct_series(n_slices=12, names="ordered")
    truncate(s.files[-1], 0.6)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu[:-1])
    assert any("IM0012.dcm" in w and "truncated" in w for w in vol.warnings)


def test_truncated_file_inside_the_stack_is_named_as_a_gap(ct_series):
    s = ct_series(n_slices=12, names="ordered")
    truncate(s.files[5], 0.6)
    with pytest.raises(InconsistentSeriesError, match="missing") as info:
        load_study(s.folder)
    assert "IM0006.dcm" in str(info.value)


def test_too_many_unreadable_files_are_refused(ct_series):
    s = ct_series(n_slices=10, names="ordered")
    truncate(s.files[0], 0.5)
    truncate(s.files[-1], 0.5)
    with pytest.raises(CorruptFileError) as info:
        load_study(s.folder)
    assert "2 of 10" in str(info.value) and "IM0001.dcm" in str(info.value)


def test_header_only_truncation_is_reported_as_unreadable(ct_series):
    s = ct_series(n_slices=2, names="ordered")
    for f in s.files:
        truncate(f, 0.05)
    with pytest.raises(CorruptFileError, match="None of the 2 DICOM file"):
        load_study(s.folder)


def test_implausible_hu_is_refused(ct_series):
    # signed data written as unsigned: negative HU turn into ~64000
    s = ct_series(n_slices=4, signed=True, bits_stored=16, intercept=0.0)
    for path, ds in zip(s.files, s.datasets):
        ds.PixelRepresentation = 0
        ds.save_as(path, enforce_file_format=True)
    with pytest.raises(CorruptFileError, match="outside the Hounsfield range"):
        load_study(s.folder)


def test_values_without_air_are_flagged(ct_series):
    s = ct_series(n_slices=3, phantom=lambda p: np.full(p.shape[:-1], 50.0))
    vol = load_study(s.folder)
    assert any("no air" in w for w in vol.warnings)


def test_empty_folder(tmp_path):
    with pytest.raises(StudyNotFoundError, match="is empty"):
        load_study(tmp_path)


def test_folder_without_images(tmp_path):
    write_junk(tmp_path)
    with pytest.raises(StudyNotFoundError, match="holds no DICOM images"):
        load_study(tmp_path)


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(StudyNotFoundError, match="does not exist"):
        load_study(tmp_path / "nope")


def test_unknown_single_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="not a DICOM, NIfTI, PNG or JPEG"):
        load_study(p)


def test_empty_single_file(tmp_path):
    p = tmp_path / "empty.dcm"
    p.write_bytes(b"")
    with pytest.raises(StudyNotFoundError, match="is empty"):
        load_study(p)
