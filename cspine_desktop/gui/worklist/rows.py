"""Plain worklist rows built from the studies and jobs services (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ...analysis import wording
from ...analysis.result import SCHEMA

STATE_WORDS = {
    None: "not analysed",
    "pending": "queued",
    "running": "analysing",
    "succeeded": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class WorklistRow:
    study_id: str
    patient_id: str
    patient_name: str
    description: str
    study_date: str  # DICOM DA "YYYYMMDD" or ""
    source: str  # "local" | "remote"
    address: str | None
    received_at: float  # epoch seconds
    job_id: str | None = None
    state: str | None = None  # job state of the latest analysis, None if never analysed
    progress: int = 0
    stage: str = ""
    error: str | None = None
    fractured: bool | None = None
    probability: float | None = None
    verdict_status: str | None = None  # "assessed" / "indeterminate"; None: no /2 result
    reasons: tuple[str, ...] = ()

    @property
    def patient(self) -> str:
        name = self.patient_name.replace("^", " ").strip()
        return (
            f"{name} ({self.patient_id})" if name and self.patient_id else name or self.patient_id
        )

    @property
    def date_text(self) -> str:
        d = self.study_date
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d

    @property
    def received_text(self) -> str:
        return datetime.fromtimestamp(self.received_at).strftime("%Y-%m-%d %H:%M")

    @property
    def source_text(self) -> str:
        return (
            f"remote ({self.address})" if self.source == "remote" and self.address else self.source
        )

    @property
    def state_text(self) -> str:
        words = STATE_WORDS.get(self.state, self.state or "")
        if self.state == "running":
            return f"{self.stage or words} {self.progress}%"
        return words

    @property
    def has_verdict(self) -> bool:
        return self.verdict_status is not None

    @property
    def verdict_text(self) -> str:
        """ "fracture suspected (0.92)", "no fracture detected (0.03)", "indeterminate", or
        a request to analyse again for a result stored in an older format. The verdict is the
        latest succeeded analysis's, also while a newer one runs or after it failed."""
        if self.verdict_status is None:
            return "older result: analyse again" if self.state == "succeeded" else ""
        word = wording.patient_word(self.verdict_status, self.fractured)
        if self.fractured is None:
            return word
        p = f" ({self.probability:.2f})" if self.probability is not None else ""
        return word + p

    @property
    def verdict_colour(self) -> str | None:
        """Hex colour of the verdict column (amber when indeterminate), or None."""
        return wording.colour(self.verdict_status, self.fractured) if self.has_verdict else None

    def with_job(self, job: Any) -> WorklistRow:
        """This row with the state of ``job`` (an AnalysisRecord, or a JobEvent, which carries
        no result). A succeeded job sets the verdict; any other keeps the earlier one."""
        row = replace(
            self,
            job_id=getattr(job, "job_id", None) or getattr(job, "id", None),
            state=job.state,
            progress=int(job.progress or 0),
            stage=job.stage or "",
            error=job.error,
        )
        return row.with_verdict(job) if job.state == "succeeded" else row

    def with_verdict(self, job: Any) -> WorklistRow:
        """This row with the verdict of a succeeded ``job`` (none when its result is missing
        or in an older format)."""
        result = getattr(job, "result", None) or {}
        current = result.get("schema") == SCHEMA
        overall = (result.get("patient_overall") or {}) if current else {}
        return replace(
            self,
            fractured=overall.get("fractured"),
            probability=overall.get("probability"),
            verdict_status=overall.get("status"),
            reasons=tuple(overall.get("reasons") or ()),
        )


def fetch_rows(services: Any, text: str | None = None, limit: int = 500) -> list[WorklistRow]:
    """Newest studies first (matching ``text`` in patient id/name, description or UID), each
    with its latest analysis. Runs SQLite queries: call it off the GUI thread."""
    rows = []
    for entry in services.studies.worklist(text or None, limit=limit):
        study = entry.study
        row = WorklistRow(
            study_id=study.id,
            patient_id=study.patient_id,
            patient_name=study.patient_name,
            description=study.description,
            study_date=study.study_date,
            source=study.source,
            address=study.address,
            received_at=study.received_at,
        )
        latest = entry.latest_job
        if latest is not None and latest.state != "succeeded":
            done = services.jobs.list(study_id=study.id, states=["succeeded"], limit=1)
            if done:
                row = row.with_verdict(done[0])
        rows.append(row if latest is None else row.with_job(latest))
    return rows
