"""Who and what is on screen, in words: the viewer's corner overlay, the window title and the
confirmations all name the patient and study the same way (Qt-free)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ID_CHARS = 20  # longer patient IDs are shortened in the corner and the title


def format_date(value: Any) -> str:
    """DICOM DA "YYYYMMDD" → "YYYY-MM-DD" (anything else unchanged)."""
    v = str(value or "").strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isdigit() else v


def person_name(value: Any) -> str:
    """DICOM PN "Family^Given^Middle" → "Family, Given Middle"."""
    parts = [p.strip() for p in str(value or "").split("^")]
    family, rest = parts[0], " ".join(p for p in parts[1:3] if p)
    return f"{family}, {rest}" if family and rest else family or rest


def short_id(value: Any, limit: int = MAX_ID_CHARS) -> str:
    """The patient ID, its middle elided when longer than ``limit`` characters."""
    v = str(value or "").strip()
    if len(v) <= limit:
        return v
    keep = limit - 1
    return v[: keep - keep // 2] + "…" + v[len(v) - keep // 2 :]


def describe_study(
    patient_name: Any = "", patient_id: Any = "", description: Any = "", study_date: Any = ""
) -> str:
    """'Neck, Phantom (ID PHANTOM-001) — study "Neck 1.0 Bone" of 2024-01-02'."""
    who = person_name(patient_name) or "unnamed patient"
    if patient_id:
        who += f" (ID {patient_id})"
    what = f'study "{description}"' if description else "study without description"
    if study_date:
        what += f" of {format_date(study_date)}"
    return f"{who} — {what}"


def describe_record(study: Any) -> str:
    """:func:`describe_study` of a StudyRecord or worklist row."""
    return describe_study(
        getattr(study, "patient_name", ""),
        getattr(study, "patient_id", ""),
        getattr(study, "description", ""),
        getattr(study, "study_date", ""),
    )


def describe_meta(meta: Mapping[str, Any], study: Any = None) -> str:
    """:func:`describe_study` from a volume's DICOM metadata (the stored study fills gaps)."""

    def get(tag: str, field: str) -> Any:
        return meta.get(tag) or getattr(study, field, "") or ""

    return describe_study(
        get("PatientName", "patient_name"),
        get("PatientID", "patient_id"),
        meta.get("StudyDescription") or get("SeriesDescription", "description"),
        get("StudyDate", "study_date"),
    )


def corner_lines(meta: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(patient lines, study lines) of the DICOM corner overlay: name, ID, birth date; study
    date, study and series description. Empty fields are left out."""
    patient = [
        person_name(meta.get("PatientName")),
        f"ID {short_id(meta.get('PatientID'))}" if meta.get("PatientID") else "",
        f"born {format_date(meta.get('PatientBirthDate'))}" if meta.get("PatientBirthDate") else "",
    ]
    study = [
        format_date(meta.get("StudyDate")),
        str(meta.get("StudyDescription") or ""),
        str(meta.get("SeriesDescription") or ""),
    ]
    return [x for x in patient if x], [x for x in dict.fromkeys(study) if x]


def window_title(meta: Mapping[str, Any], study: Any = None) -> str:
    """ "Neck, Phantom (PHANTOM-001) — Neck 1.0 Bone" for the window title."""
    name = person_name(meta.get("PatientName") or getattr(study, "patient_name", ""))
    pid = short_id(meta.get("PatientID") or getattr(study, "patient_id", ""))
    what = str(
        meta.get("StudyDescription")
        or meta.get("SeriesDescription")
        or getattr(study, "description", "")
        or ""
    )
    who = f"{name} ({pid})" if name and pid else name or pid
    return " — ".join(p for p in (who, what) if p) or "study"
