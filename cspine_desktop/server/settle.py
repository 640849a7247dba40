"""Collect STOW-RS instances into studies and queue each study once it has settled.

A PACS sends a study as one or many STOW-RS requests. Instances are grouped by (sender,
StudyInstanceUID) into an open import (files go straight into the store's scratch folder); when
no instance of that study has arrived for ``ServerConfig.settle_s`` seconds, the study is checked
with the loader, published and queued for analysis. A study that fails the check is discarded
(the audit trail records why). ``close()`` publishes what is still collecting.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from ..errors import QueueFullError, UserFacingError
from ..services import Services, StudyImport
from ..store import UserRecord
from .config import ServerConfig
from .uploads import commit_validated

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    user: UserRecord
    study_uid: str
    imp: StudyImport
    last: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    instances: set[str] = field(default_factory=set)
    closed: bool = False


@dataclass(frozen=True)
class SettledStudy:
    """What became of one collected study: a queued job, or the reason it was refused."""

    study_uid: str
    user: str
    n_instances: int
    study_id: str | None = None
    job_id: str | None = None
    error: str | None = None


class StudyCollector:
    def __init__(
        self, services: Services, config: ServerConfig, clock=time.monotonic, history: int = 200
    ) -> None:
        self.services = services
        self.config = config
        self.clock = clock
        self.history: list[SettledStudy] = []
        self._history_max = history
        self._buckets: dict[tuple[int, str], _Bucket] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ receiving
    def add(
        self,
        user: UserRecord,
        address: str | None,
        study_uid: str,
        sop_uid: str,
        data: BinaryIO,
    ) -> bool:
        """Store one instance; False when this study already had it (not stored twice)."""
        self._ensure_thread()
        while True:
            key = (user.id, study_uid)
            with self._lock:
                bucket = self._buckets.get(key)
                if bucket is None:
                    imp = self.services.studies.begin_import(
                        user=user,
                        source="remote",
                        address=address,
                        max_files=self.config.max_upload_files,
                        max_bytes=self.config.max_expanded_bytes,
                    )
                    bucket = _Bucket(user, study_uid, imp, self.clock())
                    self._buckets[key] = bucket
            with bucket.lock:
                if bucket.closed:
                    continue  # settled meanwhile: start a new study
                bucket.last = self.clock()
                if sop_uid in bucket.instances:
                    return False
                bucket.imp.add(f"{sop_uid}.dcm", data)
                bucket.instances.add(sop_uid)
                return True

    def pending(self) -> int:
        with self._lock:
            return len(self._buckets)

    # ------------------------------------------------------------------ settling
    def flush(self, older_than: float | None = None) -> list[SettledStudy]:
        """Publish and queue every study idle for ``older_than`` s (None: all of them)."""
        now = self.clock()
        with self._lock:
            due = [
                k
                for k, b in self._buckets.items()
                if older_than is None or now - b.last >= older_than
            ]
            buckets = [self._buckets.pop(k) for k in due]
        return [self._settle(b) for b in buckets]

    def _settle(self, bucket: _Bucket) -> SettledStudy:
        with bucket.lock:
            bucket.closed = True
        n = len(bucket.instances)
        base = SettledStudy(bucket.study_uid, bucket.user.name, n)
        try:
            with bucket.imp as imp:
                study = commit_validated(imp, f"The study {bucket.study_uid}")
        except UserFacingError as err:
            log.warning("STOW-RS study refused: %s", err)
            return self._remember(replace(base, error=str(err)))
        except Exception as exc:
            log.exception("could not publish a STOW-RS study")
            return self._remember(replace(base, error=f"internal error ({exc})"))
        try:
            job_id = self.services.jobs.enqueue(
                study.id, user=bucket.user, address=bucket.imp.address
            )
        except QueueFullError as err:
            log.warning("STOW-RS study %s stored but not queued: %s", study.id, err)
            return self._remember(replace(base, study_id=study.id, error=str(err)))
        return self._remember(replace(base, study_id=study.id, job_id=job_id))

    def _remember(self, item: SettledStudy) -> SettledStudy:
        self.history.append(item)
        del self.history[: -self._history_max]
        return item

    # ------------------------------------------------------------------ thread
    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._run, name="cspine-stow-settle", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        tick = max(0.05, min(1.0, self.config.settle_s / 4))
        while not self._stop.wait(tick):
            try:
                self.flush(older_than=self.config.settle_s)
            except Exception:
                log.exception("STOW-RS settle error")

    def close(self) -> list[SettledStudy]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.flush()
