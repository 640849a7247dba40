"""ONE analysis queue for the GUI, the HTTP endpoint and the command line.

The queue knows nothing about inference: it runs an injected ``handler(ctx: JobContext) -> dict``
(the real one comes from :mod:`cspine_desktop.services.analysis`) on worker threads and stores
the returned dict as the analysis's result JSON. States: pending → running → succeeded | failed |
cancelled (pending → cancelled directly). Jobs live in the database, so after a crash or restart
unfinished jobs are queued again (a job is never left "running"); a job interrupted
``max_attempts`` times is marked failed instead of crashing the app forever.

Handler contract:
- report progress with ``ctx.progress(Progress(fraction, stage words))`` (see
  :mod:`cspine_desktop.progress`);
- call ``ctx.check_cancelled()`` between steps (``ctx.cancel_event`` is the cancel token, a
  ``threading.Event``), or return early when ``ctx.cancelled()``;
- write derived files with ``ctx.artifact_path(name, kind)`` / ``ctx.write_artifact(...)``;
- return a JSON-serialisable dict; ``result["model"]["sha256"]``, ``result["backend"]`` and
  ``result["timings"]`` are copied to their own columns;
- raise a :class:`~cspine_desktop.errors.UserFacingError` for a problem the user should read
  about (the study, a full disk; its message is stored as the job's error); any other
  exception is stored as an internal error.

Events: ``subscribe(callback)`` calls ``callback(JobEvent)`` on the WORKER thread for "queued",
"started", "progress", "finished" and "requeued"; a GUI must hand them to its own thread (e.g.
through a Qt queued signal). A callback that raises is logged and otherwise ignored.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import (
    Cancelled,
    ConflictError,
    CspineInputError,
    QueueFullError,
    UserFacingError,
)
from ..store import AnalysisRecord, Store, StudyRecord, UserRecord
from .audit import AuditLog
from .job_context import JobContext, JobEvent

__all__ = ["JobContext", "JobEvent", "JobHandler", "JobQueue"]

log = logging.getLogger(__name__)


JobHandler = Callable[[JobContext], dict]


class JobQueue:
    """Persistent bounded queue with ``workers`` threads. Call :meth:`start` once, :meth:`stop`
    at shutdown. ``max_pending`` bounds the number of WAITING jobs (QueueFullError beyond)."""

    def __init__(
        self,
        store: Store,
        handler: JobHandler,
        *,
        workers: int = 1,
        max_pending: int = 32,
        audit: AuditLog | None = None,
        max_attempts: int = 3,
        heartbeat_s: float = 10.0,
        stale_after_s: float = 120.0,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.handler = handler
        self.workers = max(1, int(workers))
        self.max_pending = max(1, int(max_pending))
        self.audit = audit
        self.max_attempts = max_attempts
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._enqueue_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, threading.Event] = {}
        self._subscribers: list[Callable[[JobEvent], None]] = []
        self._sub_lock = threading.Lock()
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> list[str]:
        """Re-queue jobs a previous run left behind, then start the workers; returns the ids
        of re-queued jobs."""
        if self._started:
            return []
        self._started = True
        requeued, self.store.requeued_at_open = list(self.store.requeued_at_open), []
        stale = self.store.clock() - self.stale_after_s  # jobs of processes that died
        requeued += self.store.analyses.requeue_running(stale, self.max_attempts)
        for job_id in requeued:
            log.warning("analysis %s was interrupted; queued again", job_id)
            self._emit_for(job_id, "requeued")
        self._stopping.clear()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"cspine-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._monitor, name="cspine-job-monitor", daemon=True)
        t.start()
        self._threads.append(t)
        return requeued

    def stop(self, timeout: float | None = 30.0, cancel_running: bool = False) -> None:
        """Stop taking jobs; wait for running ones (cancelling them if asked). A job still
        running when the timeout passes is re-queued at the next start."""
        self._stopping.set()
        if cancel_running:
            for ev in list(self._running.values()):
                ev.set()
        with self._cond:
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        self._started = bool(self._threads)

    # ------------------------------------------------------------------ API
    def enqueue(
        self, study_id: str, user: str | UserRecord | None = None, address: str | None = None
    ) -> str:
        """Queue an analysis of a study; returns the job id. If the study already has a
        pending or running job, that job's id is returned instead of a duplicate.
        Raises QueueFullError when ``max_pending`` jobs are waiting, NotFoundError for an
        unknown study."""
        user_name = user.name if isinstance(user, UserRecord) else user
        with self._enqueue_lock:
            existing = self.store.analyses.active_for_study(study_id)
            if existing is not None:
                return existing.id
            job_id = self.store.analyses.create(study_id, user_name, self.max_pending)
        if job_id is None:
            if self.audit:
                self.audit.record(
                    "analysis_queued",
                    outcome="failure",
                    user=user_name,
                    address=address,
                    detail={"study_id": study_id, "reason": "queue full"},
                )
            raise QueueFullError(
                f"The analysis queue is full ({self.max_pending} studies waiting); "
                "please try again later."
            )
        if self.audit:
            study = self.store.studies.get(study_id)
            self.audit.record(
                "analysis_queued",
                user=user_name,
                address=address,
                study=study,
                detail={"study_id": study_id, "job_id": job_id},
            )
        self._emit_for(job_id, "queued")
        with self._cond:
            self._cond.notify()
        return job_id

    def cancel(
        self, job_id: str, user: str | UserRecord | None = None, address: str | None = None
    ) -> AnalysisRecord:
        """Cancel a pending job at once, or ask a running one to stop (cooperatively).
        ConflictError if the job already finished."""
        job = self.store.analyses.get(job_id)
        user_name = user.name if isinstance(user, UserRecord) else user
        if job.finished:
            raise ConflictError(f"The analysis already finished ({job.state}).")
        if self.store.analyses.cancel_pending(job_id):
            self._emit_for(job_id, "finished")
        else:
            self.store.analyses.request_cancel(job_id)
            ev = self._running.get(job_id)
            if ev is not None:
                ev.set()
        if self.audit:
            self.audit.record(
                "analysis_cancelled",
                user=user_name,
                address=address,
                detail={"job_id": job_id, "study_id": job.study_id},
            )
        return self.store.analyses.get(job_id)

    def get(self, job_id: str) -> AnalysisRecord:
        return self.store.analyses.get(job_id)

    def list(
        self, study_id: str | None = None, states: Sequence[str] | None = None, limit: int = 500
    ) -> list[AnalysisRecord]:
        """Jobs newest first, optionally for one study and/or in some states."""
        return self.store.analyses.find(study_id=study_id, states=states, limit=limit)

    def pending_count(self) -> int:
        return self.store.analyses.count("pending")

    def wait(self, job_id: str, timeout: float | None = None) -> AnalysisRecord:
        """Block until the job finishes (for the CLI and tests; never on a GUI thread)."""
        done = threading.Event()

        def on_event(ev: JobEvent) -> None:
            if ev.job_id == job_id and ev.kind == "finished":
                done.set()

        unsubscribe = self.subscribe(on_event)
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                job = self.store.analyses.get(job_id)
                if job.finished:
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"analysis {job_id} still {job.state}")
                done.wait(0.5 if left is None else min(0.5, left))
        finally:
            unsubscribe()

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Register ``callback(JobEvent)``; returns a function that unsubscribes it."""
        with self._sub_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._sub_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ workers
    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.store.analyses.claim_next()
            except Exception:
                log.exception("could not read the job queue")
                job = None
            if job is None:
                with self._cond:
                    self._cond.wait(self.poll_s)
                continue
            self._run(job)

    def _run(self, job: AnalysisRecord) -> None:
        cancel = threading.Event()
        self._running[job.id] = cancel
        started = time.monotonic()
        try:
            try:
                study = self.store.studies.get(job.study_id)
            except UserFacingError as err:
                self._finish(job, "failed", error=str(err))
                return
            self._emit(JobEvent("started", job.id, job.study_id, "running", 0))
            ctx = JobContext(self, job, study, cancel)
            try:
                result = self.handler(ctx)
                ctx.check_cancelled()  # a handler may return early once cancelled
                if not isinstance(result, dict):
                    raise TypeError(f"handler returned {type(result).__name__}, not dict")
                json.dumps(result, allow_nan=False)
            except Cancelled:
                if self._stopping.is_set() and not self.store.analyses.get(job.id).cancel_requested:
                    self._release(job)  # shut down mid-run: run again at the next start
                else:
                    self._finish(job, "cancelled", study=study)
            except UserFacingError as err:
                self._finish(job, "failed", error=str(err), study=study)
            except Exception as exc:
                log.exception("analysis %s failed", job.id)
                self._finish(
                    job,
                    "failed",
                    study=study,
                    error=f"Internal error during analysis ({type(exc).__name__}); "
                    "details are in the log.",
                )
            else:
                self._finish(
                    job, "succeeded", result=result, study=study, seconds=time.monotonic() - started
                )
        finally:
            self._running.pop(job.id, None)

    def _finish(
        self,
        job: AnalysisRecord,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        study: StudyRecord | None = None,
        seconds: float | None = None,
    ) -> None:
        if state != "succeeded":
            try:
                self.store.studies.delete_artifacts(job.id)
            except Exception:
                log.exception("could not remove artifacts of analysis %s", job.id)
        detail: dict[str, Any] = {"job_id": job.id, "study_id": job.study_id, "state": state}
        if seconds is not None:
            detail["seconds"] = round(seconds, 3)
        if error:
            detail["error"] = error
        try:
            # outcome and its audit entry in one transaction: whoever sees the outcome finds it
            with self.store.db.write():
                stored = self.store.analyses.finish(job.id, state, result=result, error=error)
                if self.audit:
                    self.audit.record(
                        "analysis_run",
                        outcome="success" if state == "succeeded" else "failure",
                        user=job.requested_by,
                        study=study,
                        detail=detail,
                    )
        except Exception:
            log.exception("could not store the outcome of analysis %s", job.id)
            stored = False
        if not stored:  # deleted with its study meanwhile, or the DB refused
            log.warning("analysis %s finished as %s but is no longer running", job.id, state)
        self._emit(
            JobEvent(
                "finished",
                job.id,
                job.study_id,
                state,
                100 if state == "succeeded" else 0,
                "",
                error,
            )
        )

    def _release(self, job: AnalysisRecord) -> None:
        try:
            self.store.studies.delete_artifacts(job.id)
            self.store.analyses.release(job.id)
        except Exception:
            log.exception("could not re-queue analysis %s", job.id)
        self._emit_for(job.id, "requeued")

    def _progress(self, ctx: JobContext, pct: int, stage: str) -> None:
        try:
            self.store.analyses.set_progress(ctx.job_id, pct, stage)
        except Exception:
            log.exception("could not store progress of analysis %s", ctx.job_id)
        self._emit(JobEvent("progress", ctx.job_id, ctx.study.id, "running", pct, stage))

    def _monitor(self) -> None:
        """Heartbeats for running jobs; picks up cancel requests made by another process;
        re-queues jobs whose process died (stale heartbeat)."""
        while not self._stopping.wait(self.heartbeat_s):
            try:
                ids = list(self._running)
                if ids:
                    self.store.analyses.heartbeat(ids)
                    for job_id in ids:
                        if self.store.analyses.get(job_id).cancel_requested:
                            ev = self._running.get(job_id)
                            if ev is not None:
                                ev.set()
                stale = self.store.clock() - self.stale_after_s
                for job_id in self.store.analyses.requeue_running(stale, self.max_attempts):
                    self._emit_for(job_id, "requeued")
                    with self._cond:
                        self._cond.notify()
            except Exception:
                log.exception("job monitor error")

    # ------------------------------------------------------------------ events
    def _emit_for(self, job_id: str, kind: str) -> None:
        try:
            job = self.store.analyses.get(job_id)
        except CspineInputError:
            return
        self._emit(
            JobEvent(kind, job.id, job.study_id, job.state, job.progress, job.stage, job.error)
        )

    def _emit(self, event: JobEvent) -> None:
        with self._sub_lock:
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(event)
            except Exception:
                log.exception("job event subscriber failed")
