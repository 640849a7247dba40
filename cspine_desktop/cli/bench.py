"""``cspine bench``: every installed inference backend on this machine, side by side.

Per backend and precision (ONNX Runtime, OpenVINO, Keras, TensorRT; both stages of a two-stage
bundle): the accuracy gate's verdict, load time, ms per model slice (stage 2: per crop plane),
seconds per study (a synthetic 300-slice 512² CT, Volume → verdicts), achieved GFLOP/s and its
fraction of this machine's numpy float32 matmul rate measured in the same run. ``--analyze
STUDY`` adds the whole ``cspine analyze`` of STUDY with ``auto`` (fresh processes, empty cache
first, then the cached choice).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark the inference backends on this machine")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--model", default=None, metavar="DIR", help="model bundle folder")
    p.add_argument("--slices", type=int, default=300, help="slices of the synthetic study")
    p.add_argument("--size", type=int, default=512, help="rows = columns of the study")
    p.add_argument(
        "--only", default=None, help="comma-separated keys, e.g. onnx-int8,openvino-bf16"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="timed batches per backend (best is reported)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime / OpenVINO threads (default: cores)"
    )
    p.add_argument(
        "--analyze",
        default=None,
        metavar="STUDY",
        help='also time `cspine analyze STUDY` with auto ("demo" = the bundled demo study)',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..inference import demo_model_dir, demo_study_path, load_bundle
    from ..inference.bench import format_table, run_bench

    bundle = load_bundle(args.model or settings.model_dir or demo_model_dir())
    only = [k.strip() for k in args.only.split(",")] if args.only else None

    def progress(message: str) -> None:
        sys.stderr.write(message + "\n")

    report = run_bench(
        bundle,
        n_slices=args.slices,
        size=args.size,
        only=only,
        cache_dir=settings.cache_dir,
        progress=None if args.json else progress,
        analyze_study=demo_study_path() if args.analyze == "demo" else args.analyze,
        repeats=args.repeats,
        threads=args.threads,
    )
    sys.stdout.write((json.dumps(report, indent=2) if args.json else format_table(report)) + "\n")
    return 0 if any(r["error"] is None for r in report["runs"]) else 1
