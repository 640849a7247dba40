"""The exports that write a new file: ONNX fp32 and int8, SavedModel, TF-TRT and TensorRT.

Each one stages its file in a temporary folder inside the bundle and moves it in place only
after its checks passed: the fp32 ONNX must match Keras, a reduced-precision file must pass the
accuracy gate (:func:`run_gate`) against fp32 on held-out phantom studies.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cspine_desktop.imaging.preprocess import PreprocessConfig

from . import gate
from .bundle_card import (
    INT8_FILE,
    ONNX_FILE,
    SAVEDMODEL_DIR,
    FormatUnavailable,
    bundle_file,
    bundle_view,
    file_entry,
    keras_path,
)

log = logging.getLogger("cspine.export")


class GateRefused(Exception):
    """The reduced-precision model failed the accuracy gate (``report`` holds the numbers)."""

    def __init__(self, report: gate.GateReport) -> None:
        super().__init__("accuracy gate refused the export")
        self.report = report


def phantom_config(args: argparse.Namespace) -> Any:
    """The phantom studies the gate and the calibration draw from: half of them fractured."""
    from model_training.phantom import PhantomConfig

    if args.phantom_matrix:
        return PhantomConfig(matrix=args.phantom_matrix, fracture_prevalence=0.5)
    return PhantomConfig(fracture_prevalence=0.5)


def phantom_batch(card: dict[str, Any], args: argparse.Namespace):
    """A few real model inputs from one held-out phantom (for the Keras ↔ ONNX check)."""
    from cspine_desktop.analysis.model_pass import neck_planes
    from cspine_desktop.imaging.preprocess import model_input, prepare_volume

    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    study = next(gate.phantom_studies(gate.HELD_OUT_SEED, 1, phantom_config(args), balanced=False))
    prepared = prepare_volume(study.to_volume(), cfg)
    planes = neck_planes(prepared)
    return model_input(prepared, planes[:: max(1, len(planes) // 4)][:4])


def run_gate(reference: Any, candidate: Any, card: dict[str, Any], args) -> gate.GateReport:
    from cspine_desktop.analysis.aggregate import AggregationConfig

    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    studies = gate.held_out_set(cfg, args.eval_studies, phantom_config(args))
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


def export_onnx(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from cspine_desktop.inference.flops import onnx_flops_per_slice

    from .onnx_export import (
        decompose_softmax,
        load_keras_fp32,
        max_abs_difference,
        with_cam_output,
    )
    from .onnx_export import (
        export_onnx as write_onnx,
    )

    model = with_cam_output(load_keras_fp32(keras_path(model_dir, card)))
    out = model_dir / ONNX_FILE
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        staged = write_onnx(model, Path(tmp) / ONNX_FILE)
        decompose_softmax(staged)
        x = phantom_batch(card, args)
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


def export_onnx_int8(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from cspine_desktop.inference.backends import ort

    from .quantize import calibration_slices, quantize_int8

    if ONNX_FILE not in card["files"]:
        log.info("no fp32 ONNX yet: exporting it first")
        export_onnx(model_dir, card, args)
    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    bundle = bundle_view(model_dir, card)
    fp32 = bundle_file(bundle, "onnx", "fp32")
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        staged = Path(tmp) / INT8_FILE
        slices = calibration_slices(
            cfg, args.calibration_studies, phantom_config=phantom_config(args)
        )
        quantize_int8(bundle.verified_path(fp32), staged, slices)
        entry = file_entry(staged, "onnx", "int8", calibration="MinMax, QDQ, per-channel")
        trial = bundle_view(Path(tmp), {**card, "files": {INT8_FILE: entry}})
        candidate = ort.open_engine(trial, bundle_file(trial, "onnx", "int8"), device="cpu")
        reference = ort.open_engine(bundle, fp32, device="cpu")
        report = run_gate(reference, candidate, card, args)
        os.replace(staged, model_dir / INT8_FILE)
    entry["accuracy_gate"] = report.to_dict()
    card["files"][INT8_FILE] = entry
    return entry


def export_savedmodel(model_dir: Path, card: dict[str, Any], args: argparse.Namespace) -> dict:
    from .onnx_export import load_keras_fp32, with_cam_output

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
        candidate = keras_tf.open_engine(trial, bundle_file(trial, "savedmodel", args.precision))
        reference = keras_tf.open_engine(bundle, bundle_file(bundle, "savedmodel", "fp32"))
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
    source = bundle_file(bundle, "onnx", "int8" if args.precision == "int8" else "fp32")
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
        reference = ort.open_engine(bundle, bundle_file(bundle, "onnx", "fp32"), device="cpu")
        report = run_gate(reference, candidate, card, args)
        os.replace(staged, model_dir / name)
    entry["accuracy_gate"] = report.to_dict()
    card["files"][name] = entry
    return entry
