"""Sequencing the service calls that open a study; every call runs off the GUI thread.

Opening a path: list its series (a chooser when several qualify) → ``load_study`` (progress
"reading 212/300", cancellable) → show the images → store the files as a study → queue the
analysis on the shared job queue → follow its events ("analysing …") → read the verdicts,
labels and heat-map back → show them. Opening a worklist study skips the storing and reuses the
latest finished analysis. Nothing is shown half-done: a cancelled or failed load leaves the
previous study on screen, a cancelled analysis leaves the images without results.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from ...errors import Cancelled, UserFacingError
from ...imaging import list_series, load_study
from ...progress import Progress
from ..workers import Worker, run_in_background
from .open_study import OpenStudy
from .outcome import attach_outcome
from .storing import find_same_series, store_study

log = logging.getLogger(__name__)

ChooseSeries = Callable[[list], "str | None"]  # usable SeriesInfo list → chosen UID or None


class AnalysisFailedError(UserFacingError):
    """The job queue reported the analysis as failed; the message is the job's error."""


class StudyController(QObject):
    """Signals, in the order a successful open emits them: ``opening`` → ``progress``… →
    ``volume_loaded`` → ``study_stored`` → ``analysis_started`` → ``progress``… →
    ``analysis_finished``. ``failed(exc)`` or ``cancelled`` end an attempt early."""

    opening = Signal(str)
    progress = Signal(object)  # Progress
    volume_loaded = Signal(object)  # OpenStudy without result
    study_stored = Signal(object)  # StudyRecord
    analysis_started = Signal(str)  # job id
    analysis_finished = Signal(object)  # OpenStudy with result
    failed = Signal(object)  # exception (UserFacingError → plain dialog)
    cancelled = Signal()
    busy_changed = Signal(bool)

    def __init__(
        self,
        services: Any,
        user: Any,
        choose_series: ChooseSeries | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.user = user
        self.choose_series = choose_series
        self.current: OpenStudy | None = None
        self._worker: Worker | None = None
        self._job_id: str | None = None
        self._finished_early: OrderedDict[str, Any] = OrderedDict()
        self._busy = False

    # ---------------------------------------------------------------- state
    @property
    def busy(self) -> bool:
        return self._busy

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _run(self, task, name: str, on_result) -> None:
        self._set_busy(True)
        self._worker = run_in_background(
            task,
            name=name,
            on_progress=self.progress.emit,
            on_result=on_result,
            on_error=self._on_error,
        )

    def _on_error(self, exc: BaseException) -> None:
        self._worker = None
        self._set_busy(self._job_id is not None)
        if isinstance(exc, Cancelled):
            self.cancelled.emit()
        else:
            self.failed.emit(exc)

    # ---------------------------------------------------------------- open a path
    def open_path(self, path: str | Path, series_uid: str | None = None) -> bool:
        """Open a folder, zip or file. False (nothing started) while another open runs."""
        if self._worker is not None:
            return False
        path = Path(path)
        self.opening.emit(str(path))
        if series_uid is None and self.choose_series is not None:
            self._run(
                lambda _p, _c: list_series(path),
                "listing series",
                lambda infos: self._series_listed(path, infos),
            )
        else:
            self._load(path, series_uid)
        return True

    def _series_listed(self, path: Path, infos: list) -> None:
        self._worker = None
        usable = [i for i in infos if i.usable]
        uid = None
        choose = self.choose_series  # set: it is what sent the listing here
        if len(usable) > 1 and choose is not None:
            uid = choose(usable)
            if uid is None:
                self._set_busy(self._job_id is not None)
                self.cancelled.emit()
                return
        self._load(path, uid)

    def _load(self, path: Path, series_uid: str | None) -> None:
        def task(progress, cancel):
            return load_study(path, series_uid=series_uid, progress=progress, cancel=cancel)

        self._run(task, "loading", lambda volume: self._loaded_path(path, volume))

    def _loaded_path(self, path: Path, volume) -> None:
        opened = OpenStudy(volume=volume, warnings=list(volume.warnings))
        self._show_volume(opened)
        user = self.user

        services = self.services

        def task(progress, cancel):
            progress(Progress(None, "storing the study"))
            study = find_same_series(services, volume)
            if study is None:
                study = store_study(services, path, volume, user, cancel)
            else:  # opened again: show its latest result while the new analysis runs
                study = services.studies.view(study.id, user=user)
                opened.study = study
                done = services.jobs.list(study_id=study.id, states=["succeeded"], limit=1)
                if done:
                    attach_outcome(opened, services, done[0])
            if cancel.is_set():
                return study, None  # stored, not analysed: the worklist shows it so
            return study, services.jobs.enqueue(study.id, user=user)

        self._run(task, "storing", self._stored)

    def _stored(self, value) -> None:
        self._worker = None
        study, job_id = value
        if self.current is not None:
            self.current.study = study
        self.study_stored.emit(study)
        if self.current is not None and self.current.analysed:
            self.analysis_finished.emit(self.current)
        if job_id is None:
            self._set_busy(False)
            self.cancelled.emit()
        else:
            self._track(job_id)

    # ---------------------------------------------------------------- open a stored study
    def open_study(self, study_id: str) -> bool:
        """Open a worklist study: its images plus the latest finished analysis, if any."""
        if self._worker is not None:
            return False
        self.opening.emit(study_id)
        services, user = self.services, self.user

        def task(progress, cancel):
            study = services.studies.view(study_id, user=user)
            volume = load_study(
                study.files_dir,
                series_uid=study.series_uid or None,
                progress=progress,
                cancel=cancel,
            )
            opened = OpenStudy(volume=volume, study=study, warnings=list(volume.warnings))
            jobs = services.jobs.list(study_id=study_id, limit=1)
            latest = jobs[0] if jobs else None
            # the latest succeeded analysis, even when a newer one failed or was cancelled
            done = services.jobs.list(study_id=study_id, states=["succeeded"], limit=1)
            if done:
                progress(Progress(None, "reading the results"))
                attach_outcome(opened, services, done[0])
            return opened, latest

        self._run(task, "opening", self._opened_study)
        return True

    def _opened_study(self, value) -> None:
        self._worker = None
        opened, latest = value
        self._show_volume(opened)
        if opened.analysed:
            self.analysis_finished.emit(opened)
        if latest is not None and latest.state in ("pending", "running"):
            self._track(latest.id)
        else:
            self._set_busy(False)

    def _show_volume(self, opened: OpenStudy) -> None:
        self._job_id = None
        self.current = opened
        self.volume_loaded.emit(opened)

    # ---------------------------------------------------------------- analysis on the queue
    def reanalyse(self, study_id: str | None = None) -> None:
        """Queue a new analysis of ``study_id`` (default: the open study)."""
        study_id = study_id or (self.current.study_id if self.current else None)
        if study_id is None:
            return
        services, user = self.services, self.user

        def task(_progress, _cancel):
            return services.jobs.enqueue(study_id, user=user)

        def queued(job_id: str) -> None:
            if self.current is not None and self.current.study_id == study_id:
                self._track(job_id)

        run_in_background(task, name="queue", on_result=queued, on_error=self.failed.emit)

    def _track(self, job_id: str) -> None:
        self._job_id = job_id
        if self.current is not None and not self.current.analysed:
            self.current.job_id = job_id  # an analysed study keeps its result's job until then
        self._set_busy(True)
        self.analysis_started.emit(job_id)
        early = self._finished_early.pop(job_id, None)
        if early is not None:
            self.on_job_event(early)

    def on_job_event(self, event: Any) -> None:
        """Feed every JobEvent here (in the GUI thread); events of other jobs are ignored."""
        if event.job_id != self._job_id:
            if event.kind == "finished":
                self._finished_early[event.job_id] = event
                while len(self._finished_early) > 64:
                    self._finished_early.popitem(last=False)
            return
        if event.kind == "progress":
            self.progress.emit(Progress(event.progress / 100, event.stage or "analysing"))
        elif event.kind == "started":
            self.progress.emit(Progress(0.0, "analysing"))
        elif event.kind == "finished":
            self._job_finished(event)

    def _job_finished(self, event: Any) -> None:
        job_id = event.job_id
        if event.state == "succeeded" and self.current is not None:
            opened = self.current
            services = self.services

            def task(progress, _cancel):
                progress(Progress(None, "reading the results"))
                attach_outcome(opened, services, services.jobs.get(job_id))
                return opened

            def done(_opened) -> None:
                self._worker = None
                self._job_id = None
                self._set_busy(False)
                self.analysis_finished.emit(opened)

            self._run(task, "reading results", done)
            return
        self._job_id = None
        self._set_busy(self._worker is not None)
        if event.state == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(AnalysisFailedError(event.error or "The analysis failed."))

    # ---------------------------------------------------------------- cancel
    def cancel(self) -> None:
        """Stop what runs: the load (cooperatively) or the queued/running analysis."""
        if self._worker is not None:
            self._worker.abort()
        if self._job_id is not None:
            job_id, services, user = self._job_id, self.services, self.user
            run_in_background(
                lambda _p, _c: services.jobs.cancel(job_id, user=user),
                name="cancel",
                on_error=lambda exc: log.info("cancel of %s: %s", job_id, exc),
            )
