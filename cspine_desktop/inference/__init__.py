"""Running the model: bundle loading and checking, the Engine protocol, backend selection.

Importing this package imports no framework; ONNX Runtime, OpenVINO, TensorFlow and TensorRT are
imported inside their backend only when that backend is opened.
"""

from .bundle import CARD_NAME, ModelBundle, ModelFile, load_bundle, sha256_of
from .engine import BACKENDS, OUTPUTS, BaseEngine, Engine
from .resources import assets_dir, demo_model_dir, demo_study_path, demo_truth_path
from .select import candidates, measure_ms_per_slice, open_engine

__all__ = [
    "BACKENDS",
    "CARD_NAME",
    "OUTPUTS",
    "BaseEngine",
    "Engine",
    "ModelBundle",
    "ModelFile",
    "assets_dir",
    "candidates",
    "demo_model_dir",
    "demo_study_path",
    "demo_truth_path",
    "load_bundle",
    "measure_ms_per_slice",
    "open_engine",
    "sha256_of",
]
