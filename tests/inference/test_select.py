"""Backend choice: auto takes the fastest verified candidate, caches timings, falls back once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
from factories.model_bundle import threshold_onnx, write_bundle
from gate_records import record_gate

from cspine_desktop.errors import ModelBundleError, SettingsError
from cspine_desktop.inference import load_bundle, open_engine, select
from cspine_desktop.inference.backends import keras_tf, ort, trt
from cspine_desktop.inference.timings import TIMINGS_FILE


@pytest.fixture
def two_file_bundle(tmp_path):
    """fp32 + "int8" ONNX files (both the threshold model, distinguishable by their digest);
    the int8 file passed its export gate, as every exported int8 file has."""
    folder = write_bundle(
        tmp_path / "b2",
        {"model.onnx": threshold_onnx(), "model.int8.onnx": threshold_onnx(bone_level=0.46)},
    )
    record_gate(folder, "model.int8.onnx", "onnx-int8", passed=True)
    return load_bundle(folder)


def _fake_timings(monkeypatch, ms: dict[str, float]):
    """measure_ms_per_slice returns the configured time of the engine's file."""
    calls = []

    def fake(engine, batch=2):
        calls.append(engine.model_file)
        return ms[engine.model_file]

    monkeypatch.setattr(select, "measure_ms_per_slice", fake)
    return calls


@pytest.mark.parametrize(
    ("fast", "slow"), [("model.int8.onnx", "model.onnx"), ("model.onnx", "model.int8.onnx")]
)
def test_auto_picks_the_fastest_and_caches_the_timings(
    monkeypatch, two_file_bundle, cache_dir, fast, slow
):
    calls = _fake_timings(monkeypatch, {fast: 10.0, slow: 50.0})
    engine = open_engine(two_file_bundle, "auto", cache_dir)
    assert engine.model_file == fast
    assert sorted(calls) == sorted([fast, slow])  # both measured the first time
    cached = json.loads((cache_dir / TIMINGS_FILE).read_text())
    assert len(cached) == 2 and all("ms_per_slice" in v for v in cached.values())

    opened = []
    real_open = ort.open_engine
    monkeypatch.setattr(
        ort, "open_engine", lambda b, f, **kw: opened.append(f.name) or real_open(b, f, **kw)
    )
    calls.clear()
    again = open_engine(two_file_bundle, "auto", cache_dir)
    assert again.model_file == fast
    assert calls == [] and opened == [fast]  # the cache decides; only the winner is opened


def test_auto_skips_a_file_that_does_not_verify(monkeypatch, two_file_bundle, cache_dir, caplog):
    _fake_timings(monkeypatch, {"model.int8.onnx": 1.0, "model.onnx": 50.0})
    (two_file_bundle.path / "model.int8.onnx").write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING):
        engine = open_engine(two_file_bundle, "auto", cache_dir)
    assert engine.model_file == "model.onnx"
    assert any("model.int8.onnx" in r.getMessage() for r in caplog.records)


def test_no_verified_file_is_a_model_bundle_error(bundle, cache_dir):
    (bundle.path / "model.onnx").write_bytes(b"damaged")
    with pytest.raises(ModelBundleError, match="does not match"):
        open_engine(bundle, "auto", cache_dir)


def test_keras_without_tensorflow_is_a_plain_settings_error(monkeypatch, bundle, cache_dir):
    monkeypatch.setattr(keras_tf, "is_available", lambda: False)
    with pytest.raises(SettingsError, match="needs TensorFlow"):
        open_engine(bundle, "keras", cache_dir)


def test_unknown_backend_is_refused(bundle):
    with pytest.raises(SettingsError, match="Unknown backend"):
        open_engine(bundle, "cuda-magic")


def test_tensorrt_without_a_gpu_falls_back_to_the_cpu_with_one_warning(
    monkeypatch, bundle, cache_dir, caplog
):
    monkeypatch.setattr(trt, "availability", lambda: (False, "no NVIDIA GPU was found"))
    with caplog.at_level(logging.WARNING):
        first = open_engine(bundle, "tensorrt", cache_dir)
        second = open_engine(bundle, "tensorrt", cache_dir)
    assert first.name == "onnx" and first.device == "cpu"
    assert len(first.warnings) == 1 and "no NVIDIA GPU was found" in first.warnings[0]
    assert second.warnings == first.warnings  # every result says it...
    logged = [r for r in caplog.records if "TensorRT cannot run here" in r.getMessage()]
    assert len(logged) == 1  # ...but the log says it once


class _FakeSession:
    """Stands in for onnxruntime.InferenceSession; can refuse GPU providers."""

    fail_on_gpu = True
    drop_gpu = False

    def __init__(self, path, sess_options=None, providers=None):
        names = [p if isinstance(p, str) else p[0] for p in providers]
        if self.fail_on_gpu and "CUDAExecutionProvider" in names:
            raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")
        self._real = _REAL_SESSION(
            path, sess_options=sess_options, providers=["CPUExecutionProvider"]
        )
        self._providers = (
            ["CPUExecutionProvider"] if self.drop_gpu or not self.fail_on_gpu else names
        )

    def get_providers(self):
        return self._providers

    def __getattr__(self, name):
        return getattr(self._real, name)


import onnxruntime as _ort  # noqa: E402 - needed for the fake's real session

_REAL_SESSION = _ort.InferenceSession


@pytest.mark.parametrize("mode", ["raises", "silently_drops"])
def test_a_failing_cuda_provider_falls_back_to_cpu_with_one_clear_warning(
    monkeypatch, bundle, caplog, mode
):
    monkeypatch.setattr(
        _ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    fake = type(
        "S",
        (_FakeSession,),
        {"fail_on_gpu": mode == "raises", "drop_gpu": mode == "silently_drops"},
    )
    monkeypatch.setattr(_ort, "InferenceSession", fake)
    with caplog.at_level(logging.WARNING):
        engine = ort.open_engine(bundle, bundle.find("onnx"), device="auto")
        ort.open_engine(bundle, bundle.find("onnx"), device="auto")
    assert engine.device == "cpu"
    assert len(engine.warnings) == 1 and engine.warnings[0].startswith("Running on the CPU")
    assert len([r for r in caplog.records if r.getMessage().startswith("Running on the CPU")]) == 1
    out = engine.predict(np.zeros((1, 64, 64, 4), np.float32))
    assert out["vertebrae"].shape == (1, 64, 64, 8)


def test_the_onnx_path_never_imports_tensorflow(bundle_dir):
    code = (
        "import sys\n"
        "from cspine_desktop.inference import load_bundle, open_engine\n"
        "import numpy as np\n"
        f"e = open_engine(load_bundle({str(bundle_dir)!r}), 'onnx', None)\n"
        "e.predict(np.zeros((1, 64, 64, 4), np.float32))\n"
        "bad = [m for m in ('tensorflow', 'keras', 'tensorrt') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_auto_leaves_keras_out_when_onnx_can_run(monkeypatch, tmp_path, cache_dir):
    folder = write_bundle(tmp_path / "kb", {"model.onnx": threshold_onnx(), "model.keras": b"k"})
    opened = []
    monkeypatch.setattr(keras_tf, "is_available", lambda: True)
    monkeypatch.setattr(keras_tf, "open_engine", lambda *a, **k: opened.append("keras"))
    engine = open_engine(load_bundle(folder), "auto", cache_dir)
    assert engine.name == "onnx" and opened == []
