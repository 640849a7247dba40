"""Import the heavy modules the workstation will need before the user needs them.

Importing an extension module holds Python's GIL for its whole initialisation (highdicom,
reportlab, nibabel, onnxruntime: 0.1–1 s each on a clinic PC), so doing it for the first time
in the middle of an analysis would freeze the window for that long. The app runs
:func:`warm_up` on a background thread while the sign-in dialog is shown.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time

log = logging.getLogger(__name__)

MODULES = (
    "cspine_desktop.reports.export",
    "cspine_desktop.reports.tables",
    "cspine_desktop.reports.nifti",
    "cspine_desktop.reports.key_images",
    "cspine_desktop.reports.pdf",
    "cspine_desktop.reports.dicom_seg",
    "cspine_desktop.reports.dicom_sr",
    "cspine_desktop.services.analysis",
    "onnxruntime",
)


def warm_up(modules: tuple[str, ...] = MODULES) -> dict[str, float]:
    """Import ``modules`` (skipping any that are missing); returns seconds per module."""
    took: dict[str, float] = {}
    for name in modules:
        t0 = time.perf_counter()
        try:
            importlib.import_module(name)
        except ImportError as exc:
            log.debug("warm-up: %s not importable (%s)", name, exc)
            continue
        took[name] = time.perf_counter() - t0
    return took


def warm_up_in_background() -> threading.Thread:
    thread = threading.Thread(target=warm_up, name="cspine-warm-up", daemon=True)
    thread.start()
    return thread
