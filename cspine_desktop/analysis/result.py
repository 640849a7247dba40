"""The outcome of one analysis, as plain data that serialises to the ``cspine.analysis/2`` JSON.

External tools read this JSON; the schema name changes whenever a field changes meaning
(``docs/schemas/cspine.analysis-2.schema.json``). ``/2`` added a ``status`` with ``reasons`` to
every verdict — a fracture verdict (``fractured``) is given only where the status is
``assessed``, and is null otherwise — and the threshold and its operating point next to each
probability. Reading a document of another schema raises :class:`SchemaMismatchError`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import DISCLAIMER
from ..errors import CspineInputError
from ..vertebrae import NAMES
from .plausibility import ASSESSED, NOT_IN_VIEW, PATIENT_STATUSES, VERTEBRA_STATUSES

SCHEMA = "cspine.analysis/2"


class SchemaMismatchError(CspineInputError, ValueError):
    """A result document of another (older or newer) schema, or none."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class OperatingPoint:
    """Sensitivity and specificity the threshold gave on the model's validation split (from the
    model card; None where the card does not say)."""

    sensitivity: float | None
    specificity: float | None
    source: str = "validation split"


@dataclass(frozen=True)
class VertebraVerdict:
    """Verdict for one vertebra.

    status        : assessed / partly_in_view / not_in_view / indeterminate; ``reasons`` say why
                    it is not assessed (plain sentences).
    fractured     : True/False only when assessed, else None.
    probability   : the model's fracture probability (None when not segmented); ``threshold``
                    and ``operating_point`` are what it is compared with.
    slice_range   : (first, last) source slice index (0-based, in the Volume's z order) where
                    the vertebra was segmented, or None; ``peak_slice`` the most suspicious one.
    """

    name: str
    present: bool
    probability: float | None
    fractured: bool | None
    slice_range: tuple[int, int] | None = None
    peak_slice: int | None = None
    notes: tuple[str, ...] = ()
    status: str = ASSESSED
    reasons: tuple[str, ...] = ()
    threshold: float | None = None
    operating_point: OperatingPoint | None = None

    def __post_init__(self) -> None:
        _check_status(self.name, self.status, self.fractured, VERTEBRA_STATUSES)
        if self.status == NOT_IN_VIEW and self.present:
            raise ValueError(f"{self.name}: segmented, so not '{NOT_IN_VIEW}'")
        if self.status == ASSESSED and not self.present:
            raise ValueError(f"{self.name}: not segmented, so it cannot be assessed")


@dataclass(frozen=True)
class PatientVerdict:
    """The patient-level verdict: status assessed or indeterminate (with reasons); fractured
    only when assessed."""

    probability: float
    fractured: bool | None
    status: str = ASSESSED
    reasons: tuple[str, ...] = ()
    threshold: float | None = None
    operating_point: OperatingPoint | None = None

    def __post_init__(self) -> None:
        _check_status("patient", self.status, self.fractured, PATIENT_STATUSES)


def _check_status(what: str, status: str, fractured: bool | None, allowed: tuple[str, ...]) -> None:
    if status not in allowed:
        raise ValueError(f"{what}: status must be one of {allowed}, got {status!r}")
    if (status == ASSESSED) != (fractured is not None):
        raise ValueError(f"{what}: fractured must be true/false when assessed, else null")


@dataclass(frozen=True)
class AnalysisResult:
    study_instance_uid: str
    series_instance_uid: str
    model: ModelInfo
    backend: str
    patient_overall: PatientVerdict
    vertebrae: tuple[VertebraVerdict, ...]
    thresholds: dict[str, float]
    warnings: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)
    patient_id: str = ""
    disclaimer: str = DISCLAIMER

    def __post_init__(self) -> None:
        names = tuple(v.name for v in self.vertebrae)
        if names != NAMES:
            raise ValueError(f"vertebrae must be {NAMES}, got {names}")

    @property
    def indeterminate(self) -> bool:
        return self.patient_overall.status != ASSESSED

    def vertebra(self, name: str) -> VertebraVerdict:
        return self.vertebrae[NAMES.index(name.upper())]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        out: dict[str, Any] = {"schema": SCHEMA}
        out.update(d)
        for v in out["vertebrae"]:
            v["slice_range"] = list(v["slice_range"]) if v["slice_range"] else None
            v["notes"] = list(v["notes"])
            v["reasons"] = list(v["reasons"])
        out["patient_overall"]["reasons"] = list(out["patient_overall"]["reasons"])
        out["warnings"] = list(out["warnings"])
        return out

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **({"indent": 2} | kw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisResult:
        """Read a ``cspine.analysis/2`` document; another schema → SchemaMismatchError."""
        found = d.get("schema") if isinstance(d, dict) else None
        if found != SCHEMA:
            raise SchemaMismatchError(
                f"This result is {found or 'not a cspine result'}; this version of cspine "
                f"reads {SCHEMA}. Analyse the study again to get a {SCHEMA} result."
            )
        return cls(
            study_instance_uid=d["study_instance_uid"],
            series_instance_uid=d["series_instance_uid"],
            model=ModelInfo(**d["model"]),
            backend=d["backend"],
            patient_overall=PatientVerdict(
                probability=d["patient_overall"]["probability"],
                fractured=d["patient_overall"]["fractured"],
                status=d["patient_overall"]["status"],
                reasons=tuple(d["patient_overall"].get("reasons", ())),
                threshold=d["patient_overall"].get("threshold"),
                operating_point=_operating_point(d["patient_overall"].get("operating_point")),
            ),
            vertebrae=tuple(
                VertebraVerdict(
                    name=v["name"],
                    present=v["present"],
                    probability=v["probability"],
                    fractured=v["fractured"],
                    slice_range=tuple(v["slice_range"]) if v.get("slice_range") else None,
                    peak_slice=v.get("peak_slice"),
                    notes=tuple(v.get("notes", ())),
                    status=v["status"],
                    reasons=tuple(v.get("reasons", ())),
                    threshold=v.get("threshold"),
                    operating_point=_operating_point(v.get("operating_point")),
                )
                for v in d["vertebrae"]
            ),
            thresholds=dict(d["thresholds"]),
            warnings=tuple(d.get("warnings", ())),
            timings_s=dict(d.get("timings_s", {})),
            patient_id=d.get("patient_id", ""),
            disclaimer=d.get("disclaimer", DISCLAIMER),
        )

    def rsna_rows(self) -> list[tuple[str, float]]:
        """RSNA 2022 submission rows: (``<StudyUID>_C1`` … ``_patient_overall``, probability)."""
        rows = [
            (f"{self.study_instance_uid}_{v.name}", float(v.probability or 0.0))
            for v in self.vertebrae
        ]
        rows.append(
            (f"{self.study_instance_uid}_patient_overall", float(self.patient_overall.probability))
        )
        return rows


def _operating_point(d: dict[str, Any] | None) -> OperatingPoint | None:
    return None if d is None else OperatingPoint(**d)


def operating_points(card: dict[str, Any]) -> dict[str, OperatingPoint | None]:
    """ "vertebra" and "patient" operating points of the card's thresholds: sensitivity and
    specificity on the validation split (``metrics.validation.{vertebra_pooled,patient}``),
    None where the card does not record them."""
    val = ((card.get("metrics") or {}).get("validation")) or {}
    n = val.get("n_studies")
    source = f"validation split ({n} studies)" if n else "validation split"
    out: dict[str, OperatingPoint | None] = {}
    for key, section in (("vertebra", "vertebra_pooled"), ("patient", "patient")):
        m = val.get(section) or {}
        sens, spec = _value(m.get("sensitivity")), _value(m.get("specificity"))
        out[key] = None if sens is None and spec is None else OperatingPoint(sens, spec, source)
    return out


def _value(x: Any) -> float | None:
    if isinstance(x, dict):
        x = x.get("value")
    return None if x is None else round(float(x), 4)
