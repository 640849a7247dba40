"""Read a finished analysis back from the store: the verdicts (result JSON) plus the label map
and heat-map the analysis handler saved as the ``overlays.npz`` artifact (source grid)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ...analysis.result import AnalysisResult, SchemaMismatchError
from ...imaging.volume import Volume
from ...services.analysis import OVERLAY_ARTIFACT, load_overlays

log = logging.getLogger(__name__)


def read_outcome(
    services: Any, study_id: str, job: Any, volume: Volume
) -> tuple[AnalysisResult, np.ndarray | None, np.ndarray | None, list[str]]:
    """(result, labels uint8 | None, heat-map float32 | None, warnings) of a succeeded job.
    Overlays that are missing or do not match the volume's shape are left out with a warning
    (the verdicts are still shown)."""
    result = AnalysisResult.from_dict(job.result)
    found = services.studies.artifacts(study_id, job.id)
    art = next((a for a in found if a.name == OVERLAY_ARTIFACT), None)
    if art is None or not art.path.exists():
        return result, None, None, ["This analysis has no stored overlays; none are shown."]
    try:
        labels, heat = load_overlays(art.path)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("could not read %s: %s", art.path, exc)
        return result, None, None, ["The stored overlays are unreadable; none are shown."]
    if labels.shape != volume.hu.shape or heat.shape != volume.hu.shape:
        return (
            result,
            None,
            None,
            [
                f"The stored overlays do not match the images ({labels.shape} vs "
                f"{volume.hu.shape}); they are not shown."
            ],
        )
    return result, labels, heat, []


def attach_outcome(opened: Any, services: Any, job: Any) -> None:
    """Fill ``opened`` (an OpenStudy) from a succeeded ``job``: verdicts, arrays, warnings and
    which exports it can have. Runs in a worker thread."""
    from ... import reports

    try:
        result, labels, heat, warnings = read_outcome(services, opened.study_id, job, opened.volume)
    except SchemaMismatchError as exc:  # stored by an older version: show the images only
        opened.warnings.append(str(exc))
        return
    opened.result, opened.labels, opened.heatmap = result, labels, heat
    opened.job_id = job.id
    opened.warnings.extend(warnings)
    opened.export_formats = reports.available_formats(opened) if labels is not None else {}
