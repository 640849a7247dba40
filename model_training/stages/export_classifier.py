"""``stages export``: the trained stage-2 classifier into a bundle.

Writes ``classifier.onnx`` (float32 arithmetic on weights stored as float16, checked against
Keras) and ``classifier.int8.onnx`` when the int8 model passes the accuracy gate
(:func:`..deploy.gate.judge_classifier`: vertebra AUC, pooled and within a level, and plane AUC
drop ≤ ``GATE_MAX_DROP`` on the planes of held-out phantom studies, and the paired bootstrap's
95 % bound of the vertebra-AUC drop ≤ 0.02), and the card's ``stage2`` section.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.imaging.crops import CropConfig, PlaneSpacing

from ..datasets.crops_stream import StreamConfig, evaluation_planes
from ..deploy.gate import judge_classifier
from ..jsonfile import write_json

log = logging.getLogger("cspine.stages")

GATE_SEED0 = 41_000_000  # int8 gate studies
QUANT_SEED0 = 42_000_000  # int8 calibration studies
GATE_MAX_DROP = 0.005
# Only the convolutions are quantised. DenseNet's pre-activation BatchNorm (a Mul and an Add after
# every Concat) quantised as well cost model 0.5.0's classifier 0.029 vertebra AUC on the 60 gate
# studies (mean |Δp| 0.041, up to 0.81 on one plane); convolutions only, 0.004 (|Δp| 0.011), and
# the 1×1 input adapter (whose fourth channel is the binary mask) stays float32 too.
INT8_OPS = ("Conv",)


def export(args: argparse.Namespace) -> dict[str, Any]:
    from ..deploy.onnx_export import export_onnx, store_weights_fp16

    run = Path(args.classifier).parent
    config = json.loads((run / "config.json").read_text())
    crop = CropConfig.from_dict(config["crops"])
    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    model = _reload_as_image_input(Path(args.classifier), config["classifier"])
    fp32 = export_onnx(model, bundle / "classifier.onnx")
    gate_planes = _plane_inputs(GATE_SEED0, args.gate_studies, crop)
    x = gate_planes.x.astype(np.float32)
    p32 = _onnx_probs(fp32, x)
    files = {k: v for k, v in card["files"].items() if int(v.get("stage", 1)) != 2}
    gate: dict[str, Any] = {"studies": args.gate_studies, "planes": len(x), "seed": GATE_SEED0}
    if not args.no_int8:
        verdict, i8 = _int8_gate(fp32, bundle, crop, gate_planes, x, p32, args)
        gate.update(verdict)
        _keep_if_passed(files, gate, i8)
    if "classifier.int8.onnx" not in files:  # an earlier classifier's int8 file: not this one
        (bundle / "classifier.int8.onnx").unlink(missing_ok=True)
    # the float file as shipped: float16 weights, float32 arithmetic (half the size)
    store_weights_fp16(fp32)
    diff = _keras_difference_checked(model, fp32, x)
    files["classifier.onnx"] = {
        "format": "onnx",
        "precision": "fp32",
        "weights": "fp16",
        "sha256": _sha256(fp32),
        "stage": 2,
        "max_abs_diff_vs_keras": diff,
    }
    stage2 = _stage2_section(card, config, crop, model, run, args, gate)
    card["files"] = files
    card["stage2"] = stage2
    card.update(versioned(card, getattr(args, "version", None), getattr(args, "note", None)))
    write_json(card_path, card)
    return card


def quantize_bundle(args: argparse.Namespace) -> dict[str, Any]:
    """``stages quantize``: the int8 classifier of a bundle that ships only the float one, from
    its own ``classifier.onnx`` (the float16-stored weights widened back, which is the
    arithmetic the float file runs) — quantised, judged by the same paired gate as ``export``,
    and added to the card only if it passed. The float file and the rest of the card stay."""
    from ..deploy.onnx_export import weights_fp32

    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    stage2 = card.get("stage2") or {}
    crop = CropConfig.from_dict(stage2.get("crops"))
    gate_planes = _plane_inputs(GATE_SEED0, args.gate_studies, crop)
    x = gate_planes.x.astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="cspine-int8-") as tmp:
        fp32 = weights_fp32(bundle / "classifier.onnx", Path(tmp) / "classifier.fp32.onnx")
        p32 = _onnx_probs(fp32, x)
        args.top_k = int(stage2.get("top_k", 2))
        verdict, i8 = _int8_gate(fp32, bundle, crop, gate_planes, x, p32, args)
    gate: dict[str, Any] = {
        "studies": args.gate_studies,
        "planes": len(x),
        "seed": GATE_SEED0,
        **verdict,
    }
    files = {k: v for k, v in card["files"].items() if k != "classifier.int8.onnx"}
    _keep_if_passed(files, gate, i8)
    card["files"] = files
    card["stage2"] = {**stage2, "int8_gate": gate}
    write_json(card_path, card)
    return card


def _keep_if_passed(files: dict[str, Any], gate: dict[str, Any], i8: Path) -> None:
    """The int8 file into the card's ``files`` with its gate record when it passed; deleted
    otherwise."""
    log.info("int8 gate: %s", gate)
    if gate["passed"]:
        files["classifier.int8.onnx"] = {
            "format": "onnx",
            "precision": "int8",
            "sha256": _sha256(i8),
            "stage": 2,
            "accuracy_gate": gate,
        }
    else:
        os.unlink(i8)


def versioned(card: dict[str, Any], version: str | None, notes: list[str] | None) -> dict[str, Any]:
    """The card's ``version`` and ``notes`` for a new export: a new version starts with no notes
    (the old version's notes describe other files and would be read as this one's), then each
    ``KEY=TEXT`` note is set."""
    current = card.get("version")
    kept: dict[str, str] = dict(card.get("notes") or {})
    if version and version != current:
        if kept:
            log.info("version %s → %s: the old notes are dropped", current, version)
        current, kept = version, {}
    return {"version": current, "notes": with_notes(kept, notes)}


def with_notes(kept: dict[str, str], notes: list[str] | None) -> dict[str, str]:
    """``kept`` with each ``KEY=TEXT`` of ``notes`` set (ValueError for anything else)."""
    out = dict(kept)
    for note in notes or []:
        key, sep, text = note.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--note takes KEY=TEXT, got {note!r}")
        out[key.strip()] = text.strip()
    return out


def _keras_difference_checked(model: Any, path: Path, x: np.ndarray) -> float:
    """The ONNX file's largest plane-probability difference from Keras (an export that differs
    by more than 1e-3 is an error)."""
    ref = np.asarray(model.predict(x, batch_size=32, verbose=0)["fracture"]).reshape(-1)
    diff = float(np.abs(ref - _onnx_probs(path, x)).max())
    log.info("%s: max |Keras − ONNX| %.2e over %d planes", path.name, diff, len(x))
    if diff > 1e-3:
        raise RuntimeError(f"ONNX export differs from Keras by {diff}")
    return diff


def _int8_gate(
    fp32: Path,
    bundle: Path,
    crop: CropConfig,
    gate_planes: Any,
    x: np.ndarray,
    p32: np.ndarray,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], Path]:
    """``classifier.int8.onnx``, calibrated on planes of studies of its own, and the gate's
    numbers: vertebra and plane AUC of fp32 and int8 on the gate planes, and whether it passed."""
    from ..deploy.quantize import quantize_int8

    quant = _plane_inputs(QUANT_SEED0, args.quant_studies, crop)
    pick = np.random.default_rng(0).permutation(len(quant.x))[: args.quant_planes]
    i8 = quantize_int8(
        fp32,
        bundle / "classifier.int8.onnx",
        (quant.x[i : i + 1].astype(np.float32) for i in pick),
        op_types=INT8_OPS,
        float_markers=("input_adapter",),
    )
    p8 = _onnx_probs(i8, x)
    report = judge_classifier(
        gate_planes,
        p32,
        p8,
        top_k=args.top_k,
        seed=GATE_SEED0,
        n_studies=args.gate_studies,
        max_auc_drop=GATE_MAX_DROP,
    )
    verdict = {
        "vertebra_auc_fp32": report.reference_vertebra_auc,
        "vertebra_auc_int8": report.candidate_vertebra_auc,
        "within_level_auc_fp32": report.reference_within_level_auc,
        "within_level_auc_int8": report.candidate_within_level_auc,
        "plane_auc_fp32": report.reference_plane_auc,
        "plane_auc_int8": report.candidate_plane_auc,
        "max_drop": GATE_MAX_DROP,
        "drop_upper_95": report.drop_upper_95,
        "max_drop_upper": report.max_drop_upper_allowed,
        "passed": report.passed,
    }
    return verdict, i8


def _stage2_section(
    card: dict[str, Any],
    config: dict[str, Any],
    crop: CropConfig,
    model: Any,
    run: Path,
    args: argparse.Namespace,
    gate: dict[str, Any],
) -> dict[str, Any]:
    """The card's ``stage2`` section: architecture, crops, scoring, the calibration so far (the
    identity until ``calibrate``), how it was trained and the int8 gate."""
    history = (
        json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
    )
    spacing = PlaneSpacing.default_for(crop)
    return {
        "architecture": {
            "family": "DenseNet121 encoder, plane classifier + localisation map",
            **config["classifier"],
            "parameters": int(model.count_params()),
        },
        "crops": crop.to_dict(),
        "top_k": args.top_k,
        # planes that read every slice; plane_stride for readers older than plane_step_mm
        "plane_step_mm": spacing.step_mm,
        "plane_stride": spacing.stride,
        "calibration": card.get("stage2", {}).get("calibration", {"a": 1.0, "b": 0.0}),
        "training": {
            "data": "a stream of fresh synthetic phantom studies (no study seen twice)",
            "stream": config.get("stream"),
            "seeds": config.get("seeds"),
            "epochs": len(history),
            "history": history,
            # which Keras backend and device ran it, and the settings that shape an epoch
            "keras": config.get("keras"),
            "settings": {
                k: config.get("args", {}).get(k)
                for k in ("batch", "steps", "lr", "patience", "encoder_weights", "init_weights")
            },
        },
        "int8_gate": gate,
    }


def _reload_as_image_input(path: Path, cfg: dict[str, Any]) -> Any:
    """The trained classifier rebuilt with its input named ``image`` (the ONNX contract)."""
    import keras

    from ..model.classifier import ClassifierConfig, build_classifier

    trained = keras.models.load_model(str(path), compile=False)
    ccfg = ClassifierConfig.from_dict({**cfg, "encoder_weights": None})
    model = build_classifier(ccfg)
    model.set_weights(trained.get_weights())
    return model


def _sha256(path: Path) -> str:
    from cspine_desktop.inference.bundle import sha256_of

    return sha256_of(path)


def _plane_inputs(seed0: int, n: int, crop: CropConfig) -> Any:
    return evaluation_planes([seed0 + i for i in range(n)], crop, StreamConfig())


def _onnx_probs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = []
    for i in range(0, len(x), 32):
        (p,) = sess.run(["fracture"], {name: x[i : i + 32].astype(np.float32)})
        out.append(p.reshape(-1))
    return np.concatenate(out)
