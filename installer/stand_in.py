"""Stand-in assets for building the bundle before the trained demo model or study exist.

``stage_assets(out)`` copies ``assets/`` to ``out`` and fills what is missing:
- ``models/cspine-demo``: the hand-built ONNX "threshold" test model (tests/factories) with a
  card marked as a stand-in — it proves the bundle, the engine and the pipeline, not a model;
- ``demo/demo-study.zip`` + ``demo-study.json``: made by ``model_training.demo_study`` (one
  phantom CT with one known fracture, RLE-compressed DICOM).

Build-time only (needs the ``train`` extra for the phantom and ``onnx``); never shipped as code.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL, DEMO_STUDY, DEMO_TRUTH = "cspine-demo", "demo-study.zip", "demo-study.json"


def stage_assets(out: Path, assets: Path = ROOT / "assets") -> dict[str, str]:
    """Copy ``assets`` into ``out`` and add stand-ins for a missing demo model / study.

    Returns {"model": "real"|"stand-in", "study": "real"|"stand-in"}.
    """
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(assets, out) if assets.is_dir() else out.mkdir(parents=True)
    used = {"model": "real", "study": "real"}
    model_dir = out / "models" / DEMO_MODEL
    if not (model_dir / "model_card.json").is_file():
        write_stand_in_model(model_dir)
        used["model"] = "stand-in"
    demo = out / "demo"
    if not (demo / DEMO_STUDY).is_file():
        write_stand_in_study(demo)
        used["study"] = "stand-in"
    return used


def write_stand_in_model(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from factories.model_bundle import threshold_onnx, write_bundle
    finally:
        sys.path.remove(str(ROOT / "tests"))
    # bone → "C3", dense bone → "C4"; "C3" gets a high fracture score so the self-test runs the
    # fractured path too (heat-map, class activation, fracture SEG)
    cls = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)
    folder.mkdir(parents=True, exist_ok=True)
    return write_bundle(
        folder,
        {"model.onnx": threshold_onnx(cls_prob=cls)},
        card={
            "name": DEMO_MODEL,
            "version": "0.0.0-stand-in",
            "architecture": "stand-in threshold graph (no learning) for building the installer",
        },
    )


def write_stand_in_study(folder: Path) -> Path:
    """The demo study as ``model_training.demo_study`` makes it (same seed, same truth file)."""
    from model_training.demo_study import write_demo

    study, _ = write_demo(folder)
    return study


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "installer-assets"
    print(stage_assets(target), "→", target)
