"""The GUI thread is never blocked: a QTimer heartbeat keeps ticking through load + analysis.

The analysis here is the fake handler doing real CPU work in numpy on the job-queue thread (as an
inference engine does); the load is the real loader in a worker. Two measurements per gap
between heartbeats: wall-clock time, and the CPU time the GUI thread itself spent in it.

- The GUI thread's own work between two heartbeats stays under 100 ms: nothing we run on it
  (slots, rendering, model updates) blocks the event loop. This holds on any machine.
- The wall-clock lateness stays under 100 ms. That also depends on the OS giving the process a
  core: it is asserted when the machine is not oversubscribed by other processes (1-minute
  load average ≤ 2 × cores, which our own loader + analysis threads stay within); under heavier
  outside load the figure is reported (``-s``, and as a junit property) instead.
"""

from __future__ import annotations

import itertools
import os
import time

from factories.dicom_series import write_ct_series
from fake_analysis import FakeHandler
from PySide6.QtCore import QTimer

from cspine_desktop.gui.warmup import warm_up

INTERVAL_MS = 10
MAX_LATE_MS = 100


def heartbeat_gaps(qtbot, run_and_wait) -> list[tuple[float, float]]:
    """Run ``run_and_wait()`` (which must process events while it waits) with a heartbeat;
    returns (wall ms, GUI-thread CPU ms) for each gap between two ticks."""
    ticks: list[tuple[float, float]] = []
    timer = QTimer()
    timer.setInterval(INTERVAL_MS)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    timer.start()
    try:
        run_and_wait()
    finally:
        timer.stop()
    return [(1000.0 * (b[0] - a[0]), 1000.0 * (b[1] - a[1])) for a, b in itertools.pairwise(ticks)]


def machine_oversubscribed() -> bool:
    return os.getloadavg()[0] > 2 * (os.cpu_count() or 1)


def test_heartbeat_never_late_by_100ms_during_a_full_analysis(
    qtbot, make_workstation, tmp_path, record_property
):
    write_ct_series(tmp_path / "study", n_slices=48, rows=64, cols=64, spacing=(2.0, 2.0, 2.0))
    warm_up()  # what the app does while the sign-in dialog is shown
    window, _services = make_workstation(FakeHandler(work_s=0.04))
    c = window.controller
    qtbot.wait(500)  # the window settles (a reader takes longer than this to pick a study)

    def run():
        with qtbot.waitSignal(c.analysis_finished, timeout=60000):
            window.open_path(tmp_path / "study")

    started = time.perf_counter()
    gaps = heartbeat_gaps(qtbot, run)
    elapsed = time.perf_counter() - started
    worst_wall = max(wall for wall, _ in gaps)
    worst_busy = max(cpu for _, cpu in gaps)
    load = os.getloadavg()[0]
    record_property("heartbeat_max_gap_ms", round(worst_wall, 1))
    record_property("gui_thread_max_busy_ms", round(worst_busy, 1))
    print(
        f"\nheartbeat: {len(gaps)} gaps over {elapsed:.1f} s, max {worst_wall:.1f} ms wall; "
        f"GUI thread busy at most {worst_busy:.1f} ms between ticks; load average {load:.1f}"
    )
    assert elapsed > 1.5  # the analysis really took a while
    assert worst_busy < MAX_LATE_MS, f"the GUI thread itself worked {worst_busy:.0f} ms at once"
    if not machine_oversubscribed():
        assert worst_wall - INTERVAL_MS < MAX_LATE_MS, f"GUI late by {worst_wall:.0f} ms"
