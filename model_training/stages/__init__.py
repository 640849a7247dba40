"""The two-stage bundle: export the stage-2 classifier into a bundle, calibrate it and choose the
thresholds on validation phantoms, and evaluate the bundle end to end — as the app runs it.

    cspine-evaluate stages export   --classifier RUN/best.keras --bundle BUNDLE
    cspine-evaluate stages quantize --bundle BUNDLE      # int8 classifier for a float bundle
    cspine-evaluate stages calibrate --bundle BUNDLE --studies 80
    cspine-evaluate stages test     --bundle BUNDLE --studies 200 --out OUT [--docs docs]
    cspine-evaluate stages masks    --bundle BUNDLE --studies 48 --out S1.npz
    cspine-evaluate stages outline  --bundle BUNDLE [--off]   # shown outlines on the bone edge
    cspine-evaluate stages levels   --data ROOT --bundle BUNDLE --out OUT  # levels vs reference
    cspine-evaluate stages grid     --bundle BUNDLE --seeds FIRST:COUNT --out DIR  # stage 1 once
    cspine-evaluate stages count    --cache DIR      # the level count and checks on it, as now

``export`` writes ``classifier.onnx`` (fp32, checked against Keras) and ``classifier.int8.onnx``
when the int8 model passes the accuracy gate (:func:`model_training.deploy.gate.judge_classifier`
on 60 held-out phantoms), and the card's ``stage2`` section; ``quantize`` does the int8 part
alone for a bundle that ships only the float classifier. ``calibrate`` runs the bundle through
:func:`cspine_desktop.analysis.pipeline.analyze` (both stages, the backend ``auto`` picks) on
validation phantoms, fits the Platt calibration of the vertebra scores and chooses the
thresholds for sensitivity ≥ 0.90 (:func:`model_training.model.scoring.choose_thresholds`).
``test`` runs it on phantom studies of a seed never used before and writes the metrics, the
report and the card's ``metrics``. ``masks`` saves stage 1's label maps of the classifier
trainer's validation studies (:mod:`.stage1_masks`), for ``cspine-train-classifier
--stage1-masks``. ``outline`` sets the card's section that moves the outlines the app shows
onto the bone edge (:mod:`.outline_card`). ``levels`` compares where the app puts each level
with the reference labels of an RSNA-layout folder, real or phantom (:mod:`.levels`). ``grid``
saves stage 1's raw labels of phantom studies on the model grid, and ``count`` judges the level
count, clean-up and checks of the code as it is on them (:mod:`.grid_labels`). Phantom
seeds:
:mod:`model_training.datasets.crops_stream`.

One module per step (:mod:`.export_classifier`, :mod:`.calibrate`, :mod:`.held_out`); the
bundle run study by study is in :mod:`.outcomes`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cspine_desktop.analysis.outline import OutlineConfig
from cspine_desktop.errors import CspineInputError

from .calibrate import calibrate_bundle, fit_platt
from .export_classifier import GATE_MAX_DROP, GATE_SEED0, QUANT_SEED0, export, quantize_bundle
from .grid_labels import count_command, grid_command
from .held_out import test_bundle
from .levels import evaluate_levels
from .outcomes import run_bundle, study_planes_eval, truth_mask_outcomes
from .outline_card import set_outline
from .stage1_masks import write_masks

__all__ = [
    "GATE_MAX_DROP",
    "GATE_SEED0",
    "QUANT_SEED0",
    "build_parser",
    "calibrate_bundle",
    "export",
    "fit_platt",
    "main",
    "run_bundle",
    "study_planes_eval",
    "test_bundle",
    "truth_mask_outcomes",
]


def _int8_options(p: argparse.ArgumentParser) -> None:
    """The int8 classifier's calibration and gate sizes (``export`` and ``quantize``)."""
    p.add_argument(
        "--gate-studies",
        type=int,
        default=60,
        help="held-out phantoms for the int8 gate (16 could not resolve its 0.005 drop)",
    )
    p.add_argument("--quant-studies", type=int, default=12)
    p.add_argument("--quant-planes", type=int, default=400)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cspine-evaluate stages", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    e = sub.add_parser("export")
    e.add_argument("--classifier", required=True, help="RUN/best.keras of cspine-train-classifier")
    e.add_argument("--bundle", required=True)
    e.add_argument("--top-k", type=int, default=2)
    _int8_options(e)
    e.add_argument("--no-int8", action="store_true")
    e.add_argument("--version", help="the bundle's new version (its old notes are dropped)")
    e.add_argument("--note", action="append", help="KEY=TEXT, a note of the card (repeatable)")
    q = sub.add_parser("quantize", help="add the int8 classifier to a bundle, if it passes")
    q.add_argument("--bundle", required=True)
    _int8_options(q)
    c = sub.add_parser("calibrate")
    c.add_argument("--bundle", required=True)
    c.add_argument("--studies", type=int, default=80)
    c.add_argument("--min-sensitivity", type=float, default=0.90)
    c.add_argument(
        "--min-vertebra-sensitivity",
        type=float,
        default=0.0,
        help="only vertebra thresholds that call at least this share of the fractured "
        "vertebrae on validation (default 0: patient specificity alone decides)",
    )
    c.add_argument("--masks", choices=["truth", "stage1"], default="truth")
    c.add_argument("--save", help="write the raw validation scores here (.npz)")
    c.add_argument(
        "--scores",
        help="calibrate from the raw scores an earlier --save wrote (its seeds and masks) "
        "instead of scoring the studies again",
    )
    t = sub.add_parser("test")
    t.add_argument("--bundle", required=True)
    t.add_argument("--studies", type=int, default=200)
    t.add_argument("--out", required=True)
    t.add_argument("--docs")
    t.add_argument("--bootstrap", type=int, default=1000)
    t.add_argument("--end-to-end", type=int, default=0, help="also run N studies end to end")
    m = sub.add_parser("masks", help="stage 1's labels of the classifier trainer's validation")
    m.add_argument("--bundle", required=True)
    m.add_argument("--studies", type=int, default=48, help="at least the run's --val-studies")
    m.add_argument("--out", required=True, help="the .npz for --stage1-masks")
    lv = sub.add_parser("levels", help="where the app puts each level, against reference labels")
    where = lv.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="RSNA-layout folder with segmentations/")
    where.add_argument("--image", help="one CT (DICOM folder, zip or file, NIfTI) with --reference")
    lv.add_argument("--reference", help="with --image: its level labels (NIfTI)")
    lv.add_argument(
        "--label-ids",
        default="1,2,3,4,5,6,7",
        help="the reference's values for C1…C7 (TotalSegmentator: 50,49,48,47,46,45,44)",
    )
    lv.add_argument("--bundle", required=True)
    lv.add_argument("--out", required=True, help="folder for levels.json and levels.md")
    lv.add_argument("--max-studies", type=int, help="only the first N segmented studies")
    lv.add_argument("--backend", default="auto", help="engine backend (default: auto)")
    g = sub.add_parser("grid", help="stage 1's raw labels of phantom studies, saved once")
    g.add_argument("--bundle", required=True)
    g.add_argument("--seeds", required=True, help="FIRST:COUNT, e.g. 96000100:100")
    g.add_argument("--pose", default="default", help="default, askew or leaning")
    g.add_argument("--out", required=True, help="folder of <seed>.npz (seeds there are skipped)")
    n = sub.add_parser("count", help="the level count and checks as now, on a grid folder")
    n.add_argument("--cache", required=True, help="the folder stages grid wrote")
    n.add_argument("--out", help="write the report here (.json)")
    n.add_argument(
        "--bundle",
        help="the bundle whose stage 1 made the cache: leaning necks left indeterminate are "
        "read again upright with it, as analyze reads them (without it they are not)",
    )
    o = sub.add_parser("outline", help="move the outlines the app shows onto the bone edge")
    o.add_argument("--bundle", required=True)
    o.add_argument("--off", action="store_true", help="remove the section: outlines as stage 1")
    o.add_argument("--reach-mm", type=float, default=OutlineConfig.reach_mm)
    o.add_argument("--version", help="the bundle's new version (the same networks: notes kept)")
    o.add_argument("--note", action="append", help="KEY=TEXT, a note of the card (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    step = {
        "export": export,
        "quantize": quantize_bundle,
        "calibrate": calibrate_bundle,
        "test": test_bundle,
        "masks": write_masks,
        "outline": set_outline,
        "levels": _levels,
        "grid": grid_command,
        "count": count_command,
    }[args.step]
    try:
        step(args)
    except CspineInputError as exc:
        print(f"cspine-evaluate stages {args.step}: {exc}", file=sys.stderr)
        return 2
    return 0


def _levels(args: argparse.Namespace) -> None:
    if bool(args.image) != bool(args.reference):
        raise SystemExit("cspine-evaluate stages levels: --image and --reference go together")
    s = evaluate_levels(args)
    print(
        f"{s['studies']} studies, {s['reference_levels']} reference levels: centre within "
        f"{s['lands_within_slices']:g} slice {s['lands']}, on its level {s['on_level']}; "
        f"assessed on the wrong level: {len(s['confident_wrong_levels'])}; report in {args.out}"
    )
