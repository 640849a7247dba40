"""Where the bundled assets live: a source checkout, an installed package or a PyInstaller build.

The app never writes here; everything it writes goes to the per-user data/cache dirs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEMO_MODEL = "cspine-demo"
DEMO_STUDY = "demo-study.zip"
DEMO_TRUTH = "demo-study.json"


def assets_dir() -> Path:
    """The ``assets/`` folder: ``CSPINE_ASSETS_DIR``, else ``sys._MEIPASS/assets`` in a
    PyInstaller build, else the folder next to the ``cspine_desktop`` package."""
    override = os.environ.get("CSPINE_ASSETS_DIR")
    if override:
        return Path(override).expanduser()
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "assets"
    return Path(__file__).resolve().parents[2] / "assets"


def demo_model_dir() -> Path:
    """The bundled demo model (model files + ``model_card.json``)."""
    return assets_dir() / "models" / DEMO_MODEL


def demo_study_path() -> Path:
    """The bundled demo study: a zip of a phantom CT series with one known fracture."""
    return assets_dir() / "demo" / DEMO_STUDY


def demo_truth_path() -> Path:
    """What the demo study really holds (fractured vertebrae), written with the study."""
    return assets_dir() / "demo" / DEMO_TRUTH
