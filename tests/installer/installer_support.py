"""Shared helpers for the installer tests: paths, and a tiny assets tree laid out like the
repository's ``assets/``."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"
if str(INSTALLER) not in sys.path:
    sys.path.insert(0, str(INSTALLER))


def load_installer_module(name: str):
    """A module of installer/ by file (``build`` would clash with the repo's build/ folder)."""
    spec = importlib.util.spec_from_file_location(
        f"cspine_installer_{name}", INSTALLER / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# threshold model: bone ring → "C3" (fracture score 0.9), dense ball → "C4" (0.1)
CLS = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)
TRUTH = {
    "fractured": {f"C{i}": i == 3 for i in range(1, 8)},
    "patient_overall": True,
}


def make_assets(root: Path, *, keras_file: bool = False) -> Path:
    """assets/ with models/cspine-demo (threshold ONNX model + card), demo/demo-study.zip
    (30 slices of 32×32 synthetic DICOM) + demo-study.json, and the icons.

    ``keras_file``: the card also lists a ``model.keras`` (format keras), as a trained bundle
    does; the CPU bundle must leave it out."""
    files: dict[str, bytes] = {"model.onnx": threshold_onnx(cls_prob=CLS)}
    if keras_file:
        files["model.keras"] = b"not really a keras file"
    write_bundle(root / "models" / "cspine-demo", files, card={"name": "cspine-demo"})
    series = root.parent / "series"
    written = write_ct_series(series, n_slices=30, rows=32, cols=32)
    demo = root / "demo"
    demo.mkdir(parents=True)
    with zipfile.ZipFile(demo / "demo-study.zip", "w") as zf:
        for f in written.files:
            zf.write(f, f.name)
    (demo / "demo-study.json").write_text(json.dumps(TRUTH), encoding="utf-8")
    icons = root / "icons"
    icons.mkdir()
    for ext in ("svg", "png", "ico"):
        (icons / f"cspine.{ext}").write_bytes(
            (ROOT / "assets" / "icons" / f"cspine.{ext}").read_bytes()
        )
    (root / "models" / "cspine-demo" / ".gitkeep").write_text("")
    # left next to the model by an export step; not in the card, never opened by the app
    (root / "models" / "cspine-demo" / "model.onnx.opt.onnx").write_bytes(b"scratch")
    # a model folder without a card is shipped as it is (the app refuses it with a message)
    (root / "models" / "no-card").mkdir(parents=True)
    (root / "models" / "no-card" / "model.onnx").write_bytes(b"x")
    return root
