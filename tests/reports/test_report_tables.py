"""JSON, RSNA CSV and the text table agree with the AnalysisResult they come from."""

from __future__ import annotations

import csv
import json

from report_fakes import PROBS, make_result

from cspine_desktop import DISCLAIMER
from cspine_desktop.analysis.result import AnalysisResult
from cspine_desktop.reports.tables import (
    render_verdicts_table,
    write_result_json,
    write_rsna_csv,
)
from cspine_desktop.vertebrae import NAMES


def test_json_round_trips_to_the_same_result(nifti_outcome, tmp_path):
    path = write_result_json(nifti_outcome, tmp_path / "r.json")
    doc = json.loads(path.read_text("utf-8"))
    assert doc["schema"] == "cspine.analysis/2"
    assert AnalysisResult.from_dict(doc) == nifti_outcome.result


def test_rsna_csv_has_eight_rows_per_study_with_probabilities(tmp_path):
    a = make_result("1.2.3", "1.2.3.1")
    b = make_result("4.5.6", "4.5.6.1", probs={"C2": 0.0, "C3": 0.6, "C4": 0.25})
    path = write_rsna_csv([a, b], tmp_path / "sub.csv")
    rows = list(csv.reader(path.read_text("utf-8").splitlines()))
    assert rows[0] == ["row_id", "fractured"]
    body = {r[0]: float(r[1]) for r in rows[1:]}
    assert len(rows) == 1 + 2 * 8
    for study, res in (("1.2.3", a), ("4.5.6", b)):
        assert [k for k in body if k.startswith(study)] == [
            *(f"{study}_{n}" for n in NAMES),
            f"{study}_patient_overall",
        ]
        assert body[f"{study}_patient_overall"] == round(res.patient_overall.probability, 6)
    assert body["1.2.3_C2"] == PROBS["C2"]
    assert body["1.2.3_C1"] == 0.0  # absent vertebra
    assert body["4.5.6_C3"] == 0.6


def test_rsna_csv_accepts_a_single_outcome(dicom_outcome, tmp_path):
    text = write_rsna_csv(dicom_outcome, tmp_path / "one.csv").read_text("utf-8")
    assert text.count("\n") == 9


def test_verdicts_table_lists_every_vertebra_and_the_disclaimer(dicom_outcome):
    text = render_verdicts_table(dicom_outcome)
    lines = text.splitlines()
    for name in NAMES:
        assert any(line.startswith(name + " ") for line in lines), name
    c2 = next(line for line in lines if line.startswith("C2 "))
    c3 = next(line for line in lines if line.startswith("C3 "))
    c1 = next(line for line in lines if line.startswith("C1 "))
    assert "0.910" in c2 and c2.endswith("fracture suspected")
    assert c3.endswith("no fracture") and c1.endswith("not in view")
    patient = next(line for line in lines if line.startswith("Patient "))
    assert patient.endswith("fracture suspected")
    assert "Fracture suspected - patient probability" in text
    assert "Operating points: vertebra 0.5 (validation sensitivity 0.91, specificity 0.62)" in text
    assert "Warning: Slice thickness" in text
    assert lines[-1] == DISCLAIMER
    text.encode("ascii")  # terminals on any platform


def test_verdicts_table_says_indeterminate_with_the_reasons():
    result = make_result("1.2.3", "1.2.3.1", indeterminate=True)
    text = render_verdicts_table(result)
    lines = text.splitlines()
    c2 = next(line for line in lines if line.startswith("C2 "))
    assert "0.910" in c2 and c2.endswith("indeterminate")  # probability kept, no verdict
    assert next(line for line in lines if line.startswith("Patient ")).endswith("indeterminate")
    assert "Indeterminate - read the images" in text
    assert "Why no verdict could be given:" in text
    assert "slices are 6.0 mm thick" in text
    assert "Not in the images: C1, C5, C6, C7." in text
    assert "no fracture" not in text and "fracture suspected" not in text
    text.encode("ascii")


def test_a_reader_of_another_schema_gets_a_clear_error(nifti_outcome):
    import pytest

    from cspine_desktop.analysis.result import SchemaMismatchError
    from cspine_desktop.errors import CspineInputError

    doc = nifti_outcome.result.to_dict()
    doc["schema"] = "cspine.analysis/1"
    with pytest.raises(SchemaMismatchError, match=r"cspine.analysis/1.*reads cspine.analysis/2"):
        AnalysisResult.from_dict(doc)
    with pytest.raises(CspineInputError, match="not a cspine result"):
        AnalysisResult.from_dict({"vertebrae": []})


def test_a_verdict_is_null_unless_assessed():
    import pytest

    from cspine_desktop.analysis.result import PatientVerdict, VertebraVerdict

    with pytest.raises(ValueError, match="fractured must be"):
        VertebraVerdict("C3", True, 0.2, False, status="indeterminate")
    with pytest.raises(ValueError, match="fractured must be"):
        VertebraVerdict("C3", True, 0.2, None, status="assessed")
    with pytest.raises(ValueError, match="cannot be assessed"):
        VertebraVerdict("C3", False, None, False, status="assessed")
    with pytest.raises(ValueError, match="fractured must be"):
        PatientVerdict(0.3, False, status="indeterminate")
    with pytest.raises(ValueError, match="status must be"):
        PatientVerdict(0.3, None, status="partly_in_view")
