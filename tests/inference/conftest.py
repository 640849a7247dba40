"""Inference test fixtures: tiny bundles built on the fly, an isolated cache dir."""

from __future__ import annotations

import pytest
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop.inference import engine as engine_mod
from cspine_desktop.inference import load_bundle


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    """Each test sees the "warn once" memory empty."""
    monkeypatch.setattr(engine_mod, "_warned", set())


@pytest.fixture
def onnx_bytes():
    return threshold_onnx()


@pytest.fixture
def bundle_dir(tmp_path, onnx_bytes):
    return write_bundle(tmp_path / "bundle", {"model.onnx": onnx_bytes})


@pytest.fixture
def bundle(bundle_dir):
    return load_bundle(bundle_dir)


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"
