"""Builders for the export tests: an analysis outcome with made-up verdicts on a tiny volume.

Outcomes are the pipeline's own ``AnalysisOutcome`` filled in by hand (no model runs).
Volumes are 10 slices of 24 rows × 20 columns (rows ≠ columns so a transposed export fails);
C2–C4 are segmented, C1 and C5–C7 are absent; C2 is fractured.
"""

from __future__ import annotations

import numpy as np

from cspine_desktop.analysis.result import (
    AnalysisResult,
    ModelInfo,
    OperatingPoint,
    PatientVerdict,
    VertebraVerdict,
)
from cspine_desktop.vertebrae import NAMES

N_SLICES, ROWS, COLS = 10, 24, 20
SPACING = (2.5, 0.8, 0.7)  # z, y, x mm
# Present vertebrae: label → (first, last) slice.
LABEL_SLICES = {2: (0, 2), 3: (3, 4), 4: (5, 7)}
BOX_ROWS, BOX_COLS = slice(10, 16), slice(7, 13)
PROBS = {"C2": 0.91, "C3": 0.12, "C4": 0.33}
THRESHOLDS = {n: 0.5 for n in NAMES} | {"patient_overall": 0.5}
OP = OperatingPoint(0.91, 0.62, "validation split (75 studies)")
REASON = "The slices are 6.0 mm thick; fracture verdicts need slices of at most 5 mm."


def head_first_affine() -> np.ndarray:
    """Voxel (x=col, y=row, z=slice) → LPS with the slice index running toward the feet."""
    a = np.eye(4)
    a[:3, 0] = (SPACING[2], 0, 0)
    a[:3, 1] = (0, SPACING[1], 0)
    a[:3, 2] = (0, 0, -SPACING[0])
    a[:3, 3] = (-7.0, -9.6, 100.0)
    return a


def make_result(
    study_uid: str, series_uid: str, probs=PROBS, peak=True, indeterminate: bool = False
) -> AnalysisResult:
    """C2 fractured (assessed), C3/C4 assessed clear, the rest not in view. ``indeterminate``:
    the same probabilities, but the spine failed a check, so no verdict is given."""
    verdicts = []
    for label, name in enumerate(NAMES, start=1):
        if label in LABEL_SLICES:
            p, rng = probs[name], LABEL_SLICES[label]
            peak_z = (rng[0] + rng[1]) // 2 if peak else None
            status, reasons = ("indeterminate", (REASON,)) if indeterminate else ("assessed", ())
            verdicts.append(
                VertebraVerdict(
                    name,
                    True,
                    p,
                    None if indeterminate else p >= 0.5,
                    rng,
                    peak_z,
                    status=status,
                    reasons=reasons,
                    threshold=0.5,
                    operating_point=OP,
                )
            )
        else:
            verdicts.append(
                VertebraVerdict(
                    name,
                    False,
                    None,
                    None,
                    status="not_in_view",
                    reasons=("Not in the images (outside the scan, or not found).",),
                    threshold=0.5,
                    operating_point=OP,
                )
            )
    p_patient = 1.0 - float(np.prod([1 - p for p in probs.values()]))
    return AnalysisResult(
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        model=ModelInfo("cspine-unet-densenet121", "1.2.0", "ab12cd34" * 8),
        backend="onnxruntime-cpu",
        patient_overall=PatientVerdict(
            p_patient,
            None if indeterminate else p_patient >= 0.5,
            status="indeterminate" if indeterminate else "assessed",
            reasons=(REASON,) if indeterminate else (),
            threshold=0.5,
            operating_point=OP,
        ),
        vertebrae=tuple(verdicts),
        thresholds=dict(THRESHOLDS),
        warnings=("Slice thickness 2.5 mm is thicker than the model was trained on.",),
        timings_s={"load": 0.4, "inference": 1.6, "total": 2.1},
        patient_id="PHANTOM-001",
    )


def make_labels_and_heat(shape=(N_SLICES, ROWS, COLS)) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8, heatmap float32), both [z, y, x]; the heat sits inside C2 on slice 1."""
    labels = np.zeros(shape, np.uint8)
    for label, (z0, z1) in LABEL_SLICES.items():
        labels[z0 : z1 + 1, BOX_ROWS, BOX_COLS] = label
    heat = np.zeros(shape, np.float32)
    heat[1, 11:14, 8:11] = np.linspace(0.3, 0.95, 9, dtype=np.float32).reshape(3, 3)
    return labels, heat


def make_hu(shape=(N_SLICES, ROWS, COLS)) -> np.ndarray:
    hu = np.full(shape, -1000, np.int16)
    hu[:, 4:20, 3:17] = 40
    hu[:, BOX_ROWS, BOX_COLS] = 700
    return hu
