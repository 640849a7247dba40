"""``cspine self-test`` (the installed app's ``--self-test``): does this installation work?

Headless and offline. Verifies the model files against the sha256 in their card, checks the
image decoders and Qt (offscreen), analyses the bundled demo study with the inference engine,
writes every export into a temporary folder, and prints the verdicts and the timings. Network
access is refused and recorded for the whole run; any attempt fails the self-test. Nothing is
written to the data folder or the install folder (engine timings and exports go to a temporary
folder that is removed at the end).

Exit codes: 0 every check passed, 1 a check failed (the failing check says why).
``--strict`` also fails when the verdicts differ from what the demo study is known to hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import DISCLAIMER
from ..settings import BACKENDS, Settings
from .network_guard import guarded_network
from .selftest_checks import (
    Check,
    check_decoders,
    check_demo_study,
    check_engine,
    check_exports,
    check_isolation,
    check_model,
    check_qt,
    check_runtime,
    check_telemetry,
    loaded_training_modules,
)

VERTEBRAE = tuple(f"C{i}" for i in range(1, 8))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "self-test",
        help="check this installation offline: model sha256, demo study, verdicts, timings",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    p.add_argument("--model", default=None, metavar="DIR", help="model bundle folder")
    p.add_argument("--study", default=None, metavar="PATH", help="study to analyse")
    p.add_argument("--truth", default=None, metavar="JSON", help="what the study holds")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="inference backend")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--strict", action="store_true", help="fail when verdicts differ from truth")
    p.add_argument("--no-gui", action="store_true", help="skip the Qt check")
    p.add_argument("--no-exports", action="store_true", help="skip writing the exports")
    p.set_defaults(func=run)


@dataclass
class SelfTestReport:
    checks: list[Check] = field(default_factory=list)
    verdicts: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, bool] | None = None
    agrees_with_truth: bool | None = None
    network_attempts: list[str] = field(default_factory=list)
    total_s: float = 0.0
    table: str = ""

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("table")
        d["passed"] = self.passed
        d["disclaimer"] = DISCLAIMER
        return d


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..inference import demo_model_dir, demo_study_path, demo_truth_path

    model_dir = Path(args.model or settings.model_dir or demo_model_dir())
    study = Path(args.study) if args.study else demo_study_path()
    truth_path = Path(args.truth) if args.truth else (None if args.study else demo_truth_path())
    report = run_self_test(
        model_dir,
        study,
        truth_path,
        backend=args.backend or settings.backend,
        gui=not args.no_gui,
        exports=not args.no_exports,
        strict=args.strict,
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render(report))
    return 0 if report.passed else 1


def run_self_test(
    model_dir: Path,
    study: Path,
    truth_path: Path | None = None,
    *,
    backend: str = "auto",
    gui: bool = True,
    exports: bool = True,
    strict: bool = False,
) -> SelfTestReport:
    """Run every check with network access refused; the report says what passed and how long
    each step took (seconds)."""
    report = SelfTestReport()
    t_start = time.perf_counter()
    preloaded = loaded_training_modules()
    with guarded_network() as guard, tempfile.TemporaryDirectory(prefix="cspine-selftest-") as tmp:
        checks = report.checks
        checks.append(check_runtime())
        model_check, bundle = check_model(model_dir)
        checks.append(model_check)
        checks.append(check_decoders())
        if gui:
            checks.append(check_qt())
        engine = outcome = None
        if bundle is not None:
            engine_check, engine = check_engine(bundle, backend, Path(tmp) / "cache")
            checks.append(engine_check)
        if engine is not None:
            if study.exists():
                study_check, outcome = check_demo_study(study, engine, bundle)
                checks.append(study_check)
            else:
                checks.append(Check("demo study", False, f"{study} is missing"))
        if outcome is not None:
            _add_verdicts(report, outcome, truth_path, strict)
            if exports:
                checks.append(check_exports(outcome, Path(tmp) / "exports"))
        checks.append(check_isolation(getattr(engine, "label", None), preloaded))
        checks.append(check_telemetry())
        if engine is not None:
            engine.close()
    report.network_attempts = list(guard.attempts)
    report.checks.append(
        Check(
            "network",
            not guard.attempts,
            "no connection attempted"
            if not guard.attempts
            else "refused attempts to reach " + ", ".join(guard.attempts),
        )
    )
    report.total_s = round(time.perf_counter() - t_start, 3)
    return report


def _add_verdicts(
    report: SelfTestReport, outcome: Any, truth_path: Path | None, strict: bool
) -> None:
    from ..reports import render_verdicts_table

    result = outcome.result
    report.table = render_verdicts_table(outcome)
    report.verdicts = {
        **{
            v.name: {
                "present": v.present,
                "status": v.status,
                "probability": v.probability,
                "fractured": v.fractured,
            }
            for v in result.vertebrae
        },
        "patient_overall": {
            "status": result.patient_overall.status,
            "probability": result.patient_overall.probability,
            "fractured": result.patient_overall.fractured,
        },
    }
    if truth_path is None or not truth_path.is_file():
        return
    from .demo import compare_with_truth

    try:
        truth = read_truth(truth_path)
    except ValueError as exc:
        report.checks.append(Check("truth", False, f"{truth_path.name}: {exc}"))
        return
    report.truth = dict(truth["fractured"])
    rows = compare_with_truth(result, truth)
    differ = [n for n, row in rows.items() if row["model"] is not None and not row["agree"]]
    undecided = [n for n, row in rows.items() if row["model"] is None]
    report.agrees_with_truth = not differ and not undecided
    known = ", ".join(n for n in VERTEBRAE if report.truth[n]) or "no fracture"
    parts = [f"the verdicts differ at {', '.join(differ)}"] if differ else []
    if undecided:
        parts.append(f"no verdict (indeterminate) at {', '.join(undecided)}")
    detail = f"known: {known}; " + ("; ".join(parts) or "the verdicts agree")
    report.checks.append(Check("truth", not (strict and (differ or undecided)), detail))


def read_truth(path: Path) -> dict[str, Any]:
    """The demo study's truth file (``model_training.demo_study`` writes it):
    ``{"fractured": {"C1": bool, …, "C7": bool}, "patient_overall": bool, …}``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable ({exc})") from None
    fractured = doc.get("fractured") if isinstance(doc, dict) else None
    if not isinstance(fractured, dict) or not all(
        isinstance(fractured.get(n), bool) for n in VERTEBRAE
    ):
        raise ValueError("no per-vertebra fracture truth (fractured: {C1..C7: true/false})")
    if not isinstance(doc.get("patient_overall"), bool):
        raise ValueError("no patient_overall truth")
    return doc


def render(report: SelfTestReport) -> str:
    """The report as text: one line per check, the verdict table, the totals."""
    lines = ["cspine self-test (not for diagnostic use)"]
    for c in report.checks:
        mark = "ok  " if c.ok else "FAIL"
        lines.append(f"  [{mark}] {c.name:<11} {c.seconds:7.2f} s  {c.detail}")
    if report.table:
        lines.append("")
        lines.extend("  " + line for line in report.table.rstrip("\n").splitlines())
    lines.append("")
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append(f"self-test {verdict} in {report.total_s:.2f} s")
    return "\n".join(lines) + "\n"
