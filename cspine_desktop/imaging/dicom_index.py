"""Header scan: what every DICOM file holds, read without its pixel data.

One :class:`ImageHeader` per image frame (a classic CT file has one frame; an enhanced CT file
holds the whole series as frames with per-frame functional groups). DICOM files without pixel
data (structured reports such as dose reports, RT objects, presentation states) are kept as
:class:`OtherObject` so the series chooser can name them; DICOMDIR index files are skipped.
Files that cannot be parsed are returned with a reason in words, never raised.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pydicom
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ._control import Control
from .dicom_values import (
    META_KEYS,
    first_item,
    get_float,
    get_floats,
    get_int,
    get_str,
    get_values,
    keyword_tag,
    series_meta,
    sop_uid_of,
)

NATIVE_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
PIXEL_DATA_TAG = 0x7FE00010
MAX_MATRIX = 8192  # rows or columns above this are treated as damaged headers
# series key of images whose SeriesInstanceUID was removed (some anonymisers do): this prefix
# and a digest of what the images share (see :func:`derived_series_key`)
NO_SERIES_UID = "no-series-uid-"


SCAN_TAGS = [
    *META_KEYS,
    "SOPClassUID",
    "SOPInstanceUID",
    "ImageType",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "NumberOfFrames",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "InstanceNumber",
    "AcquisitionNumber",
    "WindowCenter",
    "WindowWidth",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "DirectoryRecordSequence",
    "SpecificCharacterSet",
]


_SCAN_TAG_LIST: list[BaseTag] = []


def _scan_tags() -> list[BaseTag]:
    """SCAN_TAGS as tags, computed once (pydicom would look keywords up on every read)."""
    if not _SCAN_TAG_LIST:
        _SCAN_TAG_LIST.extend(BaseTag(keyword_tag(k)) for k in SCAN_TAGS)
    return _SCAN_TAG_LIST


@dataclass(slots=True)
class ImageHeader:
    """One image frame as described by its file header (no pixels read yet).

    orientation : ImageOrientationPatient (row direction x, y, z; column direction x, y, z).
    position    : ImagePositionPatient of the first voxel, LPS mm.
    pixel_spacing : (between rows, between columns) mm, i.e. (y, x).
    pixel_offset  : byte offset of this frame's pixel values in the file when they are stored
                    uncompressed (read directly), else None (decoded through pydicom).
    """

    file: Path
    frame: int | None
    n_frames: int
    series_uid: str
    sop_uid: str
    modality: str
    sop_class: str
    image_type: tuple[str, ...]
    rows: int
    cols: int
    orientation: tuple[float, ...] | None
    position: tuple[float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    slope: float
    intercept: float
    bits_allocated: int
    bits_stored: int
    pixel_rep: int
    samples: int
    transfer_syntax: str
    pixel_offset: int | None
    big_endian: bool
    instance_number: int | None
    acquisition_number: int | None
    description: str


class _Common(TypedDict):
    """The ImageHeader fields every frame of one file shares."""

    file: Path
    n_frames: int
    series_uid: str
    modality: str
    sop_class: str
    image_type: tuple[str, ...]
    rows: int
    cols: int
    bits_allocated: int
    bits_stored: int
    pixel_rep: int
    samples: int
    transfer_syntax: str
    big_endian: bool
    instance_number: int | None
    acquisition_number: int | None
    description: str


@dataclass(slots=True)
class OtherObject:
    """A DICOM object without pixel data (dose report, RT object, presentation state…)."""

    file: Path
    series_uid: str
    modality: str
    sop_class: str
    description: str


@dataclass
class ScanResult:
    headers: list[ImageHeader] = field(default_factory=list)
    others: list[OtherObject] = field(default_factory=list)
    unreadable: dict[Path, str] = field(default_factory=dict)  # file → reason in words
    series_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_dicomdir: int = 0


class _Unreadable(Exception):
    pass


class _Skip(Exception):
    pass


def scan_headers(files: list[Path], control: Control) -> ScanResult:
    """Read the header of every file (sequentially: parsing is pure Python and GIL-bound)."""
    result = ScanResult()
    total = len(files)
    for n, path in enumerate(files):
        if n % 16 == 0:
            control.check()
            control.report(n, total, "reading headers")
        try:
            ds, items = read_file_headers(path)
        except _Skip:
            result.n_dicomdir += 1
            continue
        except _Unreadable as exc:
            result.unreadable[path] = str(exc)
            continue
        if isinstance(items, OtherObject):
            result.others.append(items)
            continue
        result.headers.extend(items)
        uid = items[0].series_uid
        if uid not in result.series_meta:
            result.series_meta[uid] = series_meta(ds)
    control.report(total, total, "reading headers")
    return result


def read_file_headers(path: Path) -> tuple[Dataset, list[ImageHeader] | OtherObject]:
    """Parse one file. Raises _Unreadable (with a reason) or _Skip (DICOMDIR)."""
    try:
        with open(path, "rb") as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=True, specific_tags=_scan_tags())
            pixel_pos = f.tell()
            peek = f.read(12)
            size = os.fstat(f.fileno()).st_size
    except Exception as exc:  # pydicom raises many kinds on damaged input
        raise _Unreadable(f"not a readable DICOM file ({_short(exc)})") from exc
    try:
        return ds, _headers_from_dataset(path, ds, pixel_pos, peek, size)
    except (_Unreadable, _Skip):
        raise
    except Exception as exc:
        raise _Unreadable(f"damaged DICOM header ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def transfer_syntax_of(ds: Dataset) -> str:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts:
        return str(ts)
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _headers_from_dataset(
    path: Path, ds: Dataset, pixel_pos: int, peek: bytes, size: int
) -> list[ImageHeader] | OtherObject:
    sop_class = sop_uid_of(ds, "SOPClassUID")
    if sop_class == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise _Skip()
    series_uid = get_str(ds, "SeriesInstanceUID")
    modality = get_str(ds, "Modality").upper()
    description = get_str(ds, "SeriesDescription")
    rows = get_int(ds, "Rows")
    cols = get_int(ds, "Columns")
    if not rows or not cols:
        if not series_uid and not sop_class:
            raise _Unreadable("no DICOM image or object found in the file")
        return OtherObject(path, series_uid or "(no series UID)", modality, sop_class, description)
    if not series_uid:
        series_uid = derived_series_key(ds, rows, cols)
    if rows > MAX_MATRIX or cols > MAX_MATRIX:
        raise _Unreadable(f"implausible image size {rows}×{cols}")
    ts = transfer_syntax_of(ds)
    bits_allocated = get_int(ds, "BitsAllocated") or 16
    bits_stored = get_int(ds, "BitsStored") or bits_allocated
    if bits_allocated not in (1, 8, 16, 32, 64) or not 1 <= bits_stored <= bits_allocated:
        raise _Unreadable(f"invalid BitsAllocated/BitsStored {bits_allocated}/{bits_stored}")
    samples = get_int(ds, "SamplesPerPixel") or 1
    n_frames = max(get_int(ds, "NumberOfFrames") or 1, 1)
    frame_bytes = rows * cols * samples * bits_allocated // 8
    total_bytes = (rows * cols * samples * n_frames * bits_allocated + 7) // 8
    pixel_offset, big_endian = _native_pixel_offset(ts, pixel_pos, peek)
    if pixel_offset is not None:
        if pixel_offset + total_bytes > size:
            raise _Unreadable("truncated: the pixel data end before the image does")
        if bits_allocated not in (8, 16) or samples != 1:
            pixel_offset = None  # unusual layouts go through pydicom
    elif ts in NATIVE_SYNTAXES and peek[:4] != _tag_bytes(big_endian=ts == ExplicitVRBigEndian):
        raise _Unreadable("the file holds no pixel data (truncated?)")
    common = _Common(
        file=path,
        n_frames=n_frames,
        series_uid=series_uid,
        modality=modality,
        sop_class=sop_class,
        image_type=tuple(str(v).upper() for v in (get_values(ds, "ImageType") or ())),
        rows=rows,
        cols=cols,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_rep=get_int(ds, "PixelRepresentation") or 0,
        samples=samples,
        transfer_syntax=ts,
        big_endian=big_endian,
        instance_number=get_int(ds, "InstanceNumber"),
        acquisition_number=get_int(ds, "AcquisitionNumber"),
        description=description,
    )
    sop_uid = sop_uid_of(ds, "SOPInstanceUID")
    if n_frames == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        return [
            ImageHeader(
                frame=None,
                sop_uid=sop_uid,
                orientation=get_floats(ds, "ImageOrientationPatient", 6),
                position=get_floats(ds, "ImagePositionPatient", 3),
                pixel_spacing=get_floats(ds, "PixelSpacing", 2),
                thickness=get_float(ds, "SliceThickness"),
                slope=get_float(ds, "RescaleSlope") or 1.0,
                intercept=get_float(ds, "RescaleIntercept") or 0.0,
                pixel_offset=pixel_offset,
                **common,
            )
        ]
    return _frame_headers(ds, sop_uid, pixel_offset, frame_bytes, common)


def derived_series_key(ds: Dataset, rows: int, cols: int) -> str:
    """A stable series key for an image without SeriesInstanceUID: images of one study and
    frame of reference with the same orientation, matrix size and pixel spacing share it."""
    orientation = get_floats(ds, "ImageOrientationPatient", 6)
    spacing = get_floats(ds, "PixelSpacing", 2)
    if orientation is None or spacing is None:  # enhanced CT: from the shared groups
        shared = first_item(ds.get("SharedFunctionalGroupsSequence"))
        if shared is not None:
            plane = first_item(shared.get("PlaneOrientationSequence"))
            measures = first_item(shared.get("PixelMeasuresSequence"))
            if orientation is None and plane is not None:
                orientation = get_floats(plane, "ImageOrientationPatient", 6)
            if spacing is None and measures is not None:
                spacing = get_floats(measures, "PixelSpacing", 2)
    parts = (
        get_str(ds, "StudyInstanceUID"),
        get_str(ds, "FrameOfReferenceUID"),
        None if orientation is None else tuple(round(v, 2) + 0.0 for v in orientation),
        rows,
        cols,
        None if spacing is None else tuple(round(v, 3) + 0.0 for v in spacing),
    )
    return NO_SERIES_UID + hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _frame_headers(
    ds: Dataset, sop_uid: str, pixel_offset: int | None, frame_bytes: int, common: _Common
) -> list[ImageHeader]:
    """One header per frame of a multi-frame (enhanced) image, from its functional groups."""
    shared = first_item(ds.get("SharedFunctionalGroupsSequence"))
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    n_frames = common["n_frames"]
    out = []
    for f in range(n_frames):
        item = per_frame[f] if f < len(per_frame) else None

        def fg(seq: str, name: str, n: int | None = None, item: Dataset | None = item) -> Any:
            for src in (item, shared):
                sub = first_item(src.get(seq)) if src is not None else None
                if sub is not None and name in sub:
                    return get_floats(sub, name, n) if n else get_float(sub, name)
            return get_floats(ds, name, n) if n else get_float(ds, name)

        slope = fg("PixelValueTransformationSequence", "RescaleSlope")
        intercept = fg("PixelValueTransformationSequence", "RescaleIntercept")
        out.append(
            ImageHeader(
                frame=f,
                sop_uid=sop_uid,
                orientation=fg("PlaneOrientationSequence", "ImageOrientationPatient", 6),
                position=fg("PlanePositionSequence", "ImagePositionPatient", 3),
                pixel_spacing=fg("PixelMeasuresSequence", "PixelSpacing", 2),
                thickness=fg("PixelMeasuresSequence", "SliceThickness"),
                slope=1.0 if slope is None else slope,
                intercept=0.0 if intercept is None else intercept,
                pixel_offset=None if pixel_offset is None else pixel_offset + f * frame_bytes,
                **common,
            )
        )
    return out


def _tag_bytes(big_endian: bool) -> bytes:
    return struct.pack(">HH" if big_endian else "<HH", 0x7FE0, 0x0010)


def _native_pixel_offset(ts: str, pos: int, peek: bytes) -> tuple[int | None, bool]:
    """Offset of the pixel values for uncompressed syntaxes, read from the element header."""
    big = ts == ExplicitVRBigEndian
    if ts not in NATIVE_SYNTAXES or len(peek) < 8 or peek[:4] != _tag_bytes(big):
        return None, big
    if ts == ImplicitVRLittleEndian:
        length = struct.unpack("<I", peek[4:8])[0]
        header = 8
    else:
        if len(peek) < 12 or peek[4:6] not in (b"OB", b"OW"):
            return None, big
        length = struct.unpack(">I" if big else "<I", peek[8:12])[0]
        header = 12
    if length == 0xFFFFFFFF:
        return None, big
    return pos + header, big


__all__ = ["ImageHeader", "OtherObject", "ScanResult", "scan_headers", "series_meta"]
