"""The bundle run study by study, as the app runs it, on phantom studies: a ``StudyOutcome``
each, for the calibration and the test."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.analysis.metrics import confusion_matrix, dice_counts
from cspine_desktop.analysis.stage2 import calibrate, top_k_score
from cspine_desktop.vertebrae import N_CLASSES

from ..datasets.crops_stream import StreamConfig

log = logging.getLogger("cspine.stages")


def run_bundle(
    bundle_dir: Path, seeds: list[int], phantom: Any = None
) -> tuple[list[Any], np.ndarray]:
    """Every study through ``analyze`` with the bundle (``auto`` backend): a StudyOutcome each,
    and the segmentation's pixel confusion matrix (every second voxel).
    ``confounders['_raw']`` keeps the vertebra probabilities as the card's calibration gave
    them (the raw top-k scores when that calibration is the identity)."""
    from cspine_desktop.analysis.pipeline import analyze
    from cspine_desktop.inference import load_bundle, open_engine

    from ..phantom.config import PhantomConfig
    from ..phantom.study import generate_study

    bundle = load_bundle(bundle_dir)
    engine = open_engine(bundle, "auto", None, measure=False)
    out = []
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    t0 = time.perf_counter()
    for n, seed in enumerate(seeds, start=1):
        st = generate_study(seed, phantom or PhantomConfig())
        vol = st.to_volume()
        truth = st.in_volume_order(st.labels)
        res = analyze(vol, engine, bundle.card, explain=False)
        cm += confusion_matrix(truth[::2, ::2, ::2], res.labels[::2, ::2, ::2], N_CLASSES)
        out.append(_end_to_end_outcome(st, truth, res))
        if n % 10 == 0:
            log.info(
                "%d/%d studies (%.1f s per study)", n, len(seeds), (time.perf_counter() - t0) / n
            )
    engine.close()
    return out, cm


def _end_to_end_outcome(st: Any, truth: np.ndarray, res: Any) -> Any:
    """One study's outcome from what ``analyze`` gave: probabilities of the levels present,
    Dice against the true labels, and the confounders with the raw scores, the patient status
    and the scan coverage."""
    from ..model.predict import StudyOutcome

    present = np.array([v.present for v in res.result.vertebrae])
    prob = np.array([v.probability or 0.0 for v in res.result.vertebrae], np.float64)
    counts = dice_counts(res.labels, truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(counts[:, 1] > 0, counts[:, 0] / counts[:, 1], np.nan)
    summary = st.summary()
    return StudyOutcome(
        study_uid=st.study_uid,
        truth=np.asarray(st.fractured, bool),
        patient_truth=bool(st.patient_overall),
        probability=np.where(present, prob, 0.0),
        present=present,
        patient_probability=float(res.result.patient_overall.probability),
        dice=dice,
        dice_counts=counts,
        fractures=[f.to_dict() for f in st.fractures],
        confounders={
            **summary["confounders"],
            "_raw": np.where(present, prob, 0.0).tolist(),
            "_status": res.result.patient_overall.status
            if hasattr(res.result.patient_overall, "status")
            else "assessed",
            "_coverage": st.acquisition.extras.get("coverage", "neck"),
        },
    )


def truth_mask_outcomes(bundle_dir: Path, seeds: list[int], workers: int = 1) -> list[Any]:
    """Stage 2 alone on phantom studies of the phantom's default distribution, its crops cut
    around the TRUE vertebra masks (so segmentation errors play no part), scored by the
    bundle's classifier exactly as the app scores (int8 on the CPU when shipped, every
    plane at the card's spacing, top-k, the card's calibration). Dice is not measured here."""
    from cspine_desktop.analysis.stage2 import Stage2Config
    from cspine_desktop.inference import load_bundle, open_engine

    from ..model.predict import StudyOutcome
    from ..phantom.study import generate_study

    bundle = load_bundle(bundle_dir)
    # stage 2 rides on the engine when the bundle has one (not part of the Engine protocol)
    clf = getattr(open_engine(bundle, "auto", None, measure=False), "classifier", None)
    if clf is None:
        raise ValueError(f"{bundle_dir} has no stage-2 classifier to test")
    cfg = Stage2Config.from_card(bundle.card["stage2"])
    stream = StreamConfig(phantom_defaults=True)
    out = []
    t0 = time.perf_counter()
    for n, seed in enumerate(seeds, start=1):
        st = generate_study(seed, stream.phantom_config())
        planes = study_planes_eval(seed, cfg, stream, st)
        raw, present = _level_scores(clf, planes, cfg.top_k)
        prob = np.where(present, calibrate(raw, cfg.calibration), 0.0)
        out.append(
            StudyOutcome(
                study_uid=st.study_uid,
                truth=np.asarray(st.fractured, bool),
                patient_truth=bool(st.patient_overall),
                probability=prob,
                present=present,
                patient_probability=float(prob[present].max()) if present.any() else 0.0,
                dice=np.full(7, np.nan),
                dice_counts=np.zeros((7, 2), np.int64),
                fractures=[f.to_dict() for f in st.fractures],
                confounders={**st.summary()["confounders"], "_raw": raw.tolist()},
            )
        )
        if n % 20 == 0:
            per = (time.perf_counter() - t0) / n
            log.info("%d/%d studies (%.1f s per study)", n, len(seeds), per)
    return out


def _level_scores(clf: Any, planes: Any, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw top-k score, present) of C1..C7 from the classifier's plane probabilities, in
    batches of 16 planes."""
    raw = np.zeros(7)
    present = np.zeros(7, bool)
    for level in range(1, 8):
        sel = planes.vertebra == level
        if not sel.any():
            continue
        probs = []
        x = planes.x[sel].astype(np.float32)
        for i in range(0, len(x), 16):
            probs.append(np.asarray(clf.predict(x[i : i + 16])["fracture"]).reshape(-1))
        raw[level - 1] = top_k_score(np.concatenate(probs), top_k)
        present[level - 1] = True
    return raw, present


def study_planes_eval(seed: int, cfg: Any, stream: StreamConfig, study: Any) -> Any:
    from ..datasets.crops_stream import study_planes

    return study_planes(seed, cfg.crops, stream, train=False, spacing=cfg.spacing, study=study)
