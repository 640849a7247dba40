"""DICOM SEG exports are readable by highdicom and pydicom and sit on the source images."""

from __future__ import annotations

import copy
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
from cspine_desktop.reports import _dicom, export_all
from cspine_desktop.reports._common import NO_FRAME_OF_REFERENCE
from cspine_desktop.reports.dicom_seg import (
    FRACTIONAL_FLOOR,
    write_dicom_seg,
    write_fracture_seg,
)
from cspine_desktop.reports.export import DICOM_FORMATS, available_formats
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


def _blank_sop_uids(series, *, file_meta_too: bool = False) -> None:
    """Blank each file's SOPClassUID and SOPInstanceUID, as some anonymisers do (a real
    series so written crashed the export), keeping the file meta's copies unless asked."""
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ""
        ds.SOPInstanceUID = ""
        if file_meta_too:
            ds.file_meta.MediaStorageSOPClassUID = ""
            ds.file_meta.MediaStorageSOPInstanceUID = ""
        ds.save_as(path)


def test_blanked_sop_uids_are_taken_from_the_file_meta(ct_series, tmp_path):
    _blank_sop_uids(ct_series)
    volume = load_study(ct_series.folder)
    assert set(volume.meta["sop_instance_uids"]) == set(ct_series.sop_uids)
    labels, heat = make_labels_and_heat(volume.hu.shape)
    outcome = AnalysisOutcome(
        make_result(ct_series.study_uid, ct_series.series_uid), volume, labels, heat
    )
    write_dicom_seg(outcome, tmp_path / "seg.dcm")
    [series] = pydicom.dcmread(tmp_path / "seg.dcm").ReferencedSeriesSequence
    refs = series.ReferencedInstanceSequence
    assert {r.ReferencedSOPInstanceUID for r in refs} == set(ct_series.sop_uids)
    assert {r.ReferencedSOPClassUID for r in refs} == {pydicom.uid.CTImageStorage}


def test_sources_without_any_sop_uid_are_a_plain_error(ct_series, tmp_path):
    _blank_sop_uids(ct_series, file_meta_too=True)
    volume = load_study(ct_series.folder)
    labels, heat = make_labels_and_heat(volume.hu.shape)
    outcome = AnalysisOutcome(
        make_result(ct_series.study_uid, ct_series.series_uid), volume, labels, heat
    )
    with pytest.raises(ExportNotAvailableError, match="SOP Class and SOP Instance UIDs"):
        write_dicom_seg(outcome, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()
    # every other export is still made; asked for by name, the DICOM ones are refused up front
    avail = available_formats(outcome)
    assert all("SOP Class and SOP Instance UIDs" in str(avail[f]) for f in DICOM_FORMATS)
    written = export_all(outcome, tmp_path / "all")
    assert {"pdf", "nifti", "json"} <= set(written) and not DICOM_FORMATS & set(written)
    with pytest.raises(ExportNotAvailableError, match="SOP Class and SOP Instance UIDs"):
        export_all(outcome, tmp_path / "sr", ["sr"])
    assert not (tmp_path / "sr").exists() or not any((tmp_path / "sr").iterdir())


def test_sources_without_a_frame_of_reference_get_every_export_but_the_segmentations(
    ct_series, tmp_path
):
    """A real CT file without a FrameOfReferenceUID (pydicom-data's bad_sequence.dcm) had made
    the whole default export fail after the analysis, so the PDF and key images were lost."""
    for path in ct_series.files:
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(path)
    volume = load_study(ct_series.folder)
    labels, heat = make_labels_and_heat(volume.hu.shape)
    outcome = AnalysisOutcome(
        make_result(ct_series.study_uid, ct_series.series_uid), volume, labels, heat
    )
    avail = available_formats(outcome)
    assert avail["seg"] == avail["fracture_seg"] == NO_FRAME_OF_REFERENCE
    assert avail["sr"] is None  # an SR refers to the instances only
    written = export_all(outcome, tmp_path / "all")
    assert {"pdf", "nifti", "sr"} <= set(written) and "seg" not in written
    sr = pydicom.dcmread(written["sr"])
    refs = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert {r.ReferencedSOPInstanceUID for r in refs.ReferencedSOPSequence} <= set(
        ct_series.sop_uids
    )
    with pytest.raises(ExportNotAvailableError, match="no Frame of Reference UID"):
        export_all(outcome, tmp_path / "seg", ["seg"])


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


def test_both_segs_are_compressed_and_hold_only_frames_with_a_segment(dicom_outcome, tmp_path):
    # heat on slices 1 and 6 with a gap between: the slices in between are no frames
    dicom_outcome.heatmap[6, 12:14, 9:11] = 0.5
    write_dicom_seg(dicom_outcome, tmp_path / "seg.dcm")
    write_fracture_seg(dicom_outcome, tmp_path / "fracture.dcm")
    seg, fracture = (
        pydicom.dcmread(tmp_path / "seg.dcm"),
        pydicom.dcmread(tmp_path / "fracture.dcm"),
    )
    assert seg.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert fracture.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    assert fracture.MaximumFractionalValue == 255
    # one frame per segment per slice that holds it: C2 3 slices, C3 2, C4 3
    assert seg.NumberOfFrames == 8 and fracture.NumberOfFrames == 2
    uids = dicom_outcome.volume.meta["sop_instance_uids"]
    frame_uids = [
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in fracture.PerFrameFunctionalGroupsSequence
    ]
    assert sorted(frame_uids) == sorted([uids[1], uids[6]])  # frames in highdicom's order
    # pydicom alone decodes the pixels (no highdicom, no extra codec)
    assert seg.pixel_array.shape == (8, 24, 20) and set(np.unique(seg.pixel_array)) == {0, 1}
    frames = fracture.pixel_array
    for frame, uid in zip(frames, frame_uids):
        z = uids.index(uid)
        np.testing.assert_allclose(frame / 255.0, dicom_outcome.heatmap[z], atol=0.5 / 255)
    # ... and the files stay small: the heat-map SEG is mostly zeros, RLE keeps it tiny
    assert (tmp_path / "fracture.dcm").stat().st_size < 20_000


def test_heat_below_the_floor_is_stored_as_zero(dicom_outcome, tmp_path):
    dicom_outcome.heatmap[1, 0:2, 0:2] = FRACTIONAL_FLOOR / 2  # noise beside the hot spot
    dicom_outcome.heatmap[4] = FRACTIONAL_FLOOR / 2  # a slice of noise only: no frame
    write_fracture_seg(dicom_outcome, tmp_path / "f.dcm")
    seg = hd.seg.segread(tmp_path / "f.dcm")
    assert seg.NumberOfFrames == 1
    uids = dicom_outcome.volume.meta["sop_instance_uids"]
    got = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0]
    expected = np.where(dicom_outcome.heatmap >= FRACTIONAL_FLOOR, dicom_outcome.heatmap, 0)
    np.testing.assert_allclose(got, expected, atol=0.5 / 255)


def test_frames_take_the_geometry_of_their_source_images(dicom_outcome, ct_series, tmp_path):
    """On the source grid each frame is copied from its own source image: same position,
    locations preserved; the SEG still lists every instance of the series."""
    sources = _dicom.read_source_headers(dicom_outcome.volume, "test")
    assert _dicom.on_source_grid(dicom_outcome.volume, sources)
    raw = write_dicom_seg(dicom_outcome, tmp_path / "seg.dcm", sources)
    positions = _source_positions(ct_series)
    for frame in raw.PerFrameFunctionalGroupsSequence:
        src = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert src.SpatialLocationsPreserved == "YES"
        pos = tuple(float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient)
        assert pos == positions[src.ReferencedSOPInstanceUID]
    listed = {
        i.ReferencedSOPInstanceUID
        for i in raw.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert listed == set(ct_series.sop_uids)


def test_source_grid_check_refuses_what_does_not_line_up(dicom_outcome):
    volume = dicom_outcome.volume
    sources = _dicom.read_source_headers(volume, "test")
    assert _dicom.on_source_grid(volume, sources)
    assert not _dicom.on_source_grid(volume, sources[:-1])  # a slice without its image
    moved = [copy.deepcopy(ds) for ds in sources]
    pos = [float(v) for v in moved[3].ImagePositionPatient]
    moved[3].ImagePositionPatient = [pos[0], pos[1], pos[2] + 0.5]
    assert not _dicom.on_source_grid(volume, moved)
    swapped = [sources[1], sources[0], *sources[2:]]  # images out of slice order
    assert not _dicom.on_source_grid(volume, swapped)
    bare = [copy.deepcopy(ds) for ds in sources]
    del bare[0].ImagePositionPatient
    assert not _dicom.on_source_grid(volume, bare)


def test_memoized_iod_lookup_answers_as_highdicom_does():
    from highdicom import _standard_utils as standard

    lookup = standard.is_attribute_in_iod
    assert getattr(lookup, "cspine_memoized", False)
    original = lookup.__wrapped__
    ct, seg = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.4"
    for attribute, sop_class in [
        ("NumberOfFrames", ct),
        ("NumberOfFrames", seg),
        ("PixelData", ct),
    ]:
        for _ in range(2):  # the cached answer too
            assert lookup(attribute, sop_class) == original(attribute, sop_class)
    assert lookup("PixelData", ct, ["IconImageSequence"]) == original(
        "PixelData", ct, ["IconImageSequence"]
    )
    assert lookup("NumberOfFrames", seg) and not lookup("NumberOfFrames", ct)
    with pytest.raises(KeyError):
        lookup("PixelData", "1.2.3.4")


def test_fracture_seg_skips_highdicoms_value_listing_with_the_same_result(
    dicom_outcome, monkeypatch
):
    from highdicom.seg import sop

    from cspine_desktop.reports import dicom_seg

    with monkeypatch.context() as m:  # highdicom's own check, as plain Segmentation runs it
        m.setattr(
            dicom_seg._HeatmapSegmentation,
            "_check_and_cast_pixel_array",
            hd.seg.Segmentation._check_and_cast_pixel_array,
        )
        reference = dicom_seg.build_fracture_seg(dicom_outcome)

    listed = []  # sizes of the arrays np.unique lists (highdicom uses it on small ones too)
    unique = np.unique

    def spy(array, *args, **kwargs):
        listed.append(np.size(array))
        return unique(array, *args, **kwargs)

    monkeypatch.setattr(sop.np, "unique", spy)
    fast = dicom_seg.build_fracture_seg(dicom_outcome)
    frame = int(np.prod(dicom_outcome.heatmap.shape[1:]))
    assert max(listed, default=0) < frame  # no pixel array was listed
    assert fast.PixelData == reference.PixelData
    assert fast.SegmentsOverlap == reference.SegmentsOverlap == "NO"
    assert fast.NumberOfFrames == reference.NumberOfFrames


def test_heatmap_check_leaves_anything_else_to_highdicom():
    from cspine_desktop.reports.dicom_seg import _HeatmapSegmentation

    fractional = hd.seg.SegmentationTypeValues.FRACTIONAL
    with pytest.raises(ValueError, match="range"):  # highdicom's own refusal
        _HeatmapSegmentation._check_and_cast_pixel_array(
            np.full((2, 4, 4), 1.5, np.float32), np.array([1]), fractional, np.uint8
        )
    heat = np.full((2, 4, 4), 0.5, np.float32)
    same, overlap = _HeatmapSegmentation._check_and_cast_pixel_array(
        heat, np.array([1]), fractional, np.uint8
    )
    assert same is heat and overlap == hd.seg.SegmentsOverlapValues.NO


def test_vertebra_frames_are_the_label_maps_own_slices_when_all_levels_are_kept():
    from cspine_desktop.reports.dicom_seg import _lookup

    labels = np.zeros((6, 4, 4), np.uint8)
    labels[1:5, 1, 1] = [1, 7, 3, 5]
    identity = np.zeros(256, np.uint8)
    identity[1:8] = np.arange(1, 8)
    kept = _lookup(identity, labels, np.arange(1, 5))
    assert np.shares_memory(kept, labels) and not kept.flags.writeable
    np.testing.assert_array_equal(kept, labels[1:5])
    assert labels.flags.writeable  # the analysis' own map stays as it was
    gaps = _lookup(identity, labels, np.array([1, 3]))  # not consecutive: a copy
    np.testing.assert_array_equal(gaps, labels[[1, 3]])
    remap = identity.copy()
    remap[3], remap[7] = 0, 3  # C3 absent: C7 is segment 3
    np.testing.assert_array_equal(_lookup(remap, labels, np.arange(6)), remap[labels])
