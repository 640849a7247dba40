"""The database schema and its forward migrations.

The schema version lives in ``PRAGMA user_version``. :data:`MIGRATIONS` maps each version to the
statements that bring version ``n-1`` up to ``n``; they run in order, each in its own transaction,
so an interrupted upgrade leaves the last completed version behind. Never edit a released
migration: append a new one.

Times are REAL seconds since the Unix epoch (UTC); ids of studies and analyses are opaque
32-character hex strings; user names are unique regardless of case.
"""

from __future__ import annotations

import sqlite3

from ..errors import StoreVersionError

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            full_name TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL CHECK (role IN ('admin', 'radiologist')),
            status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            password_changed_at REAL NOT NULL,
            last_login_at REAL
        )""",
        """CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            revoked_at REAL,
            last_used_at REAL
        )""",
        "CREATE INDEX api_tokens_user ON api_tokens(user_id)",
        """CREATE TABLE login_throttle (
            scope TEXT NOT NULL CHECK (scope IN ('account', 'address')),
            key TEXT NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            last_failure REAL NOT NULL,
            locked_until REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, key)
        )""",
        """CREATE TABLE studies (
            id TEXT PRIMARY KEY,
            study_uid TEXT NOT NULL DEFAULT '',
            series_uid TEXT NOT NULL DEFAULT '',
            patient_id TEXT NOT NULL DEFAULT '',
            patient_name TEXT NOT NULL DEFAULT '',
            study_date TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            modality TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL CHECK (source IN ('local', 'remote')),
            address TEXT,
            imported_by TEXT,
            received_at REAL NOT NULL,
            relpath TEXT NOT NULL UNIQUE,
            n_files INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL
        )""",
        "CREATE INDEX studies_uid ON studies(study_uid)",
        "CREATE INDEX studies_patient ON studies(patient_id)",
        "CREATE INDEX studies_received ON studies(received_at)",
        """CREATE TABLE analyses (
            id TEXT PRIMARY KEY,
            study_id TEXT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            requested_by TEXT,
            state TEXT NOT NULL
                CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
            progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
            stage TEXT NOT NULL DEFAULT '',
            error TEXT,
            model_sha256 TEXT,
            backend TEXT,
            result_json TEXT,
            timings_json TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            heartbeat_at REAL
        )""",
        "CREATE INDEX analyses_state ON analyses(state, created_at)",
        "CREATE INDEX analyses_study ON analyses(study_id)",
        """CREATE TABLE artifacts (
            id INTEGER PRIMARY KEY,
            study_id TEXT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            analysis_id TEXT REFERENCES analyses(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            relpath TEXT NOT NULL UNIQUE,
            size_bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX artifacts_study ON artifacts(study_id)",
        "CREATE INDEX artifacts_analysis ON artifacts(analysis_id)",
        """CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            time_utc TEXT NOT NULL,
            action TEXT NOT NULL,
            event_code TEXT NOT NULL,
            action_code TEXT NOT NULL,
            outcome TEXT NOT NULL,
            outcome_code INTEGER NOT NULL,
            user_name TEXT,
            address TEXT,
            study_uid TEXT,
            patient_id TEXT,
            detail TEXT
        )""",
        "CREATE INDEX audit_ts ON audit_events(ts)",
        "CREATE INDEX audit_user ON audit_events(user_name)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    ),
}

SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; returns the version found before.

    Raises :class:`StoreVersionError` when the file was written by a newer cspine.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreVersionError(
            f"The database was written by a newer cspine (schema {found}; this version reads up "
            f"to {SCHEMA_VERSION}). Update cspine or restore an older backup."
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) >= version:  # another process got here first
                conn.execute("COMMIT")
                continue
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found
