"""DICOM SEG exports are readable by highdicom and pydicom and sit on the source images."""

from __future__ import annotations

import shutil
import zipfile

import highdicom as hd
import numpy as np
import pydicom
import pytest
from factories.dicom_series import write_ct_series
from report_fakes import make_labels_and_heat, make_result

from cspine_desktop.analysis.pipeline import AnalysisOutcome
from cspine_desktop.errors import ExportNotAvailableError
from cspine_desktop.imaging import load_study
from cspine_desktop.reports.dicom_seg import write_dicom_seg, write_fracture_seg
from cspine_desktop.vertebrae import FRACTURE_CODE, SNOMED_CATEGORY, by_name


def _source_positions(series) -> dict[str, tuple[float, ...]]:
    return {
        ds.SOPInstanceUID: tuple(float(v) for v in ds.ImagePositionPatient)
        for ds in series.datasets
    }


def test_vertebra_seg_has_one_coded_segment_per_present_vertebra(dicom_outcome, tmp_path):
    path = tmp_path / "seg.dcm"
    write_dicom_seg(dicom_outcome, path)
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "BINARY"
    labels = [str(s.SegmentLabel) for s in seg.SegmentSequence]
    assert labels == ["C2", "C3", "C4"]  # C1, C5–C7 absent: no segment
    for number, item in enumerate(seg.SegmentSequence, start=1):
        v = by_name(item.SegmentLabel)
        assert item.SegmentNumber == number
        prop = item.SegmentedPropertyTypeCodeSequence[0]
        cat = item.SegmentedPropertyCategoryCodeSequence[0]
        assert (prop.CodeValue, prop.CodingSchemeDesignator) == (v.snomed_code, "SCT")
        assert prop.CodeMeaning == v.snomed_meaning
        assert (cat.CodeValue, cat.CodeMeaning) == SNOMED_CATEGORY
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        algo = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algo.AlgorithmName == dicom_outcome.result.model.name
        assert algo.AlgorithmVersion == dicom_outcome.result.model.version
        assert algo.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence
        lab = hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue)
        assert np.abs(np.subtract(lab.to_rgb(clip=True), v.rgb)).max() <= 2


@pytest.mark.parametrize("shift", [0, 2])  # labels from slice 0, or a slab further up
def test_vertebra_seg_refers_to_the_source_instances_voxel_for_voxel(
    dicom_outcome, ct_series, tmp_path, shift
):
    dicom_outcome.labels = np.roll(dicom_outcome.labels, shift, axis=0)
    path = tmp_path / "seg.dcm"
    write_dicom_seg(dicom_outcome, path)
    raw = pydicom.dcmread(path)
    assert raw.Modality == "SEG"
    assert raw.StudyInstanceUID == ct_series.study_uid
    assert raw.PatientID == "PHANTOM-001"
    assert raw.ContentQualification == "RESEARCH"
    assert raw.ReferencedSeriesSequence[0].SeriesInstanceUID == ct_series.series_uid
    positions = _source_positions(ct_series)
    per_frame = set()
    for frame in raw.PerFrameFunctionalGroupsSequence:
        src = frame.DerivationImageSequence[0].SourceImageSequence[0]
        per_frame.add(src.ReferencedSOPInstanceUID)
        frame_pos = tuple(float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient)
        np.testing.assert_allclose(frame_pos, positions[src.ReferencedSOPInstanceUID], atol=1e-3)

    seg = hd.seg.segread(path)
    uids = dicom_outcome.volume.meta["sop_instance_uids"]
    got = seg.get_pixels_by_source_instance(
        uids, combine_segments=True, relabel=False, assert_missing_frames_are_empty=True
    )
    remap = np.zeros(8, np.uint8)
    remap[[2, 3, 4]] = [1, 2, 3]  # C2, C3, C4 are segments 1, 2, 3
    np.testing.assert_array_equal(got, remap[dicom_outcome.labels])
    assert {u for _, _, u in seg.get_source_image_uids()} == set(uids)  # series level
    assert len(per_frame) == 8 and per_frame <= set(uids)  # slices 0–7 hold labels


def test_labels_of_vertebrae_judged_absent_are_left_out(dicom_outcome, tmp_path):
    # a stray C5 blob on the first C2 slice; C5 is not present in the result
    dicom_outcome.labels[0, 2:4, 2:4] = 5
    seg = write_dicom_seg(dicom_outcome, tmp_path / "seg.dcm")
    assert [str(s.SegmentLabel) for s in seg.SegmentSequence] == ["C2", "C3", "C4"]
    uids = dicom_outcome.volume.meta["sop_instance_uids"]
    got = hd.seg.segread(tmp_path / "seg.dcm").get_pixels_by_source_instance(
        uids, combine_segments=True, relabel=False
    )
    remap = np.zeros(8, np.uint8)
    remap[[2, 3, 4]] = [1, 2, 3]
    np.testing.assert_array_equal(got, remap[dicom_outcome.labels])  # C2 on slice 0 kept


def test_fracture_seg_is_fractional_and_keeps_the_heat_map(dicom_outcome, tmp_path):
    path = tmp_path / "fracture.dcm"
    write_fracture_seg(dicom_outcome, path)
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "FRACTIONAL"
    assert seg.SegmentationFractionalType == "PROBABILITY"
    (item,) = seg.SegmentSequence
    code = item.SegmentedPropertyTypeCodeSequence[0]
    assert (code.CodeValue, code.CodeMeaning) == FRACTURE_CODE
    uids = dicom_outcome.volume.meta["sop_instance_uids"]
    got = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0]
    np.testing.assert_allclose(got, dicom_outcome.heatmap, atol=1 / 254)
    assert seg.NumberOfFrames == 1  # only slice 1 has heat


def test_non_dicom_input_has_no_seg_and_leaves_no_file(nifti_outcome, tmp_path):
    with pytest.raises(ExportNotAvailableError, match="NIfTI"):
        write_dicom_seg(nifti_outcome, tmp_path / "seg.dcm")
    assert list(tmp_path.iterdir()) == []


def test_source_files_gone_is_a_plain_error(dicom_outcome, ct_series, tmp_path):
    shutil.rmtree(ct_series.folder)
    with pytest.raises(ExportNotAvailableError, match="original DICOM files"):
        write_dicom_seg(dicom_outcome, tmp_path / "out" / "seg.dcm")
    assert not (tmp_path / "out" / "seg.dcm").exists()


def test_a_study_loaded_from_a_zip_exports_after_the_unpacked_copy_is_gone(ct_series, tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in ct_series.files:
            zf.write(f, f"CT/{f.name}")
    volume = load_study(archive)
    labels, heat = make_labels_and_heat(volume.hu.shape)
    outcome = AnalysisOutcome(
        make_result(ct_series.study_uid, ct_series.series_uid), volume, labels, heat
    )
    seg = write_dicom_seg(outcome, tmp_path / "seg.dcm")
    assert {u for _, _, u in seg.get_source_image_uids()} <= set(ct_series.sop_uids)


def test_a_tilt_corrected_volume_gets_a_seg_on_its_own_grid(tmp_path):
    series = write_ct_series(tmp_path / "ct", n_slices=10, rows=24, cols=20, tilt_deg=12)
    volume = load_study(series.folder)  # resampled onto an orthogonal grid
    labels, heat = make_labels_and_heat(volume.hu.shape)
    outcome = AnalysisOutcome(
        make_result(series.study_uid, series.series_uid), volume, labels, heat
    )
    raw = write_dicom_seg(outcome, tmp_path / "seg.dcm")
    frames = raw.PerFrameFunctionalGroupsSequence
    src = frames[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert src.SpatialLocationsPreserved == "NO"  # honest: the grid moved
    for frame in frames:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        z = volume.meta["sop_instance_uids"].index(uid)
        pos = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(pos, volume.voxel_to_lps(0, 0, z), atol=1e-3)
