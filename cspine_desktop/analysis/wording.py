"""How a verdict is said and coloured — the one place every surface takes it from.

The CLI table, the GUI (verdict banner, table, worklist), the PDF, key images, the DICOM SR, the
web pages and the HTTP summary all word a verdict through these functions, so an indeterminate
result reads the same everywhere and is never shown in the "no fracture" green. Functions take
plain values (status, fractured, probability, threshold) so dict readers (server, worklist) and
dataclass readers use them alike. ``ascii=True`` gives text for ASCII/Latin-1 outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .plausibility import ASSESSED, INDETERMINATE, NOT_IN_VIEW, PARTLY_IN_VIEW

FRACTURE, CLEAR, UNSURE, ABSENT = "fracture", "clear", "indeterminate", "absent"
"""Tones: how a verdict is coloured."""

COLOURS: dict[str, str] = {
    FRACTURE: "#c82828",  # red
    CLEAR: "#1e823c",  # green: only ever an assessed "no fracture"
    UNSURE: "#a05a00",  # amber (text on light backgrounds)
    ABSENT: "#787878",  # grey
}
AMBER_BACKGROUND, AMBER_BORDER = "#fff0cc", "#e0a000"

INDETERMINATE_HEADLINE = "Indeterminate — read the images"
FRACTURE_HEADLINE = "Fracture suspected"
CLEAR_HEADLINE = "No fracture detected"

_VERTEBRA_WORDS = {
    PARTLY_IN_VIEW: "partly in view",
    NOT_IN_VIEW: "not in view",
    INDETERMINATE: "indeterminate",
}


def _ascii(text: str) -> str:
    return text.replace("—", "-").replace("–", "-").replace("≤", "<=").replace("≥", ">=")


def tone(status: str | None, fractured: bool | None) -> str:
    """FRACTURE, CLEAR (assessed, not fractured), UNSURE (indeterminate / partly in view) or
    ABSENT (not in view)."""
    if status == NOT_IN_VIEW:
        return ABSENT
    if status != ASSESSED or fractured is None:
        return UNSURE
    return FRACTURE if fractured else CLEAR


def colour(status: str | None, fractured: bool | None) -> str:
    """Hex colour of a verdict (see :data:`COLOURS`)."""
    return COLOURS[tone(status, fractured)]


def vertebra_word(status: str | None, fractured: bool | None) -> str:
    """ "fracture suspected", "no fracture", "partly in view", "not in view", "indeterminate"."""
    if status == ASSESSED and fractured is not None:
        return "fracture suspected" if fractured else "no fracture"
    return _VERTEBRA_WORDS.get(status or INDETERMINATE, "indeterminate")


def patient_word(status: str | None, fractured: bool | None) -> str:
    """ "fracture suspected", "no fracture detected" or "indeterminate"."""
    if status == ASSESSED and fractured is not None:
        return "fracture suspected" if fractured else "no fracture detected"
    return "indeterminate"


def patient_headline(
    status: str | None,
    fractured: bool | None,
    probability: float | None = None,
    threshold: float | None = None,
    *,
    ascii: bool = False,
) -> str:
    """The banner: "Indeterminate — read the images", or "Fracture suspected — patient
    probability 0.75 (threshold 0.999)" / "No fracture detected — …"."""
    if status != ASSESSED or fractured is None:
        text = INDETERMINATE_HEADLINE
    else:
        text = FRACTURE_HEADLINE if fractured else CLEAR_HEADLINE
        if probability is not None:
            text += f" — patient probability {probability:.2f}"
            if through_vertebrae(threshold):
                text += " (called through the vertebrae)"
            elif threshold is not None:
                text += f" (threshold {threshold:.3g})"
    return _ascii(text) if ascii else text


def through_vertebrae(threshold: float | None) -> bool:
    """A patient threshold of 1 or more is never reached by a probability: the card calls the
    patient fractured when any vertebra reaches its own threshold, and says so this way."""
    return threshold is not None and threshold >= 1.0


def threshold_text(threshold: float | None, operating_point: Any = None) -> str:
    """ "0.93" or "0.93 (validation sensitivity 0.12, specificity 0.95)"; "-" when unknown;
    "any vertebra at its threshold" for a patient threshold the patient is called through.
    ``operating_point`` is an OperatingPoint or its dict."""
    if threshold is None:
        return "-"
    text = "any vertebra at its threshold" if through_vertebrae(threshold) else f"{threshold:.3g}"
    op = _as_dict(operating_point)
    parts = [
        f"{key} {op[key]:.2f}"
        for key in ("sensitivity", "specificity")
        if op and op.get(key) is not None
    ]
    return text + (f" (validation {', '.join(parts)})" if parts else "")


def _as_dict(obj: Any) -> Mapping[str, Any] | None:
    if obj is None or isinstance(obj, Mapping):
        return obj
    return {k: getattr(obj, k, None) for k in ("sensitivity", "specificity", "source")}


def reason_lines(result: Any, *, ascii: bool = False) -> list[str]:
    """Why the result is not (fully) assessed: the patient reasons, then each vertebra's own
    reasons as "C3: …" (not-in-view vertebrae in one line). Takes an AnalysisResult or its
    dict."""
    doc = result if isinstance(result, Mapping) else result.to_dict()
    lines = list(doc["patient_overall"].get("reasons") or [])
    absent = []
    for v in doc["vertebrae"]:
        if v.get("status") == NOT_IN_VIEW:
            absent.append(v["name"])
            continue
        lines += [
            r if r.startswith(v["name"] + " ") else f"{v['name']}: {r}"
            for r in v.get("reasons") or []
            if r not in lines
        ]
    if absent:
        lines.append(f"Not in the images: {', '.join(absent)}.")
    lines = list(dict.fromkeys(lines))
    return [_ascii(x) for x in lines] if ascii else lines


def summary(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The short verdict of a result dict, for job lists and the HTTP job status."""
    if not result:
        return None
    patient = result.get("patient_overall") or {}
    status = patient.get("status")
    return {
        "patient_status": status,
        "patient_fractured": patient.get("fractured"),
        "patient_probability": patient.get("probability"),
        "patient_threshold": patient.get("threshold"),
        "verdict": patient_word(status, patient.get("fractured")),
        "reasons": list(patient.get("reasons") or []),
        "fractured_vertebrae": [
            v.get("name") for v in result.get("vertebrae") or [] if v.get("fractured") is True
        ],
        "indeterminate_vertebrae": _names_with(result, (INDETERMINATE, PARTLY_IN_VIEW)),
    }


def _names_with(result: Mapping[str, Any], statuses: Iterable[str]) -> list[str]:
    wanted = set(statuses)
    return [v.get("name") for v in result.get("vertebrae") or [] if v.get("status") in wanted]
