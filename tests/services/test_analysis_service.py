"""AnalysisService: load once, analyse paths (also off-thread), run as the job queue's handler."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop.analysis.result import AnalysisResult
from cspine_desktop.errors import Cancelled, ModelBundleError
from cspine_desktop.services.analysis import AnalysisService, load_overlays

CLS = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return write_bundle(
        tmp_path_factory.mktemp("m") / "b", {"model.onnx": threshold_onnx(cls_prob=CLS)}
    )


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct") / "study"
    write_ct_series(folder, n_slices=20, rows=32, cols=32)
    return folder


@pytest.fixture
def svc_settings(settings, bundle_dir):
    return settings.replace(model_dir=bundle_dir, backend="onnx")


def test_the_engine_is_opened_lazily_and_once(svc_settings, series):
    service = AnalysisService(svc_settings)
    assert service._engine is None  # nothing loaded at construction
    first = service.analyze_path(series)
    engine = service._engine
    second = service.analyze_path(series)
    assert service._engine is engine
    assert first.result.vertebrae == second.result.vertebrae
    assert first.result.timings_s["load"] > 0
    assert first.result.timings_s["total"] >= first.result.timings_s["load"]


def test_start_runs_off_the_calling_thread_and_can_be_cancelled(svc_settings, series):
    service = AnalysisService(svc_settings)
    threads = []
    future, _ = service.start(series, progress=lambda p: threads.append(threading.get_ident()))
    outcome = future.result(timeout=60)
    assert outcome.result.vertebra("C3").probability == pytest.approx(0.9, abs=1e-3)
    assert threads and threading.get_ident() not in set(threads)

    gate = threading.Event()
    future, cancel = service.start(series, progress=lambda p: gate.wait(5))
    cancel.set()
    gate.set()
    with pytest.raises(Cancelled):
        future.result(timeout=60)


def test_a_missing_model_is_a_plain_error_at_first_use(settings, tmp_path, series):
    service = AnalysisService(settings.replace(model_dir=tmp_path / "nope"))
    with pytest.raises(ModelBundleError):
        service.analyze_path(series)


def test_the_engine_opens_while_the_study_is_read(svc_settings, series, monkeypatch):
    """analyze_path starts opening the model on its own thread before reading the study, and
    the analysis then uses that engine."""
    import cspine_desktop.services.analysis as mod

    opened_on: list[str] = []
    real_open = mod.open_engine

    def spy(*args, **kwargs):
        opened_on.append(threading.current_thread().name)
        return real_open(*args, **kwargs)

    read_on: list[str] = []
    real_load = mod.load_study

    def load(*args, **kwargs):
        read_on.append(threading.current_thread().name)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(mod, "open_engine", spy)
    monkeypatch.setattr(mod, "load_study", load)
    service = AnalysisService(svc_settings)
    outcome = service.analyze_path(series)
    assert opened_on == ["cspine-open-model"]  # once, and not on the caller's thread
    assert read_on == [threading.current_thread().name]
    assert outcome.result.vertebra("C3").probability == pytest.approx(0.9, abs=1e-3)


def test_a_model_that_fails_to_open_in_the_background_fails_the_caller(settings, tmp_path, series):
    service = AnalysisService(settings.replace(model_dir=tmp_path / "nope"))
    service.open_in_background()
    with pytest.raises(ModelBundleError):
        service.analyze_path(series)
    assert service._engine is None


def test_run_job_stores_artifacts_and_returns_the_result(make_services, svc_settings, series):
    service = AnalysisService(svc_settings)
    services = make_services(handler=service.run_job)
    study = services.studies.import_paths(series)
    job_id = services.jobs.enqueue(study.id)
    record = services.jobs.wait(job_id, timeout=120)
    assert record.state == "succeeded", record.error
    result = AnalysisResult.from_dict(record.result)
    c3 = result.vertebra("C3")  # the test model's "C3" is a ring, not a vertebra: no verdict
    assert c3.probability == pytest.approx(0.9, abs=1e-3) and c3.status == "indeterminate"
    assert result.backend == "onnx-cpu-fp32"
    assert record.timings and record.timings["total"] > 0
    kinds = {a.kind for a in services.studies.artifacts(study.id, job_id)}
    assert {"json", "csv", "nifti", "pdf", "png", "seg", "sr", "overlay"} <= kinds
    overlay = next(a for a in services.studies.artifacts(study.id, job_id) if a.kind == "overlay")
    labels, heat = load_overlays(overlay.path)
    assert labels.shape == (20, 32, 32) and set(np.unique(labels)) <= {0, 3, 4}
    assert heat.dtype == np.float32 and heat.min() >= 0 and heat.max() <= 1


def test_run_job_honours_cancellation(make_services, svc_settings, series):
    service = AnalysisService(svc_settings)
    cancelled = []

    def handler(ctx):
        ctx.cancel_event.set()  # the user pressed cancel as the job started
        try:
            return service.run_job(ctx)
        except Cancelled:
            cancelled.append(True)
            raise

    services = make_services(handler=handler)
    study = services.studies.import_paths(series)
    record = services.jobs.wait(services.jobs.enqueue(study.id), timeout=60)
    assert record.state == "cancelled" and cancelled
    assert services.studies.artifacts(study.id, record.id) == []


def test_a_study_that_fails_to_read_leaves_no_model_opening_behind(
    svc_settings, tmp_path, monkeypatch
):
    """An unreadable study fails only after the background open has ended: a thread left inside
    the inference runtime's native code while the caller goes on (or the process exits) once
    crashed the suite. A missing path fails at once, without opening the model at all."""
    import time

    import cspine_desktop.services.analysis as mod
    from cspine_desktop.errors import CspineInputError

    real_open = mod.open_engine
    opened: list[str] = []

    def slow_open(*args, **kwargs):
        time.sleep(0.5)
        opened.append(threading.current_thread().name)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(mod, "open_engine", slow_open)
    not_a_study = tmp_path / "notes.txt"
    not_a_study.write_text("hello")
    service = AnalysisService(svc_settings)
    with pytest.raises(CspineInputError):
        service.analyze_path(not_a_study)
    assert opened == ["cspine-open-model"]
    assert not any(t.name == "cspine-open-model" for t in threading.enumerate())

    fresh = AnalysisService(svc_settings)
    with pytest.raises(CspineInputError, match="does not exist"):
        fresh.analyze_path(tmp_path / "missing")
    assert opened == ["cspine-open-model"] and fresh._opening is None
