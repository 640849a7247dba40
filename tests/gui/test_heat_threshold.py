"""The heat-map is drawn against the vertebra threshold, never a patient threshold of 1."""

from __future__ import annotations

import pytest

from cspine_desktop.gui.models.overlays import OverlayModel, heat_threshold_of


def test_heat_threshold_is_the_lowest_vertebra_threshold():
    thresholds = {f"C{i}": 0.1 + 0.01 * i for i in range(1, 8)} | {"patient_overall": 1.0}
    assert heat_threshold_of(thresholds, 1.0) == pytest.approx(0.11)


def test_heat_threshold_falls_back_to_the_patient_threshold():
    assert heat_threshold_of({"patient_overall": 0.4}, 0.4) == pytest.approx(0.4)


def test_a_patient_threshold_of_one_no_longer_hides_all_heat():
    model = OverlayModel()
    model.set_heat_threshold(heat_threshold_of({"C1": 0.103, "patient_overall": 1.0}, 1.0))
    assert model.heat_floor == pytest.approx(0.103)
