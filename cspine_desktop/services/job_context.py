"""What the job queue hands to an analysis handler (:class:`JobContext`) and tells its
subscribers (:class:`JobEvent`). See :mod:`cspine_desktop.services.jobs` for the contract."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..progress import Progress, check_cancelled, is_cancelled
from ..store import AnalysisRecord, ArtifactRecord, StudyRecord

if TYPE_CHECKING:
    from .jobs import JobQueue


@dataclass(frozen=True)
class JobEvent:
    kind: str  # "queued" | "started" | "progress" | "finished" | "requeued"
    job_id: str
    study_id: str
    state: str
    progress: int
    stage: str = ""
    error: str | None = None


class JobContext:
    """What a handler gets: the study, progress reporting, cancellation and artifact writing."""

    def __init__(
        self,
        queue: JobQueue,
        job: AnalysisRecord,
        study: StudyRecord,
        cancel_event: threading.Event,
    ) -> None:
        self._queue = queue
        self.job_id = job.id
        self.job = job
        self.study = study
        self.user = job.requested_by
        self.attempt = job.attempts
        self.cancel_event = cancel_event
        self._last_pct = -1
        self._last_stage = ""
        self._last_t = 0.0

    @property
    def study_dir(self) -> Path:
        return self.study.path

    @property
    def files_dir(self) -> Path:
        return self.study.files_dir

    @property
    def files(self) -> list[Path]:
        return self.study.files()

    def progress(self, progress: Progress) -> None:
        """Report how far the job is: stored as whole per cent with the stage words (the same
        per cent and words again within half a second are not stored twice)."""
        pct_i, stage = progress.percent, progress.stage
        now = time.monotonic()
        if pct_i == self._last_pct and stage == self._last_stage and now - self._last_t < 0.5:
            return
        self._last_pct, self._last_stage, self._last_t = pct_i, stage, now
        self._queue._progress(self, pct_i, stage)

    def cancelled(self) -> bool:
        return is_cancelled(self.cancel_event)

    def check_cancelled(self) -> None:
        """Raise :class:`~cspine_desktop.errors.Cancelled` if the user cancelled this
        job."""
        check_cancelled(self.cancel_event)

    @contextmanager
    def artifact_path(self, name: str, kind: str) -> Iterator[Path]:
        """Temporary path for a derived file of this analysis, published atomically on exit."""
        with self._queue.store.studies.artifact_path(self.study.id, name, kind, self.job_id) as p:
            yield p

    def write_artifact(self, name: str, kind: str, data: bytes | BinaryIO) -> ArtifactRecord:
        return self._queue.store.studies.write_artifact(
            self.study.id, name, kind, data, self.job_id
        )
