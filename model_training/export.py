"""``cspine-export MODEL_DIR --format FORMAT``: deployment formats of a trained model bundle.

MODEL_DIR holds ``model.keras`` and ``model_card.json`` (written by training). Formats:

* ``onnx``        fp32 ONNX (``model.onnx``) with a ``fracture_cam`` output; checked against
                  Keras on a phantom batch.
* ``onnx-int8``   static QDQ int8 (``model.int8.onnx``) calibrated on phantom slices.
* ``tensorrt``    a TensorRT engine (``--precision fp16|int8``) for this machine's GPU.
* ``tftrt``       TF-TRT SavedModel, only where the TensorFlow build still contains TF-TRT
                  (TensorFlow ≥ 2.18 does not: use ``tensorrt``).
* ``savedmodel``  TensorFlow SavedModel (``savedmodel/``, serving endpoint ``serve``).
* ``openvino``    no new file: judges every OpenVINO precision this CPU offers (int8, fp32,
                  bf16 with AMX / AVX-512 BF16) for each ONNX file of both stages against ONNX
                  Runtime fp32, and records each verdict, passed or failed, in the file's card
                  entry (``runtime_gates``); ``auto`` never picks a pair that failed.

Every export records file, format, precision and sha256 in the card's ``files``. A reduced-
precision export must pass the accuracy gate on held-out phantom studies (per-vertebra Dice and
patient AUC may each drop by at most 0.005 versus fp32); the gate's numbers go into the card.
If it fails, the file is discarded and the card is left untouched (``openvino``: the card
records the refusal, so the pair is never chosen).

Exit codes: 0 done; 2 unusable input or a format this machine cannot build (with the reason);
3 refused by the accuracy gate; 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cspine_desktop.errors import CspineInputError, ModelBundleError
from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.inference.bundle import CARD_NAME, ModelBundle, ModelFile, sha256_of

from .deploy import gate

log = logging.getLogger("cspine.export")

FORMATS = ("onnx", "onnx-int8", "tensorrt", "tftrt", "savedmodel", "openvino")
EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_REFUSED = 0, 1, 2, 3
KERAS_FILE, ONNX_FILE, INT8_FILE, SAVEDMODEL_DIR = (
    "model.keras",
    "model.onnx",
    "model.int8.onnx",
    "savedmodel",
)


class FormatUnavailable(CspineInputError):
    """This machine cannot build the requested format (the message says why); cspine-export
    exits 2 with it (no HTTP status: it never reaches the endpoint)."""


class GateRefused(Exception):
    """The reduced-precision model failed the accuracy gate (``report`` holds the numbers)."""

    def __init__(self, report: gate.GateReport) -> None:
        super().__init__("accuracy gate refused the export")
        self.report = report


class PairsRefused(Exception):
    """Runtime × precision pairs failed the gate; the card was written with their records."""

    def __init__(self, refused: list[str]) -> None:
        super().__init__("; ".join(refused))
        self.refused = refused


# --------------------------------------------------------------------------- card handling
def read_card(model_dir: Path) -> dict[str, Any]:
    path = model_dir / CARD_NAME
    if not model_dir.is_dir():
        raise ModelBundleError(f"{model_dir} is not a folder.")
    if not path.is_file():
        raise ModelBundleError(f"{model_dir} has no {CARD_NAME}; export a trained model bundle.")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelBundleError(f"{path} is unreadable: {exc}") from None
    if "preprocessing" not in card:
        raise ModelBundleError(f"{path} has no 'preprocessing' section.")
    card.setdefault("files", {})
    return card


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    path = model_dir / CARD_NAME
    fd, tmp = tempfile.mkstemp(prefix=".card-", dir=model_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(card, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # readable by every account that runs the app
    os.replace(tmp, path)


def file_entry(path: Path, fmt: str, precision: str, **extra: Any) -> dict[str, Any]:
    return {
        "format": fmt,
        "precision": precision,
        "sha256": sha256_of(path),
        "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }


def keras_path(model_dir: Path, card: dict[str, Any]) -> Path:
    """``model.keras``, checked against the card when the card lists it."""
    path = model_dir / KERAS_FILE
    if not path.is_file():
        raise ModelBundleError(f"{model_dir} has no {KERAS_FILE} to export from.")
    entry = card["files"].get(KERAS_FILE)
    if entry and entry.get("sha256") and entry["sha256"] != sha256_of(path):
        raise ModelBundleError(f"{KERAS_FILE} does not match the sha256 in the model card.")
    return path


def bundle_view(model_dir: Path, card: dict[str, Any]) -> ModelBundle:
    return ModelBundle(model_dir, card)


# --------------------------------------------------------------------------- formats
def export_onnx(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from cspine_desktop.inference.flops import onnx_flops_per_slice

    from .deploy.onnx_export import (
        decompose_softmax,
        load_keras_fp32,
        max_abs_difference,
        with_cam_output,
    )
    from .deploy.onnx_export import (
        export_onnx as write_onnx,
    )

    model = with_cam_output(load_keras_fp32(keras_path(model_dir, card)))
    out = model_dir / ONNX_FILE
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        staged = write_onnx(model, Path(tmp) / ONNX_FILE)
        decompose_softmax(staged)
        x = _phantom_batch(card, args)
        diff = max_abs_difference(model, staged, x)
        if diff > 1e-3:
            raise RuntimeError(f"ONNX output differs from Keras by {diff:.2e}")
        flops = onnx_flops_per_slice(staged)
        os.replace(staged, out)
    card["files"][ONNX_FILE] = file_entry(
        out, "onnx", "fp32", max_abs_diff_vs_keras=round(diff, 8), explain="fracture_cam"
    )
    card["flops_per_slice"] = flops
    return card["files"][ONNX_FILE]


def _bundle_file(bundle: ModelBundle, fmt: str, precision: str) -> ModelFile:
    """The bundle's ``fmt`` file of ``precision``, which the export has just written or found."""
    found = bundle.find(fmt, precision)
    if found is None:
        raise ModelBundleError(f"The model bundle has no {fmt} {precision} file.")
    return found


def export_onnx_int8(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from cspine_desktop.inference.backends import ort

    from .deploy.quantize import calibration_slices, quantize_int8

    if ONNX_FILE not in card["files"]:
        log.info("no fp32 ONNX yet: exporting it first")
        export_onnx(model_dir, card, args)
    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    bundle = bundle_view(model_dir, card)
    fp32 = _bundle_file(bundle, "onnx", "fp32")
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        staged = Path(tmp) / INT8_FILE
        slices = calibration_slices(cfg, args.calibration_studies, phantom_config=_phantom(args))
        quantize_int8(bundle.verified_path(fp32), staged, slices)
        entry = file_entry(staged, "onnx", "int8", calibration="MinMax, QDQ, per-channel")
        trial = bundle_view(Path(tmp), {**card, "files": {INT8_FILE: entry}})
        candidate = ort.open_engine(trial, _bundle_file(trial, "onnx", "int8"), device="cpu")
        reference = ort.open_engine(bundle, fp32, device="cpu")
        report = run_gate(reference, candidate, card, args)
        os.replace(staged, model_dir / INT8_FILE)
    entry["accuracy_gate"] = report.to_dict()
    card["files"][INT8_FILE] = entry
    return entry


def export_savedmodel(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from .deploy.onnx_export import load_keras_fp32, with_cam_output

    model = with_cam_output(load_keras_fp32(keras_path(model_dir, card)))
    out = model_dir / SAVEDMODEL_DIR
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        staged = Path(tmp) / SAVEDMODEL_DIR
        model.export(str(staged), format="tf_saved_model", verbose=False)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staged, out)
    card["files"][SAVEDMODEL_DIR] = file_entry(out, "savedmodel", "fp32", endpoint="serve")
    return card["files"][SAVEDMODEL_DIR]


def tftrt_support() -> tuple[bool, str]:
    """(True, "") when this TensorFlow can convert with TF-TRT, else (False, why)."""
    try:
        import tensorflow as tf
    except ImportError:
        return False, "TensorFlow is not installed"
    version = tf.__version__
    major, minor = (int(p) for p in version.split(".")[:2])
    converter = getattr(getattr(tf, "experimental", None), "tensorrt", None)
    if (major, minor) >= (2, 18) or converter is None or not hasattr(converter, "Converter"):
        return False, (
            f"TF-TRT is not part of TensorFlow {version} (it was removed in TensorFlow 2.18 "
            "and its repository is archived); use --format tensorrt, which builds a TensorRT "
            "engine from the ONNX model"
        )
    try:
        from tensorflow.python.compiler.tensorrt import trt_convert

        if not trt_convert.is_tensorrt_enabled():
            return False, f"this TensorFlow {version} build has TF-TRT disabled"
    except (ImportError, AttributeError):
        return False, f"this TensorFlow {version} build has no TF-TRT converter"
    return True, ""


def export_tftrt(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    ok, why = tftrt_support()
    if not ok:
        raise FormatUnavailable(f"Cannot export tftrt: {why}.")
    import tensorflow as tf  # pragma: no cover - needs a TensorFlow < 2.18 with TensorRT

    from cspine_desktop.inference.backends import keras_tf  # pragma: no cover

    if SAVEDMODEL_DIR not in card["files"]:  # pragma: no cover
        export_savedmodel(model_dir, card, args)
    precision = "FP16" if args.precision == "fp16" else "FP32"  # pragma: no cover
    name = f"savedmodel-tftrt-{args.precision}"  # pragma: no cover
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:  # pragma: no cover
        staged = Path(tmp) / name
        conv = tf.experimental.tensorrt.Converter(
            input_saved_model_dir=str(model_dir / SAVEDMODEL_DIR),
            conversion_params=tf.experimental.tensorrt.ConversionParams(precision_mode=precision),
        )
        conv.convert()
        conv.save(str(staged))
        entry = file_entry(staged, "savedmodel", args.precision, tftrt=True)
        trial = bundle_view(Path(tmp), {**card, "files": {name: entry}})
        bundle = bundle_view(model_dir, card)
        candidate = keras_tf.open_engine(trial, _bundle_file(trial, "savedmodel", args.precision))
        reference = keras_tf.open_engine(bundle, _bundle_file(bundle, "savedmodel", "fp32"))
        report = run_gate(reference, candidate, card, args)
        os.replace(staged, model_dir / name)
    entry["accuracy_gate"] = report.to_dict()
    card["files"][name] = entry
    return entry


def export_tensorrt(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from cspine_desktop.inference.backends import ort, trt

    ok, why = trt.availability()
    if not ok:
        raise FormatUnavailable(f"Cannot build a TensorRT engine here: {why}.")
    gpu = trt.gpu_identity()  # pragma: no cover - needs an NVIDIA GPU and TensorRT
    if ONNX_FILE not in card["files"]:  # pragma: no cover
        export_onnx(model_dir, card, args)
    if args.precision == "int8" and INT8_FILE not in card["files"]:  # pragma: no cover
        export_onnx_int8(model_dir, card, args)
    bundle = bundle_view(model_dir, card)  # pragma: no cover
    source = _bundle_file(bundle, "onnx", "int8" if args.precision == "int8" else "fp32")
    name = f"model.{gpu.slug}.{args.precision}.plan"
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        staged = trt.build_engine(
            bundle.verified_path(source), Path(tmp) / name, precision=args.precision
        )
        entry = file_entry(
            staged,
            "tensorrt",
            args.precision,
            gpu=gpu.name,
            compute_capability=gpu.compute_capability,
            tensorrt_version=gpu.tensorrt_version,
            source=source.name,
        )
        candidate = trt.TensorRTEngine(
            staged,
            device=f"cuda:0 ({gpu.name})",
            precision=args.precision,
            model_file=name,
            sha256=entry["sha256"],
            input_shape=bundle.input_shape,
        )
        reference = ort.open_engine(bundle, _bundle_file(bundle, "onnx", "fp32"), device="cpu")
        report = run_gate(reference, candidate, card, args)
        os.replace(staged, model_dir / name)
    entry["accuracy_gate"] = report.to_dict()
    card["files"][name] = entry
    return entry


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
    studies = gate.held_out_set(cfg, args.eval_studies, _phantom(args))
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
    from cspine_desktop.imaging.crops import CropConfig
    from cspine_desktop.inference.backends import ov
    from cspine_desktop.inference.engine import CLASSIFIER_OUTPUTS

    from .datasets.crops_stream import StreamConfig, evaluation_planes
    from .stages import GATE_SEED0

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
        plane_stride=int(stage2.get("plane_stride", 2)),
    )
    top_k = int(stage2.get("top_k", 2))
    ref_aucs = gate.classifier_aucs(planes, gate.classifier_probs(reference, planes.x), top_k)
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
            reference_aucs=ref_aucs,
        )
        candidate.close()
        log.info("gate %s openvino-%s: %s", f.name, p, json.dumps(report.to_dict()))
        yield (f, p), report, ref


EXPORTERS = {
    "onnx": export_onnx,
    "onnx-int8": export_onnx_int8,
    "tensorrt": export_tensorrt,
    "tftrt": export_tftrt,
    "savedmodel": export_savedmodel,
    "openvino": export_openvino,
}


# --------------------------------------------------------------------------- helpers
def _phantom(args: argparse.Namespace) -> Any:
    from model_training.phantom import PhantomConfig

    if args.phantom_matrix:
        return PhantomConfig(matrix=args.phantom_matrix, fracture_prevalence=0.5)
    return PhantomConfig(fracture_prevalence=0.5)


def _phantom_batch(card: dict[str, Any], args: argparse.Namespace):
    """A few real model inputs from one held-out phantom (for the Keras ↔ ONNX check)."""
    from cspine_desktop.analysis.model_pass import neck_planes
    from cspine_desktop.imaging.preprocess import model_input, prepare_volume

    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    study = next(gate.phantom_studies(gate.HELD_OUT_SEED, 1, _phantom(args), balanced=False))
    prepared = prepare_volume(study.to_volume(), cfg)
    planes = neck_planes(prepared)
    return model_input(prepared, planes[:: max(1, len(planes) // 4)][:4])


def run_gate(reference: Any, candidate: Any, card: dict[str, Any], args) -> gate.GateReport:
    from cspine_desktop.analysis.aggregate import AggregationConfig

    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    studies = gate.held_out_set(cfg, args.eval_studies, _phantom(args))
    report = gate.compare(
        reference,
        candidate,
        studies,
        AggregationConfig.from_dict(card.get("aggregation")),
        max_dice_drop=args.max_dice_drop,
        max_auc_drop=args.max_auc_drop,
    )
    log.info("accuracy gate: %s", json.dumps(report.to_dict()))
    if not report.passed:
        raise GateRefused(report)
    return report


def export(model_dir: Path, fmt: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one export; the card is written only after the export (and its gate) succeeded."""
    card = read_card(model_dir)
    entry = EXPORTERS[fmt](model_dir, card, args)
    write_card(model_dir, card)
    return entry


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cspine-export",
        description="Export a trained cspine model bundle to a deployment format.",
        epilog="Exit codes: 0 done, 2 unusable input or format unavailable here, "
        "3 refused by the accuracy gate, 1 internal error.",
    )
    p.add_argument("model_dir", type=Path, help="bundle folder with model.keras + model_card.json")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--precision", choices=("fp16", "int8"), default="fp16", help="tensorrt/tftrt")
    p.add_argument(
        "--eval-studies",
        type=int,
        default=40,
        help="held-out phantoms for the gate (half fractured; 40 give 400 positive-negative "
        "pairs, so the AUC resolves steps of 0.0025 — below the 0.005 tolerance)",
    )
    p.add_argument("--calibration-studies", type=int, default=8, help="phantoms for int8 ranges")
    p.add_argument("--phantom-matrix", type=int, default=None, help="phantom image size (px)")
    p.add_argument("--max-dice-drop", type=float, default=gate.MAX_DICE_DROP)
    p.add_argument("--max-auc-drop", type=float, default=gate.MAX_AUC_DROP)
    p.add_argument(
        "--reference",
        default=None,
        metavar="ONNX",
        help="openvino: the model's fp32 stage-1 ONNX when the bundle ships only int8",
    )
    p.add_argument(
        "--classifier-studies",
        type=int,
        default=None,
        help="openvino: phantoms for the stage-2 gate (default: as its int8 export gate)",
    )
    p.add_argument(
        "--ov-precisions", default=None, help="openvino: judge only these, e.g. int8,bf16"
    )
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        entry = export(args.model_dir, args.format, args)
    except CspineInputError as err:
        print(f"cspine-export: {err}", file=sys.stderr)
        return EXIT_INPUT
    except GateRefused as refused:
        r = refused.report
        print(
            f"cspine-export: refused — the {args.format} model is less accurate than fp32 on "
            f"{r.n_studies} held-out phantom studies (largest Dice drop {r.max_dice_drop:.4f}, "
            f"allowed {r.max_dice_drop_allowed}; AUC drop {r.auc_drop:.4f}, allowed "
            f"{r.max_auc_drop_allowed}). Nothing was changed.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    except PairsRefused as refused:
        print(
            "cspine-export: the accuracy gate refused "
            + ", ".join(refused.refused)
            + "; the card records it, so these pairs are never chosen.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    except Exception:
        log.exception("export failed")
        print("cspine-export: internal error; see the log above.", file=sys.stderr)
        return EXIT_INTERNAL
    print(json.dumps({args.format: entry}, indent=2))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
