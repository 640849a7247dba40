"""The PDF report: one page, the disclaimer, identifiers, the verdict table, key images."""

from __future__ import annotations

import base64
import re
import zlib

from cspine_desktop import DISCLAIMER
from cspine_desktop.reports.pdf import write_report_pdf


def _page_text(pdf: bytes) -> str:
    """Text shown by the page content streams (reportlab encodes them ASCII85 + Flate)."""
    out = []
    for m in re.finditer(rb"<<((?:(?!>>).)*?)>>\s*stream\r?\n(.*?)endstream", pdf, re.S):
        head, data = m.group(1), m.group(2)
        if b"/Subtype /Image" in head:
            continue
        if b"/ASCII85Decode" in head:
            data = base64.a85decode(data.strip().removesuffix(b"~>"))
        if b"/FlateDecode" in head:
            data = zlib.decompress(data)
        out += [s.decode("latin-1") for s in re.findall(rb"\((.*?)\) Tj", data)]
    return "\n".join(out).replace("\\(", "(").replace("\\)", ")")


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def test_report_is_one_page_with_the_disclaimer_and_the_verdicts(dicom_outcome, tmp_path):
    pdf = write_report_pdf(dicom_outcome, tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert _pages(pdf) == 1
    text = _page_text(pdf)
    assert "NOT FOR DIAGNOSTIC USE" in text
    assert DISCLAIMER.split(";")[0] in text  # first clause (wrapped lines)
    assert text.count("Not for diagnostic use") >= 2  # top box and footer
    r = dicom_outcome.result
    for needle in (
        r.patient_id,
        r.study_instance_uid,
        r.model.name,
        r.model.sha256[:12],
        r.backend,
        "C1",
        "C7",
        "0.910",
        "Fracture suspected - patient probability",
        "fracture suspected",
        "Slice thickness",
    ):
        assert needle in text, needle
    assert pdf.count(b"/Subtype /Image") == 2  # C2 key image + sagittal


def test_many_warnings_and_key_images_still_fit_one_page(nifti_outcome, tmp_path):
    import dataclasses

    from report_fakes import make_result

    r = make_result("s", "s", probs={"C2": 0.9, "C3": 0.8, "C4": 0.7})
    nifti_outcome.result = dataclasses.replace(
        r, warnings=tuple(f"Warning number {i} " + "long text " * 30 for i in range(20))
    )
    pdf = write_report_pdf(nifti_outcome, tmp_path / "r.pdf").read_bytes()
    assert _pages(pdf) == 1
    assert pdf.count(b"/Subtype /Image") == 3  # two axial + sagittal, capped at three
    assert "and 14 more" in _page_text(pdf)


def test_missing_identifiers_show_as_dashes_not_none(nifti_outcome, tmp_path):
    # what the NIfTI loader gives: the DICOM keys present with value None
    nifti_outcome.volume.meta |= dict.fromkeys(
        ("PatientID", "PatientName", "StudyDate", "SeriesDescription")
    )
    text = _page_text(write_report_pdf(nifti_outcome, tmp_path / "r.pdf").read_bytes())
    assert "None" not in text
    assert "Patient name" in text


def test_an_indeterminate_result_says_so_with_its_reasons(dicom_outcome, tmp_path):
    from report_fakes import make_result

    dicom_outcome.result = make_result("1.2.3", "1.2.3.1", indeterminate=True)
    text = _page_text(write_report_pdf(dicom_outcome, tmp_path / "r.pdf").read_bytes())
    assert "Indeterminate - read the images" in text
    assert "No patient-level verdict (probability" in text
    assert "slices are 6.0 mm thick" in text
    assert "indeterminate" in text.split("Vertebra", 1)[1]  # in the verdict table
    assert "no fracture" not in text and "Fracture suspected" not in text
