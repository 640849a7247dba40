"""Application services shared by the GUI, the HTTP endpoint and the command line.

Open everything at once with :meth:`Services.open`::

    services = Services.open(settings)          # store + users + audit + studies + jobs
    user = services.users.authenticate("ana", password, address=None)
    study = services.studies.import_paths(folder, user=user)
    job_id = services.jobs.enqueue(study.id, user=user)
    ...
    services.close()

``Services.open(settings, handler=...)`` takes the analysis handler for the job queue; without
one it uses ``cspine_desktop.services.analysis.make_job_handler(settings)``. Front ends never touch
SQLite or the data folder directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..settings import Settings
from ..store import Store, StudyRecord, UserRecord
from .audit import AuditLog
from .autolock import AutoLock
from .jobs import JobContext, JobEvent, JobHandler, JobQueue
from .studies import StudyImport, StudyService, WorklistRow
from .users import IssuedToken, PasswordPolicy, UserService

log = logging.getLogger(__name__)

__all__ = [
    "AuditLog",
    "AutoLock",
    "IssuedToken",
    "JobContext",
    "JobEvent",
    "JobHandler",
    "JobQueue",
    "PasswordPolicy",
    "Services",
    "StudyImport",
    "StudyService",
    "UserService",
    "WorklistRow",
]


def default_job_handler(settings: Settings) -> JobHandler:
    """The real analysis handler, ``services.analysis.make_job_handler(settings)``, imported at the
    first job (so opening the services for user administration loads no inference code)."""
    real: list[JobHandler] = []

    def run(ctx: JobContext) -> dict:
        if not real:
            from . import analysis

            real.append(analysis.make_job_handler(settings))
        return real[0](ctx)

    return run


@dataclass
class Services:
    settings: Settings
    store: Store
    audit: AuditLog
    users: UserService
    studies: StudyService
    jobs: JobQueue

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        handler: JobHandler | None = None,
        start_jobs: bool = True,
        clock: Callable[[], float] = time.time,
        bcrypt_rounds: int | None = None,
    ) -> Services:
        """Open the store in ``settings.data_dir`` (creating/migrating it), recover from an
        interrupted run, and (``start_jobs``) start the queue's workers.

        ``bcrypt_rounds`` is for tests only (Settings refuses a cost below 12).
        """
        store = Store.open(settings.data_dir, clock=clock)
        try:
            audit = AuditLog(store)
            users = UserService(store, audit, settings, clock=clock, rounds=bcrypt_rounds)
            studies = StudyService(store, audit, settings)
            jobs = JobQueue(
                store,
                handler if handler is not None else default_job_handler(settings),
                workers=settings.workers,
                max_pending=settings.queue_max,
                audit=audit,
            )
            services = cls(settings, store, audit, users, studies, jobs)
            if start_jobs:
                jobs.start()
        except BaseException:
            store.close()
            raise
        return services

    def delete_study(
        self,
        study_id: str,
        *,
        user: str | UserRecord | None,
        address: str | None = None,
        timeout: float = 30.0,
    ) -> StudyRecord:
        """Cancel the study's pending/running analyses, wait for them to stop, then delete the
        study's rows and files."""
        for job in self.jobs.list(study_id=study_id, states=("pending", "running")):
            self.jobs.cancel(job.id, user=user, address=address)
        deadline = time.monotonic() + timeout
        while self.jobs.list(study_id=study_id, states=("running",)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return self.studies.delete(study_id, user=user, address=address)

    def record_settings_change(
        self,
        old: Settings,
        new: Settings,
        *,
        user: str | UserRecord | None,
        address: str | None = None,
    ) -> dict[str, tuple[object, object]]:
        """Audit what changed between two Settings (call after ``new.save()``); returns
        ``{field: (old, new)}``. Settings hold no secrets (TLS key files are paths)."""
        before, after = old.describe(), new.describe()
        changed = {k: (before[k], after[k]) for k in after if before.get(k) != after[k]}
        if changed:
            self.audit.record(
                "settings_changed",
                user=user.name if isinstance(user, UserRecord) else user,
                address=address,
                detail={k: {"from": a, "to": b} for k, (a, b) in changed.items()},
            )
        return changed

    def close(self, timeout: float = 30.0) -> None:
        """Stop the workers (running jobs are cancelled) and close the database."""
        self.jobs.stop(timeout=timeout, cancel_running=True)
        self.store.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
