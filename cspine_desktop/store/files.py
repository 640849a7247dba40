"""Crash-safe file writing: temp file + fsync + rename (+ fsync of the folder).

A reader never sees a half-written file under its final name: data go to a hidden temporary
name in the same folder, are flushed to disk, then renamed over the final name in one step.
Folders whose name starts with :data:`TEMP_PREFIX` are scratch space that recovery removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import SupportsRead

TEMP_PREFIX = ".tmp-"
CHUNK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new/renamed names) to disk; a no-op where unsupported."""
    if os.name == "nt":  # pragma: no cover - Windows cannot open folders for fsync
        return
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-{final.name}")


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on clean exit fsync it and rename it into place.

    For writers that need a path (NIfTI, PDF). On an exception the temporary file is removed
    and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(final: Path, data: bytes | BinaryIO) -> tuple[int, str]:
    """Write bytes (or a binary stream, read in chunks) atomically; returns (size, sha256 hex)."""
    digest = hashlib.sha256()
    size = 0
    with atomic_path(final) as tmp, open(tmp, "wb") as out:
        if isinstance(data, (bytes, bytearray, memoryview)):
            out.write(data)
            digest.update(data)
            size = len(data)
        else:
            while chunk := data.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def write_durable(
    path: Path, data: bytes | SupportsRead[bytes], max_bytes: int | None = None
) -> tuple[int, str]:
    """Write a NEW file inside a scratch folder and fsync it (no rename needed there).

    A stream is read in chunks; more than ``max_bytes`` raises :class:`SizeLimitExceeded`
    as soon as the limit is crossed (the partial file stays in scratch for the caller to drop).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(path, "xb") as out:
        if isinstance(data, (bytes, bytearray, memoryview)):
            out.write(data)
            digest.update(data)
            size = len(data)
        else:
            while chunk := data.read(CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise SizeLimitExceeded(size)
                out.write(chunk)
                digest.update(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


class SizeLimitExceeded(Exception):
    """Raised by :func:`write_durable` when a stream is longer than allowed."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9._\- ]+")


def safe_relpath(name: str) -> Path:
    """A relative path made of harmless components (no ``..``, drive, root or odd characters)."""
    parts = []
    for part in re.split(r"[\\/]+", name):
        part = _UNSAFE.sub("_", part).strip(" .")
        if part and part not in {".", ".."}:
            parts.append(part[:120])
    return Path(*parts) if parts else Path("file")


def remove_tree(path: Path) -> None:
    """Delete a folder: rename it to a scratch name first so a crash leaves only scratch."""
    if not path.exists():
        return
    doomed = path.with_name(f"{TEMP_PREFIX}del-{uuid.uuid4().hex}")
    os.replace(path, doomed)
    fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)
