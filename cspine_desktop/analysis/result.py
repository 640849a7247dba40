"""The outcome of one analysis, as plain data that serialises to the ``cspine.analysis/1`` JSON.

External tools read this JSON; change the schema name if a field changes meaning.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import DISCLAIMER
from ..vertebrae import NAMES

SCHEMA = "cspine.analysis/1"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class VertebraVerdict:
    """Verdict for one vertebra. ``slice_range`` is (first, last) source slice index (0-based,
    in the Volume's z order) where the vertebra was segmented, or None when not present;
    ``peak_slice`` the most suspicious source slice (for key images and "jump to")."""

    name: str
    present: bool
    probability: float | None
    fractured: bool
    slice_range: tuple[int, int] | None = None
    peak_slice: int | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientVerdict:
    probability: float
    fractured: bool


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

    def vertebra(self, name: str) -> VertebraVerdict:
        return self.vertebrae[NAMES.index(name.upper())]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        out: dict[str, Any] = {"schema": SCHEMA}
        out.update(d)
        for v in out["vertebrae"]:
            v["slice_range"] = list(v["slice_range"]) if v["slice_range"] else None
            v["notes"] = list(v["notes"])
        out["warnings"] = list(out["warnings"])
        return out

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **({"indent": 2} | kw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisResult:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        return cls(
            study_instance_uid=d["study_instance_uid"],
            series_instance_uid=d["series_instance_uid"],
            model=ModelInfo(**d["model"]),
            backend=d["backend"],
            patient_overall=PatientVerdict(**d["patient_overall"]),
            vertebrae=tuple(
                VertebraVerdict(
                    name=v["name"],
                    present=v["present"],
                    probability=v["probability"],
                    fractured=v["fractured"],
                    slice_range=tuple(v["slice_range"]) if v.get("slice_range") else None,
                    peak_slice=v.get("peak_slice"),
                    notes=tuple(v.get("notes", ())),
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
