"""``cspine demo``: analyse the bundled phantom study with the bundled model, next to the truth.

The demo study is a synthetic neck CT (a zipped DICOM series under ``assets/demo/``) with one
known fracture; its truth file says which. A copy made earlier in the cache folder is used when
the assets are not installed, and a development checkout with the phantom code can make one.
Writes every export to ``--out`` (default: ``<data dir>/demo-results``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..errors import StudyNotFoundError
from ..settings import BACKENDS, Settings
from . import add_verbose_flag

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="analyse the bundled demo study and compare with its truth")
    p.add_argument("--out", default=None, help="output folder (default <data dir>/demo-results)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="inference backend")
    p.add_argument("--model", default=None, metavar="DIR", help="model bundle folder")
    p.add_argument("--json", action="store_true", help="print result and truth as JSON")
    p.add_argument(
        "--no-exports", action="store_true", help="write only result.json and verdicts.csv"
    )
    add_verbose_flag(p)
    p.set_defaults(func=run)


def find_demo_study(settings: Settings) -> tuple[Path, dict]:
    """(study zip, truth) from the assets (or a copy in the cache folder). The app never makes
    the study itself: ``python -m model_training.demo_study`` writes it into the assets."""
    from ..inference.resources import DEMO_STUDY, DEMO_TRUTH, demo_study_path, demo_truth_path

    cached = settings.cache_dir / "demo"
    for study, truth in (
        (demo_study_path(), demo_truth_path()),
        (cached / DEMO_STUDY, cached / DEMO_TRUTH),
    ):
        if study.is_file() and truth.is_file():
            return study, json.loads(truth.read_text(encoding="utf-8"))
    raise StudyNotFoundError(
        "The demo study is not installed (assets/demo/demo-study.zip is missing); "
        "reinstall cspine, or write it with: python -m model_training.demo_study"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..services.analysis import AnalysisService
    from .analyze import ProgressBar, _with_overrides, show_table, write_outputs

    settings = _with_overrides(settings, args)
    study, truth = find_demo_study(settings)
    out_dir = Path(args.out) if args.out else settings.data_dir / "demo-results"
    bar = ProgressBar() if sys.stderr.isatty() and not args.json else None
    try:
        outcome = AnalysisService(settings).analyze_path(study, progress=bar)
    finally:
        if bar:
            bar.close()
    write_outputs(outcome, out_dir, exports=not args.no_exports)
    comparison = compare_with_truth(outcome.result, truth)
    if args.json:
        doc = {"result": outcome.result.to_dict(), "truth": truth, "comparison": comparison}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    show_table(outcome)
    sys.stdout.write("\n" + format_comparison(comparison, truth) + "\n")
    sys.stdout.write(f"Results written to {out_dir.resolve()}\n")
    return 0


def compare_with_truth(result, truth: dict) -> dict:
    """Per vertebra and for the patient: the model's verdict (None where it gave none:
    indeterminate), the truth, and whether they agree (no verdict never agrees)."""
    rows = {}
    for v in result.vertebrae:
        real = bool(truth["fractured"][v.name])
        rows[v.name] = {"model": v.fractured, "truth": real, "agree": v.fractured is real}
    real = bool(truth["patient_overall"])
    model = result.patient_overall.fractured
    rows["patient_overall"] = {"model": model, "truth": real, "agree": model is real}
    return rows


def format_comparison(comparison: dict, truth: dict) -> str:
    def word(f: bool | None) -> str:
        return "indeterminate" if f is None else ("FRACTURE" if f else "no fracture")

    found = [
        f"C{f['vertebra']} {f['kind'].replace('_', ' ')} ({f['severity']})"
        for f in truth.get("fractures", [])
    ]
    lines = [
        "Known truth of this synthetic study: " + (", ".join(found) or "no fracture"),
        f"{'':<9}{'model':<15}{'truth':<13}agree",
    ]
    for name, row in comparison.items():
        label = "Patient" if name == "patient_overall" else name
        mark = "yes" if row["agree"] else "NO"
        # "indeterminate" is 13 characters: the column is wider, so words never run together
        lines.append(f"{label:<9}{word(row['model']):<15}{word(row['truth']):<13}{mark}")
    n = sum(r["agree"] for k, r in comparison.items() if k != "patient_overall")
    lines.append(
        f"Agreement: {n} of 7 vertebrae; patient verdict "
        f"{'correct' if comparison['patient_overall']['agree'] else 'wrong'}."
    )
    return "\n".join(lines)
