"""A real CT series whose files carry no SeriesInstanceUID (as some anonymisers write them)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from cspine_desktop.errors import CspineInputError, InconsistentSeriesError
from cspine_desktop.imaging import list_series, load_study


def _ct_small() -> pydicom.Dataset:
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None, "pydicom's test file CT_small.dcm is not installed"
    return pydicom.dcmread(path)


def write_without_uid(
    folder: Path, n: int, *, prefix: str = "img", spacing: tuple[float, float] | None = None
) -> list[Path]:
    """``n`` slices of pydicom's real CT_small.dcm, 1.5 mm apart, without SeriesInstanceUID
    (file names in no particular order, as an anonymiser may write them)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = _ct_small()
    x, y, z = (float(v) for v in base.ImagePositionPatient)
    paths = []
    for k in range(n):
        ds = copy.deepcopy(base)
        del ds.SeriesInstanceUID
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [x, y, z + 1.5 * k]
        ds.SliceLocation = z + 1.5 * k
        if spacing is not None:
            ds.PixelSpacing = list(spacing)
        path = folder / f"{prefix}{(k * 7919) % 1000:04d}_{k}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_a_real_series_without_series_uid_loads_as_one_with_a_warning(tmp_path):
    base = _ct_small()
    assert "SeriesInstanceUID" in base  # the deletion below is what the test is about
    write_without_uid(tmp_path / "anon", 20)
    vol = load_study(tmp_path / "anon")
    assert vol.shape == (20, 128, 128)
    reference = base.pixel_array * float(base.RescaleSlope) + float(base.RescaleIntercept)
    for z in (0, 19):
        np.testing.assert_array_equal(vol.hu[z], reference)
    assert vol.spacing[0] == pytest.approx(1.5)
    assert any("no SeriesInstanceUID" in w for w in vol.warnings), vol.warnings
    assert vol.meta["SeriesInstanceUID"] == ""  # none is invented
    assert vol.meta["StudyInstanceUID"] == base.StudyInstanceUID
    [series] = list_series(tmp_path / "anon")
    assert series.usable and series.n_slices == 20


def test_groups_differ_by_geometry_and_the_larger_one_is_loaded(tmp_path):
    write_without_uid(tmp_path / "anon", 20)
    write_without_uid(tmp_path / "anon", 8, prefix="other", spacing=(0.5, 0.5))
    found = list_series(tmp_path / "anon")
    assert sorted(s.n_slices for s in found) == [8, 20]
    assert len({s.series_uid for s in found}) == 2
    vol = load_study(tmp_path / "anon")
    assert vol.shape[0] == 20
    # the key is stable: the series chosen by list_series loads again by that key
    small = next(s for s in found if s.n_slices == 8)
    assert load_study(tmp_path / "anon", series_uid=small.series_uid).shape[0] == 8


def test_two_series_with_the_same_geometry_are_refused_and_named(tmp_path):
    """Two reconstructions at the same positions cannot be told apart without their UIDs."""
    write_without_uid(tmp_path / "anon", 10, prefix="bone")
    write_without_uid(tmp_path / "anon", 10, prefix="soft")
    with pytest.raises(CspineInputError) as err:
        load_study(tmp_path / "anon")
    text = str(err.value)
    assert "SeriesInstanceUID" in text and "20 images of 128×128" in text
    assert "10 distinct positions" in text
    assert str(tmp_path) not in text.replace(str(tmp_path / "anon"), "")


def test_equally_good_groups_without_uid_are_refused_and_named(tmp_path):
    write_without_uid(tmp_path / "anon", 10, prefix="a", spacing=(0.7, 0.7))
    write_without_uid(tmp_path / "anon", 10, prefix="b", spacing=(0.5, 0.5))
    with pytest.raises(InconsistentSeriesError) as err:
        load_study(tmp_path / "anon")
    text = str(err.value)
    assert "2 equally likely series" in text
    assert "0.7×0.7 mm" in text and "0.5×0.5 mm" in text
