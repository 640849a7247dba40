"""About: version, the model card in brief, the disclaimer and the licences of what we ship."""

from __future__ import annotations

import html
from importlib import metadata
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ... import DISCLAIMER, __version__
from ...errors import CspineInputError
from ...inference.bundle import load_bundle
from ...inference.resources import demo_model_dir
from ...settings import Settings
from .model_card_view import card_html

# distribution → licence (as published by each project)
LICENCES = (
    ("PySide6-Essentials", "LGPL-3.0 (Qt for Python)"),
    ("numpy", "BSD-3-Clause"),
    ("pydicom", "MIT"),
    ("highdicom", "MIT"),
    ("pylibjpeg", "MIT"),
    ("python-gdcm", "BSD-3-Clause"),
    ("nibabel", "MIT"),
    ("opencv-python-headless", "Apache-2.0 (OpenCV), MIT (wrapper)"),
    ("onnxruntime", "MIT"),
    ("bcrypt", "Apache-2.0"),
    ("flask", "BSD-3-Clause"),
    ("waitress", "ZPL-2.1"),
    ("reportlab", "BSD-3-Clause"),
    ("platformdirs", "MIT"),
    ("PyYAML", "MIT"),
)


def model_card_summary(settings: Settings) -> dict[str, Any]:
    """Name, version, creation date, training data, metrics and thresholds from the card of
    the configured model (the bundled demo model by default); ``error`` if it is unusable."""
    folder = settings.model_dir or demo_model_dir()
    try:
        card = load_bundle(folder).card
    except CspineInputError as err:
        return {"error": str(err), "folder": str(folder)}
    keys = ("name", "version", "architecture", "created", "training_data", "metrics", "thresholds")
    return {"folder": str(folder), **{k: card.get(k) for k in keys}, "stage2": card.get("stage2")}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html(settings: Settings) -> str:
    card = model_card_summary(settings)
    esc = html.escape
    parts = [
        f"<h2>cspine {esc(__version__)}</h2>",
        "<p>Cervical-spine CT fracture detection workstation.</p>",
        f"<p style='background:#fff3cd;color:#664d03;padding:4px'><b>{esc(DISCLAIMER)}</b></p>",
        "<h3>Model</h3>",
    ]
    if "error" in card:
        parts.append(f"<p>{esc(card['error'])}</p>")
    else:
        parts.append(card_html(card))
    parts.append(f"<p>Model folder: {esc(card['folder'])}</p>")
    parts.append("<h3>Licences</h3><table>")
    for dist, licence in LICENCES:
        parts.append(
            f"<tr><td>{esc(dist)}</td><td>{esc(_version(dist))}</td><td>{esc(licence)}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        "<p>Colours of the vertebra labels follow SlicerTotalSegmentator; label values the "
        "RSNA 2022 / VerSe convention.</p>"
    )
    return "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About cspine")
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setHtml(about_html(settings))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.resize(self.fontMetrics().horizontalAdvance("x") * 90, 600)
