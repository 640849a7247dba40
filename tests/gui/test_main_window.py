"""Main-window features around the viewer: settings (admin), lock, about, export with audit,
drag-and-drop, series chooser, worklist search/delete, sign-out."""

from __future__ import annotations

import json

import pytest
from dialog_bot import answering
from factories.dicom_series import write_ct_series
from fake_analysis import FakeHandler
from gui_support import ADMIN_PASSWORD, open_and_analyse
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from cspine_desktop import DISCLAIMER, __version__
from cspine_desktop.gui.dialogs.about import AboutDialog
from cspine_desktop.gui.dialogs.series_chooser import SeriesChooser
from cspine_desktop.gui.dialogs.settings_dialog import SettingsDialog
from cspine_desktop.imaging import list_series
from cspine_desktop.services.autolock import AutoLock
from cspine_desktop.settings import SETTINGS_FILE


class FakeServer:
    """A ServerControl that records what it was asked to do."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.running = False
        self.started_with = []

    def start(self, settings):
        if self.fail is not None:
            raise self.fail
        self.started_with.append(settings)
        self.running = True
        return f"http://{settings.server_host}:{settings.server_port}"

    def stop(self):
        self.running = False

    def is_running(self):
        return self.running


def test_settings_are_saved_audited_and_start_the_server(qtbot, make_workstation, settings):
    server = FakeServer()
    window, services = make_workstation(FakeHandler(), server=server)
    assert window.settings_action.isEnabled()  # the first account is an admin
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.autolock.setValue(5.0)
    dialog.server_enabled.setChecked(True)
    dialog.port.setValue(18765)
    dialog.submit()
    assert dialog.result_settings is not None
    with qtbot.waitSignal(window.server.changed, timeout=5000) as sig:
        window.apply_settings(dialog.result_settings)
    qtbot.waitUntil(lambda: "on at" in window.status.server_label.text(), timeout=5000)
    assert window.status.server_label.text() == "Server: on at http://127.0.0.1:18765"
    assert sig.args  # state text announced
    assert server.started_with[-1].server_port == 18765
    saved = json.loads((settings.data_dir / SETTINGS_FILE).read_text())
    assert saved["autolock_minutes"] == 5.0 and saved["server_enabled"] is True
    assert window.guard.autolock.timeout_s == 300.0
    events = services.audit.query(action="settings_changed")
    assert events and "server_port" in events[-1].detail["changed"]


def test_settings_refuse_a_missing_tls_file_in_plain_words(qtbot, make_workstation, tmp_path):
    window, _ = make_workstation(FakeHandler())
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.tls_cert.edit.setText(str(tmp_path / "nope.pem"))
    dialog.tls_key.edit.setText(str(tmp_path / "nope.key"))
    dialog.submit()
    assert dialog.result_settings is None
    assert "does not exist" in dialog.message.text()
    dialog.tls_key.edit.setText("")
    dialog.submit()
    assert "both a certificate file and a key file" in dialog.message.text()


def test_server_failure_is_shown_and_state_says_off(qtbot, make_workstation, monkeypatch):
    from cspine_desktop.errors import SettingsError

    shown = []
    monkeypatch.setattr(
        "cspine_desktop.gui.errors.QMessageBox.warning",
        lambda parent, title, text: shown.append(text),
    )
    server = FakeServer(fail=SettingsError("Port 8765 on 127.0.0.1 is already in use."))
    window, _ = make_workstation(FakeHandler(), server=server)
    with qtbot.waitSignal(window.server.error, timeout=5000):
        window.server.apply(window.settings.replace(server_enabled=True))
    assert shown == ["Port 8765 on 127.0.0.1 is already in use."]
    assert window.status.server_label.text() == "Server: off (failed to start)"


def test_non_admin_cannot_open_settings_or_delete(qtbot, settings):
    from cspine_desktop.gui.main_window import MainWindow
    from cspine_desktop.services import Services

    services = Services.open(settings, handler=FakeHandler(), bcrypt_rounds=4)
    try:
        services.users.create_first_admin("admin", ADMIN_PASSWORD)
        bob = services.users.add_user("bob", "Reader-pass-42x")
        window = MainWindow(services, bob, settings, autolock=AutoLock(0))
        qtbot.addWidget(window)
        assert not window.settings_action.isEnabled()
        assert window.worklist.delete_button.isHidden()
        assert not window.users_action.isEnabled()  # Tools ▸ Users is for administrators
        window.close()
    finally:
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(5000)
        services.close()


def test_lock_hides_the_workspace_but_keeps_the_study(qtbot, make_workstation, study_dir):
    window, _services = make_workstation(FakeHandler())
    opened = open_and_analyse(qtbot, window, study_dir)
    window.guard.lock_now()
    assert window.stack.currentWidget() is window.lock_screen
    assert not window.menuBar().isEnabled()
    assert "locked" in window.windowTitle() and "PHANTOM" not in window.windowTitle()
    window.lock_screen.password_edit.setText(ADMIN_PASSWORD)
    with qtbot.waitSignal(window.guard.unlocked, timeout=5000):
        window.lock_screen.submit()
    assert window.stack.currentWidget() is window.workspace
    assert window.controller.current is opened and window.viewer_model.volume is opened.volume
    assert window.viewer_model.overlays.has_labels


def test_about_shows_version_disclaimer_model_and_licences(qtbot, settings, tmp_path):
    dialog = AboutDialog(settings.replace(model_dir=tmp_path))
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert f"cspine {__version__}" in text
    assert DISCLAIMER in text
    assert "model_card.json" in text  # the folder holds no card: said plainly
    assert "PySide6-Essentials" in text and "LGPL" in text


def test_about_summarises_a_model_card(qtbot, settings, tmp_path):
    card = {
        "name": "cspine-test",
        "version": "9.9",
        "architecture": "U-Net/DenseNet121",
        "preprocessing": {"input_size": 256, "channels": [["bone", 0.0]]},
        "thresholds": {
            k: 0.5 for k in (["C1", "C2", "C3", "C4", "C5", "C6", "C7", "patient_overall"])
        },
        "files": {"model.onnx": {"format": "onnx", "precision": "fp32", "sha256": "0" * 64}},
        "training_data": "synthetic phantom",
        "metrics": {"patient_auc": 0.91},
    }
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    dialog = AboutDialog(settings.replace(model_dir=tmp_path))
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "cspine-test 9.9" in text and "patient_auc" in text and "0.91" in text


@pytest.mark.parametrize(
    ("formats", "kind", "suffix"),
    [
        (("csv",), "export", "_rsna.csv"),
        (("pdf",), "report", "_report.pdf"),
        (("seg", "fracture_seg"), "export", "_seg.dcm"),
    ],
)
def test_export_writes_files_and_audits(
    qtbot, make_workstation, study_dir, tmp_path, formats, kind, suffix
):
    window, services = make_workstation(FakeHandler())
    opened = open_and_analyse(qtbot, window, study_dir)
    assert window.exports.menu.isEnabled()
    out = tmp_path / "out"
    with qtbot.waitSignal(window.exports.exported, timeout=20000) as sig:
        window.exports.ask_and_export(formats, folder=out)
    files = sig.args[0]
    assert any(p.name.endswith(suffix) for p in files.values())
    assert all(p.exists() for p in files.values())
    events = services.audit.query(action=kind)
    assert events[-1].study_uid == opened.study.study_uid
    assert events[-1].detail["formats"] == list(formats)


def test_drop_a_folder_opens_it(qtbot, make_workstation, study_dir):
    window, _ = make_workstation(FakeHandler())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(study_dir))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.controller.volume_loaded, timeout=10000):
        window.dropEvent(event)
    assert window.viewer_model.volume.meta["PatientID"] == "PHANTOM-001"


def test_series_chooser_picks_among_several_ct_series(qtbot, make_workstation, tmp_path):
    folder = tmp_path / "two"
    a = write_ct_series(folder / "a", n_slices=6, rows=32, cols=32, description="Thick 5 mm")
    b = write_ct_series(
        folder / "b", n_slices=10, rows=32, cols=32, description="Thin 1 mm", study_uid=a.study_uid
    )
    asked = []

    def choose(series):
        asked.append(sorted(s.series_uid for s in series))
        return a.series_uid  # the reader wants the smaller one

    handler = FakeHandler()
    window, _services = make_workstation(handler, choose_series=choose)
    opened = open_and_analyse(qtbot, window, folder)
    assert asked == [sorted([a.series_uid, b.series_uid])]
    assert opened.volume.meta["SeriesInstanceUID"] == a.series_uid
    assert opened.volume.hu.shape[0] == 6
    assert opened.study.series_uid == a.series_uid  # the queue analysed the chosen series
    assert opened.labels.shape == opened.volume.hu.shape


def test_series_chooser_dialog_preselects_the_largest(qtbot, tmp_path):
    write_ct_series(tmp_path / "s" / "a", n_slices=4, rows=16, cols=16, description="A")
    write_ct_series(tmp_path / "s" / "b", n_slices=7, rows=16, cols=16, description="B")
    series = [s for s in list_series(tmp_path / "s") if s.usable]
    dialog = SeriesChooser(series)
    qtbot.addWidget(dialog)
    chosen = dialog.chosen_uid()
    assert next(s for s in series if s.series_uid == chosen).n_slices == 7


def test_worklist_search_reanalyse_and_admin_delete(qtbot, make_workstation, study_dir, tmp_path):
    handler = FakeHandler()
    window, services = make_workstation(handler)
    opened = open_and_analyse(qtbot, window, study_dir)
    other = write_ct_series(tmp_path / "other", n_slices=6, rows=16, cols=16, patient_id="ZED-9")
    services.studies.import_paths(other.folder)  # no job, so no event: the poll finds it
    wl = window.worklist
    wl._poll.setInterval(100)
    qtbot.waitUntil(lambda: len(wl.model.rows) == 2, timeout=5000)
    # the 100 ms poll may finish a reload of the old text first: wait for the filtered rows
    wl.search.setText("ZED")
    qtbot.waitUntil(lambda: [r.patient_id for r in wl.model.rows] == ["ZED-9"], timeout=5000)
    wl.search.setText("")
    qtbot.waitUntil(lambda: len(wl.model.rows) == 2, timeout=5000)
    wl.select_study(opened.study_id)
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        wl.reanalyse_button.click()
    assert handler.calls == 2
    wl.select_study(opened.study_id)
    with qtbot.waitSignal(wl.deleted, timeout=10000), answering(qtbot, "Delete study"):
        qtbot.mouseClick(wl.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: [r.patient_id for r in wl.model.rows] == ["ZED-9"], timeout=5000)
    assert not window.viewer_model.has_volume  # the open study was the deleted one
    assert services.audit.query(action="study_deleted")


def test_open_from_worklist_shows_stored_verdicts(qtbot, make_workstation, study_dir):
    handler = FakeHandler()
    window, services = make_workstation(handler)
    first = open_and_analyse(qtbot, window, study_dir)
    window.viewer_model.set_volume(None)
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        window.worklist.open_requested.emit(first.study_id)
    again = window.controller.current
    assert again.result == first.result and handler.calls == 1  # not analysed twice
    assert (again.labels == first.labels).all()
    assert services.audit.query(action="study_viewed")


def test_sign_out_is_audited_and_closes_the_window(qtbot, make_workstation):
    window, services = make_workstation(FakeHandler())
    window.sign_out()
    assert window.user_signed_out and not window.isVisible()
    assert services.audit.query(action="logout")


def test_idle_autolock_in_the_window_then_unlock(qtbot, make_workstation, study_dir, clock):
    autolock = AutoLock(120.0, clock=clock)
    window, _ = make_workstation(FakeHandler(), autolock=autolock, lock_poll_ms=10)
    opened = open_and_analyse(qtbot, window, study_dir)
    with qtbot.waitSignal(window.guard.locked, timeout=5000):
        clock.advance(121)
    assert window.stack.currentWidget() is window.lock_screen
    window.lock_screen.password_edit.setText(ADMIN_PASSWORD)
    with qtbot.waitSignal(window.guard.unlocked, timeout=5000):
        window.lock_screen.submit()
    assert window.stack.currentWidget() is window.workspace
    assert window.controller.current is opened


def test_the_heat_map_is_drawn_against_the_vertebra_threshold(qtbot, make_workstation, study_dir):
    """A patient called through its vertebrae has a patient threshold of 1: drawn against it,
    no heat would ever show. The heat scale takes the vertebra threshold."""
    window, _ = make_workstation(FakeHandler(patient_threshold=1.0))
    open_and_analyse(qtbot, window, study_dir)
    assert window.overlay_panel.heat_scale.threshold_text() == "threshold 0.50"
