"""The workstation end to end with a fake analysis handler: open → progress → verdicts →
overlays; cancel; bad input; worklist updates from another thread."""

from __future__ import annotations

import threading

import numpy as np
from fake_analysis import FRACTURED, FakeHandler
from PySide6.QtWidgets import QMessageBox

from cspine_desktop.gui.models import Orientation
from cspine_desktop.gui.panels.results_panel import CLEAR_TEXT, FRACTURE_TEXT

A = Orientation.AXIAL


def _record(controller):
    log = []
    for name in (
        "opening",
        "progress",
        "volume_loaded",
        "study_stored",
        "analysis_started",
        "analysis_finished",
        "failed",
        "cancelled",
    ):
        getattr(controller, name).connect(lambda *a, n=name: log.append((n, a)))
    return log


def test_open_study_progress_in_order_then_verdicts_and_overlays(
    qtbot, make_workstation, study_dir
):
    window, services = make_workstation(FakeHandler(delay_s=0.01))
    c = window.controller
    log = _record(c)
    milestones = [c.opening, c.volume_loaded, c.study_stored, c.analysis_started]
    with qtbot.waitSignals(milestones, order="strict", timeout=20000):
        window.open_path(study_dir)
    with qtbot.waitSignal(c.analysis_finished, timeout=20000):
        pass
    names = [n for n, _ in log]
    assert "failed" not in names and "cancelled" not in names
    # loading progress comes before the images, analysis progress after the job started
    first_vol, started = names.index("volume_loaded"), names.index("analysis_started")
    assert "progress" in names[:first_vol]
    stages = [a[0].stage for n, a in log[started:] if n == "progress"]
    assert any(s.startswith("analysing") for s in stages)
    done = [a[0].percent for n, a in log[started:] if n == "progress" and a[0].fraction is not None]
    assert done == sorted(done) and done[-1] == 100
    assert names[-1] == "analysis_finished"

    # results table filled from the verdicts
    res = window.results
    assert res.verdict_text(FRACTURED - 1) == FRACTURE_TEXT
    assert res.verdict_text(0) == CLEAR_TEXT
    assert "Fracture suspected" in res.patient_label.text()
    assert "fake-model 0.0-test" in res.details.text() and "fake" in res.details.text()
    assert not window.status.progress_bar.isVisible()

    # overlays arrived and toggle the pixels
    model = window.viewer_model
    assert model.overlays.has_labels and model.overlays.has_heatmap
    opened = c.current
    peak = opened.result.vertebra("C5").peak_slice
    res.table.cellClicked.emit(FRACTURED - 1, 0)  # click → jump to the most suspicious slice
    assert model.slice_index(A) == peak
    assert opened.labels[peak, model.cursor[1], model.cursor[2]] == FRACTURED
    view = window.viewer.views[A]
    with_heat = view.current_image().copy()
    window.overlay_panel.heat_check.setChecked(False)
    assert not model.overlays.heatmap_visible
    without_heat = view.current_image().copy()
    assert not np.array_equal(with_heat, without_heat)
    window.overlay_panel.labels_check.setChecked(False)
    bare = view.current_image().copy()
    assert not np.array_equal(without_heat, bare)
    window.overlay_panel.vertebra_checks[FRACTURED].setChecked(False)
    assert not model.overlays.is_vertebra_visible(FRACTURED)

    # the study is in the worklist with its verdict
    qtbot.waitUntil(
        lambda: any(r.verdict_text.startswith("fracture") for r in window.worklist.model.rows),
        timeout=5000,
    )
    assert services.jobs.list(study_id=opened.study_id)[0].state == "succeeded"


def test_cancel_mid_analysis_leaves_a_consistent_state(qtbot, make_workstation, study_dir):
    handler = FakeHandler(block_at=4)
    window, services = make_workstation(handler)
    c = window.controller
    with qtbot.waitSignal(c.analysis_started, timeout=20000):
        window.open_path(study_dir)
    assert handler.reached_block.wait(10)
    qtbot.waitUntil(lambda: window.status.stage_label.text().startswith("analysing"), timeout=5000)
    assert window.status.cancel_button.isVisible()
    with qtbot.waitSignal(c.cancelled, timeout=10000):
        window.status.cancel_button.click()
    job = services.jobs.list(study_id=c.current.study_id)[0]
    assert job.state == "cancelled"
    assert services.studies.artifacts(c.current.study_id, job.id) == []  # no partial files
    assert window.viewer_model.has_volume  # images stay
    assert not window.viewer_model.overlays.has_labels  # no half result shown
    assert window.results.result is None
    assert not c.busy and not window.status.progress_bar.isVisible()
    assert not window.exports.menu.isEnabled()
    # re-analysing afterwards works
    handler.block_at = None
    with qtbot.waitSignal(c.analysis_finished, timeout=20000):
        window.reanalyse_action.trigger()
    assert window.results.result is not None


def test_bad_folder_shows_a_plain_error_dialog(qtbot, make_workstation, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(
        QMessageBox, "warning", staticmethod(lambda parent, title, text, *a: shown.append(text))
    )
    monkeypatch.setattr(
        QMessageBox, "critical", staticmethod(lambda parent, title, text, *a: shown.append(text))
    )
    window, services = make_workstation(FakeHandler())
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a study")
    with qtbot.waitSignal(window.controller.failed, timeout=10000):
        window.open_path(empty)
    assert len(shown) == 1
    assert "holds no DICOM images" in shown[0]
    assert "Traceback" not in shown[0]
    assert services.studies.find() == []  # nothing stored
    assert not window.viewer_model.has_volume
    assert not window.controller.busy


def test_worklist_updates_when_a_job_finishes_on_another_thread(qtbot, make_workstation, study_dir):
    window, services = make_workstation(FakeHandler())
    qtbot.waitUntil(lambda: not window.worklist._refreshing, timeout=5000)
    assert window.worklist.model.rows == []

    def remote_upload():  # what the HTTP endpoint does, on its own thread
        study = services.studies.import_paths(study_dir, source="remote", address="10.0.0.7")
        services.jobs.enqueue(study.id, user="remote-user", address="10.0.0.7")

    t = threading.Thread(target=remote_upload)
    t.start()
    t.join()
    qtbot.waitUntil(
        lambda: [r.state_text for r in window.worklist.model.rows] == ["done"], timeout=15000
    )
    row = window.worklist.model.rows[0]
    assert row.source_text == "remote (10.0.0.7)"
    assert row.verdict_text == "fracture suspected (0.92)"
