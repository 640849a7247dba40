"""Issue items 1–4: nothing is deleted or cancelled without asking, the worklist and viewer
always show the same patient, an earlier good result survives a cancelled re-analysis, and
opening or exporting again does not duplicate or overwrite."""

from __future__ import annotations

from dialog_bot import answering
from factories.dicom_series import write_ct_series
from fake_analysis import FakeHandler
from gui_support import open_and_analyse
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from cspine_desktop.gui.models.patient import corner_lines

LEFT = Qt.MouseButton.LeftButton


def _click_row(qtbot, table, row, col=0, double=False):
    rect = table.visualRect(table.model().index(row, col))
    click = qtbot.mouseDClick if double else qtbot.mouseClick
    if double:
        qtbot.mouseClick(table.viewport(), LEFT, pos=rect.center())
    click(table.viewport(), LEFT, pos=rect.center())


def _rows(window):
    return window.worklist.model.rows


def test_1_delete_button_confirms_naming_patient_and_study(qtbot, make_workstation, study_dir):
    window, services = make_workstation(FakeHandler())
    opened = open_and_analyse(qtbot, window, study_dir)
    wl = window.worklist
    qtbot.waitUntil(lambda: len(_rows(window)) == 1, timeout=5000)
    _click_row(qtbot, wl.table, 0)
    seen: list[str] = []
    with answering(qtbot, "Cancel", seen):
        qtbot.mouseClick(wl.delete_button, LEFT)
    assert "Phantom, Neck" in seen[0] and "PHANTOM-001" in seen[0]
    assert '"CT C-spine"' in seen[0] and "2024-01-02" in seen[0]
    assert [s.id for s in services.studies.find()] == [opened.study_id]  # kept
    with qtbot.waitSignal(wl.deleted, timeout=10000), answering(qtbot, "Delete study", seen):
        qtbot.mouseClick(wl.delete_button, LEFT)
    qtbot.waitUntil(lambda: not _rows(window), timeout=5000)
    assert services.studies.find() == []
    assert not window.viewer_model.has_volume
    assert services.audit.query(action="study_deleted")


def test_2_worklist_and_viewer_show_the_same_patient(
    qtbot, make_workstation, study_dir, tmp_path, monkeypatch
):
    window, _services = make_workstation(FakeHandler())
    first = open_and_analyse(qtbot, window, study_dir)
    wl = window.worklist
    qtbot.waitUntil(lambda: wl.selected_study_id() == first.study_id, timeout=5000)
    _click_row(qtbot, window.results.table, 2)  # the reader looks at C3
    assert window.results.table.selectionModel().selectedRows()
    long_id = "X" * 60
    other = write_ct_series(tmp_path / "other", n_slices=10, rows=24, cols=24, patient_id=long_id)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(other.folder))
    selected_when_shown = []
    window.controller.volume_loaded.connect(
        lambda _o: selected_when_shown.append(wl.selected_study_id())
    )
    window.activateWindow()
    qtbot.waitActive(window)
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    second = window.controller.current
    assert second.study_id != first.study_id
    assert selected_when_shown == [None]  # the new images never sit beside the old row
    qtbot.waitUntil(lambda: wl.selected_study_id() == second.study_id, timeout=5000)
    assert not window.results.table.selectionModel().selectedRows()
    title = window.windowTitle()
    assert "Phantom, Neck" in title and long_id not in title and "…" in title
    patient, study = corner_lines(window.viewer_model.volume.meta)
    assert patient[0] == "Phantom, Neck" and patient[2] == "born 1970-01-01"
    assert patient[1].startswith("ID XXXX") and len(patient[1]) < 30
    assert study[0] == "2024-01-02" and "Neck 1.0 Bone" in study


def test_3_a_cancelled_reanalysis_keeps_the_earlier_result(qtbot, make_workstation, study_dir):
    handler = FakeHandler()
    window, services = make_workstation(handler)
    first = open_and_analyse(qtbot, window, study_dir)
    c = window.controller
    handler.block_at = 3
    with qtbot.waitSignal(c.analysis_started, timeout=10000):
        window.reanalyse_action.trigger()
    assert handler.reached_block.wait(10)
    assert window.results.result is not None  # the earlier result stays while it runs
    window.activateWindow()
    qtbot.waitActive(window)
    seen: list[str] = []
    with answering(qtbot, "Cancel", seen):  # Esc asks; the reader changes their mind
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert "Phantom, Neck" in seen[-1] and c.busy
    with answering(qtbot, "Cancel", seen):  # quitting asks too
        window.close()
    assert window.isVisible() and c.busy
    # Study ▸ Cancel (the Esc entry of the menu) asks the same question
    with qtbot.waitSignal(c.cancelled, timeout=10000), answering(qtbot, "Cancel analysis"):
        window.cancel_action.trigger()
    assert window.results.result == first.result
    assert window.viewer_model.overlays.has_labels
    states = [j.state for j in services.jobs.list(study_id=first.study_id)]
    assert states == ["cancelled", "succeeded"]  # the history is kept
    qtbot.waitUntil(lambda: _rows(window) and _rows(window)[0].state == "cancelled", timeout=5000)
    assert _rows(window)[0].verdict_text == "fracture suspected (0.92)"
    window.viewer_model.set_volume(None)
    window.results.show_result(None)
    with qtbot.waitSignal(c.analysis_finished, timeout=20000):
        _click_row(qtbot, window.worklist.table, 0, double=True)
    assert window.results.result == first.result
    assert window.results.patient_label.text() != "No analysis yet."


def test_4_same_series_reuses_its_study_and_exports_never_overwrite(
    qtbot, make_workstation, study_dir, tmp_path, monkeypatch
):
    handler = FakeHandler()
    window, services = make_workstation(handler)
    first = open_and_analyse(qtbot, window, study_dir)
    finished = []
    window.controller.analysis_finished.connect(finished.append)
    window.open_path(study_dir)  # the earlier result shows at once, then the new one
    qtbot.waitUntil(lambda: len(finished) == 2 and not window.controller.busy, timeout=20000)
    second = window.controller.current
    assert second.study_id == first.study_id and handler.calls == 2
    assert len(services.studies.find()) == 1
    states = [j.state for j in services.jobs.list(study_id=first.study_id)]
    assert states == ["succeeded", "succeeded"]
    qtbot.waitUntil(lambda: len(_rows(window)) == 1, timeout=5000)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    for _ in range(2):
        with qtbot.waitSignal(window.exports.exported, timeout=20000):
            window.exports.actions["PDF report"].trigger()
    pdfs = sorted(p.name for p in out.glob("*.pdf"))
    assert pdfs == ["PHANTOM-001-2_report.pdf", "PHANTOM-001_report.pdf"]
