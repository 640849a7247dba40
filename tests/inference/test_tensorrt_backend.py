"""Native TensorRT backend: what can be checked without a GPU."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from cspine_desktop.inference.backends import trt


def test_availability_names_the_missing_piece(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without TensorRT
    ok, reason = trt.availability()
    assert not ok and "TensorRT is not installed" in reason


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT installed")
def test_this_machine_reports_tensorrt_unavailable():
    ok, reason = trt.availability()
    assert not ok and reason


def test_engines_are_cached_per_gpu_tensorrt_version_and_precision(tmp_path, bundle):
    gpu = trt.GpuIdentity("NVIDIA RTX A2000 12GB", "86", "10.3.0")
    onnx_file = bundle.find("onnx")
    path = trt.cached_engine_path(tmp_path, onnx_file, gpu, "fp16")
    assert path.parent == tmp_path / "tensorrt"
    assert gpu.slug == "nvidia-rtx-a2000-12gb-sm86-trt10.3.0"
    assert path.name == f"{onnx_file.sha256[:16]}-{gpu.slug}-fp16.plan"
    other = trt.GpuIdentity("NVIDIA L4", "89", "10.3.0")
    assert trt.cached_engine_path(tmp_path, onnx_file, other, "fp16") != path
    assert trt.cached_engine_path(tmp_path, onnx_file, gpu, "int8") != path


def test_opening_without_tensorrt_raises_the_reason(monkeypatch, bundle, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(trt.TensorRTUnavailable, match="not installed"):
        trt.open_engine(bundle, cache_dir=tmp_path)
