"""Workers: signals in order, errors handed over, cooperative abort; progress wording."""

from __future__ import annotations

import threading

import pytest

from cspine_desktop.errors import Cancelled, CorruptFileError
from cspine_desktop.gui.status_bar import WorkstationStatusBar
from cspine_desktop.gui.workers import Worker
from cspine_desktop.progress import Progress


def test_signals_arrive_in_order_in_the_gui_thread(qtbot):
    seen_threads = []

    def task(progress, cancel):
        progress(Progress.counted(1, 3, "decoding"))
        progress(Progress.counted(3, 3, "decoding"))
        return "volume"

    worker = Worker(task, "loading")
    s = worker.signals
    log = []
    for name in ("started", "progress", "result", "error", "finished"):
        getattr(s, name).connect(
            lambda *a, n=name: (log.append((n, a)), seen_threads.append(threading.current_thread()))
        )
    with qtbot.waitSignals(
        [s.started, s.progress, s.progress, s.result, s.finished], order="strict", timeout=5000
    ):
        worker.start()
    assert log == [
        ("started", ()),
        ("progress", (Progress.counted(1, 3, "decoding"),)),
        ("progress", (Progress.counted(3, 3, "decoding"),)),
        ("result", ("volume",)),
        ("finished", ()),
    ]
    assert seen_threads == [threading.main_thread()] * 5


def test_input_error_is_handed_to_the_gui_unchanged(qtbot):
    def task(progress, cancel):
        raise CorruptFileError("file 7.dcm is truncated")

    worker = Worker(task)
    with qtbot.waitSignal(worker.signals.error, timeout=5000) as sig:
        worker.start()
    assert isinstance(sig.args[0], CorruptFileError) and str(sig.args[0]) == (
        "file 7.dcm is truncated"
    )


def test_abort_is_cooperative_and_reported_as_cancelled(qtbot):
    started = threading.Event()

    def task(progress, cancel):
        started.set()
        while not cancel.wait(0.01):
            pass
        return "partial"  # returning after an abort still counts as cancelled

    worker = Worker(task, "loading")
    results = []
    worker.signals.result.connect(results.append)
    with qtbot.waitSignal(worker.signals.error, timeout=5000) as sig:
        worker.start()
        assert started.wait(5)
        worker.abort()
    assert isinstance(sig.args[0], Cancelled) and results == []
    qtbot.waitUntil(lambda: not worker.is_running, timeout=5000)


@pytest.mark.parametrize(
    ("progress", "text", "maximum", "value"),
    [
        (Progress.counted(212, 300, "decoding"), "decoding 212/300", 300, 212),
        (Progress.counted(0, 0, "scanning"), "scanning", 0, None),  # 0: busy indicator
        (Progress(None, "storing the study"), "storing the study", 0, None),
        (Progress(0.47, "analysing slice 140 of 300"), "analysing slice 140 of 300", 100, 47),
    ],
)
def test_progress_wording_and_bar(qtbot, progress, text, maximum, value):
    bar = WorkstationStatusBar()
    qtbot.addWidget(bar)
    bar.set_busy(True)
    bar.show_progress(progress)
    assert bar.stage_label.text() == text
    assert bar.progress_bar.maximum() == maximum
    if value is not None:
        assert bar.progress_bar.value() == value
