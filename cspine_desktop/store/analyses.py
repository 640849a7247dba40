"""The analyses table: the persistent half of the job queue.

State machine: pending → running → succeeded | failed | cancelled; pending → cancelled;
running → pending again only through :meth:`AnalysisTables.requeue_running` (crash recovery).
Every transition is one UPDATE guarded by the expected current state, so two threads or two
processes can never both claim or both finish the same job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import NotFoundError
from .db import Database
from .records import AnalysisRecord, row_analysis


class AnalysisTables:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def create(self, study_id: str, requested_by: str | None, max_pending: int) -> str | None:
        """Insert a pending job unless ``max_pending`` are already waiting (then None)."""
        job_id = uuid.uuid4().hex
        with self.db.write() as conn:
            if not conn.execute("SELECT 1 FROM studies WHERE id = ?", (study_id,)).fetchone():
                raise NotFoundError(f"No study with id {study_id}.")
            n = conn.execute("SELECT COUNT(*) FROM analyses WHERE state = 'pending'").fetchone()
            if n[0] >= max_pending:
                return None
            conn.execute(
                "INSERT INTO analyses (id, study_id, requested_by, state, created_at) "
                "VALUES (?, ?, ?, 'pending', ?)",
                (job_id, study_id, requested_by, self.clock()),
            )
        return job_id

    def active_for_study(self, study_id: str) -> AnalysisRecord | None:
        row = self.db.query_one(
            "SELECT * FROM analyses WHERE study_id = ? AND state IN ('pending', 'running') "
            "ORDER BY created_at LIMIT 1",
            (study_id,),
        )
        return None if row is None else row_analysis(row)

    def claim_next(self) -> AnalysisRecord | None:
        """Atomically move the oldest pending job to running and return it."""
        now = self.clock()
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT id FROM analyses WHERE state = 'pending' ORDER BY created_at, rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE analyses SET state = 'running', started_at = ?, heartbeat_at = ?, "
                "attempts = attempts + 1, progress = 0, stage = '', error = NULL "
                "WHERE id = ? AND state = 'pending'",
                (now, now, row["id"]),
            )
            claimed = conn.execute("SELECT * FROM analyses WHERE id = ?", (row["id"],)).fetchone()
        return row_analysis(claimed)

    def set_progress(self, job_id: str, progress: int, stage: str) -> bool:
        n = self.db.execute(
            "UPDATE analyses SET progress = ?, stage = ?, heartbeat_at = ? "
            "WHERE id = ? AND state = 'running'",
            (max(0, min(100, int(progress))), stage, self.clock(), job_id),
        )
        return n == 1

    def heartbeat(self, job_ids: Sequence[str]) -> None:
        now = self.clock()
        with self.db.write() as conn:
            for job_id in job_ids:
                conn.execute(
                    "UPDATE analyses SET heartbeat_at = ? WHERE id = ? AND state = 'running'",
                    (now, job_id),
                )

    def finish(
        self,
        job_id: str,
        state: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """running → succeeded/failed/cancelled. Returns False if the job was not running
        (deleted with its study, or already finished)."""
        if state not in ("succeeded", "failed", "cancelled"):
            raise ValueError(state)
        result_json = timings_json = model_sha = backend = None
        if result is not None:
            result_json = json.dumps(result, sort_keys=True, allow_nan=False)
            timings = result.get("timings")
            timings_json = None if timings is None else json.dumps(timings, sort_keys=True)
            model = result.get("model")
            model_sha = model.get("sha256") if isinstance(model, dict) else None
            backend = result.get("backend")
            backend = None if backend is None else str(backend)
        n = self.db.execute(
            "UPDATE analyses SET state = ?, result_json = ?, timings_json = ?, "
            "model_sha256 = ?, backend = ?, error = ?, finished_at = ?, "
            "progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END "
            "WHERE id = ? AND state = 'running'",
            (
                state,
                result_json,
                timings_json,
                model_sha,
                backend,
                error,
                self.clock(),
                state,
                job_id,
            ),
        )
        return n == 1

    def release(self, job_id: str) -> bool:
        """running → pending without counting an attempt (the app shut down mid-run)."""
        n = self.db.execute(
            "UPDATE analyses SET state = 'pending', progress = 0, stage = '', started_at = NULL, "
            "attempts = MAX(attempts - 1, 0) WHERE id = ? AND state = 'running'",
            (job_id,),
        )
        return n == 1

    def cancel_pending(self, job_id: str) -> bool:
        n = self.db.execute(
            "UPDATE analyses SET state = 'cancelled', cancel_requested = 1, finished_at = ? "
            "WHERE id = ? AND state = 'pending'",
            (self.clock(), job_id),
        )
        return n == 1

    def request_cancel(self, job_id: str) -> bool:
        n = self.db.execute(
            "UPDATE analyses SET cancel_requested = 1 WHERE id = ? AND state = 'running'",
            (job_id,),
        )
        return n == 1

    def requeue_running(self, stale_before: float | None, max_attempts: int) -> list[str]:
        """Send interrupted jobs back to pending (or to failed after ``max_attempts`` tries).

        ``stale_before=None`` takes every running job (nobody else has the store open);
        otherwise only jobs whose heartbeat is older than that time.
        """
        now = self.clock()
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT id, attempts, cancel_requested FROM analyses WHERE state = 'running' "
                "AND (? IS NULL OR heartbeat_at IS NULL OR heartbeat_at < ?)",
                (stale_before, stale_before),
            ).fetchall()
            requeued = []
            for row in rows:
                if row["cancel_requested"]:
                    conn.execute(
                        "UPDATE analyses SET state = 'cancelled', finished_at = ? WHERE id = ?",
                        (now, row["id"]),
                    )
                elif row["attempts"] >= max_attempts:
                    conn.execute(
                        "UPDATE analyses SET state = 'failed', finished_at = ?, error = ? "
                        "WHERE id = ?",
                        (
                            now,
                            f"Interrupted {row['attempts']} times; not retried again.",
                            row["id"],
                        ),
                    )
                else:
                    conn.execute(
                        "UPDATE analyses SET state = 'pending', progress = 0, stage = '', "
                        "started_at = NULL WHERE id = ?",
                        (row["id"],),
                    )
                    requeued.append(row["id"])
        return requeued

    def get(self, job_id: str) -> AnalysisRecord:
        row = self.db.query_one("SELECT * FROM analyses WHERE id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"No analysis job with id {job_id}.")
        return row_analysis(row)

    def find(
        self,
        study_id: str | None = None,
        states: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[AnalysisRecord]:
        """Newest first."""
        states_json = None if states is None else json.dumps(list(states))
        rows = self.db.query(
            "SELECT * FROM analyses WHERE (? IS NULL OR study_id = ?) AND "
            "(? IS NULL OR state IN (SELECT value FROM json_each(?))) "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (study_id, study_id, states_json, states_json, int(limit)),
        )
        return [row_analysis(r) for r in rows]

    def count(self, state: str | None = None) -> int:
        return self.db.query_count(
            "SELECT COUNT(*) FROM analyses WHERE (? IS NULL OR state = ?)", (state, state)
        )
