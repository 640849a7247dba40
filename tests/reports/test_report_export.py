"""export_all: every format through one call, all or nothing, plain errors for what a study
cannot have."""

from __future__ import annotations

import highdicom as hd
import nibabel as nib
import pytest

from cspine_desktop.errors import CspineInputError, ExportNotAvailableError
from cspine_desktop.reports import available_formats, export_all, write_label_nifti
from cspine_desktop.reports import pdf as pdf_module

ALL_DICOM_KEYS = {
    "json",
    "csv",
    "nifti",
    "pdf",
    "seg",
    "fracture_seg",
    "sr",
    "key_image_C2",
    "key_image_sagittal",
}


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_everything_for_a_dicom_study(dicom_outcome, tmp_path):
    out = tmp_path / "exports"
    paths = export_all(dicom_outcome, out, stem="PHANTOM-001 study")
    assert set(paths) == ALL_DICOM_KEYS
    assert _files(out) == sorted(p.name for p in paths.values())  # no staging dir left
    assert paths["nifti"].name == "PHANTOM-001_study_labels.nii.gz"
    seg = hd.seg.segread(paths["seg"])
    sr = hd.sr.srread(paths["sr"])
    refs = {
        g.referenced_segment[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for g in sr.content.get_volumetric_roi_measurement_groups()
    }
    assert refs == {seg.SOPInstanceUID}  # the SR points at the SEG written beside it


def test_non_dicom_study_gets_what_it_can_and_says_why_not_the_rest(nifti_outcome, tmp_path):
    avail = available_formats(nifti_outcome)
    assert {f for f, why in avail.items() if why} == {"seg", "fracture_seg", "sr"}
    assert "NIfTI" in avail["seg"]
    paths = export_all(nifti_outcome, tmp_path / "a")
    assert set(paths) == ALL_DICOM_KEYS - {"seg", "fracture_seg", "sr"}
    with pytest.raises(ExportNotAvailableError, match="NIfTI") as err:
        export_all(nifti_outcome, tmp_path / "b", formats=["json", "seg"])
    assert isinstance(err.value, CspineInputError) and err.value.http_status == 422
    assert _files(tmp_path / "b") == []  # refused before anything was written


def test_unknown_format_is_a_plain_error(nifti_outcome, tmp_path):
    with pytest.raises(ExportNotAvailableError, match="Unknown export format 'docx'"):
        export_all(nifti_outcome, tmp_path, formats=["json", "docx"])


def test_sr_brings_its_seg(dicom_outcome, tmp_path):
    assert set(export_all(dicom_outcome, tmp_path, formats=["sr"])) == {"sr", "seg"}


def test_a_failing_writer_leaves_no_file_at_all(nifti_outcome, tmp_path, monkeypatch):
    def broken(outcome, key_images=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pdf_module, "build_report_pdf", broken)
    (tmp_path / "keep.txt").write_text("user file")
    with pytest.raises(RuntimeError, match="disk full"):
        export_all(nifti_outcome, tmp_path, formats=["json", "csv", "nifti", "png", "pdf"])
    assert _files(tmp_path) == ["keep.txt"]  # json/csv/nifti/png written first are gone too


def test_a_writer_failing_midway_keeps_the_previous_file(nifti_outcome, tmp_path, monkeypatch):
    target = tmp_path / "labels.nii.gz"
    target.write_bytes(b"previous export")

    def half_write(img, filename):
        with open(filename, "wb") as f:
            f.write(b"\x1f\x8b partial")
        raise OSError("device error")

    monkeypatch.setattr(nib, "save", half_write)
    with pytest.raises(OSError, match="device error"):
        write_label_nifti(nifti_outcome, target)
    assert target.read_bytes() == b"previous export"
    assert _files(tmp_path) == ["labels.nii.gz"]  # no temporary file left behind


def test_moved_dicom_files_drop_only_the_dicom_exports(dicom_outcome, ct_series, tmp_path):
    import shutil

    shutil.rmtree(ct_series.folder)
    avail = available_formats(dicom_outcome)
    assert {f for f, why in avail.items() if why} == {"seg", "fracture_seg", "sr"}
    assert "no longer" in avail["sr"]
    paths = export_all(dicom_outcome, tmp_path / "out")
    assert set(paths) == ALL_DICOM_KEYS - {"seg", "fracture_seg", "sr"}


def test_nothing_found_still_gives_a_report_and_an_sr(dicom_outcome, tmp_path):
    import dataclasses

    r = dicom_outcome.result
    dicom_outcome.result = dataclasses.replace(
        r,
        vertebrae=tuple(
            dataclasses.replace(
                v,
                present=False,
                probability=None,
                fractured=None,
                slice_range=None,
                peak_slice=None,
                status="not_in_view",
            )
            for v in r.vertebrae
        ),
        patient_overall=dataclasses.replace(
            r.patient_overall,
            probability=0.0,
            fractured=None,
            status="indeterminate",
            reasons=("No cervical vertebra was found in the images.",),
        ),
    )
    dicom_outcome.labels[:] = 0
    dicom_outcome.heatmap[:] = 0
    paths = export_all(dicom_outcome, tmp_path)
    assert set(paths) == {"json", "csv", "nifti", "pdf", "sr", "key_image_sagittal"}


def test_a_single_slice_input_exports_without_a_sagittal(nifti_outcome, tmp_path):
    o = nifti_outcome
    o.volume.hu, o.labels, o.heatmap = o.volume.hu[1:2], o.labels[1:2], o.heatmap[1:2]
    paths = export_all(o, tmp_path)
    assert "key_image_sagittal" not in paths and "key_image_C2" in paths
    assert paths["pdf"].read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("broken", ["nifti", "fracture_seg", "seg"])
def test_a_writer_failing_in_any_thread_leaves_no_file_at_all(
    dicom_outcome, tmp_path, monkeypatch, broken
):
    """NIfTI and the fracture SEG are written beside the other exports in threads; a failure
    there (or in this thread while they run) still takes every file back."""
    from cspine_desktop.reports import dicom_seg, nifti

    def fail(*args, **kwargs):
        raise RuntimeError(f"{broken} failed")

    module, name = {
        "nifti": (nifti, "label_nifti_image"),
        "fracture_seg": (dicom_seg, "build_fracture_seg"),
        "seg": (dicom_seg, "build_vertebra_seg"),
    }[broken]
    monkeypatch.setattr(module, name, fail)
    out = tmp_path / "out"  # tmp_path also holds the source series
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(RuntimeError, match=f"{broken} failed"):
        export_all(dicom_outcome, out)
    assert _files(out) == ["keep.txt"]


def test_keys_come_in_format_order(dicom_outcome, tmp_path):
    keys = list(export_all(dicom_outcome, tmp_path / "out"))
    assert keys == [
        "json",
        "csv",
        "nifti",
        "key_image_C2",
        "key_image_sagittal",
        "pdf",
        "seg",
        "fracture_seg",
        "sr",
    ]
