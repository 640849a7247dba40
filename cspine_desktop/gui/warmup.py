"""Do the one-off slow work of the libraries before the user is waiting on the window.

Some first-time work holds Python's GIL for its whole duration, so doing it in the middle of an
analysis would freeze the window for that long: importing extension modules (highdicom,
reportlab, nibabel, onnxruntime: 0.1–1 s each on a clinic PC) and highdicom's parse of the
DICOM standard's module tables (a multi-megabyte JSON, about 1 s, on the first DICOM SEG/SR
export). The app runs :func:`warm_up` on a background thread while the sign-in dialog is shown.
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


# highdicom's cached tables of the DICOM standard (private helpers; skipped if renamed)
HIGHDICOM_TABLES = (
    "get_sop_class_iod_map",
    "get_iod_module_map",
    "get_module_attribute_map",
    "get_anatomic_region_map",
)


def warm_up(modules: tuple[str, ...] = MODULES) -> dict[str, float]:
    """Import ``modules`` (skipping any that are missing) and load highdicom's standard
    tables; returns seconds per step."""
    took: dict[str, float] = {}
    for name in modules:
        t0 = time.perf_counter()
        try:
            importlib.import_module(name)
        except ImportError as exc:
            log.debug("warm-up: %s not importable (%s)", name, exc)
            continue
        took[name] = time.perf_counter() - t0
    try:
        from highdicom import _standard_utils as tables
    except ImportError:
        return took
    for name in HIGHDICOM_TABLES:
        t0 = time.perf_counter()
        getter = getattr(tables, name, None)
        if callable(getter):
            getter()
            took[f"highdicom.{name}"] = time.perf_counter() - t0
    return took


def warm_up_in_background() -> threading.Thread:
    thread = threading.Thread(target=warm_up, name="cspine-warm-up", daemon=True)
    thread.start()
    return thread
