"""The workstation with the real analysis service (preprocess → ONNX Runtime → post-process →
exports → overlays) on a tiny threshold ONNX model: verdicts and overlays arrive. The heartbeat
of the GUI thread is measured and reported here too (the bound itself is asserted in
test_responsiveness.py, whose analysis load is controlled)."""

from __future__ import annotations

import time

import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle
from test_responsiveness import MAX_LATE_MS, heartbeat_gaps

from cspine_desktop.gui.warmup import warm_up
from cspine_desktop.services.analysis import AnalysisService

CLS = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)  # C3 judged fractured


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return write_bundle(
        tmp_path_factory.mktemp("m") / "b", {"model.onnx": threshold_onnx(cls_prob=CLS)}
    )


def test_real_analysis_fills_results_and_overlays(
    qtbot, make_workstation, settings, bundle_dir, tmp_path, record_property
):
    write_ct_series(tmp_path / "study", n_slices=60, rows=64, cols=64, spacing=(1.0, 1.25, 1.25))
    svc_settings = settings.replace(model_dir=bundle_dir, backend="onnx")
    warm_up()
    window, _services = make_workstation(AnalysisService(svc_settings).run_job)
    c = window.controller
    qtbot.wait(500)

    def run():
        with qtbot.waitSignal(c.analysis_finished, timeout=120000):
            window.open_path(tmp_path / "study")

    started = time.perf_counter()
    gaps = heartbeat_gaps(qtbot, run)
    elapsed = time.perf_counter() - started
    worst = max(wall for wall, _ in gaps)
    busy = max(cpu for _, cpu in gaps)
    record_property("heartbeat_max_gap_ms_real_pipeline", round(worst, 1))
    print(
        f"\nreal pipeline heartbeat: {len(gaps)} gaps over {elapsed:.1f} s, max {worst:.1f} ms "
        f"wall, GUI thread busy at most {busy:.1f} ms"
    )

    opened = c.current
    assert opened.result.model.name == "cspine-test" and opened.result.backend.startswith("onnx")
    # the threshold model's bone ring is no spine: its 0.9 is shown, but no verdict is given
    assert opened.result.vertebra("C3").probability == pytest.approx(0.9, abs=1e-3)
    assert opened.result.vertebra("C3").fractured is None
    assert window.results.verdict_text(2) == "? indeterminate"
    assert window.results.patient_label.text() == "Indeterminate — read the images"
    assert opened.labels is not None and opened.labels.shape == opened.volume.hu.shape
    assert (opened.labels == 3).any()  # the threshold model labels bone as C3
    assert window.viewer_model.overlays.has_heatmap
    assert opened.export_formats.get("pdf") is None  # exports available, computed off-thread
    assert len(gaps) > 10  # the GUI thread kept running its timer during the analysis
    assert busy < MAX_LATE_MS  # and never worked long enough at once to freeze the window
