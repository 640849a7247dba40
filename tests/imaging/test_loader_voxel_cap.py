"""The voxel cap: a series is judged by its declared size before any pixel is decoded."""

from __future__ import annotations

import pytest

from cspine_desktop.errors import ImageTooLargeError
from cspine_desktop.imaging import list_series, load_study, loader
from tests.factories.dicom_series import write_ct_series


@pytest.fixture
def cap():
    """``cap(n)`` sets the process-wide cap as the front ends do from the settings."""
    yield loader.set_max_voxels
    loader.set_max_voxels(None)


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pixels were decoded although the series is over the cap")

    monkeypatch.setattr(loader, "decode_into_volume", refuse)


def test_a_series_over_the_cap_is_refused_before_decoding(tmp_path, cap, no_decoding):
    write_ct_series(tmp_path / "ct", n_slices=6, rows=16, cols=16)
    cap(6 * 16 * 16 - 1)
    for read in (load_study, list_series):
        with pytest.raises(ImageTooLargeError) as err:
            read(tmp_path / "ct")
        text = str(err.value)
        assert "too large" in text and "6 slices of 16×16" in text
        assert "max_image_voxels" in text
    assert ImageTooLargeError.http_status == 422


def test_at_the_cap_the_series_loads(tmp_path, cap):
    write_ct_series(tmp_path / "ct", n_slices=6, rows=16, cols=16)
    cap(6 * 16 * 16)
    assert load_study(tmp_path / "ct").shape == (6, 16, 16)


def test_only_the_series_over_the_cap_is_set_aside(tmp_path, cap):
    big = write_ct_series(tmp_path / "ct", n_slices=12, rows=16, cols=16)
    small = write_ct_series(tmp_path / "ct", n_slices=4, rows=16, cols=16, seed=1)
    cap(10 * 16 * 16)
    found = {s.series_uid: s for s in list_series(tmp_path / "ct")}
    assert found[small.series_uid].usable
    assert not found[big.series_uid].usable and "too large" in found[big.series_uid].reason
    assert load_study(tmp_path / "ct").meta["SeriesInstanceUID"] == small.series_uid
    with pytest.raises(ImageTooLargeError):
        load_study(tmp_path / "ct", series_uid=big.series_uid)


def test_the_automatic_cap_comes_from_memory(monkeypatch, cap):
    memory = loader.physical_memory_bytes()
    assert memory is not None and memory > 2**28  # this computer's memory can be read
    cap(None)
    monkeypatch.setattr(loader, "physical_memory_bytes", lambda: 16 * 2**30)
    assert loader.max_voxels() == 2**30  # a float32 volume may use 1/16 of memory
    assert loader.max_voxels() < 300 * 8192 * 8192  # the zip bomb of declared sizes
    cap(5_000)
    assert loader.max_voxels() == 5_000
    cap(0)
    assert loader.max_voxels() == 2**30


def test_a_nifti_declaring_more_voxels_than_the_cap_is_refused_before_reading(tmp_path, cap):
    """The header alone decides: a gzip of zeros declaring 2048³ (8.6 G voxels, 8 KB on disk)
    is refused without reading its data, and one under the cap still loads."""
    import nibabel as nib
    import numpy as np

    small = nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), np.eye(4))
    nib.save(small, tmp_path / "small.nii.gz")
    header = small.header.copy()
    header.set_data_shape((2048, 2048, 2048))
    huge = tmp_path / "huge.nii"
    huge.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 1024)  # truncated: never read
    cap(8 * 8 * 4)
    assert load_study(tmp_path / "small.nii.gz").hu.shape == (4, 8, 8)
    with pytest.raises(ImageTooLargeError) as err:
        load_study(huge)
    assert "2048 × 2048 × 2048" in str(err.value) and "max_image_voxels" in str(err.value)
