"""Exports of the open study through :func:`cspine_desktop.reports.export_all` (the same code
``cspine analyze`` uses), written off the GUI thread and recorded in the audit trail."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from .. import reports
from ..reports.export import safe_stem
from .errors import show_error
from .study import OpenStudy
from .workers import run_in_background

log = logging.getLogger(__name__)

# menu entry → export_all formats
CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PDF report", ("pdf",)),
    ("PNG key images", ("png",)),
    ("DICOM SEG (vertebrae + fracture)", ("seg", "fracture_seg")),
    ("DICOM SR (TID 1500)", ("sr",)),
    ("CSV (RSNA rows)", ("csv",)),
    ("Everything available", ()),
)


def export_stem(opened: OpenStudy) -> str:
    meta = opened.volume.meta
    return str(meta.get("PatientID") or meta.get("StudyInstanceUID") or "cspine")


def unique_stem(folder: Path, stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``… when ``folder`` already holds files of an export
    with that stem: a second export to one folder never overwrites the first."""
    base = safe_stem(stem)

    def taken(s: str) -> bool:
        return folder.is_dir() and any(folder.glob(f"{s}_*"))

    n, candidate = 1, base
    while taken(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def run_export(
    services: Any, user: Any, opened: OpenStudy, folder: Path, formats: tuple[str, ...]
) -> dict[str, Path]:
    """Write ``formats`` (all available when empty) into ``folder`` and audit it; the audit
    records the failure too. Runs in a worker thread."""
    wanted = None
    if formats:
        avail = opened.export_formats or reports.available_formats(opened)
        wanted = [f for f in formats if avail.get(f) is None] or list(formats)
    kind = "report" if formats == ("pdf",) else "export"
    detail = {"formats": list(formats) or ["all"], "folder": str(folder)}
    try:
        stem = unique_stem(folder, export_stem(opened))
        written = reports.export_all(opened, folder, wanted, stem=stem)
    except Exception as exc:
        if opened.study is not None:
            services.audit.record(
                kind,
                outcome="failure",
                user=user,
                study=opened.study,
                detail={**detail, "error": str(exc)},
            )
        raise
    if opened.study is not None:
        services.studies.record_export(
            opened.study,
            user=user,
            kind=kind,
            detail={**detail, "files": sorted(p.name for p in written.values())},
        )
    return written


class ExportMenu(QObject):
    """Builds the Export menu and runs the chosen export; ``exported(dict)`` on success."""

    exported = Signal(object)

    def __init__(self, services: Any, user: Any, parent: QWidget) -> None:
        super().__init__(parent)
        self.services, self.user, self.parent_widget = services, user, parent
        self.opened: OpenStudy | None = None
        self.menu = QMenu("&Export", parent)
        self.actions: dict[str, QAction] = {}
        for title, formats in CHOICES:
            action = self.menu.addAction(title + "…")
            action.triggered.connect(lambda _=False, f=formats: self.ask_and_export(f))
            self.actions[title] = action
        self.set_study(None)

    def set_study(self, opened: OpenStudy | None) -> None:
        """Enable the entries this study can have (analysed, with labels)."""
        self.opened = opened
        ready = opened is not None and opened.analysed and opened.labels is not None
        avail = opened.export_formats if ready and opened is not None else {}
        for title, formats in CHOICES:
            action = self.actions[title]
            reasons = [r for r in (avail.get(f) for f in formats) if r]
            usable = ready and (not formats or len(reasons) < len(formats))
            action.setEnabled(usable)
            action.setToolTip(reasons[0] if reasons and not usable else "")
        self.menu.setEnabled(ready)

    def ask_and_export(self, formats: tuple[str, ...], folder: Path | None = None) -> None:
        if self.opened is None:
            return
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self.parent_widget, "Export to folder")
            if not chosen:
                return
            folder = Path(chosen)
        opened, services, user = self.opened, self.services, self.user
        run_in_background(
            lambda _p, _c: run_export(services, user, opened, folder, formats),
            name="export",
            on_result=self.exported.emit,
            on_error=lambda exc: show_error(self.parent_widget, exc, "Export"),
        )
