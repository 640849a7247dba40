"""Stage 1's label maps of the classifier trainer's validation studies, for validating stage 2
on the masks the app hands it.

Stage 2 is trained on the phantom's true vertebra masks; in the app it reads stage 1's, whose
outlines wander and whose boundaries between levels sit a few millimetres off. On validation
phantoms that cost the classifier about 0.1 of its within-level AUC (docs/training.md, "What
stage 1's masks cost stage 2"), and a trainer that validates on true masks alone cannot see it.
``cspine-evaluate stages masks`` runs a bundle's stage 1 on the trainer's validation studies,
exactly as :func:`cspine_desktop.analysis.pipeline.analyze` does (level assignment, carried to
the source grid), and saves the maps; ``cspine-train-classifier --stage1-masks FILE`` then
scores every epoch on them as well and chooses ``best.keras`` on them. The file is small
(about 0.1 MB per study), so a training machine without ONNX Runtime can be handed it.

    cspine-evaluate stages masks --bundle assets/models/cspine-demo --studies 48 --out s1.npz
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("cspine.stages")


def stage1_labels(volume: Any, engine: Any, card: Mapping[str, Any]) -> np.ndarray:
    """Stage 1's label map of ``volume`` on the source grid, in the volume's order, exactly as
    :func:`cspine_desktop.analysis.pipeline.analyze` hands it to stage 2 (stage 2 not run; the
    outlines not moved onto the bone edge, which only what is shown and exported gets)."""
    from cspine_desktop.analysis.pipeline import analyze

    stage1_card = {k: v for k, v in card.items() if k not in ("stage2", "outline")}
    return np.asarray(analyze(volume, engine, stage1_card, explain=False).labels, np.uint8)


def stage1_label_maps(bundle_dir: Path, seeds: Iterable[int]) -> dict[int, np.ndarray]:
    """seed → stage 1's label map of that validation study of the classifier trainer (the
    stream's phantom distribution), on the source grid in the volume's order, as ``analyze``
    hands it to stage 2 (the bundle's ``auto`` backend; stage 2 itself is not run)."""
    from cspine_desktop.inference import load_bundle, open_engine

    from ..datasets.crops_stream import StreamConfig
    from ..phantom.study import generate_study

    bundle = load_bundle(Path(bundle_dir))
    phantom = StreamConfig().phantom_config()
    engine = open_engine(bundle, "auto", None, measure=False)
    out: dict[int, np.ndarray] = {}
    t0 = time.perf_counter()
    try:
        for seed in seeds:
            vol = generate_study(int(seed), phantom).to_volume()
            out[int(seed)] = stage1_labels(vol, engine, bundle.card)
    finally:
        engine.close()
    log.info(
        "stage 1 on %d studies (%.1f s each)",
        len(out),
        (time.perf_counter() - t0) / max(len(out), 1),
    )
    return out


def save_label_maps(path: Path, maps: dict[int, np.ndarray], bundle: str) -> None:
    arrays: dict[str, Any] = {f"s{seed}": maps[seed] for seed in sorted(maps)}
    arrays["seeds"] = np.array(sorted(maps), np.int64)
    arrays["bundle"] = np.array(bundle)
    np.savez_compressed(path, **arrays)


def load_label_maps(path: Path, seeds: Iterable[int]) -> dict[int, np.ndarray]:
    """seed → label map for each of ``seeds`` from a file :func:`save_label_maps` wrote;
    ValueError naming the first seed it lacks (made for fewer or other studies)."""
    with np.load(path) as d:
        have = set(int(s) for s in d["seeds"])
        missing = [int(s) for s in seeds if int(s) not in have]
        if missing:
            raise ValueError(
                f"{path} has no stage-1 labels for validation study {missing[0]} "
                f"({len(missing)} missing): write it with --studies covering the run's"
            )
        return {int(s): np.asarray(d[f"s{int(s)}"], np.uint8) for s in seeds}


def write_masks(args: argparse.Namespace) -> dict[str, Any]:
    """``stages masks``: the first ``--studies`` validation studies of the classifier trainer."""
    from ..datasets.crops_stream import VAL_SEED0

    seeds = [VAL_SEED0 + i for i in range(args.studies)]
    maps = stage1_label_maps(Path(args.bundle), seeds)
    save_label_maps(Path(args.out), maps, str(args.bundle))
    log.info("wrote %s: %d studies", args.out, len(maps))
    return {"studies": len(maps), "out": str(args.out)}
