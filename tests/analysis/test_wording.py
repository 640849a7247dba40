"""Verdict wording shared by every surface: a patient threshold the patient is called through
(1 in the card) reads as such, not as "threshold 1"."""

from __future__ import annotations

from cspine_desktop.analysis import wording


def test_a_patient_threshold_of_one_says_the_patient_is_called_through_the_vertebrae():
    head = wording.patient_headline("assessed", True, 0.42, 1.0)
    assert head == "Fracture suspected — patient probability 0.42 (called through the vertebrae)"
    assert "threshold 1" not in head
    op = {"sensitivity": 1.0, "specificity": 0.25}
    assert wording.threshold_text(1.0, op) == (
        "any vertebra at its threshold (validation sensitivity 1.00, specificity 0.25)"
    )


def test_an_ordinary_threshold_is_printed_with_its_operating_point():
    assert wording.patient_headline("assessed", False, 0.2, 0.6) == (
        "No fracture detected — patient probability 0.20 (threshold 0.6)"
    )
    assert wording.threshold_text(0.93, {"sensitivity": 0.5, "specificity": 0.9}) == (
        "0.93 (validation sensitivity 0.50, specificity 0.90)"
    )
    assert wording.threshold_text(None) == "-"
    assert wording.through_vertebrae(None) is False
