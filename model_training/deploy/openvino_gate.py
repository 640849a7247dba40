"""``--format openvino``: no new file; every OpenVINO precision this CPU offers is judged for
each ONNX file of both stages against ONNX Runtime fp32, and each verdict, passed or failed, is
recorded in the file's card entry (``runtime_gates``), so ``auto`` never picks a pair that
failed."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.inference.bundle import ModelBundle, sha256_of

from . import gate
from .bundle_card import FormatUnavailable, bundle_view, write_card
from .formats import phantom_config

log = logging.getLogger("cspine.export")


class PairsRefused(Exception):
    """Runtime × precision pairs failed the gate; the card was written with their records."""

    def __init__(self, refused: list[str]) -> None:
        super().__init__("; ".join(refused))
        self.refused = refused


def export_openvino(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    """Judge every OpenVINO pair of every ONNX file (both stages) against ONNX Runtime fp32 and
    record the verdicts in the card (``files[name]["runtime_gates"][pair]``)."""
    from cspine_desktop.inference.backends import ov

    if not ov.is_available():
        raise FormatUnavailable("OpenVINO is not installed (pip install 'cspine[openvino]').")
    bundle = bundle_view(model_dir, card)
    precisions = set(args.ov_precisions.split(",")) if args.ov_precisions else None
    judged: dict[str, dict[str, Any]] = {}
    refused: list[str] = []
    common = {
        "runtime": "openvino",
        "runtime_version": ov.version(),
        "cpu": _cpu_name(),
        "judged": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    pairs = [
        (f, p)
        for f in (*bundle.files, *bundle.classifier_files)
        for p in ov.precisions_for(f)
        if precisions is None or p in precisions
    ]
    if not pairs:
        raise FormatUnavailable("The bundle has no ONNX file OpenVINO can run here.")
    stage1 = [(f, p) for f, p in pairs if f in bundle.files]
    stage2 = [(f, p) for f, p in pairs if f in bundle.classifier_files]
    skipped: list[str] = []
    for pairs_of_stage, judge in ((stage1, _judge_stage1), (stage2, _judge_stage2)):
        if not pairs_of_stage:
            continue
        try:
            for (f, p), report, ref in judge(bundle, card, pairs_of_stage, args):
                record = {**common, **ref, **report.to_dict()}
                judged.setdefault(f.name, {})[f"openvino-{p}"] = record
        except FormatUnavailable as why:  # e.g. no fp32 file of that stage to judge against
            log.warning("not judged: %s", why)
            skipped.append(str(why))
    if not judged:
        raise FormatUnavailable(" ".join(skipped) or "Nothing could be judged.")
    for name, records in judged.items():
        card["files"][name].setdefault("runtime_gates", {}).update(records)
        refused += [f"{name} {pair}" for pair, r in records.items() if not r["passed"]]
    if refused:
        write_card(model_dir, card)  # the refusal is recorded: auto never picks these pairs
        raise PairsRefused(refused)
    return {**judged, **({"not_judged": skipped} if skipped else {})}


def _cpu_name() -> str:
    from cspine_desktop.inference.hardware import cpu_info

    return cpu_info()[0]


def _reference_engine(bundle: ModelBundle, card: dict[str, Any], args, files, **kw) -> tuple:
    """(ONNX Runtime fp32 engine, what the record says about it): the bundle's fp32 file of
    that stage, or ``--reference`` for stage 1 when the bundle ships only int8."""
    from cspine_desktop.inference.backends import ort

    fp32 = next((f for f in files if f.format == "onnx" and f.precision == "fp32"), None)
    if fp32 is None and kw.get("stage", 1) == 1 and args.reference:
        path = Path(args.reference)
        entry = {"format": "onnx", "precision": "fp32", "sha256": sha256_of(path)}
        ref_bundle = bundle_view(path.parent, {**card, "files": {path.name: entry}})
        fp32, bundle = ref_bundle.files[0], ref_bundle
    if fp32 is None:
        hint = (
            "give the model's fp32 ONNX with --reference FILE"
            if kw.get("stage", 1) == 1
            else "the bundle ships no fp32 classifier"
        )
        raise FormatUnavailable(
            f"No fp32 ONNX file to judge against for stage {kw.get('stage', 1)}; {hint}."
        )
    engine = ort.open_engine(
        bundle,
        fp32,
        device="cpu",
        input_shape=kw.get("input_shape"),
        outputs=kw.get("outputs", ("vertebrae", "fracture_map", "fracture_cls")),
    )
    return engine, {"reference": f"onnx-fp32 {fp32.name} sha256 {fp32.sha256[:16]}"}


def _judge_stage1(bundle: ModelBundle, card: dict[str, Any], pairs, args):
    from cspine_desktop.analysis.aggregate import AggregationConfig
    from cspine_desktop.inference.backends import ov

    reference, ref = _reference_engine(bundle, card, args, bundle.files, stage=1)
    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    studies = gate.held_out_set(cfg, args.eval_studies, phantom_config(args))
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    ref_scores = gate.evaluate(reference, studies, aggregation)
    for f, p in pairs:
        candidate = ov.open_engine(bundle, f, precision=p)
        report = gate.compare(
            reference,
            candidate,
            studies,
            aggregation,
            max_dice_drop=args.max_dice_drop,
            max_auc_drop=args.max_auc_drop,
            reference_scores=ref_scores,
        )
        candidate.close()
        log.info("gate %s openvino-%s: %s", f.name, p, json.dumps(report.to_dict()))
        yield (f, p), report, ref


def _judge_stage2(bundle: ModelBundle, card: dict[str, Any], pairs, args):
    """Stage 2 on the crop planes of its int8 export gate (same seeds, same measure)."""
    from cspine_desktop.imaging.crops import CropConfig, PlaneSpacing
    from cspine_desktop.inference.backends import ov
    from cspine_desktop.inference.engine import CLASSIFIER_OUTPUTS

    from ..datasets.crops_stream import StreamConfig, evaluation_planes
    from ..stages import GATE_SEED0

    stage2 = card.get("stage2") or {}
    shape = bundle.classifier_input_shape
    kw: dict[str, Any] = {"input_shape": shape, "outputs": CLASSIFIER_OUTPUTS}
    reference, ref = _reference_engine(bundle, card, args, bundle.classifier_files, stage=2, **kw)
    n = args.classifier_studies or int((stage2.get("int8_gate") or {}).get("studies", 16))
    seed = int((stage2.get("int8_gate") or {}).get("seed", GATE_SEED0))
    crop = CropConfig.from_dict(stage2.get("crops") or {})
    planes = evaluation_planes(
        [seed + i for i in range(n)],
        crop,
        StreamConfig(),
        spacing=PlaneSpacing.from_card(stage2),
    )
    top_k = int(stage2.get("top_k", 2))
    ref_probs = gate.classifier_probs(reference, planes.x)
    for f, p in pairs:
        candidate = ov.open_engine(bundle, f, precision=p, **kw)
        report = gate.compare_classifier(
            reference,
            candidate,
            planes,
            top_k=top_k,
            seed=seed,
            n_studies=n,
            max_auc_drop=args.max_auc_drop,
            reference_probs=ref_probs,
        )
        candidate.close()
        log.info("gate %s openvino-%s: %s", f.name, p, json.dumps(report.to_dict()))
        yield (f, p), report, ref
