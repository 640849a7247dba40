"""A stand-in for the analysis handler of the job queue: real loading, made-up verdicts.

It labels bone (HU > 300) in seven bands from head to feet as C1–C7, puts fracture heat on C5's
bone, reports per-slice progress ("analysing k/n"), honours cancellation, and saves labels and
heat-map as the real handler does (``save_overlays`` → the ``overlays.npz`` artifact).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from cspine_desktop.analysis.pipeline import AnalysisOutcome
from cspine_desktop.analysis.result import (
    AnalysisResult,
    ModelInfo,
    PatientVerdict,
    VertebraVerdict,
)
from cspine_desktop.imaging import load_study
from cspine_desktop.progress import Progress
from cspine_desktop.services.analysis import OVERLAY_ARTIFACT, save_overlays
from cspine_desktop.vertebrae import NAMES

FRACTURED = 5  # C5


def fake_outcome_arrays(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = hu.shape[0]
    band = (np.arange(n) * 7 // max(n, 1)) + 1  # index 0 → C1 … last → C7
    labels = np.where(hu > 300, band[:, None, None], 0).astype(np.uint8)
    heat = np.where(labels == FRACTURED, 0.9, 0.0).astype(np.float32)
    return labels, heat


def fake_result(volume, labels: np.ndarray, patient_threshold: float = 0.5) -> AnalysisResult:
    verdicts = []
    for k, name in enumerate(NAMES, start=1):
        zs = np.nonzero((labels == k).any(axis=(1, 2)))[0]
        present = zs.size > 0
        p = 0.92 if k == FRACTURED else 0.04
        verdicts.append(
            VertebraVerdict(
                name=name,
                present=bool(present),
                probability=p if present else None,
                fractured=bool(p >= 0.5) if present else None,
                slice_range=(int(zs[0]), int(zs[-1])) if present else None,
                peak_slice=int(zs[len(zs) // 2]) if present else None,
                status="assessed" if present else "not_in_view",
                threshold=0.5,
            )
        )
    return AnalysisResult(
        study_instance_uid=str(volume.meta.get("StudyInstanceUID", "")),
        series_instance_uid=str(volume.meta.get("SeriesInstanceUID", "")),
        model=ModelInfo("fake-model", "0.0-test", "0" * 64),
        backend="fake",
        patient_overall=PatientVerdict(0.92, True, threshold=patient_threshold),
        vertebrae=tuple(verdicts),
        thresholds={**{name: 0.5 for name in NAMES}, "patient_overall": patient_threshold},
        timings_s={"load": 0.1, "inference": 0.2, "total": 0.3},
        patient_id=str(volume.meta.get("PatientID", "")),
    )


def indeterminate(result: AnalysisResult, reason: str) -> AnalysisResult:
    """``result`` with no verdict given: every vertebra in view and the patient indeterminate."""
    import dataclasses

    vertebrae = tuple(
        v
        if v.status == "not_in_view"
        else dataclasses.replace(v, fractured=None, status="indeterminate", reasons=(reason,))
        for v in result.vertebrae
    )
    patient = dataclasses.replace(
        result.patient_overall, fractured=None, status="indeterminate", reasons=(reason,)
    )
    return dataclasses.replace(result, vertebrae=vertebrae, patient_overall=patient)


class FakeHandler:
    """``handler(ctx) -> dict`` for :class:`JobQueue`. ``gate``: when set up with
    ``block_at``, the handler waits (still checking cancellation) before that slice until
    ``gate`` is set. ``work_s`` of numpy work per slice makes a CPU-bound analysis."""

    def __init__(
        self,
        delay_s: float = 0.0,
        block_at: int | None = None,
        work_s: float = 0.0,
        patient_threshold: float = 0.5,
    ):
        self.delay_s = delay_s
        self.patient_threshold = patient_threshold
        self.block_at = block_at
        self.work_s = work_s
        self.gate = threading.Event()
        self.reached_block = threading.Event()
        self.calls = 0

    def __call__(self, ctx) -> dict:
        self.calls += 1
        volume = load_study(ctx.files_dir, series_uid=ctx.study.series_uid or None)
        n = volume.hu.shape[0]
        for i in range(n):
            if self.block_at is not None and i == self.block_at:
                self.reached_block.set()
                while not self.gate.wait(0.01):
                    ctx.check_cancelled()
            ctx.check_cancelled()
            if self.work_s:
                _busy(self.work_s)
            if self.delay_s:
                time.sleep(self.delay_s)
            ctx.progress(Progress((i + 1) / n, f"analysing {i + 1}/{n}"))
        labels, heat = fake_outcome_arrays(volume.hu)
        result = fake_result(volume, labels, self.patient_threshold)
        outcome = AnalysisOutcome(result, volume, labels, heat)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_overlays(outcome, Path(tmp) / OVERLAY_ARTIFACT)
            ctx.write_artifact(OVERLAY_ARTIFACT, "overlay", path.read_bytes())
        return outcome.result.to_dict()


def _busy(seconds: float) -> None:
    """CPU work in numpy (releases the GIL inside BLAS, like a real engine)."""
    end = time.perf_counter() + seconds
    a = np.random.default_rng(0).standard_normal((192, 192)).astype(np.float32)
    while time.perf_counter() < end:
        a = np.tanh(a @ a.T * 1e-3)
