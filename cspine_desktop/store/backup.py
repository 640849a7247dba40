"""Backups: a consistent SQLite snapshot (online backup API) plus the study files.

``backup(store, dest)`` writes ``dest/`` (which must not exist yet, or be an empty folder)::

    manifest.json       format, schema version, time, counts, sha256 of every file
    cspine.sqlite3      snapshot taken with sqlite3.Connection.backup (the app keeps running)
    studies/<id>/...    the folders of the studies that are in the snapshot

The backup is built in ``dest.partial-*`` and renamed to ``dest`` at the end, so a backup that
exists is complete. A study deleted while the backup runs is dropped from the snapshot copy, so
the backup holds no row without its files.

``restore(src, data_dir)`` checks the manifest, the hashes and ``PRAGMA integrity_check``, moves
the current database and studies aside to ``data_dir/pre-restore-<time>/`` and puts the backup
in place. Stop the app (GUI and server) before restoring.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import BackupError
from .db import connect
from .files import atomic_write, fsync_dir, sha256_file
from .records import iso_utc
from .schema import SCHEMA_VERSION, schema_version
from .store import DB_NAME, STUDIES_DIR, Store

log = logging.getLogger(__name__)

FORMAT = "cspine-backup/1"
MANIFEST = "manifest.json"


def backup(store: Store, dest: Path | str) -> dict[str, Any]:
    """Write a complete backup of ``store`` to the folder ``dest``; returns the manifest."""
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"Backup destination {dest} exists and is not an empty folder.")
    if _inside(dest, store.data_dir):
        raise BackupError("The backup destination must be outside the data folder.")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"Cannot create backup folder {dest.parent}: {exc.strerror}.") from None
    work = dest.with_name(f".{dest.name}.partial-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    try:
        manifest = _write_backup(store, work)
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"Backup to {dest} failed: {exc.strerror or exc}.") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _write_backup(store: Store, work: Path) -> dict[str, Any]:
    db_copy = work / DB_NAME
    target = sqlite3.connect(str(db_copy))
    try:
        with store.db.read() as source:
            source.backup(target)
    finally:
        target.close()
    conn = connect(db_copy)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        files: dict[str, dict[str, Any]] = {}
        studies = conn.execute("SELECT id, relpath FROM studies").fetchall()
        dropped = []
        for row in studies:
            src = store.studies_dir / row["relpath"]
            copied = _copy_tree(src, work / STUDIES_DIR / row["relpath"], work, files)
            if not copied:  # deleted while we ran: keep the backup consistent
                conn.execute("DELETE FROM studies WHERE id = ?", (row["id"],))
                dropped.append(row["id"])
        n_studies = len(studies) - len(dropped)
        version = schema_version(conn)
        conn.execute("VACUUM")
    finally:
        conn.close()
    files[DB_NAME] = {"size": db_copy.stat().st_size, "sha256": sha256_file(db_copy)}
    settings_file = store.data_dir / "settings.json"
    if settings_file.is_file():
        shutil.copy2(settings_file, work / "settings.json")
        files["settings.json"] = {
            "size": settings_file.stat().st_size,
            "sha256": sha256_file(work / "settings.json"),
        }
    now = time.time()
    manifest = {
        "format": FORMAT,
        "schema_version": version,
        "created": iso_utc(now),
        "studies": n_studies,
        "files": files,
    }
    atomic_write(work / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return manifest


def _copy_tree(src: Path, dst: Path, root: Path, files: dict[str, dict[str, Any]]) -> bool:
    if not src.is_dir():
        return False
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.name.startswith(".tmp-"):
            continue
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(path, out)
        except FileNotFoundError:
            if not src.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
                for key in [k for k in files if k.startswith(dst.relative_to(root).as_posix())]:
                    del files[key]
                return False
            continue  # an artifact replaced under us; its row will name the new file
        files[out.relative_to(root).as_posix()] = {
            "size": out.stat().st_size,
            "sha256": sha256_file(out),
        }
    return True


def verify_backup(src: Path | str) -> dict[str, Any]:
    """Check a backup folder (manifest, sizes, hashes, SQLite integrity); returns the manifest."""
    src = Path(src).expanduser()
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise BackupError(f"{src} is not a cspine backup (no readable {MANIFEST}).") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src} is not a cspine backup of a format this version reads.")
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise BackupError("The backup was made by a newer cspine; update cspine to restore it.")
    for rel, info in manifest.get("files", {}).items():
        path = src / rel
        if not path.is_file() or path.stat().st_size != info["size"]:
            raise BackupError(f"The backup is incomplete: {rel} is missing or truncated.")
        if sha256_file(path) != info["sha256"]:
            raise BackupError(f"The backup is damaged: {rel} does not match its checksum.")
    conn = sqlite3.connect(f"file:{src / DB_NAME}?mode=ro", uri=True)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"The backup database is damaged: {result}.")
    return manifest


def restore(src: Path | str, data_dir: Path | str) -> Path:
    """Replace the data in ``data_dir`` with the backup ``src``; returns where the previous
    data were moved. The previous data are kept, never deleted."""
    src = Path(src).expanduser().resolve()
    data_dir = Path(data_dir).expanduser().resolve()
    verify_backup(src)
    data_dir.mkdir(parents=True, exist_ok=True)
    incoming = data_dir / f".restore-{uuid.uuid4().hex[:8]}"
    incoming.mkdir()
    try:
        shutil.copyfile(src / DB_NAME, incoming / DB_NAME)
        if (src / STUDIES_DIR).is_dir():
            shutil.copytree(src / STUDIES_DIR, incoming / STUDIES_DIR)
        else:
            (incoming / STUDIES_DIR).mkdir()
        for path in incoming.rglob("*"):
            if path.is_file():
                with open(path, "rb+") as fh:
                    os.fsync(fh.fileno())
    except OSError as exc:
        shutil.rmtree(incoming, ignore_errors=True)
        raise BackupError(f"Restore failed while copying: {exc.strerror or exc}.") from None

    aside = data_dir / f"pre-restore-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    aside.mkdir()
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", STUDIES_DIR):
        if (data_dir / name).exists():
            os.replace(data_dir / name, aside / name)
    os.replace(incoming / DB_NAME, data_dir / DB_NAME)
    os.replace(incoming / STUDIES_DIR, data_dir / STUDIES_DIR)
    if (src / "settings.json").is_file():
        if (data_dir / "settings.json").exists():
            shutil.copy2(data_dir / "settings.json", aside / "settings.json")
        shutil.copyfile(src / "settings.json", data_dir / "settings.json")
    fsync_dir(data_dir)
    shutil.rmtree(incoming, ignore_errors=True)
    log.info("restored backup %s; previous data kept in %s", src, aside)
    return aside


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
