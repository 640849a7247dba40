"""``cspine analyze PATH``: verdicts for one study, and every export, from the command line.

Writes into ``--out`` (default ``./cspine-results``): ``result.json`` (``cspine.analysis/2``),
``verdicts.csv`` (RSNA 2022 style), then the label NIfTI, DICOM SEG + TID1500 SR (DICOM input
only), key images (PNG) and the one-page PDF report. Prints the C1–C7 verdict table with the
disclaimer (``--json``: the result JSON instead); a progress bar on a terminal.
When the images cannot give a verdict (not a CT series, slices thicker than 5 mm, no plausible
cervical spine, levels cut by the scan's edge …) the table says "indeterminate" with the reasons;
that is a finished analysis (exit 0).
Exit codes: 0 done, 2 a problem with the input or the model, 1 internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import DISCLAIMER
from ..progress import Progress
from ..settings import BACKENDS, Settings
from . import add_verbose_flag

DEFAULT_OUT = "cspine-results"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a CT study (folder, zip, DICOM, NIfTI, PNG/JPEG) and write the results",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    p.add_argument("path", help="DICOM folder, zip, DICOM file, NIfTI volume or PNG/JPEG slice")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="inference backend")
    p.add_argument("--series", default=None, metavar="UID", help="SeriesInstanceUID to analyse")
    p.add_argument("--model", default=None, metavar="DIR", help="model bundle folder")
    p.add_argument("--json", action="store_true", help="print the result JSON, not the table")
    p.add_argument(
        "--no-exports", action="store_true", help="write only result.json and verdicts.csv"
    )
    add_verbose_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..services.analysis import AnalysisService

    settings = _with_overrides(settings, args)
    service = AnalysisService(settings)
    bar = ProgressBar() if sys.stderr.isatty() and not args.json else None
    try:
        outcome = service.analyze_path(args.path, args.series, progress=bar)
    finally:
        if bar:
            bar.close()
    written, not_written = write_outputs(outcome, Path(args.out), exports=not args.no_exports)
    for line in not_written:
        sys.stderr.write(line + "\n")
    if args.json:
        sys.stdout.write(outcome.result.to_json() + "\n")
    else:
        show_table(outcome)
        sys.stdout.write(f"Results written to {Path(args.out).resolve()} ({len(written)} files)\n")
    return 0


def _with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    changes = {}
    if getattr(args, "backend", None):
        changes["backend"] = args.backend
    if getattr(args, "model", None):
        changes["model_dir"] = args.model
    return settings.replace(**changes) if changes else settings


def write_outputs(outcome, out_dir: Path, exports: bool = True) -> tuple[list[Path], list[str]]:
    """result.json and verdicts.csv first (the essentials), then every available export.

    Returns the files written, and for a study read from DICOM a line for each of the DICOM
    SEG and SR that could not be written, with the reason (a NIfTI or PNG study never has
    them, and says nothing)."""
    from ..reports import export_all, write_result_json, write_rsna_csv
    from ..reports._common import dicom_source_files

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_result_json(outcome, out_dir / "result.json"),
        write_rsna_csv(outcome, out_dir / "verdicts.csv"),
    ]
    if exports:
        from ..reports.export import FORMATS, available_formats

        avail = available_formats(outcome)
        formats = [f for f in FORMATS if f not in ("json", "csv") and avail[f] is None]
        written += list(export_all(outcome, out_dir, formats, stem=_stem(outcome)).values())
        if dicom_source_files(outcome.volume):
            names = {"seg": "DICOM SEG", "sr": "DICOM SR"}
            return written, [f"{names[f]} not written: {avail[f]}" for f in names if avail[f]]
    return written, []


def _stem(outcome) -> str:
    uid = outcome.result.study_instance_uid
    return f"study-{uid[-12:]}" if uid else "study"


def show_table(outcome) -> None:
    from ..reports import render_verdicts_table

    text = render_verdicts_table(outcome)
    sys.stdout.write(text.rstrip("\n") + "\n")
    if DISCLAIMER not in text:
        sys.stdout.write(DISCLAIMER + "\n")


class ProgressBar:
    """A one-line progress bar on stderr: ``[#####.....]  45%  analysing slice 30 of 90``."""

    WIDTH = 30

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        fraction = progress.fraction or 0.0
        now = time.monotonic()
        if now - self._last < 0.1 and fraction < 1.0:
            return
        self._last = now
        filled = int(self.WIDTH * max(0.0, min(1.0, fraction)))
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%}  {progress.stage}"
        self.stream.write("\r" + line[:100].ljust(100))
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()
