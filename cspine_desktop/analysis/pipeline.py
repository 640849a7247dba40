"""One study through the model: Volume → model grid → engine → cleanup → verdicts.

``analyze`` is the single implementation behind ``cspine analyze``, the GUI and the HTTP jobs.
It takes an engine (an :class:`AnalysisEngine`: anything with ``predict``/``input_shape``/
``label``/``sha256``, as every ``cspine_desktop.inference.Engine`` has) and the model card (a
mapping, as in ``model_card.json``); it never imports a framework.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from ..imaging.preprocess import (
    PreparedVolume,
    PreprocessConfig,
    from_grid,
    labels_from_grid,
    model_input,
    prepare_volume,
)
from ..imaging.volume import Volume
from ..progress import CancelToken, Progress, ProgressCallback, check_cancelled, reporter, within
from ..vertebrae import NAMES
from .aggregate import PATIENT_KEY, AggregationConfig, StudyScores, aggregate_study, verdicts
from .explain import class_activation_grid, fracture_heatmap, stored_activation
from .model_pass import GridOutputs, Predictor, run_model
from .outline import OutlineConfig, outline_to_bone
from .plausibility import FinalVerdicts, SpineCheck, final_verdicts, volume_input_reasons
from .postprocess import CleanLabels
from .result import (
    AnalysisResult,
    ModelInfo,
    PatientVerdict,
    VertebraVerdict,
    operating_points,
)
from .stage2 import Stage2Config, Stage2Scores, score_vertebrae, with_stage2
from .upright import (
    LEANING_DEG,
    UprightReading,
    clean_and_check,
    read_upright,
    second_reading_lean,
    turned_deg,
)

# share of the progress bar per stage
_P_PREP, _P_MODEL = 0.1, 0.85

Activation = Callable[[np.ndarray, int], np.ndarray]  # (grid planes, vertebra) → CAM [N, h, w]


class AnalysisEngine(Predictor, Protocol):
    """What :func:`analyze` needs of an engine: the model (:class:`.runner.Predictor`), its label
    for the result and the digest of the file it runs. Looked up by name where an engine has
    them: ``classifier`` (stage 2, an AnalysisEngine too), ``warnings`` (plain sentences), and
    ``supports_cam`` with ``class_activation(batch, vertebra)`` (the engine's own class
    activation)."""

    @property
    def label(self) -> str: ...

    @property
    def sha256(self) -> str: ...


class _Explaining(Protocol):
    """An engine whose ``supports_cam`` is true."""

    def class_activation(self, batch: np.ndarray, vertebra: int) -> np.ndarray: ...


@dataclass
class AnalysisOutcome:
    """Everything exports and the viewer need from one analysis.

    result  : the verdicts (serialises to ``cspine.analysis/2``).
    volume  : the analysed series (unchanged).
    labels  : uint8 [z, y, x] on the source grid, 0 background, 1–7 = C1–C7; outlines on the
              bone edge when the card has an ``outline`` section (stage 2 read stage 1's own).
    heatmap : float32 [z, y, x] on the source grid, fracture likelihood in [0, 1].
    gradcam : float32 [z, y, x] class activation for the vertebrae judged fractured, in [0, 1],
              or None (nothing fractured, or the backend cannot explain its classifier).
    """

    result: AnalysisResult
    volume: Volume
    labels: np.ndarray
    heatmap: np.ndarray
    gradcam: np.ndarray | None = None


def analyze(
    volume: Volume,
    engine: AnalysisEngine,
    card: Mapping[str, Any],
    progress: ProgressCallback | None = None,
    cancel: CancelToken = None,
    *,
    explain: bool = True,
) -> AnalysisOutcome:
    """Analyse ``volume`` with ``engine`` using the card's preprocessing, aggregation and
    thresholds. ``progress`` gets a :class:`~cspine_desktop.progress.Progress` from this
    thread; ``cancel`` is checked between batches → Cancelled."""
    t_start = time.perf_counter()
    report = reporter(progress)
    cfg = PreprocessConfig.from_dict(dict(card["preprocessing"]))
    if tuple(engine.input_shape) != (cfg.input_size, cfg.input_size, cfg.n_channels):
        raise ValueError(f"engine input {engine.input_shape} does not match the card")
    outline = OutlineConfig.from_card(card.get("outline"))
    timings: dict[str, float] = {}

    report(Progress(0.0, "resampling to the model grid"))
    t0 = time.perf_counter()
    prepared = prepare_volume(volume, cfg)
    timings["preprocess"] = time.perf_counter() - t0
    check_cancelled(cancel)

    t0 = time.perf_counter()
    grid = run_model(
        engine,
        prepared,
        progress=within(report, _P_PREP, _P_MODEL),
        cancel=cancel,
    )
    timings["inference"] = time.perf_counter() - t0

    report(Progress(_P_MODEL, "checking the segmentation"))
    t0 = time.perf_counter()
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    spine = read_spine(
        engine,
        prepared,
        grid.labels,
        aggregation,
        volume_input_reasons(volume),
        cancel=cancel,
        progress=within(report, _P_MODEL, 0.86),
    )
    clean = spine.clean
    scores = aggregate_study(clean.labels, grid.fracture_cls, grid.fracture_map, aggregation)
    labels = labels_from_grid(clean.labels, prepared)
    classifier: AnalysisEngine | None = getattr(engine, "classifier", None)
    stage2 = None
    if classifier is not None and card.get("stage2"):
        report(Progress(0.86, "judging each vertebra at full resolution"))
        t2 = time.perf_counter()
        stage2 = _stage2_scores(volume, labels, classifier, card, cancel)
        scores = with_stage2(scores, stage2, prepared)
        timings["stage2"] = time.perf_counter() - t2
    thresholds = {k: float(v) for k, v in card["thresholds"].items()}
    verdict = verdicts(scores, thresholds)
    final = final_verdicts(spine.check, verdict, verdict[PATIENT_KEY])
    heat_grid = fracture_heatmap(grid.fracture_map, clean.labels, cfg.pixel_spacing_mm)
    cam_grid = None
    if explain and stage2 is None:
        cam_grid = _explanation_grid(engine, grid, prepared, clean, verdict, report)
    check_cancelled(cancel)
    if stage2 is not None:  # stage 2's localisation, drawn on the source grid
        heatmap = stage2.heatmap
    else:
        heatmap = from_grid(heat_grid, prepared, order="linear").astype(np.float32, copy=False)
    gradcam = None if cam_grid is None else from_grid(cam_grid, prepared, order="linear")
    timings["postprocess"] = time.perf_counter() - t0
    if outline is not None:  # what is shown and exported; stage 2 read stage 1's own labels
        t0 = time.perf_counter()
        labels = outline_to_bone(labels, volume, outline)
        timings["outline"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    result = _result(
        volume,
        card,
        scores,
        final,
        prepared,
        thresholds,
        backend=_backend_label(engine, classifier if stage2 is not None else None),
        sha256=str(engine.sha256),
        warnings=[
            *volume.warnings,
            *getattr(engine, "warnings", ()),
            *clean.warnings,
            *spine.warnings,
        ],
        timings=timings,
    )
    report(Progress(1.0, "done"))
    return AnalysisOutcome(result, volume, labels, heatmap, gradcam)


@dataclass(frozen=True)
class SpineReading:
    """Stage 1's labels cleaned, their levels counted and checked (:mod:`.plausibility`):
    ``clean`` and ``check`` on the model grid, and ``warnings`` on how they were read."""

    clean: CleanLabels
    check: SpineCheck
    warnings: tuple[str, ...] = ()


def read_spine(
    engine: Predictor | None,
    prepared: PreparedVolume,
    labels: np.ndarray,
    aggregation: AggregationConfig,
    input_problems: tuple[str, ...] = (),
    *,
    cancel: CancelToken = None,
    progress: ProgressCallback | None = None,
) -> SpineReading:
    """The model's grid ``labels`` cleaned up, their levels assigned when the card asks for
    it, and checked; where that leaves the study or a level indeterminate, stage 1
    (``engine``; None: not) reads it again on the CT turned to stand the column upright
    (:mod:`.upright`), and that reading stands when it passes the checks."""
    cfg = prepared.cfg
    clean, check = clean_and_check(
        labels,
        prepared.hu,
        cfg,
        input_problems=input_problems,
        min_voxels=aggregation.min_voxels,
        assign_levels=aggregation.assign_levels,
    )
    if engine is None or input_problems:
        return SpineReading(clean, check)
    lean = second_reading_lean(check, clean.labels, cfg.slice_step_mm, cfg.pixel_spacing_mm)
    if lean is None:
        return SpineReading(clean, check)
    if progress is not None:
        progress(Progress(0.0, "reading the neck again, turned upright"))
    again = read_upright(
        engine,
        prepared,
        clean,
        lean,
        min_voxels=aggregation.min_voxels,
        assign_levels=aggregation.assign_levels,
        cancel=cancel,
    )
    return _second_reading(clean, check, again, lean)


def _second_reading(
    clean: CleanLabels, check: SpineCheck, again: UprightReading, lean: float
) -> SpineReading:
    """The reading that stands (the second where it passed the checks, else the first), and
    the warning that says how it was read."""
    turns = " and ".join(f"{abs(d):.0f}°" for d in turned_deg(lean))
    second = f"a second pass of the model on the CT turned {turns} about the left–right axis"
    if abs(lean) > LEANING_DEG:
        leaning = f"The neck leans {abs(lean):.0f}° against the slices"
        passed = f"{leaning}: its vertebrae were labelled on the CT turned upright."
        failed = f"{leaning}; read again turned upright, it did not pass the checks either."
    else:
        passed = (
            f"The vertebrae were labelled by {second}: the first pass of the model did not "
            "pass the checks."
        )
        failed = f"The first pass of the model did not pass the checks, nor did {second}."
    if again.passed:
        return SpineReading(again.clean, again.check, (passed,))
    return SpineReading(clean, check, (failed,))


def _stage2_scores(
    volume: Volume,
    labels: np.ndarray,
    classifier: AnalysisEngine,
    card: Mapping[str, Any],
    cancel: CancelToken,
) -> Stage2Scores:
    """Stage 2: each vertebra judged at full resolution on the source grid."""
    return score_vertebrae(
        volume,
        labels,
        classifier,
        Stage2Config.from_card(card["stage2"]),
        check=lambda: check_cancelled(cancel),
    )


def _explanation_grid(
    engine: AnalysisEngine,
    grid: GridOutputs,
    prepared: PreparedVolume,
    clean: CleanLabels,
    verdict: dict[str, bool],
    report: ProgressCallback,
) -> np.ndarray | None:
    """Class activation on the model grid for the vertebrae judged fractured, or None when
    nothing is fractured or the engine cannot explain its classifier."""
    if not any(verdict[n] for n in NAMES):
        return None
    activation = _activation(engine, grid, prepared)
    if activation is None:
        return None
    report(Progress(0.9, "explaining the findings"))
    return class_activation_grid(activation, clean.labels, verdict)


def _result(
    volume: Volume,
    card: Mapping[str, Any],
    scores: StudyScores,
    final: FinalVerdicts,
    prepared: PreparedVolume,
    thresholds: dict[str, float],
    *,
    backend: str,
    sha256: str,
    warnings: list[str],
    timings: dict[str, float],
) -> AnalysisResult:
    """The verdicts as the result document states them."""
    return AnalysisResult(
        study_instance_uid=str(volume.meta.get("StudyInstanceUID") or ""),
        series_instance_uid=str(volume.meta.get("SeriesInstanceUID") or ""),
        model=ModelInfo(str(card["name"]), str(card["version"]), sha256),
        backend=backend,
        patient_overall=PatientVerdict(
            round(float(scores.patient_probability), 6),
            final.patient_fractured,
            status=final.patient_status,
            reasons=final.patient_reasons,
            threshold=thresholds.get(PATIENT_KEY),
            operating_point=operating_points(dict(card))["patient"],
        ),
        vertebrae=_vertebra_verdicts(scores, final, prepared, thresholds, card),
        thresholds=thresholds,
        warnings=tuple(dict.fromkeys(warnings)),
        timings_s={k: round(v, 4) for k, v in timings.items()},
        patient_id=str(volume.meta.get("PatientID") or ""),
    )


def _activation(
    engine: AnalysisEngine, grid: GridOutputs, prepared: PreparedVolume
) -> Activation | None:
    """Where class activations come from: the CAM output kept from the main pass, else the
    engine's own (Keras Grad-CAM, one more pass over the vertebra's planes), else nothing."""
    if grid.cam is not None:
        return stored_activation(grid.cam)
    if getattr(engine, "supports_cam", False):
        explaining = cast(_Explaining, engine)  # supports_cam promises class_activation
        return lambda planes, k: explaining.class_activation(model_input(prepared, planes), k)
    return None


def _vertebra_verdicts(
    scores: StudyScores,
    final: FinalVerdicts,
    prepared: PreparedVolume,
    thresholds: dict[str, float],
    card: Mapping[str, Any],
) -> tuple[VertebraVerdict, ...]:
    point = operating_points(dict(card))["vertebra"]
    out = []
    for i, name in enumerate(NAMES):
        present = bool(scores.present[i])
        rng = scores.slice_range[i]
        peak = scores.peak_slice[i]
        out.append(
            VertebraVerdict(
                name=name,
                present=present,
                probability=round(float(scores.probability[i]), 6) if present else None,
                fractured=final.fractured[name],
                slice_range=source_range(prepared, rng) if rng is not None else None,
                peak_slice=prepared.source_slice_of(peak) if peak is not None else None,
                status=final.status[name],
                reasons=final.reasons[name],
                threshold=thresholds.get(name),
                operating_point=point,
            )
        )
    return tuple(out)


def source_range(prepared: PreparedVolume, grid_range: tuple[int, int]) -> tuple[int, int]:
    """Grid planes (first, last) → (first, last) source slice index covering them."""
    g0, g1 = grid_range
    inside = np.nonzero((prepared.source_z >= g0 - 0.5) & (prepared.source_z <= g1 + 0.5))[0]
    if inside.size == 0:  # source slices thicker than the grid step
        a, b = prepared.source_slice_of(g0), prepared.source_slice_of(g1)
        return (min(a, b), max(a, b))
    return (int(inside.min()), int(inside.max()))


def _backend_label(engine: AnalysisEngine, stage2: AnalysisEngine | None) -> str:
    """The stage-1 engine's label, plus the stage-2 classifier's when it ran (e.g.
    ``onnx-cpu-int8 + stage 2 onnx-cpu-int8``)."""
    label = str(engine.label)
    if stage2 is not None:
        label += f" + stage 2 {stage2.label}"
    return label
