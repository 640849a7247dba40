"""Stage 1's raw labels of phantom studies on the model grid, saved once per bundle, and the
level count and plausibility checks judged on them at any revision of the code.

Most of what decides whether a study comes out assessed happens after stage 1: the level
count (:func:`~cspine_desktop.analysis.levels.assign_levels`), the clean-up and the checks.
Running the whole analysis again to judge a change there costs 40 minutes for the 280 studies
of the benchmark sets; stage 1's output does not change with that code. So ``grid`` runs a
bundle's stage 1 once on a range of phantom seeds, exactly as
:func:`cspine_desktop.analysis.pipeline.analyze` does (``prepare_volume``, ``run_model``) and
saves, per study, its raw labels, the CT and the phantom's true labels on the same grid, and
what the volume itself says against a verdict (``volume_input_reasons``). ``count`` then runs
``clean_labels`` and ``check_cleaned`` on them as the pipeline calls them, and reports, against
the true labels, how many studies have every level assessed, how many levels are assessed,
which assessed levels lie off their level (:func:`.levels.compare_levels`, the app's centre
nearer another level than its own) and which carry their name on under 70 % of their true
vertebra (:func:`.levels.misnamed_levels`), by how far the neck leans against the slices.

    cspine-evaluate stages grid  --bundle assets/models/cspine-demo --seeds 96000100:100 \\
        --out runs/grid/demo [--pose leaning]
    cspine-evaluate stages count --cache runs/grid/demo [--out count.json]

A study's file is about 3.5 MB (the CT on the grid, float32); a seed already in the folder is
not run again, so an interrupted ``grid`` resumes, and more seed ranges can be added to one
folder. The phantom's true labels decide nothing in ``count`` except the report.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.errors import CspineInputError
from cspine_desktop.vertebrae import NAMES

from .levels import MIN_OWN_SHARE, compare_levels, misnamed_levels

log = logging.getLogger("cspine.stages")

# necks leaning more than this against the slices are counted apart (docs/benchmarks.md,
# "What keeps the share of assessed patients under 98 %"): stage 1 fails them most
STEEP_LEAN_DEG = 13.0


def parse_seeds(text: str) -> range:
    """``FIRST:COUNT`` → the seeds FIRST … FIRST + COUNT − 1."""
    try:
        first, count = (int(v) for v in text.split(":"))
    except ValueError:
        raise CspineInputError(
            f"--seeds is FIRST:COUNT (e.g. 96000100:100), not {text!r}"
        ) from None
    if count < 1 or first < 0:
        raise CspineInputError(f"--seeds needs a first seed ≥ 0 and a count ≥ 1, not {text!r}")
    return range(first, first + count)


def cache_grid_labels(bundle_dir: Path, seeds: range, pose: str, out: Path) -> int:
    """Stage 1's raw grid labels of the phantom studies ``seeds`` posed as ``pose`` (one of
    :data:`model_training.phantom.config.POSES`), one ``<seed>.npz`` each in ``out``; seeds
    already there are skipped. Returns how many were run."""
    from cspine_desktop.analysis.model_pass import run_model
    from cspine_desktop.analysis.plausibility import volume_input_reasons
    from cspine_desktop.imaging.preprocess import PreprocessConfig, prepare_volume, to_grid
    from cspine_desktop.inference import load_bundle, open_engine

    from ..phantom import generate_study
    from ..phantom.config import POSES, PhantomConfig

    if pose not in POSES:
        raise CspineInputError(f"--pose is one of {', '.join(sorted(POSES))}, not {pose!r}")
    bundle = load_bundle(Path(bundle_dir))
    cfg = PreprocessConfig.from_dict(bundle.card["preprocessing"])
    overrides: dict[str, Any] = dict(POSES[pose])
    config = PhantomConfig(**overrides)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in seeds if not (out / f"{s}.npz").exists()]
    engine = open_engine(bundle, "onnx", None, measure=False)
    t0 = time.perf_counter()
    try:
        for n, seed in enumerate(todo, start=1):
            study = generate_study(seed, config)
            volume = study.to_volume()
            prepared = prepare_volume(volume, cfg)
            truth = to_grid(study.in_volume_order(study.labels), prepared)
            grid = run_model(engine, prepared)
            extras = study.acquisition.extras
            np.savez_compressed(
                out / f"{seed}.npz",
                raw=grid.labels.astype(np.uint8),
                hu=prepared.hu.astype(np.float32),
                truth=truth.astype(np.uint8),
                step=cfg.slice_step_mm,
                px=cfg.pixel_spacing_mm,
                problems=np.array(volume_input_reasons(volume), dtype=str),
                meta=json.dumps(
                    {
                        "seed": seed,
                        "pose": pose,
                        "bundle": bundle.card.get("version"),
                        "lean_deg": float(extras.get("gantry_tilt_deg", 0.0)),
                        "coverage": str(extras.get("coverage", "neck")),
                    }
                ),
            )
            log.info("%d/%d studies (%.1f s each)", n, len(todo), (time.perf_counter() - t0) / n)
    finally:
        engine.close()
    return len(todo)


def count_study(path: Path, stage1: Stage1 | None = None) -> dict[str, Any]:
    """The level count, clean-up and checks of the code as it is now on one cached study, and
    how its assessed levels compare with the true labels. With ``stage1`` (the engine and the
    card of the bundle that made the cache), a study the first reading leaves indeterminate is
    read again on its CT turned upright, as ``analyze`` reads it
    (:func:`cspine_desktop.analysis.pipeline.read_spine`)."""
    from cspine_desktop.analysis.aggregate import AggregationConfig
    from cspine_desktop.analysis.pipeline import read_spine
    from cspine_desktop.imaging.preprocess import PreparedVolume, PreprocessConfig

    with np.load(path) as d:
        raw, hu, truth = d["raw"], d["hu"], d["truth"]
        step, px = float(d["step"]), float(d["px"])
        problems = tuple(str(p) for p in d["problems"])
        meta = json.loads(str(d["meta"]))
    if stage1 is not None:
        cfg = PreprocessConfig.from_dict(dict(stage1.card["preprocessing"]))
        aggregation = AggregationConfig.from_dict(stage1.card.get("aggregation"))
    else:  # the grid's spacing is all the count needs of the card
        cfg = PreprocessConfig(slice_step_mm=step, pixel_spacing_mm=px, input_size=hu.shape[1])
        aggregation = AggregationConfig()
    if (cfg.slice_step_mm, cfg.pixel_spacing_mm) != (step, px):
        raise CspineInputError(f"{path.name} was not made on the grid of the bundle given")
    prepared = PreparedVolume(
        hu=hu,
        affine=np.eye(4),
        grid_to_voxel=np.eye(4),
        source_shape=(hu.shape[0], hu.shape[1], hu.shape[2]),
        source_z=np.arange(hu.shape[0], dtype=np.float64),
        cfg=cfg,
    )
    engine = None if stage1 is None else stage1.engine
    spine = read_spine(engine, prepared, raw, aggregation, problems)
    clean, check = spine.clean, spine.check
    assessed = [NAMES.index(n) + 1 for n, s in check.status.items() if s == "assessed"]
    rows = compare_levels(clean.labels, truth, step, dict(check.status))
    all_assessed = not check.study_reasons and len(assessed) == len(NAMES)
    reasons = [*check.study_reasons] + [
        f"{n}: {r[0]}" for n, r in check.reasons.items() if check.status[n] != "assessed" and r
    ]
    labelled = clean.labels > 0
    return {
        "seed": meta["seed"],
        "lean_deg": meta["lean_deg"],
        "coverage": meta["coverage"],
        "all_assessed": all_assessed,
        "levels_assessed": len(assessed),
        "first_reason": "" if all_assessed or not reasons else reasons[0],
        "read_again": bool(spine.warnings),
        "off_level": [r["level"] for r in rows if r["confident_wrong_level"]],
        "misnamed": [
            f"{NAMES[k - 1]} {own:.0%}" for k, own in misnamed_levels(clean.labels, truth, assessed)
        ],
        "at_true_level": [int((clean.labels == truth)[labelled].sum()), int(labelled.sum())],
    }


@dataclass(frozen=True)
class Stage1:
    """A bundle's stage 1 engine and model card, to read unsure first readings again."""

    engine: Any
    card: dict[str, Any]


def count_cache(cache: Path, bundle_dir: Path | None = None) -> dict[str, Any]:
    """:func:`count_study` on every study in ``cache`` (with ``bundle_dir``'s stage 1 for the
    second reading of unsure first readings), and the totals."""
    files = sorted(Path(cache).glob("*.npz"), key=lambda p: p.stem)
    if not files:
        raise CspineInputError(
            f"{cache} holds no studies (cspine-evaluate stages grid writes them)"
        )
    if bundle_dir is None:
        studies = [count_study(f) for f in files]
    else:
        from cspine_desktop.inference import load_bundle, open_engine

        bundle = load_bundle(Path(bundle_dir))
        engine = open_engine(bundle, "onnx", None, measure=False)
        try:
            studies = [count_study(f, Stage1(engine, dict(bundle.card))) for f in files]
        finally:
            engine.close()

    def total(rows: list[dict[str, Any]]) -> dict[str, Any]:
        right, labelled = (sum(r["at_true_level"][i] for r in rows) for i in (0, 1))
        return {
            "studies": len(rows),
            "all_assessed": sum(r["all_assessed"] for r in rows),
            "levels_assessed": sum(r["levels_assessed"] for r in rows),
            "off_level": [f"{r['seed']} {lv}" for r in rows for lv in r["off_level"]],
            "misnamed": [f"{r['seed']} {m}" for r in rows for m in r["misnamed"]],
            "labelled_voxels_at_true_level": round(right / labelled, 4) if labelled else None,
            "read_again": sum(r["read_again"] for r in rows),
        }

    steep = [r for r in studies if abs(r["lean_deg"]) > STEEP_LEAN_DEG]
    rest = [r for r in studies if abs(r["lean_deg"]) <= STEEP_LEAN_DEG]
    return {
        "total": total(studies),
        f"leaning_over_{STEEP_LEAN_DEG:g}_deg": total(steep),
        "the_others": total(rest),
        "coverage": dict(Counter(r["coverage"] for r in studies)),
        "studies": studies,
    }


def grid_command(args: argparse.Namespace) -> None:
    seeds = parse_seeds(args.seeds)
    n = cache_grid_labels(Path(args.bundle), seeds, args.pose, Path(args.out))
    print(f"stage 1 run on {n} studies ({len(seeds) - n} already in {args.out})")


def count_command(args: argparse.Namespace) -> None:
    report = count_cache(Path(args.cache), Path(args.bundle) if args.bundle else None)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    for key in ("total", f"leaning_over_{STEEP_LEAN_DEG:g}_deg", "the_others"):
        t = report[key]
        print(
            f"{key}: {t['all_assessed']}/{t['studies']} studies with every level assessed, "
            f"{t['levels_assessed']}/{len(NAMES) * t['studies']} levels assessed, "
            f"assessed off their level {_listed(t['off_level'])}, "
            f"assessed under {MIN_OWN_SHARE:.0%} their own {_listed(t['misnamed'])}, "
            f"labelled voxels at their true level {t['labelled_voxels_at_true_level']}, "
            f"read again {t['read_again']}"
        )
    for r in report["studies"]:
        if not r["all_assessed"]:
            print(f"  {r['seed']} (lean {r['lean_deg']:+.1f}°): {r['first_reason'][:160]}")


def _listed(items: list[str]) -> str:
    return f"{len(items)} ({', '.join(items)})" if items else "0"
