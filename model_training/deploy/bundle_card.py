"""A model bundle folder as the exports see it: its card, read and written atomically, the
entry each exported file gets in the card, and the files an export starts from."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cspine_desktop.errors import CspineInputError, ModelBundleError
from cspine_desktop.inference.bundle import CARD_NAME, ModelBundle, ModelFile, sha256_of

KERAS_FILE, ONNX_FILE, INT8_FILE, SAVEDMODEL_DIR = (
    "model.keras",
    "model.onnx",
    "model.int8.onnx",
    "savedmodel",
)


class FormatUnavailable(CspineInputError):
    """This machine cannot build the requested format (the message says why); cspine-export
    exits 2 with it (no HTTP status: it never reaches the endpoint)."""


def read_card(model_dir: Path) -> dict[str, Any]:
    path = model_dir / CARD_NAME
    if not model_dir.is_dir():
        raise ModelBundleError(f"{model_dir} is not a folder.")
    if not path.is_file():
        raise ModelBundleError(f"{model_dir} has no {CARD_NAME}; export a trained model bundle.")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelBundleError(f"{path} is unreadable: {exc}") from None
    if "preprocessing" not in card:
        raise ModelBundleError(f"{path} has no 'preprocessing' section.")
    card.setdefault("files", {})
    return card


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    path = model_dir / CARD_NAME
    fd, tmp = tempfile.mkstemp(prefix=".card-", dir=model_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(card, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # readable by every account that runs the app
    os.replace(tmp, path)


def file_entry(path: Path, fmt: str, precision: str, **extra: Any) -> dict[str, Any]:
    return {
        "format": fmt,
        "precision": precision,
        "sha256": sha256_of(path),
        "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }


def keras_path(model_dir: Path, card: dict[str, Any]) -> Path:
    """``model.keras``, checked against the card when the card lists it."""
    path = model_dir / KERAS_FILE
    if not path.is_file():
        raise ModelBundleError(f"{model_dir} has no {KERAS_FILE} to export from.")
    entry = card["files"].get(KERAS_FILE)
    if entry and entry.get("sha256") and entry["sha256"] != sha256_of(path):
        raise ModelBundleError(f"{KERAS_FILE} does not match the sha256 in the model card.")
    return path


def bundle_view(model_dir: Path, card: dict[str, Any]) -> ModelBundle:
    return ModelBundle(model_dir, card)


def bundle_file(bundle: ModelBundle, fmt: str, precision: str) -> ModelFile:
    """The bundle's ``fmt`` file of ``precision``, which the export has just written or found."""
    found = bundle.find(fmt, precision)
    if found is None:
        raise ModelBundleError(f"The model bundle has no {fmt} {precision} file.")
    return found
