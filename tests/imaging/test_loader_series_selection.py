"""Series grouping and choice in mixed folders."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import generate_uid

from cspine_desktop.errors import StudyNotFoundError, UnsupportedModalityError
from cspine_desktop.imaging import list_series, load_study
from tests.factories.dicom_series import (
    write_dicomdir,
    write_dose_report,
    write_junk,
    write_localizer,
    write_mr_series,
    write_secondary_capture,
)


def test_mixed_folder_picks_the_axial_ct_with_most_slices(ct_series, tmp_path):
    study = generate_uid()
    small = ct_series(folder=tmp_path / "a", n_slices=4, study_uid=study, description="Soft 3mm")
    big = ct_series(folder=tmp_path / "b", n_slices=9, study_uid=study)
    write_localizer(tmp_path / "b", study)
    write_dose_report(tmp_path / "c", study)
    write_secondary_capture(tmp_path / "c", study)
    write_mr_series(tmp_path / "d", study_uid=study)
    write_junk(tmp_path / "b")
    write_dicomdir(tmp_path)
    write_dicomdir(tmp_path / "c", name="INDEX")
    vol = load_study(tmp_path)
    assert vol.meta["SeriesInstanceUID"] == big.series_uid
    np.testing.assert_array_equal(vol.hu, big.hu)
    infos = list_series(tmp_path)
    by_uid = {i.series_uid: i for i in infos}
    assert by_uid[big.series_uid].usable and by_uid[small.series_uid].usable
    assert infos[0].series_uid == big.series_uid  # usable and biggest first
    reasons = " | ".join(i.reason for i in infos if not i.usable)
    for words in ("localizer", "dose report", "secondary capture", "MR series: cspine reads CT"):
        assert words in reasons


def test_localizer_inside_the_series_is_left_out_with_a_warning(ct_series):
    s = ct_series(n_slices=6)
    write_localizer(s.folder, s.study_uid, series_uid=s.series_uid)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)
    assert any("localizer" in w for w in vol.warnings)


def test_slice_with_inconsistent_orientation_is_left_out(ct_series):
    s = ct_series(n_slices=6)
    odd = s.datasets[0].copy()
    odd.SOPInstanceUID = generate_uid()
    odd.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    odd.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    odd.save_as(s.folder / "odd", enforce_file_format=True)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)
    assert any("different orientation" in w for w in vol.warnings)


def test_duplicate_copies_of_a_file_are_ignored(ct_series):
    s = ct_series(n_slices=5)
    (s.folder / "copy").write_bytes(s.files[2].read_bytes())
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)
    assert any("duplicate" in w for w in vol.warnings)


def test_thinnest_series_wins_a_tie_in_slice_count(ct_series, tmp_path):
    study = generate_uid()
    ct_series(folder=tmp_path / "thick", n_slices=6, slice_thickness=2.0, study_uid=study)
    thin = ct_series(folder=tmp_path / "thin", n_slices=6, slice_thickness=0.6, study_uid=study)
    assert load_study(tmp_path).meta["SeriesInstanceUID"] == thin.series_uid


def test_explicit_series_uid_selects_that_series(ct_series, tmp_path):
    study = generate_uid()
    small = ct_series(folder=tmp_path / "a", n_slices=3, study_uid=study)
    ct_series(folder=tmp_path / "b", n_slices=8, study_uid=study)
    vol = load_study(tmp_path, series_uid=small.series_uid)
    np.testing.assert_array_equal(vol.hu, small.hu)
    with pytest.raises(StudyNotFoundError, match=r"no series with UID 1\.2\.3 "):
        load_study(tmp_path, series_uid="1.2.3")


def test_mr_only_folder_is_refused_in_words(tmp_path):
    write_mr_series(tmp_path / "mr")
    with pytest.raises(UnsupportedModalityError, match="MR series: cspine reads CT"):
        load_study(tmp_path)


def test_explicit_choice_of_a_non_ct_series_is_refused(tmp_path):
    mr = write_mr_series(tmp_path / "mr")
    with pytest.raises(UnsupportedModalityError, match="MR series"):
        load_study(tmp_path, series_uid=mr.series_uid)


def test_folder_with_only_localizer_and_dose_report_is_refused(tmp_path):
    study = generate_uid()
    write_localizer(tmp_path, study)
    write_dose_report(tmp_path, study)
    with pytest.raises(UnsupportedModalityError, match="no CT series") as info:
        load_study(tmp_path)
    assert "localizer" in str(info.value).lower() and "dose report" in str(info.value)


def test_non_axial_ct_is_loaded_only_when_no_axial_exists(ct_series, tmp_path):
    s = ct_series(n_slices=5)
    for path, ds in zip(s.files, s.datasets):
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal
        ds.ImagePositionPatient = [float(ds.ImagePositionPatient[2]), -40.0, 40.0]
        ds.save_as(path, enforce_file_format=True)
    vol = load_study(s.folder)
    assert vol.shape == (5, 32, 32)
    assert any("No axial CT series" in w for w in vol.warnings)


def test_orientation_noise_does_not_split_the_series(ct_series):
    s = ct_series(n_slices=6)
    ds = s.datasets[3]
    ds.ImageOrientationPatient = [1.0, 0.00001, 0.0, -0.00001, 1.0, 0.0]
    ds.save_as(s.files[3], enforce_file_format=True)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)
    assert vol.warnings == []


def test_image_without_position_is_left_out_with_a_warning(ct_series):
    s = ct_series(n_slices=6)
    ds = s.datasets[-1]
    del ds.ImagePositionPatient
    ds.save_as(s.files[-1], enforce_file_format=True)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu[:-1])
    assert any("without position" in w for w in vol.warnings)
