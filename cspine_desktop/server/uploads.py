"""Turn an uploaded study (files or one zip) into an imported study, or refuse it plainly.

Request bodies are parsed by Werkzeug with its file parts spooled to unlinked temporary files in
the data folder (see :class:`UploadRequest`), so an upload is never held whole in memory. Each
part is then streamed into the study store: a zip is checked with the loader's zip-safety rules
(:mod:`cspine_desktop.imaging.archive`: absolute or ``..`` member names, links, device files,
member count, inflation ratio) plus this endpoint's own limits, and its members are streamed
into the study one by one; any other file is stored as received. Before the study is published
the loader reads its headers (:func:`~cspine_desktop.imaging.list_series`), so non-DICOM, MR
or empty uploads are refused with the loader's own words and nothing is kept.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, BinaryIO

import flask
from werkzeug.datastructures import FileStorage

from ..errors import (
    CorruptFileError,
    CspineInputError,
    StudyNotFoundError,
    StudyTooLargeError,
    UnsafeArchiveError,
    UnsupportedFormatError,
    UnsupportedModalityError,
)
from ..imaging import SeriesInfo, list_series
from ..imaging.archive import check_archive
from ..services import Services, StudyImport
from ..store import StudyRecord, UserRecord
from .config import ServerConfig

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
UPLOAD_HINT = "Send the study as multipart/form-data: one or more DICOM files, or one zip of them."


def new_spool_file(cfg: ServerConfig) -> BinaryIO:
    """An unlinked temporary file in the data folder for one uploaded part."""
    cfg.upload_tmp_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=cfg.upload_tmp_dir)  # the caller closes it


class UploadRequest(flask.Request):
    """Flask request whose uploaded files are spooled to the data folder, not to memory."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        return new_spool_file(flask.current_app.extensions["cspine"].config)


class _Bounded(io.RawIOBase):
    """A zip member stream that refuses to yield more than the member declared."""

    def __init__(self, raw: IO[bytes], declared: int, name: str) -> None:
        self.raw, self.left, self.name = raw, declared, name

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(1024 * 1024 if n is None or n < 0 else n)
        self.left -= len(data)
        if self.left < 0:
            raise UnsafeArchiveError(f"The zip member {self.name!r} is larger than declared.")
        return data


def is_zip(fh: IO[bytes]) -> bool:
    pos = fh.tell()
    head = fh.read(4)
    fh.seek(pos)
    return head in ZIP_MAGIC


def add_zip(imp: StudyImport, fh: IO[bytes], label: str, cfg: ServerConfig) -> int:
    """Check one zip and stream its members into the import; returns the member count."""
    fh.seek(0, io.SEEK_END)
    packed = fh.tell()
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFileError(f"{label} is not a readable zip file ({exc}).") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        check_archive(infos)  # the loader's rules: names, links, devices, per-member ratio
        if imp.n_files + len(infos) > cfg.max_upload_files:
            raise StudyTooLargeError(
                f"The zip holds {len(infos)} files; the limit is {cfg.max_upload_files}."
            )
        total = sum(i.file_size for i in infos)
        if imp.size_bytes + total > cfg.max_expanded_bytes:
            raise StudyTooLargeError(
                f"The zip would unpack to {total / 2**20:.1f} MiB; the limit is "
                f"{cfg.max_expanded_bytes / 2**20:.1f} MiB."
            )
        if total > cfg.zip_ratio_floor_bytes and total / max(packed, 1) > cfg.zip_max_ratio:
            raise UnsafeArchiveError(
                f"{label} inflates {total / max(packed, 1):.0f} times (limit "
                f"{cfg.zip_max_ratio:.0f}); refused as a possible zip bomb."
            )
        if any(i.flag_bits & 0x1 for i in infos):
            raise UnsupportedFormatError(f"{label} is password-protected; unzip it first.")
        for info in infos:
            try:
                with zf.open(info) as member:
                    imp.add(info.filename, _Bounded(member, info.file_size, info.filename))
            except (zipfile.BadZipFile, EOFError, ValueError) as exc:
                raise CorruptFileError(
                    f"The zip member {info.filename!r} is damaged ({exc})."
                ) from None
            except NotImplementedError:
                raise UnsupportedFormatError(
                    f"The zip member {info.filename!r} uses an unsupported compression."
                ) from None
    return len(infos)


def add_files(imp: StudyImport, files: Iterable[FileStorage], cfg: ServerConfig) -> None:
    """Stream uploaded files (and the members of zips among them) into the import."""
    for n, storage in enumerate(files):
        name = storage.filename or f"file{n:05d}"
        stream = storage.stream
        if is_zip(stream):
            add_zip(imp, stream, name, cfg)
        else:
            if imp.n_files + 1 > cfg.max_upload_files:
                raise StudyTooLargeError(f"The upload has more than {cfg.max_upload_files} files.")
            imp.add(name, stream)


def validate_study(folder: Path, label: str = "The upload") -> SeriesInfo:
    """The series an analysis will read from ``folder``; the loader's error otherwise.

    Messages name ``label`` instead of the private scratch folder.
    """
    try:
        series = list_series(folder)
    except CspineInputError as err:
        err.message = _relabel(err.message, folder, label)
        raise
    if not series:
        raise StudyNotFoundError(f"{label} holds no DICOM image series.")
    usable = [s for s in series if s.usable]
    if not usable:
        first = series[0]
        others = sorted({s.reason for s in series[1:] if s.reason})
        extra = f" Also found: {'; '.join(others)}." if others else ""
        reason = first.reason or f"{first.modality} series"
        raise UnsupportedModalityError(f"{label} holds no CT series to analyse: {reason}.{extra}")
    return usable[0]


def _relabel(message: str, folder: Path, label: str) -> str:
    for text in (f"The folder {folder}", str(folder)):
        message = message.replace(text, label)
    return message


def import_upload(
    services: Services,
    cfg: ServerConfig,
    files: list[FileStorage],
    user: UserRecord,
    address: str | None,
) -> StudyRecord:
    """Import the uploaded files as one study (validated; nothing kept on refusal)."""
    files = [f for f in files if f is not None]
    if not files:
        raise CspineInputError(f"The upload holds no files. {UPLOAD_HINT}")
    with services.studies.begin_import(
        user=user,
        source="remote",
        address=address,
        max_files=cfg.max_upload_files,
        max_bytes=cfg.max_expanded_bytes,
    ) as imp:
        add_files(imp, files, cfg)
        if imp.n_files == 0:
            raise StudyNotFoundError("The upload holds no files (the zip is empty).")
        return commit_validated(imp)


def commit_validated(imp: StudyImport, label: str = "The upload") -> StudyRecord:
    """Validate the staged files with the loader and publish them with the chosen series."""
    series = validate_study(imp.staging.dir / "files", label)
    meta = {"modality": series.modality}
    if series.series_uid:
        meta["series_uid"] = series.series_uid
    return imp.commit(**meta)
