"""A plain DICOM folder: order, geometry, HU, meta, progress and cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from cspine_desktop.errors import Cancelled, CspineInputError, UserFacingError
from cspine_desktop.imaging import Volume, list_series, load_study
from tests.factories.dicom_series import BALL_LPS

META_KEYS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesDescription",
    "Modality",
    "Manufacturer",
    "SliceThickness",
    "WindowCenter",
    "WindowWidth",
    "source_kind",
    "source_path",
    "sop_instance_uids",
    "source_files",
)


def _ball_lps(vol: Volume) -> np.ndarray:
    """Patient position (LPS mm) of the centre of the dense ball, found through the affine."""
    z, y, x = np.nonzero(vol.hu >= 900)
    return vol.voxel_to_lps(x.mean(), y.mean(), z.mean())


def test_shuffled_names_reversed_instance_numbers_load_in_position_order(ct_series):
    s = ct_series(n_slices=12, names="shuffled", instance_numbers="reversed")
    vol = load_study(s.folder)
    assert vol.hu.dtype == np.int16
    np.testing.assert_array_equal(vol.hu, s.hu)
    assert vol.meta["sop_instance_uids"] == s.sop_uids
    assert vol.meta["source_files"] == [str(p) for p in s.files]
    assert vol.warnings == []


def test_affine_maps_voxels_to_patient_lps(ct_series):
    s = ct_series(n_slices=30, rows=40, cols=40, spacing=(1.0, 2.0, 2.0))
    vol = load_study(s.folder)
    assert vol.spacing == pytest.approx((1.0, 2.0, 2.0))
    np.testing.assert_allclose(vol.voxel_to_lps(0, 0, 0), s.positions[0], atol=1e-6)
    np.testing.assert_allclose(vol.voxel_to_lps(0, 0, 29), s.positions[-1], atol=1e-6)
    np.testing.assert_allclose(_ball_lps(vol), BALL_LPS, atol=1.0)


def test_z_spacing_comes_from_positions_not_slice_thickness(ct_series):
    s = ct_series(n_slices=6, spacing=(1.25, 2.5, 2.5), slice_thickness=3.0)
    vol = load_study(s.folder)
    assert vol.spacing[0] == pytest.approx(1.25)
    assert vol.meta["SliceThickness"] == pytest.approx(3.0)


def test_meta_holds_the_contracted_keys(ct_series):
    s = ct_series(n_slices=4)
    vol = load_study(s.folder)
    for key in META_KEYS:
        assert key in vol.meta, key
    assert vol.meta["PatientID"] == "PHANTOM-001"
    assert vol.meta["PatientName"] == "Phantom^Neck"
    assert vol.meta["StudyInstanceUID"] == s.study_uid
    assert vol.meta["SeriesInstanceUID"] == s.series_uid
    assert vol.meta["Modality"] == "CT"
    assert vol.meta["source_kind"] == "dicom"
    assert vol.meta["source_path"] == str(s.folder.resolve())
    assert (vol.meta["WindowCenter"], vol.meta["WindowWidth"]) == (400.0, 1800.0)


def test_folders_are_searched_recursively(ct_series, tmp_path):
    s = ct_series(folder=tmp_path / "PATIENT" / "STUDY" / "SERIES", n_slices=5)
    vol = load_study(tmp_path)
    np.testing.assert_array_equal(vol.hu, s.hu)


@pytest.mark.parametrize(
    "syntax",
    [
        ImplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
    ],
    ids=["implicit", "big-endian", "deflated", "rle", "jpeg-ls-lossless", "j2k-lossless"],
)
def test_encodings_decode_to_the_same_hu(ct_series, syntax):
    s = ct_series(n_slices=4, transfer_syntax=syntax)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)


@pytest.mark.parametrize(
    ("signed", "bits_stored", "intercept", "slope"),
    [
        (True, 16, 0.0, 1.0),
        (True, 12, 0.0, 1.0),
        (False, 16, -1024.0, 1.0),
        (False, 12, -1024.0, 2.0),
        (False, 12, -1024.5, 0.5),
    ],
)
def test_pixel_representation_bits_stored_and_rescale(
    ct_series, signed, bits_stored, intercept, slope
):
    s = ct_series(
        n_slices=3, signed=signed, bits_stored=bits_stored, intercept=intercept, slope=slope
    )
    vol = load_study(s.folder)
    np.testing.assert_allclose(vol.hu.astype(float), s.hu.astype(float), atol=0.5)


def test_garbage_above_bits_stored_is_masked(ct_series):
    s = ct_series(n_slices=3, signed=True, bits_stored=12, intercept=0.0)
    for path, ds in zip(s.files, s.datasets):
        raw = np.frombuffer(ds.PixelData, "<i2")
        bits = raw.view("<u2").copy()
        bits[raw >= 0] |= 0xF000  # junk in the unused high bits (as overlays once were)
        ds.PixelData = bits.tobytes()
        ds.save_as(path, enforce_file_format=True)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)


def test_per_slice_rescale_is_honoured(ct_series):
    s = ct_series(n_slices=4)
    # rewrite slice 2 with a different intercept and matching stored values
    ds = s.datasets[2]
    stored = np.frombuffer(ds.PixelData, "<u2").astype(np.int32) + 24
    ds.RescaleIntercept = -1048
    ds.PixelData = stored.astype("<u2").tobytes()
    ds.save_as(s.files[2], enforce_file_format=True)
    vol = load_study(s.folder)
    np.testing.assert_array_equal(vol.hu, s.hu)


def test_single_file_loads_one_slice(ct_series):
    s = ct_series(n_slices=3)
    vol = load_study(s.files[1])
    np.testing.assert_array_equal(vol.hu[0], s.hu[1])
    assert any("Single slice" in w for w in vol.warnings)


def test_progress_reports_stages_and_reaches_total(ct_series):
    s = ct_series(n_slices=20)
    calls = []
    load_study(s.folder, progress=lambda p: calls.append((p.done, p.total, p.stage)))
    stages = [c[2] for c in calls]
    assert "reading headers" in stages and "decoding" in stages
    last_decode = [c for c in calls if c[2] == "decoding"][-1]
    assert last_decode[0] == last_decode[1] == 20


@pytest.mark.parametrize("kind", ["event", "callable"])
def test_cancel_stops_the_load(ct_series, kind):
    s = ct_series(n_slices=20)
    event = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.stage)
        if p.stage == "decoding" or len(seen) > 1:
            event.set()

    cancel = event if kind == "event" else event.is_set
    with pytest.raises(Cancelled):
        load_study(s.folder, progress=progress, cancel=cancel)
    assert isinstance(Cancelled("x"), UserFacingError)  # shown, never a traceback
    assert not isinstance(Cancelled("x"), CspineInputError)  # the user stopped it: no fault


def test_list_series_describes_the_series(ct_series):
    s = ct_series(n_slices=7, slice_thickness=0.625)
    [info] = list_series(s.folder)
    assert info.series_uid == s.series_uid
    assert (info.n_slices, info.modality, info.usable) == (7, "CT", True)
    assert info.slice_thickness_mm == pytest.approx(0.625)
    assert info.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert info.description == "Neck 1.0 Bone"
