"""Safe reading of a study sent as a zip.

Refused before anything is written (:class:`UnsafeArchiveError`):
- member names that are absolute or climb out of the archive (``..``, drive letters);
- symbolic links, device files, FIFOs and sockets;
- more than ``MAX_MEMBERS`` members, more than ``MAX_TOTAL_BYTES`` uncompressed in total, or a
  member that inflates more than ``MAX_RATIO`` times (zip bombs) once past ``RATIO_FLOOR_BYTES``.

Members are extracted under flat numbered names into a private temporary folder, so no member
name ever becomes a path on disk; the folder is deleted when the load finishes. The member
names are kept so that results can name the original files.
"""

from __future__ import annotations

import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..errors import CorruptFileError, UnsafeArchiveError, UnsupportedFormatError
from ._control import Control

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_RATIO = 200.0
RATIO_FLOOR_BYTES = 16 * 1024**2
_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_member(info: zipfile.ZipInfo) -> None:
    """Raise :class:`UnsafeArchiveError` when one member is unsafe to extract."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchiveError(f"The zip holds an absolute path ({info.filename!r}); refused.")
    if ".." in PurePosixPath(name).parts:
        raise UnsafeArchiveError(
            f"The zip holds a path that climbs out of the archive ({info.filename!r}); refused."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"The zip holds a symbolic link ({info.filename!r}); refused.")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise UnsafeArchiveError(f"The zip holds a device or pipe ({info.filename!r}); refused.")
    if info.file_size > RATIO_FLOOR_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > MAX_RATIO:
            raise UnsafeArchiveError(
                f"The zip member {info.filename!r} inflates {ratio:.0f} times "
                f"(limit {MAX_RATIO:.0f}); refused as a possible zip bomb."
            )


def check_archive(infos: list[zipfile.ZipInfo]) -> None:
    """Raise :class:`UnsafeArchiveError` when the archive as a whole is unsafe."""
    if len(infos) > MAX_MEMBERS:
        raise UnsafeArchiveError(
            f"The zip holds {len(infos)} files (limit {MAX_MEMBERS}); refused."
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        raise UnsafeArchiveError(
            f"The zip would unpack to {total / 1024**3:.1f} GiB "
            f"(limit {MAX_TOTAL_BYTES / 1024**3:.0f} GiB); refused."
        )
    for info in infos:
        check_member(info)


@contextmanager
def extract_zip_safely(
    path: Path, control: Control
) -> Iterator[tuple[Path, dict[Path, str], list[str]]]:
    """Check and extract ``path``.

    Yields (temporary folder, extracted file → member name, names of damaged members that
    were skipped).
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFileError(f"{path.name} is not a readable zip file ({exc}).") from exc
    with zf, tempfile.TemporaryDirectory(prefix="cspine-zip-") as tmp:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        check_archive(infos)
        if any(i.flag_bits & 0x1 for i in infos):
            raise UnsupportedFormatError(f"{path.name} is password-protected; unzip it first.")
        members: dict[Path, str] = {}
        damaged: list[str] = []
        folder = Path(tmp)
        for n, info in enumerate(infos):
            control.check()
            control.report(n, len(infos), "extracting")
            target = folder / f"{n:06d}"
            if _extract_member(zf, info, target, path):
                members[target] = info.filename
            else:
                damaged.append(info.filename)
        control.report(len(infos), len(infos), "extracting")
        yield folder, members, damaged


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, path: Path) -> bool:
    """Extract one member to ``target``; False (and nothing left on disk) when it is damaged."""
    written = 0
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:  # never trust the declared size blindly
                    raise UnsafeArchiveError(
                        f"The zip member {info.filename!r} is larger than declared; refused."
                    )
                dst.write(chunk)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        ValueError,
        zlib.error,
        OSError,
    ) as exc:
        if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
            raise UnsafeArchiveError(f"Not enough disk space to unpack {path.name}.") from exc
        target.unlink(missing_ok=True)
        return False
    except NotImplementedError as exc:  # unknown compression method
        raise UnsupportedFormatError(
            f"{info.filename!r} in {path.name} uses an unsupported compression ({exc})."
        ) from exc
    return True
