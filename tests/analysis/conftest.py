"""Fixtures shared by the analysis tests."""

from __future__ import annotations

import pytest

from cspine_desktop.inference import demo_model_dir, load_bundle, open_engine


@pytest.fixture(scope="module")
def demo():
    """The bundled demo model's engine (ONNX Runtime, CPU) and its model card."""
    bundle = load_bundle(demo_model_dir())
    engine = open_engine(bundle, "onnx", None, measure=False)
    yield engine, bundle.card
    engine.close()
