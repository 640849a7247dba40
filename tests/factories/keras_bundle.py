"""A tiny untrained cspine Keras model in a bundle folder (for export and Keras-backend tests).

Built by the real builder (``model_training.model.build_model``) at 64×64 px with a 2.5 mm
grid (a 160 mm field of view, like the shipped model's), so every export path runs on the
actual architecture. Needs TensorFlow; takes a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

SIZE = 64


def write_keras_bundle(folder: Path, size: int = SIZE, seed: int = 0) -> Path:
    import keras

    from cspine_desktop.imaging.preprocess import PreprocessConfig
    from model_training.model import ModelConfig, build_model

    keras.utils.set_random_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(ModelConfig(input_size=size))
    model.save(folder / "model.keras")
    pre = PreprocessConfig(input_size=size, pixel_spacing_mm=160.0 / size, slice_step_mm=4.0)
    card = {
        "name": "cspine-tiny",
        "version": "0.0.0-untrained",
        "architecture": "DenseNet121 U-Net (untrained, test size)",
        "created": "2024-01-01T00:00:00Z",
        "preprocessing": pre.to_dict(),
        "inputs": {"image": [None, size, size, pre.n_channels]},
        "outputs": {"vertebrae": [None, size, size, 8]},
        "labels": {str(i): f"C{i}" for i in range(1, 8)},
        "thresholds": {**{f"C{i}": 0.5 for i in range(1, 8)}, "patient_overall": 0.5},
        "aggregation": {"top_k": 3, "assign_levels": False},  # toy labels, not anatomy
        "files": {},
        "training_data": "none (untrained)",
        "metrics": {},
        "disclaimer": "Not for diagnostic use.",
    }
    (folder / "model_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return folder
