"""Keeps the viewer's measurements with the open study: read when a stored study opens, saved
(off the GUI thread, shortly after each change) once the study is stored."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer

from ..services.annotations import load_annotations, save_annotations
from .models.measurements import Measurement, MeasurementSet
from .workers import run_in_background

log = logging.getLogger(__name__)
SAVE_DELAY_MS = 300


class AnnotationKeeper(QObject):
    def __init__(self, services: Any, user: Any, measurements: MeasurementSet, parent=None):
        super().__init__(parent)
        self.services, self.user, self.measurements = services, user, measurements
        self.study_id: str | None = None
        self._save = QTimer(self)
        self._save.setSingleShot(True)
        self._save.setInterval(SAVE_DELAY_MS)
        self._save.timeout.connect(self.save_now)
        measurements.committed.connect(self._changed)

    def set_study(self, study_id: str | None) -> None:
        """The study on screen: its stored measurements join any drawn before it was stored
        (the same study with its measurements already on screen is left as it is)."""
        if study_id == self.study_id and (study_id is None or self.measurements.items):
            return
        self.study_id = study_id
        if study_id is None:
            return
        studies = self.services.studies

        def loaded(items: list[dict]) -> None:
            if self.study_id != study_id:
                return
            stored = []
            for d in items:
                try:
                    stored.append(Measurement.from_dict(d))
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("skipping a stored measurement: %s", exc)
            drawn = list(self.measurements.items)
            self.measurements.load(stored + drawn)
            if drawn:
                self._changed()

        run_in_background(
            lambda _p, _c: load_annotations(studies, study_id),
            name="annotations",
            on_result=loaded,
            on_error=lambda exc: log.warning("annotations of %s: %s", study_id, exc),
        )

    def _changed(self) -> None:
        if self.study_id is not None:
            self._save.start()

    def save_now(self) -> None:
        study_id, items = self.study_id, self.measurements.to_json()
        if study_id is None:
            return
        studies, user = self.services.studies, self.user
        run_in_background(
            lambda _p, _c: save_annotations(studies, study_id, items, user),
            name="save annotations",
            on_error=lambda exc: log.warning("annotations of %s not saved: %s", study_id, exc),
        )
