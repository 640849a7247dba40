"""What the user pointed at: a folder, a zip, a DICOM file, a NIfTI volume or a PNG/JPEG slice.

Kinds are recognised by content (magic bytes), never by file name: DICOM files may have any
name or no extension at all. Folders are searched recursively; files that are not DICOM are
ignored (with DICOMDIR index files), so a CD export with viewers and readme files loads as is.
A zip is checked for safety (see :mod:`.archive`) and extracted into a temporary folder that
exists only while the study is being read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StudyNotFoundError, UnsupportedFormatError
from ._control import Control
from .archive import extract_zip_safely

DICOM_MAGIC_OFFSET = 128
_HEAD_BYTES = 352  # enough for the DICOM preamble + magic and the NIfTI-1 magic at 344

KIND_DICOM = "dicom"
KIND_NIFTI = "nifti"
KIND_IMAGE = "image"
KIND_ZIP = "zip"


@dataclass
class Source:
    """Files to read for one load.

    kind     : "dicom", "nifti" or "image" (a zip resolves to the kind of its contents).
    path     : what the user gave (folder, zip or file), absolute.
    files    : candidate files (DICOM: every file that looks like DICOM; else one file).
    archive  : the zip file when the study came in a zip, else None.
    members  : for zips, extracted file path → member name inside the archive.
    damaged  : for zips, names of members that could not be unpacked (CRC or inflate errors).
    """

    kind: str
    path: Path
    files: list[Path]
    archive: Path | None = None
    members: dict[Path, str] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)  # zip members that could not be unpacked

    def display_name(self, file: Path) -> str:
        """The name to show the user for ``file`` (member name inside a zip)."""
        if file in self.members:
            return self.members[file]
        try:
            return str(file.relative_to(self.path)) if self.path.is_dir() else file.name
        except ValueError:
            return file.name


def sniff(head: bytes, name: str = "") -> str | None:
    """The kind of a file from its first bytes: dicom, nifti, image, zip or None."""
    if len(head) >= DICOM_MAGIC_OFFSET + 4 and head[128:132] == b"DICM":
        return KIND_DICOM
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return KIND_ZIP
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff":
        return KIND_IMAGE
    if head[:2] == b"\x1f\x8b":
        low = name.lower()
        return KIND_NIFTI if low.endswith(".nii.gz") or low.endswith(".nii") else None
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return KIND_NIFTI
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] in (540,) and head[4:8] == b"n+2\x00":
        return KIND_NIFTI
    if _looks_like_bare_dicom(head):
        return KIND_DICOM
    return None


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM data set without the 128-byte preamble (old or exported files).

    Accepts a first element in group 0002 or 0008 written in little endian (implicit or
    explicit VR) or in explicit VR big endian — the only layouts seen in practice.
    """
    if len(head) < 8:
        return False
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    group, element = struct.unpack("<HH", head[:4])
    if group in (0x0002, 0x0008) and element <= 0x0100:
        return explicit or struct.unpack("<I", head[4:8])[0] < 1024
    group, element = struct.unpack(">HH", head[:4])  # retired explicit VR big endian
    return group == 0x0008 and element <= 0x0100 and explicit


def read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(_HEAD_BYTES)


def iter_files(folder: Path) -> Iterator[Path]:
    """All regular files below ``folder`` (symlinks to files are followed, not to folders)."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            if p.is_file():
                yield p


def _dicom_files_in(folder: Path, control: Control) -> tuple[list[Path], list[Path], int]:
    """(dicom-looking files, nifti/image files, number of files seen) below ``folder``."""
    dicom: list[Path] = []
    other: list[Path] = []
    n = 0
    for p in iter_files(folder):
        n += 1
        if n % 256 == 0:
            control.check()
            control.report(n, 0, "scanning")
        if p.name.upper() == "DICOMDIR":
            continue
        try:
            kind = sniff(read_head(p), p.name)
        except OSError:
            continue
        if kind == KIND_DICOM:
            dicom.append(p)
        elif kind in (KIND_NIFTI, KIND_IMAGE):
            other.append(p)
    return dicom, other, n


@contextmanager
def open_source(path: str | os.PathLike[str], control: Control) -> Iterator[Source]:
    """Resolve ``path`` into a :class:`Source`; temporary extraction is removed on exit."""
    p = Path(path).expanduser()
    if not p.exists():
        raise StudyNotFoundError(f"{p} does not exist.")
    p = p.resolve()
    if p.is_dir():
        yield _folder_source(p, p, control, archive=None, members={})
        return
    try:
        head = read_head(p)
    except OSError as exc:
        raise StudyNotFoundError(f"{p.name} cannot be opened: {exc.strerror or exc}.") from exc
    if not head:
        raise StudyNotFoundError(f"{p.name} is empty.")
    kind = sniff(head, p.name)
    if kind == KIND_ZIP:
        with extract_zip_safely(p, control) as (folder, members, damaged):
            source = _folder_source(folder, p, control, archive=p, members=members)
            source.damaged = damaged
            yield source
        return
    if kind is None:
        raise UnsupportedFormatError(
            f"{p.name} is not a DICOM, NIfTI, PNG or JPEG file, nor a zip of them."
        )
    yield Source(kind=kind, path=p, files=[p])


def _folder_source(
    folder: Path, given: Path, control: Control, archive: Path | None, members: dict[Path, str]
) -> Source:
    what = f"The zip {given.name}" if archive else f"The folder {given}"
    dicom, other, n_seen = _dicom_files_in(folder, control)
    if dicom:
        return Source(KIND_DICOM, given, dicom, archive, members)
    if n_seen == 0:
        raise StudyNotFoundError(f"{what} is empty.")
    if len(other) == 1:
        kind = sniff(read_head(other[0]), other[0].name) or KIND_IMAGE
        return Source(kind, given, other, archive, members)
    if other:
        raise StudyNotFoundError(
            f"{what} holds no DICOM files but {len(other)} NIfTI/PNG/JPEG files; "
            "open one of them directly."
        )
    raise StudyNotFoundError(f"{what} holds no DICOM images ({n_seen} other files ignored).")
