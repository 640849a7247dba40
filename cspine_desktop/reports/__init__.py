"""Exports of an analysis: DICOM SEG/SR, PDF report, key images, CSV, NIfTI, JSON.

One implementation for the three front ends (``cspine analyze``, the GUI, the HTTP API). Every
writer takes the analysis outcome (``result``, ``volume``, ``labels``, ``heatmap``; see
:class:`~cspine_desktop.reports._common.OutcomeLike`) and writes atomically. The submodules are
imported on first use, so ``import cspine_desktop.reports`` stays cheap (highdicom and
reportlab load only when their export runs).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export_all": "export",
    "available_formats": "export",
    "FORMATS": "export",
    "write_result_json": "tables",
    "write_rsna_csv": "tables",
    "rsna_csv_text": "tables",
    "render_verdicts_table": "tables",
    "write_label_nifti": "nifti",
    "write_dicom_seg": "dicom_seg",
    "write_fracture_seg": "dicom_seg",
    "write_dicom_sr": "dicom_sr",
    "render_key_images": "key_images",
    "write_key_images": "key_images",
    "build_report_pdf": "pdf",
    "write_report_pdf": "pdf",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
