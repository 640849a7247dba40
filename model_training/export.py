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
import sys
from pathlib import Path
from typing import Any

from cspine_desktop.errors import CspineInputError

from .deploy import gate
from .deploy.bundle_card import FormatUnavailable, file_entry, read_card, write_card
from .deploy.formats import (
    GateRefused,
    export_onnx,
    export_onnx_int8,
    export_savedmodel,
    export_tensorrt,
    export_tftrt,
    tftrt_support,
)
from .deploy.openvino_gate import PairsRefused, export_openvino

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXPORTERS",
    "FORMATS",
    "FormatUnavailable",
    "GateRefused",
    "PairsRefused",
    "build_parser",
    "export",
    "file_entry",
    "main",
    "tftrt_support",
]

log = logging.getLogger("cspine.export")

FORMATS = ("onnx", "onnx-int8", "tensorrt", "tftrt", "savedmodel", "openvino")
EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_REFUSED = 0, 1, 2, 3

EXPORTERS = {
    "onnx": export_onnx,
    "onnx-int8": export_onnx_int8,
    "tensorrt": export_tensorrt,
    "tftrt": export_tftrt,
    "savedmodel": export_savedmodel,
    "openvino": export_openvino,
}


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
