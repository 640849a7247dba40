"""The audit_events table: insert and query only (UPDATE/DELETE are refused by triggers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .db import Database
from .records import AuditEvent, iso_utc, row_audit


class AuditTable:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def append(
        self,
        action: str,
        event_code: str,
        action_code: str,
        outcome: str,
        outcome_code: int,
        user_name: str | None = None,
        address: str | None = None,
        study_uid: str | None = None,
        patient_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        ts = self.clock()
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO audit_events (ts, time_utc, action, event_code, action_code, "
                "outcome, outcome_code, user_name, address, study_uid, patient_id, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ts,
                    iso_utc(ts),
                    action,
                    event_code,
                    action_code,
                    outcome,
                    outcome_code,
                    user_name,
                    address,
                    study_uid,
                    patient_id,
                    None if detail is None else json.dumps(detail, sort_keys=True, default=str),
                ),
            )
            assert cur.lastrowid is not None  # set by every INSERT
            return cur.lastrowid

    def query(
        self,
        since: float | None = None,
        until: float | None = None,
        user_name: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        study_uid: str | None = None,
        patient_id: str | None = None,
        address: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Oldest first, filtered; ``user_name`` matches regardless of case."""
        rows = self.db.query(
            "SELECT * FROM audit_events WHERE (:since IS NULL OR ts >= :since) "
            "AND (:until IS NULL OR ts < :until) "
            "AND (:user IS NULL OR user_name = :user COLLATE NOCASE) "
            "AND (:action IS NULL OR action = :action) "
            "AND (:outcome IS NULL OR outcome = :outcome) "
            "AND (:uid IS NULL OR study_uid = :uid) AND (:pid IS NULL OR patient_id = :pid) "
            "AND (:addr IS NULL OR address = :addr) ORDER BY id LIMIT :limit",
            {
                "since": since,
                "until": until,
                "user": user_name,
                "action": action,
                "outcome": outcome,
                "uid": study_uid,
                "pid": patient_id,
                "addr": address,
                "limit": -1 if limit is None else int(limit),
            },
        )
        return [row_audit(r) for r in rows]
