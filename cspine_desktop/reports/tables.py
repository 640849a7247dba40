"""Plain-text exports of the verdicts: ``cspine.analysis/2`` JSON, RSNA 2022 CSV, a text table."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from ..analysis.result import AnalysisResult
from ..analysis.wording import (
    patient_headline,
    patient_word,
    reason_lines,
    threshold_text,
    vertebra_word,
)
from ._common import OutcomeLike, result_of, write_bytes_atomic

RSNA_HEADER = ("row_id", "fractured")
_One = OutcomeLike | AnalysisResult  # one study's analysis


def write_result_json(outcome: OutcomeLike | AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """Write the ``cspine.analysis/2`` JSON of the analysis to ``path`` (UTF-8, atomic)."""
    text = result_of(outcome).to_json() + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def rsna_csv_text(
    results: OutcomeLike | AnalysisResult | Iterable[OutcomeLike | AnalysisResult],
) -> str:
    """RSNA 2022 submission CSV: header ``row_id,fractured``, then per study the rows
    ``<StudyUID>_C1`` … ``<StudyUID>_C7``, ``<StudyUID>_patient_overall`` with the fracture
    probability (absent vertebrae count as 0). The RSNA format holds probabilities only:
    whether a verdict could be given (``status``) is in the result JSON."""
    if isinstance(results, AnalysisResult) or hasattr(results, "result"):
        items: Iterable[_One] = [cast(_One, results)]  # an outcome or a result, not a list
    else:
        items = results
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RSNA_HEADER)
    for item in items:
        for row_id, probability in result_of(item).rsna_rows():
            writer.writerow((row_id, f"{probability:.6f}"))
    return buf.getvalue()


def write_rsna_csv(
    results: OutcomeLike | AnalysisResult | Iterable[OutcomeLike | AnalysisResult],
    path: str | os.PathLike[str],
) -> Path:
    """Write :func:`rsna_csv_text` of one or several analyses to ``path`` (atomic)."""
    return write_bytes_atomic(path, rsna_csv_text(results).encode("utf-8"))


def render_verdicts_table(outcome: OutcomeLike | AnalysisResult) -> str:
    """The per-vertebra verdicts as a fixed-width text table for a terminal (ASCII only).

    Columns: vertebra, present, probability, threshold, verdict (``indeterminate``, ``partly in
    view`` … where no verdict can be given); a patient row; the headline; the reasons a
    verdict could not be given; the thresholds' operating points; the model line, the
    warnings, and the disclaimer last.
    """
    r = result_of(outcome)
    lines = [
        f"Study {r.study_instance_uid}" + (f"  patient {r.patient_id}" if r.patient_id else ""),
        f"{'Vertebra':<9}{'Present':<9}{'Probability':>12}{'Threshold':>11}  Verdict",
    ]
    for v in r.vertebrae:
        p = f"{v.probability:.3f}" if v.present and v.probability is not None else "-"
        t = v.threshold if v.threshold is not None else r.thresholds.get(v.name)
        lines.append(
            f"{v.name:<9}{'yes' if v.present else 'no':<9}{p:>12}"
            f"{(f'{t:.3g}' if t is not None else '-'):>11}  {vertebra_word(v.status, v.fractured)}"
        )
    po = r.patient_overall
    t = po.threshold if po.threshold is not None else r.thresholds.get("patient_overall")
    lines.append(
        f"{'Patient':<9}{'':<9}{po.probability:>12.3f}"
        f"{(f'{t:.3g}' if t is not None else '-'):>11}  "
        f"{patient_word(po.status, po.fractured)}"
    )
    lines.append(patient_headline(po.status, po.fractured, po.probability, t, ascii=True))
    reasons = reason_lines(r, ascii=True)
    if reasons:
        lines.append("Why no verdict could be given:" if r.indeterminate else "Notes:")
        lines.extend(f"  - {x}" for x in reasons)
    v_op = next((v.operating_point for v in r.vertebrae if v.operating_point), None)
    if v_op is not None or po.operating_point is not None:
        lines.append(
            "Operating points: vertebra "
            + threshold_text(r.thresholds.get("C1"), v_op)
            + "; patient "
            + threshold_text(t, po.operating_point)
        )
    total = r.timings_s.get("total")
    lines.append(
        f"Model {r.model.name} {r.model.version} (sha256 {r.model.sha256[:12]}) on {r.backend}"
        + (f", {total:.1f} s" if total is not None else "")
    )
    lines.extend(f"Warning: {w}" for w in r.warnings)
    lines.append(r.disclaimer)
    return "\n".join(lines) + "\n"
