"""The :class:`Store`: one SQLite database plus the study folders beside it.

Layout inside the data dir::

    cspine.sqlite3 (+ -wal, -shm)   users, tokens, studies, analyses, artifacts, audit trail
    studies/<study id>/files/...    input files exactly as received
    studies/<study id>/results/<analysis id>/...   masks, heat-maps, reports
    studies/.tmp-*                  scratch (imports in progress, deletions), removed at start
    .cspine.lock                    advisory lock: tells a starting process whether it is alone
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from .accounts import AccountTables
from .analyses import AnalysisTables
from .audit import AuditTable
from .db import Database
from .schema import SCHEMA_VERSION, migrate, schema_version
from .studies import StudyTables

try:  # POSIX advisory locks; elsewhere the store assumes it may not be alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DB_NAME = "cspine.sqlite3"
STUDIES_DIR = "studies"
LOCK_NAME = ".cspine.lock"
# when other processes have the store open, scratch younger than this may still be in use
SHARED_GRACE_S = 3600.0
# a job interrupted this many times is marked failed instead of being run again
MAX_JOB_ATTEMPTS = 3


class Store:
    """Open with :meth:`open`; close with :meth:`close` (or use as a context manager).

    Attributes: ``accounts`` (users, tokens, login throttle), ``studies`` (studies, staging,
    artifacts), ``analyses`` (jobs and results), ``audit`` (append-only events), ``db``.
    ``alone_at_open`` is True when no other process had the store open when this one opened it.
    Then, while still holding the lock exclusively, :meth:`open` cleans up after a crash and
    sends every "running" job back to pending (``requeued_at_open`` lists them; the job queue
    reports them when it starts); only then may other processes open the store.
    """

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = Path(data_dir)
        self.clock = clock
        # patient data: only the owner may read the folder and the database (POSIX modes)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        self._exclusive = False
        self.alone_at_open = self._take_lock()
        self.requeued_at_open: list[str] = []
        self.db = Database(self.data_dir / DB_NAME)
        if os.name == "posix":
            os.chmod(self.data_dir / DB_NAME, 0o600)
        with self.db.read() as conn:
            migrate(conn)
        self.accounts = AccountTables(self.db, clock)
        self.studies = StudyTables(self.db, self.data_dir / STUDIES_DIR, clock)
        self.analyses = AnalysisTables(self.db, clock)
        self.audit = AuditTable(self.db, clock)

    @classmethod
    def open(
        cls, data_dir: Path | str, clock: Callable[[], float] = time.time, recover: bool = True
    ) -> Store:
        """Open (creating and migrating as needed) and, by default, clean up after a crash."""
        store = cls(Path(data_dir), clock)
        try:
            if recover:
                store.recover()
        except BaseException:
            store.close()
            raise
        finally:
            store._share_lock()
        return store

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def studies_dir(self) -> Path:
        return self.data_dir / STUDIES_DIR

    @property
    def schema_version(self) -> int:
        with self.db.read() as conn:
            return schema_version(conn)

    def recover(self) -> list[Path]:
        """Remove scratch and orphaned files left by an interrupted import or deletion and, when
        no other process has the store open, re-queue every job left "running" (jobs of a
        process that died while others run are re-queued by the job queue once their
        heartbeat is stale)."""
        if self._exclusive:
            self.requeued_at_open += self.analyses.requeue_running(None, MAX_JOB_ATTEMPTS)
        grace = 0.0 if self._exclusive else SHARED_GRACE_S
        removed = self.studies.recover(grace_s=grace)
        if removed:
            log.warning("cleaned up %d incomplete item(s) after an interruption", len(removed))
        return removed

    def integrity_check(self) -> str:
        return self.db.integrity_check()

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ process lock
    def _take_lock(self) -> bool:
        if fcntl is None:  # pragma: no cover
            return False
        fd = os.open(str(self.data_dir / LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        self._lock_fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # kept until recovery is done
            self._exclusive = True
        except OSError:
            fcntl.flock(fd, fcntl.LOCK_SH)  # held until close: others see we are here
        return self._exclusive

    def _share_lock(self) -> None:
        if self._exclusive and self._lock_fd is not None and fcntl is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        self._exclusive = False


__all__ = ["SCHEMA_VERSION", "Store"]
