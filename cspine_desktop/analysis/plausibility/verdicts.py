"""From the checks and the model's verdicts to the verdicts that may be given."""

from __future__ import annotations

from dataclasses import dataclass

from ...vertebrae import NAMES
from .checks import SpineCheck
from .limits import ASSESSED, INDETERMINATE


@dataclass(frozen=True)
class FinalVerdicts:
    """Which fracture verdicts may be given. ``fractured`` is None where the status is not
    assessed; patient reasons are the study reasons, or which levels could not be assessed."""

    status: dict[str, str]
    reasons: dict[str, tuple[str, ...]]
    fractured: dict[str, bool | None]
    patient_status: str
    patient_reasons: tuple[str, ...]
    patient_fractured: bool | None


def final_verdicts(
    check: SpineCheck, fractured: dict[str, bool], patient_fractured: bool
) -> FinalVerdicts:
    """Combine the checks with the model's verdicts.

    A vertebra keeps its verdict only when assessed. The patient is assessed when no study
    reason stands and either all of C1–C7 were assessed or an assessed vertebra is fractured
    (a finding in what was seen stands; a "no fracture" needs the whole spine, and a patient
    probability that includes levels not assessed decides nothing alone).
    """
    status = dict(check.status)
    vert = {n: (bool(fractured[n]) if status[n] == ASSESSED else None) for n in NAMES}
    if check.study_reasons:
        return FinalVerdicts(status, check.reasons, vert, INDETERMINATE, check.study_reasons, None)
    unassessed = [n for n in NAMES if status[n] != ASSESSED]
    seen_fracture = any(vert[n] for n in NAMES)
    if not unassessed or seen_fracture:
        return FinalVerdicts(
            status, check.reasons, vert, ASSESSED, (), bool(patient_fractured or seen_fracture)
        )
    reason = (
        f"{_names(unassessed)} could not be assessed ("
        + "; ".join(f"{n}: {status[n].replace('_', ' ')}" for n in unassessed)
        + "), so a patient-level verdict of no fracture cannot be given."
    )
    return FinalVerdicts(status, check.reasons, vert, INDETERMINATE, (reason,), None)


def _names(names: list[str]) -> str:
    """ "C1–C3" for a run, "C1, C4" otherwise."""
    idx = [NAMES.index(n) for n in names]
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[0]}–{names[-1]}"
    return ", ".join(names)
