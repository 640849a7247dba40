"""Studies and their derived files: rows and files appear together or not at all.

Import protocol (see :class:`StudyStaging`): files are written and fsynced into a scratch folder
``studies/.tmp-<id>/``; then, inside one write transaction, the study row is inserted and the
folder is renamed to ``studies/<id>/`` before COMMIT. A crash before the rename leaves scratch
(removed at the next start); a crash between rename and COMMIT leaves a folder without a row
(an orphan, removed at the next start); a committed row always has its complete folder.

Deletion runs the other way round: the row (with its analyses and artifacts, by cascade) is
deleted and committed first, then the folder is removed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from ..errors import CspineInputError, NotFoundError, StorageFullError, StudyTooLargeError
from .db import Database
from .files import (
    TEMP_PREFIX,
    SizeLimitExceeded,
    atomic_path,
    fsync_dir,
    remove_tree,
    safe_relpath,
    sha256_file,
    write_durable,
)
from .records import (
    AnalysisRecord,
    ArtifactRecord,
    StudyRecord,
    row_analysis,
    row_artifact,
    row_study,
)

if TYPE_CHECKING:
    from _typeshed import SupportsRead

log = logging.getLogger(__name__)

STUDY_FIELDS = (
    "study_uid",
    "series_uid",
    "patient_id",
    "patient_name",
    "study_date",
    "description",
    "modality",
)


class StudyStaging:
    """Collects one study's files in scratch space; :meth:`commit` publishes them atomically.

    Use as a context manager: leaving the block with an exception (or without commit) removes
    everything written so far. ``max_files`` / ``max_bytes`` bound what one import may hold.
    """

    def __init__(
        self,
        tables: StudyTables,
        max_files: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.tables = tables
        self.id = uuid.uuid4().hex
        self.dir = tables.root / f"{TEMP_PREFIX}{self.id}"
        (self.dir / "files").mkdir(parents=True)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.n_files = 0
        self.size_bytes = 0
        self._names: set[str] = set()
        self.committed: StudyRecord | None = None

    def _target(self, name: str) -> Path:
        rel = safe_relpath(name)
        candidate, n = rel, 1
        while candidate.as_posix().lower() in self._names:
            candidate = rel.with_name(f"{rel.stem}-{n}{rel.suffix}")
            n += 1
        self._names.add(candidate.as_posix().lower())
        return self.dir / "files" / candidate

    def _check_limits(self, more_bytes: int) -> None:
        """Before adding one more file of ``more_bytes`` (0 when unknown, for streams)."""
        if self.max_files is not None and self.n_files + 1 > self.max_files:
            raise StudyTooLargeError(f"The study has more than {self.max_files} files.")
        if self.max_bytes is not None and self.size_bytes + more_bytes > self.max_bytes:
            self._too_large()

    def _too_large(self) -> NoReturn:
        assert self.max_bytes is not None  # only a set limit can be exceeded
        raise StudyTooLargeError(
            f"The study is larger than the limit of {self.max_bytes / 2**20:.0f} MiB."
        )

    def add(self, name: str, data: bytes | SupportsRead[bytes]) -> Path:
        """Store one file under a sanitised version of ``name`` (a relative path)."""
        self._check_limits(len(data) if isinstance(data, bytes) else 0)
        target = self._target(name)
        room = None if self.max_bytes is None else self.max_bytes - self.size_bytes
        try:
            size, _ = write_durable(target, data, max_bytes=room)
        except SizeLimitExceeded:
            self._too_large()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(
                    "There is not enough free disk space in the data folder to store the study."
                ) from None
            raise
        self.n_files += 1
        self.size_bytes += size
        return target

    def add_path(self, src: Path, name: str | None = None) -> Path:
        """Copy a local file (streamed, fsynced)."""
        with open(src, "rb") as fh:
            return self.add(name or src.name, fh)

    def commit(self, imported_by: str | None, source: str, address: str | None, **meta: Any):
        """Insert the row and publish the folder in one step; returns the StudyRecord."""
        if self.n_files == 0:
            raise CspineInputError("The study holds no files.")
        for sub in sorted({p.parent for p in self.dir.rglob("*") if p.is_file()}):
            fsync_dir(sub)
        record = self.tables._publish(self, imported_by, source, address, meta)
        self.committed = record
        return record

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> StudyStaging:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.committed is None:
            self.abort()


class StudyTables:
    def __init__(self, db: Database, root: Path, clock: Callable[[], float]) -> None:
        self.db = db
        self.root = root
        self.clock = clock
        root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ import / delete
    def stage(self, max_files: int | None = None, max_bytes: int | None = None) -> StudyStaging:
        return StudyStaging(self, max_files=max_files, max_bytes=max_bytes)

    def _publish(
        self,
        staging: StudyStaging,
        imported_by: str | None,
        source: str,
        address: str | None,
        meta: dict[str, Any],
    ) -> StudyRecord:
        if source not in ("local", "remote"):
            raise ValueError(f"source must be 'local' or 'remote', not {source!r}")
        unknown = set(meta) - set(STUDY_FIELDS)
        if unknown:
            raise ValueError(f"unknown study fields: {sorted(unknown)}")
        values = {k: str(meta.get(k) or "") for k in STUDY_FIELDS}
        final = self.root / staging.id
        renamed = False
        try:
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO studies (id, study_uid, series_uid, patient_id, patient_name, "
                    "study_date, description, modality, source, address, imported_by, "
                    "received_at, relpath, n_files, size_bytes) VALUES (:id, :study_uid, "
                    ":series_uid, :patient_id, :patient_name, :study_date, :description, "
                    ":modality, :source, :address, :imported_by, :received_at, :relpath, "
                    ":n_files, :size_bytes)",
                    {
                        **values,
                        "id": staging.id,
                        "source": source,
                        "address": address,
                        "imported_by": imported_by,
                        "received_at": self.clock(),
                        "relpath": staging.id,
                        "n_files": staging.n_files,
                        "size_bytes": staging.size_bytes,
                    },
                )
                os.replace(staging.dir, final)  # published only if the COMMIT below succeeds
                renamed = True
                fsync_dir(self.root)
        except BaseException:
            if renamed and final.exists():  # the transaction failed: un-publish the folder
                os.replace(final, staging.dir)
            raise
        return self.get(staging.id)

    def delete(self, study_id: str) -> StudyRecord:
        """Delete the row (cascading to analyses and artifacts), then the folder."""
        record = self.get(study_id)
        self.db.execute("DELETE FROM studies WHERE id = ?", (study_id,))
        remove_tree(record.path)
        return record

    def update(self, study_id: str, **meta: Any) -> StudyRecord:
        """Change descriptive fields (UIDs, patient, description, modality) after import."""
        unknown = set(meta) - set(STUDY_FIELDS)
        if unknown:
            raise ValueError(f"unknown study fields: {sorted(unknown)}")
        self.get(study_id)
        if meta:
            sets = ", ".join(f"{k} = ?" for k in meta)  # keys from the STUDY_FIELDS whitelist
            self.db.execute(
                f"UPDATE studies SET {sets} WHERE id = ?",  # noqa: S608
                (*(str(v or "") for v in meta.values()), study_id),
            )
        return self.get(study_id)

    # ------------------------------------------------------------------ queries
    def get(self, study_id: str) -> StudyRecord:
        row = self.db.query_one("SELECT * FROM studies WHERE id = ?", (study_id,))
        if row is None:
            raise NotFoundError(f"No study with id {study_id}.")
        return row_study(row, self.root)

    def find(
        self,
        text: str | None = None,
        study_uid: str | None = None,
        patient_id: str | None = None,
        source: str | None = None,
        since: float | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[StudyRecord]:
        """Newest first. ``text`` matches patient id/name, description or UIDs (substring)."""
        like = None if not text else "%" + _escape_like(text) + "%"
        rows = self.db.query(
            "SELECT * FROM studies WHERE "
            "(:like IS NULL OR patient_id LIKE :like ESCAPE '\\' OR patient_name LIKE :like "
            "ESCAPE '\\' OR description LIKE :like ESCAPE '\\' OR study_uid LIKE :like "
            "ESCAPE '\\') AND (:uid IS NULL OR study_uid = :uid) "
            "AND (:pid IS NULL OR patient_id = :pid) AND (:src IS NULL OR source = :src) "
            "AND (:since IS NULL OR received_at >= :since) "
            "ORDER BY received_at DESC, id LIMIT :limit OFFSET :offset",
            {
                "like": like,
                "uid": study_uid,
                "pid": patient_id,
                "src": source,
                "since": since,
                "limit": int(limit),
                "offset": int(offset),
            },
        )
        return [row_study(r, self.root) for r in rows]

    def count(self) -> int:
        return self.db.query_count("SELECT COUNT(*) FROM studies")

    def latest_jobs(self, study_ids: list[str]) -> dict[str, AnalysisRecord]:
        """The newest analysis of each given study (studies without one are left out)."""
        if not study_ids:
            return {}
        rows = self.db.query(
            "SELECT a.* FROM analyses a JOIN (SELECT value AS sid FROM json_each(?)) s "
            "ON a.study_id = s.sid WHERE a.rowid = (SELECT b.rowid FROM analyses b "
            "WHERE b.study_id = a.study_id ORDER BY b.created_at DESC, b.rowid DESC LIMIT 1)",
            (json.dumps(study_ids),),
        )
        return {r["study_id"]: row_analysis(r) for r in rows}

    # ------------------------------------------------------------------ artifacts
    @contextmanager
    def artifact_path(
        self, study_id: str, name: str, kind: str, analysis_id: str | None = None
    ) -> Iterator[Path]:
        """Yield a temporary path to write one derived file to; on clean exit it is fsynced,
        renamed into ``<study>/results/<analysis or 'study'>/<name>`` and recorded (replacing
        an artifact of the same name)."""
        study = self.get(study_id)
        rel = Path(study.relpath) / "results" / (analysis_id or "study") / safe_relpath(name)
        final = self.root / rel
        with atomic_path(final) as tmp:
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"nothing was written for artifact {name}")
        self._record_artifact(study_id, analysis_id, kind, safe_relpath(name).as_posix(), rel)

    def write_artifact(
        self,
        study_id: str,
        name: str,
        kind: str,
        data: bytes | BinaryIO,
        analysis_id: str | None = None,
    ) -> ArtifactRecord:
        with self.artifact_path(study_id, name, kind, analysis_id) as tmp, open(tmp, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                shutil.copyfileobj(data, fh)
        return self.artifacts(study_id, analysis_id, name=safe_relpath(name).as_posix())[0]

    def _record_artifact(
        self, study_id: str, analysis_id: str | None, kind: str, name: str, rel: Path
    ) -> None:
        path = self.root / rel
        size, digest = path.stat().st_size, sha256_file(path)
        try:
            with self.db.write() as conn:
                conn.execute("DELETE FROM artifacts WHERE relpath = ?", (rel.as_posix(),))
                conn.execute(
                    "INSERT INTO artifacts (study_id, analysis_id, kind, name, relpath, "
                    "size_bytes, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (study_id, analysis_id, kind, name, rel.as_posix(), size, digest, self.clock()),
                )
        except BaseException:
            path.unlink(missing_ok=True)  # no row → no file
            raise

    def artifacts(
        self, study_id: str, analysis_id: str | None = None, name: str | None = None
    ) -> list[ArtifactRecord]:
        rows = self.db.query(
            "SELECT * FROM artifacts WHERE study_id = ? AND (? IS NULL OR analysis_id = ?) "
            "AND (? IS NULL OR name = ?) ORDER BY id",
            (study_id, analysis_id, analysis_id, name, name),
        )
        return [row_artifact(r, self.root) for r in rows]

    def delete_artifacts(self, analysis_id: str) -> int:
        """Remove an analysis's derived files and rows (after a failed or cancelled run)."""
        rows = self.db.query("SELECT relpath FROM artifacts WHERE analysis_id = ?", (analysis_id,))
        self.db.execute("DELETE FROM artifacts WHERE analysis_id = ?", (analysis_id,))
        for row in rows:
            (self.root / row["relpath"]).unlink(missing_ok=True)
        return len(rows)

    # ------------------------------------------------------------------ recovery
    def recover(self, grace_s: float) -> list[Path]:
        """Remove scratch folders and folders without a row that are older than ``grace_s``,
        and artifact files without a row. Returns what was removed."""
        known = {r["relpath"] for r in self.db.query("SELECT relpath FROM studies")}
        known_files = {r["relpath"] for r in self.db.query("SELECT relpath FROM artifacts")}
        now = time.time()  # file ages are wall-clock, whatever clock the store was given
        removed: list[Path] = []
        for entry in self.root.iterdir():
            if entry.name in known:
                results = entry / "results"
                if results.is_dir():
                    for f in results.rglob("*"):
                        rel = f.relative_to(self.root).as_posix()
                        if f.is_file() and rel not in known_files and _old(f, now, grace_s):
                            f.unlink(missing_ok=True)
                            removed.append(f)
                continue
            if _old(entry, now, grace_s):
                log.warning("removing incomplete or orphaned study data %s", entry.name)
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
        return removed


def _old(path: Path, now: float, grace_s: float) -> bool:
    try:
        return now - path.stat().st_mtime >= grace_s
    except FileNotFoundError:
        return False


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
