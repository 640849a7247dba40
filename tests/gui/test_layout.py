"""Issue item 12: at 1280×800 (and 1920×1080) the verdict table shows C1–C7 and every header
in full, the worklist shows Verdict and State, captions stay off the image, and the sign-in
dialog shows its whole lock message and notice."""

from __future__ import annotations

import pytest
from factories.dicom_series import write_ct_series
from fake_analysis import FakeHandler
from PySide6.QtCore import Qt

from cspine_desktop.gui.auth import LoginDialog
from cspine_desktop.gui.models import Orientation
from cspine_desktop.gui.panels.results_panel import COLUMNS, VERDICT_COL
from cspine_desktop.gui.viewer.captions import caption_margin
from cspine_desktop.gui.worklist.model import STATE_COL
from cspine_desktop.gui.worklist.model import VERDICT_COL as WL_VERDICT_COL

LEFT = Qt.MouseButton.LeftButton


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_12_the_workstation_fits_the_screen(qtbot, make_workstation, tmp_path, size):
    write_ct_series(tmp_path / "study", n_slices=14, rows=32, cols=32, spacing=(2.0, 2.5, 2.5))
    window, _services = make_workstation(FakeHandler())
    window.resize(*size)
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        window.open_path(tmp_path / "study")
    qtbot.waitUntil(lambda: len(window.worklist.model.rows) == 1, timeout=5000)
    qtbot.waitUntil(lambda: window.worklist.model.rows[0].verdict_text != "", timeout=5000)
    qtbot.wait(100)
    assert (window.width(), window.height()) == size

    table = window.results.table
    assert table.verticalScrollBar().maximum() == 0 and table.horizontalScrollBar().maximum() == 0
    c7 = table.visualRect(table.model().index(6, 0))
    assert c7.isValid() and c7.bottom() <= table.viewport().height()
    bottom = table.viewport().mapTo(window, c7.bottomLeft()).y()
    assert bottom <= window.statusBar().mapTo(window, window.statusBar().rect().topLeft()).y()
    res = window.results  # nothing drawn over the table; the notice whole and on screen
    assert res.more.geometry().top() >= res.table.geometry().bottom()
    assert res.notice.geometry().top() >= res.more.geometry().bottom()
    assert res.notice.height() >= res.notice.heightForWidth(res.notice.width())
    notice_bottom = res.notice.mapTo(window, res.notice.rect().bottomLeft()).y()
    assert (
        notice_bottom <= window.statusBar().mapTo(window, window.statusBar().rect().topLeft()).y()
    )
    header = table.horizontalHeader()
    fm = header.fontMetrics()
    for col, name in enumerate(COLUMNS):
        assert header.sectionSize(col) >= fm.horizontalAdvance(name) + 8, name
    verdict = window.results.verdict_text(4)
    assert header.sectionSize(VERDICT_COL) >= table.fontMetrics().horizontalAdvance(verdict)

    wl = window.worklist.table
    for col in (WL_VERDICT_COL, STATE_COL):
        right = wl.columnViewportPosition(col) + wl.columnWidth(col)
        assert right <= wl.viewport().width(), window.worklist.model.headerData(col, Qt.Horizontal)
    text = window.worklist.model.rows[0].verdict_text
    assert wl.columnWidth(WL_VERDICT_COL) >= wl.fontMetrics().horizontalAdvance(text)

    for o in Orientation:  # the image starts below the top caption line and ends above the last
        view = window.viewer.views[o]
        rows, cols = window.viewer_model.planes[o].image_shape
        top = view.pixel_to_widget(-0.5, -0.5).y()
        bottom = view.pixel_to_widget(rows - 0.5, cols - 0.5).y()
        margin = caption_margin(view)
        assert top >= margin - 1 and bottom <= view.height() - margin + 1, o


def test_12_sign_in_shows_the_whole_lock_message_and_notice(qtbot, users, alice, clock):
    dialog = LoginDialog(users, clock=clock)
    qtbot.addWidget(dialog)
    dialog.show()
    for _ in range(3):
        clock.advance(10)
        dialog.password_edit.clear()
        dialog.name_edit.setText("alice")
        qtbot.keyClicks(dialog.password_edit, "wrong-password-1")
        with qtbot.waitSignal(dialog.attempt_finished, timeout=5000):
            qtbot.mouseClick(dialog.sign_in_button, LEFT)
    qtbot.wait(50)
    assert "Time remaining" in dialog.message.text()
    from cspine_desktop.gui.panels.results_panel import DisclaimerLabel

    notice = dialog.findChild(DisclaimerLabel)
    for label in (dialog.message, notice):
        assert label.height() >= label.heightForWidth(label.width()), label.text()
