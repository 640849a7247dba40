"""The TID 1500 structured report: one ROI group per segmented vertebra, patient finding,
disclaimer — readable by highdicom, pointing at the SEG written beside it."""

from __future__ import annotations

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes
from report_fakes import PROBS

from cspine_desktop import DISCLAIMER
from cspine_desktop.errors import ExportNotAvailableError
from cspine_desktop.reports.dicom_seg import write_dicom_seg
from cspine_desktop.reports.dicom_sr import FRACTURE, write_dicom_sr
from cspine_desktop.vertebrae import FRACTURE_CODE, by_name


def _texts(items) -> list[str]:
    out = []
    for item in items:
        if item.ValueType == "TEXT":
            out.append(str(item.TextValue))
        out += _texts(item.get("ContentSequence", []))
    return out


@pytest.fixture
def seg_and_sr(dicom_outcome, tmp_path):
    seg = write_dicom_seg(dicom_outcome, tmp_path / "seg.dcm")
    write_dicom_sr(dicom_outcome, tmp_path / "sr.dcm", tmp_path / "seg.dcm")
    return seg, hd.sr.srread(tmp_path / "sr.dcm"), pydicom.dcmread(tmp_path / "sr.dcm")


def test_one_volumetric_group_per_vertebra_refers_to_its_segment(seg_and_sr):
    seg, sr, _ = seg_and_sr
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == 3
    seg_labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    for group in groups:
        ref = group.referenced_segment[0]
        assert ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == seg.SOPInstanceUID
        name = seg_labels[int(ref.ReferencedSOPSequence[0].ReferencedSegmentNumber)]
        v = by_name(name)
        (site,) = group.finding_sites
        assert (site.value.value, site.value.scheme_designator) == (v.snomed_code, "SCT")
        assert group.finding_type.value == v.snomed_code
        (evaluation,) = group.get_qualitative_evaluations(name=FRACTURE)
        assert evaluation.name.value == FRACTURE_CODE[0]
        expected = codes.SCT.Present if PROBS[name] >= 0.5 else codes.SCT.Absent
        assert evaluation.value.value == expected.value
        (probability,) = group.get_measurements(name=codes.DCM.Probability)
        assert probability.value == pytest.approx(PROBS[name])
        (volume,) = group.get_measurements(name=codes.SCT.Volume)
        assert volume.value > 0


def test_patient_finding_disclaimer_and_evidence(seg_and_sr, dicom_outcome, ct_series):
    seg, sr, raw = seg_and_sr
    (patient,) = sr.content.get_image_measurement_groups()
    assert patient.finding_sites[0].value.value == codes.SCT.CervicalSpine.value
    (p,) = patient.get_measurements(name=codes.DCM.Probability)
    assert p.value == pytest.approx(dicom_outcome.result.patient_overall.probability)
    assert (
        patient.get_qualitative_evaluations(name=FRACTURE)[0].value.value == codes.SCT.Present.value
    )
    texts = _texts(raw.ContentSequence)
    assert DISCLAIMER in texts
    assert any("Slice thickness" in t for t in texts)
    assert raw.VerificationFlag == "UNVERIFIED"
    assert raw.StudyInstanceUID == ct_series.study_uid
    evidence = {
        sop.ReferencedSOPInstanceUID
        for study in raw.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert evidence == set(ct_series.sop_uids) | {seg.SOPInstanceUID}


def test_no_segmented_vertebra_still_reports_the_patient(dicom_outcome, tmp_path):
    dicom_outcome.labels[:] = 0
    with pytest.raises(ExportNotAvailableError, match="No vertebra"):
        write_dicom_seg(dicom_outcome, tmp_path / "seg.dcm")
    write_dicom_sr(dicom_outcome, tmp_path / "sr.dcm", None)
    sr = hd.sr.srread(tmp_path / "sr.dcm")
    assert sr.content.get_volumetric_roi_measurement_groups() == []
    assert len(sr.content.get_image_measurement_groups()) == 1


def test_non_dicom_input_has_no_sr(nifti_outcome, tmp_path):
    with pytest.raises(
        ExportNotAvailableError, match="only available for studies opened from DICOM"
    ):
        write_dicom_sr(nifti_outcome, tmp_path / "sr.dcm", None)
    assert list(tmp_path.iterdir()) == []


def test_indeterminate_is_a_qualitative_evaluation_with_its_reasons(dicom_outcome, tmp_path):
    from report_fakes import make_result

    r = dicom_outcome.result
    dicom_outcome.result = make_result(
        r.study_instance_uid, r.series_instance_uid, indeterminate=True
    )
    write_dicom_seg(dicom_outcome, tmp_path / "seg.dcm")
    write_dicom_sr(dicom_outcome, tmp_path / "sr.dcm", tmp_path / "seg.dcm")
    sr = hd.sr.srread(tmp_path / "sr.dcm")
    indeterminate = codes.SCT.Indeterminate.value
    for group in sr.content.get_volumetric_roi_measurement_groups():
        (evaluation,) = group.get_qualitative_evaluations(name=FRACTURE)
        assert evaluation.value.value == indeterminate
    (patient,) = sr.content.get_image_measurement_groups()
    assert patient.get_qualitative_evaluations(name=FRACTURE)[0].value.value == indeterminate
    texts = _texts(pydicom.dcmread(tmp_path / "sr.dcm").ContentSequence)
    assert any(t.startswith("Indeterminate - read the images: The slices") for t in texts)
