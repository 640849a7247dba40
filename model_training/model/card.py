"""Model bundle writer: ``model.keras`` (float32) + ``model_card.json`` (see contracts).

The bundle's Keras file is rebuilt under the float32 policy with the trained weights, without
optimiser state, so any CPU can run or export it. Other files (``model.onnx`` …) are added by
``cspine-export``, which updates the card's ``files``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cspine_desktop import DISCLAIMER
from cspine_desktop.analysis.aggregate import AggregationConfig
from cspine_desktop.vertebrae import VERTEBRAE

from .config import TrainConfig

CARD = "model_card.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def float32_twin(model: Any, cfg: TrainConfig) -> Any:
    """The same network built under the float32 policy, carrying ``model``'s weights."""
    import keras

    from .unet import build_model

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")
    try:
        twin = build_model(
            cfg.model.__class__.from_dict({**cfg.model.to_dict(), "encoder_weights": None})
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


def io_spec(cfg: TrainConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    s, c = cfg.model.input_size, cfg.model.channels
    channels = [f"{name} window, z {off:+.1f} mm" for name, off in cfg.preprocessing["channels"]]
    inputs = [
        {
            "name": "image",
            "dtype": "float32",
            "shape": [None, s, s, c],
            "range": [0, 1],
            "channels": channels,
            "layout": "NHWC, one model-grid slice per item",
        }
    ]
    outputs = [
        {
            "name": "vertebrae",
            "dtype": "float32",
            "shape": [None, s, s, 8],
            "meaning": "softmax over 0 background, 1-7 = C1-C7",
        },
        {
            "name": "fracture_map",
            "dtype": "float32",
            "shape": [None, s, s, 1],
            "meaning": "sigmoid, pixel is fractured bone",
        },
        {
            "name": "fracture_cls",
            "dtype": "float32",
            "shape": [None, 7],
            "meaning": "sigmoid, slice shows a fractured C1..C7",
        },
    ]
    return inputs, outputs


def write_bundle(
    model: Any,
    out_dir: str | Path,
    cfg: TrainConfig,
    thresholds: dict[str, float],
    aggregation: AggregationConfig,
    metrics: dict[str, Any],
    training_data: dict[str, Any],
    name: str = "cspine-demo",
    version: str = "0.1.0",
    notes: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.keras`` and ``model_card.json`` into ``out_dir``; returns the card path.
    Files already listed in an existing card (e.g. ``model.onnx``) are dropped from the new
    card, because they were made from the previous weights."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / "model.keras"
    float32_twin(model, cfg).save(str(keras_path))
    inputs, outputs = io_spec(cfg)
    card = {
        "name": name,
        "version": version,
        "architecture": {
            "family": "U-Net with DenseNet121 encoder and fracture heads",
            "model": _portable(cfg.model.to_dict()),
            "parameters": int(model.count_params()),
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "preprocessing": cfg.preprocessing,
        "inputs": inputs,
        "outputs": outputs,
        "labels": {"0": "background", **{str(v.label): v.name for v in VERTEBRAE}},
        "thresholds": {k: round(float(v), 6) for k, v in thresholds.items()},
        "aggregation": asdict(aggregation),
        "files": {
            "model.keras": {
                "format": "keras",
                "precision": "fp32",
                "sha256": sha256_file(keras_path),
            }
        },
        "training_data": training_data,
        "training": _portable_training(cfg),
        "metrics": metrics,
        "notes": notes or {},
        "disclaimer": DISCLAIMER,
    }
    path = out / CARD
    path.write_text(json.dumps(card, indent=2, default=_json_default), encoding="utf-8")
    return path


def _portable(model: dict[str, Any]) -> dict[str, Any]:
    """Model config without machine paths: a weights file is named by its file name only."""
    w = model.get("encoder_weights")
    if w and str(w).lower() not in ("imagenet", "none"):
        model = {**model, "encoder_weights": Path(str(w)).name}
    return model


def _portable_training(cfg: TrainConfig) -> dict[str, Any]:
    """Training settings without machine paths (a starting-weights file by its name only)."""
    skip = ("data_dir", "out_dir", "cache_dir", "model", "preprocessing")
    out = {k: v for k, v in cfg.to_dict().items() if k not in skip}
    if out.get("init_weights"):
        out["init_weights"] = Path(str(out["init_weights"])).name
    return out


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))
