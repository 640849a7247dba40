"""``cspine-phantom``: write a synthetic RSNA-layout data set, or draw the phantom figures.

cspine-phantom --n 20 --out DIR --seed 1 [--matrix 256] [--compress] [--jobs 2]
cspine-phantom montage --out docs/phantom.png [--real tests/data/.../CTImage.dcm]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cspine_desktop.errors import CspineInputError

from .config import PhantomConfig

EXIT_OK, EXIT_INPUT = 0, 2


def _range(text: str) -> tuple[float, float]:
    parts = [float(p) for p in text.replace(",", " ").split()]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or parts[0] > parts[1] or parts[0] <= 0:
        raise argparse.ArgumentTypeError(f"expected 'LO,HI' or one positive value: {text!r}")
    return parts[0], parts[1]


def _generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cspine-phantom",
        description="Write synthetic cervical-spine CT studies in the RSNA 2022 layout "
        "(synthetic data, not for diagnostic use). Subcommand 'montage' draws the figures.",
    )
    p.add_argument("--n", type=int, required=True, help="number of studies")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--matrix", type=int, default=PhantomConfig.matrix, help="rows = columns")
    p.add_argument("--pixel-spacing", type=_range, help="in-plane spacing mm, 'LO,HI' or one")
    p.add_argument("--slice-spacing", type=_range, help="slice spacing mm, 'LO,HI' or one")
    p.add_argument("--prevalence", type=float, help="share of studies with a fracture")
    p.add_argument(
        "--seg-fraction",
        type=float,
        default=1.0,
        help="share of studies with a segmentation (RSNA: ~0.04)",
    )
    p.add_argument("--compress", action="store_true", help="RLE Lossless pixel data")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory")
    return p


def _montage_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cspine-phantom montage",
        description="Draw docs/phantom.png and docs/phantom_vs_real.png",
    )
    p.add_argument("--out", type=Path, default=Path("docs/phantom.png"))
    p.add_argument(
        "--real",
        type=Path,
        default=None,
        help="real neck CT slice for the side-by-side (default: the test data copy)",
    )
    p.add_argument("--seed", type=int, default=None, help="phantom seed (default: a fixed one)")
    return p


def _generate(args: argparse.Namespace) -> int:
    from .rsna import write_rsna_dataset

    if args.n < 1:
        raise CspineInputError("--n must be at least 1")
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        raise CspineInputError(f"{args.out} is not empty; use --force to write into it")
    kw = {"matrix": args.matrix}
    if args.pixel_spacing:
        kw["pixel_spacing_mm"] = args.pixel_spacing
    if args.slice_spacing:
        kw["slice_spacing_mm"] = args.slice_spacing
    if args.prevalence is not None:
        kw["fracture_prevalence"] = args.prevalence
    try:
        cfg = PhantomConfig(**kw)
    except ValueError as err:
        raise CspineInputError(str(err)) from err
    t0 = time.perf_counter()

    def progress(i: int, n: int) -> None:
        print(f"\r{i}/{n} studies", end="", file=sys.stderr, flush=True)

    summaries = write_rsna_dataset(
        args.out,
        args.n,
        args.seed,
        cfg,
        compress=args.compress,
        segmentation_fraction=args.seg_fraction,
        workers=max(1, args.jobs),
        progress=progress,
    )
    dt = time.perf_counter() - t0
    pos = sum(s["patient_overall"] for s in summaries)
    print(
        f"\nwrote {len(summaries)} studies ({pos} with a fracture) to {args.out} in {dt:.1f} s",
        file=sys.stderr,
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "montage":
            from .montage import make_figures

            args = _montage_parser().parse_args(argv[1:])
            for path in make_figures(args.out, real_path=args.real, seed=args.seed):
                print(path)
            return EXIT_OK
        if argv and argv[0] == "generate":
            argv = argv[1:]
        return _generate(_generate_parser().parse_args(argv))
    except CspineInputError as err:
        print(f"cspine-phantom: {err}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
