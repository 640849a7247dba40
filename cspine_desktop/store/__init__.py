"""Persistence: SQLite (WAL, foreign keys, migrations) plus crash-safe study folders.

Use :meth:`Store.open(data_dir) <Store.open>`; the tables are reached through its attributes.
This package imports nothing above it (no services, inference or front ends).
"""

from .backup import backup, restore, verify_backup
from .db import Database
from .files import atomic_path, atomic_write, safe_relpath
from .records import (
    FINISHED_STATES,
    JOB_STATES,
    ROLES,
    USER_STATES,
    AnalysisRecord,
    ArtifactRecord,
    AuditEvent,
    JobRecord,
    StudyRecord,
    TokenRecord,
    UserRecord,
    iso_utc,
)
from .schema import SCHEMA_VERSION
from .store import Store
from .studies import STUDY_FIELDS, StudyStaging

__all__ = [
    "FINISHED_STATES",
    "JOB_STATES",
    "ROLES",
    "SCHEMA_VERSION",
    "STUDY_FIELDS",
    "USER_STATES",
    "AnalysisRecord",
    "ArtifactRecord",
    "AuditEvent",
    "Database",
    "JobRecord",
    "Store",
    "StudyRecord",
    "StudyStaging",
    "TokenRecord",
    "UserRecord",
    "atomic_path",
    "atomic_write",
    "backup",
    "iso_utc",
    "restore",
    "safe_relpath",
    "verify_backup",
]
