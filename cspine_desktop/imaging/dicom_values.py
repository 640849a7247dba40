"""Fast, forgiving reading of DICOM header values (no exceptions, plain Python values).

pydicom's value conversion dominates a header scan, so raw elements are decoded here
directly: text VRs are split on backslashes, US values unpacked with the element's byte order.
Every helper returns None (or "") for a missing or unreadable value instead of raising.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Literal, overload

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

META_KEYS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "SeriesDescription",
    "SeriesNumber",
    "AccessionNumber",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "InstitutionName",
    "BodyPartExamined",
    "KVP",
    "ConvolutionKernel",
    "SliceThickness",
    "FrameOfReferenceUID",
)


def series_meta(ds: Dataset) -> dict[str, Any]:
    """Study/series/patient attributes for :attr:`Volume.meta` (plain Python values)."""
    meta: dict[str, Any] = {}
    for key in META_KEYS:
        try:
            value = ds.get(key, None)
        except Exception:
            value = None
        meta[key] = plain_value(value)
    if meta.get("SliceThickness") is not None:
        meta["SliceThickness"] = get_float(ds, "SliceThickness")
    meta["WindowCenter"] = first_float(ds, "WindowCenter")
    meta["WindowWidth"] = first_float(ds, "WindowWidth")
    return meta


def plain_value(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [plain_value(v) for v in value]
    return str(value)


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def first_item(seq: Any) -> Dataset | None:
    try:
        return seq[0] if seq else None
    except Exception:
        return None


_US_KEYWORDS = frozenset(
    {"Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "SamplesPerPixel"}
)
_TAGS: dict[str, int] = {}


def keyword_tag(name: str) -> int:
    tag = _TAGS.get(name)
    if tag is None:
        tag = _TAGS[name] = int(tag_for_keyword(name))  # type: ignore[arg-type]
    return tag


def get_values(ds: Dataset, name: str) -> list[Any] | None:
    """Values of element ``name`` as a list (str for text VRs, int for US), or None.

    Raw elements are decoded here directly — several times faster than pydicom's value
    conversion, which dominates a header scan.
    """
    elem = ds.get_item(keyword_tag(name))
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if raw is None or len(raw) == 0:
            return None
        if name in _US_KEYWORDS:
            n = len(raw) // 2
            return list(
                struct.unpack(("<" if elem.is_little_endian else ">") + "H" * n, raw[: 2 * n])
            )
        text = raw.decode("latin-1").strip("\x00 ")
        return [t.strip("\x00 ") for t in text.split("\\")] if text else None
    values = as_list(elem.value)
    return values or None


def get_str(ds: Dataset, name: str) -> str:
    """First value of a text element ('' when absent or unreadable)."""
    try:
        values = get_values(ds, name)
        return str(values[0]) if values else ""
    except Exception:
        return ""


def sop_uid_of(ds: Dataset, keyword: str) -> str:
    """``SOPClassUID`` or ``SOPInstanceUID`` of ``ds``, else the file meta's copy of it
    (``MediaStorage…``, which PS3.10 makes identical): some anonymisers blank the dataset's
    and leave the file meta's."""
    own = get_str(ds, keyword)
    if own:
        return own
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "MediaStorage" + keyword, "") or "").strip() if meta else ""


def get_int(ds: Dataset, name: str) -> int | None:
    try:
        values = get_values(ds, name)
        if not values or values[0] == "":
            return None
        v = values[0]
        return v if isinstance(v, int) else int(float(v))
    except Exception:
        return None


def get_float(ds: Dataset, name: str) -> float | None:
    try:
        values = get_values(ds, name)
        if not values or values[0] == "":
            return None
        v = float(values[0])
        return v if math.isfinite(v) else None
    except Exception:
        return None


first_float = get_float


@overload
def get_floats(ds: Dataset, name: str, n: Literal[2]) -> tuple[float, float] | None: ...
@overload
def get_floats(ds: Dataset, name: str, n: Literal[3]) -> tuple[float, float, float] | None: ...
@overload
def get_floats(ds: Dataset, name: str, n: int) -> tuple[float, ...] | None: ...
def get_floats(ds: Dataset, name: str, n: int) -> tuple[float, ...] | None:
    """``n`` finite numbers from a multi-valued element, or None (missing, wrong count, bad)."""
    try:
        values = [float(v) for v in (get_values(ds, name) or [])]
    except Exception:
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return tuple(values)
