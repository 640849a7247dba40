"""The verdict banner, table and worklist column: indeterminate is amber with its reasons,
never green; every threshold is shown."""

from __future__ import annotations

import numpy as np
from fake_analysis import fake_result, indeterminate

from cspine_desktop.analysis import wording
from cspine_desktop.gui.panels.results_panel import ResultsPanel
from cspine_desktop.gui.worklist.model import VERDICT_COL, WorklistModel
from cspine_desktop.gui.worklist.rows import WorklistRow
from cspine_desktop.imaging.volume import Volume

REASON = "No cervical vertebra was found in the images."
GREEN = wording.COLOURS[wording.CLEAR]


def _result():
    hu = np.full((14, 8, 8), 500, np.int16)
    volume = Volume(hu, np.eye(4), (1.0, 1.0, 1.0), {"StudyInstanceUID": "1.2", "PatientID": "P"})
    labels = np.repeat(np.arange(1, 8), 2)[:, None, None] * np.ones((1, 8, 8), np.uint8)
    return fake_result(volume, labels.astype(np.uint8))


def test_an_indeterminate_result_shows_an_amber_banner_with_its_reasons(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show_result(indeterminate(_result(), REASON))
    assert panel.patient_label.text() == "Indeterminate — read the images"
    style = panel.patient_label.styleSheet()
    assert wording.COLOURS[wording.UNSURE] in style and wording.AMBER_BACKGROUND in style
    assert GREEN not in style
    assert not panel.reasons.isHidden()
    assert REASON in panel.reasons.text() and "threshold 0.5" in panel.reasons.text()
    for row in range(7):
        assert panel.verdict_text(row) == "? indeterminate"
        cell = panel.table.item(row, 3)
        assert cell.foreground().color().name() != GREEN
        assert REASON in cell.toolTip()


def test_an_assessed_result_shows_each_threshold_and_the_patient_threshold(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show_result(_result())
    assert [panel.table.item(r, 2).text() for r in range(7)] == ["0.5"] * 7
    assert panel.table.horizontalHeaderItem(2).text() == "Threshold"
    assert panel.patient_label.text() == (
        "Fracture suspected — patient probability 0.92 (threshold 0.5)"
    )
    assert panel.reasons.isHidden()
    assert panel.verdict_text(4) == "⚠ fracture suspected"
    assert panel.verdict_text(0) == "✓ no fracture"


class _Job:
    def __init__(self, result):
        self.job_id, self.state, self.progress, self.stage, self.error = (
            "j1",
            "succeeded",
            100,
            "",
            None,
        )
        self.result = result


def _row(result_doc) -> WorklistRow:
    row = WorklistRow("s1", "P", "", "neck", "20240101", "local", None, 0.0)
    return row.with_job(_Job(result_doc))


def test_the_worklist_verdict_column_says_indeterminate_in_amber(qtbot):
    row = _row(indeterminate(_result(), REASON).to_dict())
    assert row.verdict_text == "indeterminate"
    model = WorklistModel()
    model.set_rows([row])
    index = model.index(0, VERDICT_COL)
    assert model.data(index) == "indeterminate"
    from PySide6.QtCore import Qt

    brush = model.data(index, Qt.ItemDataRole.ForegroundRole)
    assert brush.color().name() == wording.COLOURS[wording.UNSURE]
    assert model.data(index, Qt.ItemDataRole.ToolTipRole) == REASON


def test_the_worklist_asks_to_analyse_again_for_an_older_result():
    doc = _result().to_dict()
    doc["schema"] = "cspine.analysis/1"
    row = _row(doc)
    assert row.verdict_text == "older result: analyse again" and row.verdict_colour is None


def test_opening_a_study_with_an_older_result_shows_the_images_and_says_why():
    from cspine_desktop.gui.study.open_study import OpenStudy
    from cspine_desktop.gui.study.outcome import attach_outcome

    doc = _result().to_dict()
    doc["schema"] = "cspine.analysis/1"
    volume = Volume(np.zeros((2, 4, 4), np.int16), np.eye(4), (1.0, 1.0, 1.0), {})
    opened = OpenStudy(volume=volume)
    job = _Job(doc)
    job.id = "j1"
    attach_outcome(opened, services=None, job=job)
    assert opened.result is None
    assert any("cspine.analysis/1" in w and "Analyse the study again" in w for w in opened.warnings)


def test_many_reasons_are_shortened_under_the_banner_and_all_in_its_tooltip(qtbot):
    import dataclasses

    result = indeterminate(_result(), REASON)
    many = tuple(f"Reason number {i}." for i in range(9))
    result = dataclasses.replace(
        result, patient_overall=dataclasses.replace(result.patient_overall, reasons=many)
    )
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show_result(result)
    text = panel.reasons.text()
    assert "Reason number 0." in text and "Reason number 8." not in text
    assert "more (hover to see all)" in text
    assert all(r in panel.reasons.toolTip() for r in many)
    assert REASON in panel.reasons.toolTip() and "C1: " + REASON in panel.reasons.toolTip()
