"""Evaluation outputs: ``metrics.json``, ``report.md`` and the figures, plus the card's digest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop import DISCLAIMER
from cspine_desktop.vertebrae import NAMES

from .config import TrainConfig
from .plots import calibration_plot, confusion_plot, dice_plot, roc_plot
from .predict import StudyOutcome
from .scoring import _arrays, patient_verdicts

FIGURES = (
    "roc_patient.png",
    "roc_vertebrae.png",
    "calibration.png",
    "dice.png",
    "confusion_patient.png",
    "confusion_vertebrae.png",
    "confusion_segmentation.png",
)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    return o


def write_figures(
    out: Path,
    outcomes: Sequence[StudyOutcome],
    val: Sequence[StudyOutcome],
    seg_cm: np.ndarray,
    thresholds: dict[str, float],
    metrics: dict[str, Any],
) -> list[Path]:
    a, v = _arrays(outcomes), _arrays(val)
    p = metrics["patient"]
    spec, sens = p["specificity"]["value"], p["sensitivity"]["value"]
    called_v = a["present"] & (a["prob"] >= np.array([thresholds[n] for n in NAMES]))
    called_p = patient_verdicts(a, thresholds)
    paths = [
        roc_plot(
            [
                ("test", a["patient_truth"], a["patient_prob"]),
                ("validation", v["patient_truth"], v["patient_prob"]),
            ],
            out / "roc_patient.png",
            "Patient (test)",
            points=[("operating point (test)", 1 - spec, sens)],
        ),
        roc_plot(
            [("all vertebrae", a["truth"].ravel(), a["prob"].ravel())]
            + [
                (n, a["truth"][:, i], a["prob"][:, i])
                for i, n in enumerate(NAMES)
                if 0 < a["truth"][:, i].sum() < len(outcomes)
            ],
            out / "roc_vertebrae.png",
            "Vertebrae (test)",
        ),
        calibration_plot(
            [
                ("patient", a["patient_truth"], a["patient_prob"]),
                ("vertebra", a["truth"].ravel(), a["prob"].ravel()),
            ],
            out / "calibration.png",
            "Calibration (test)",
        ),
        dice_plot(metrics["dice"], out / "dice.png"),
        confusion_plot(
            _cm2(a["patient_truth"], called_p),
            ["no fracture", "fracture"],
            out / "confusion_patient.png",
            "Patient verdict (test)",
        ),
        confusion_plot(
            _cm2(a["truth"].ravel(), called_v.ravel()),
            ["no fracture", "fracture"],
            out / "confusion_vertebrae.png",
            "Vertebra verdicts (test)",
        ),
        confusion_plot(
            seg_cm,
            ["bg", *NAMES],
            out / "confusion_segmentation.png",
            "Segmentation, pixels (row-normalised)",
            normalise=True,
        ),
    ]
    return paths


def _cm2(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    t, c = np.asarray(t, bool), np.asarray(c, bool)
    return np.array([[np.sum(~t & ~c), np.sum(~t & c)], [np.sum(t & ~c), np.sum(t & c)]])


def _ci(m: dict[str, Any]) -> str:
    if m["value"] is None or not np.isfinite(m["value"]):
        return "n/a"
    lo, hi = m["ci95"]
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} ({lo:.3f}–{hi:.3f})"


def severe_sensitivity(metrics: dict[str, Any]) -> float | None:
    s = metrics["by_fracture"].get("severity:severe")
    return s["vertebra_sensitivity"] if s else None


def target_table(m: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(what, target, measured, met) rows, the same in report.md and docs/model_card.md."""
    t = m["targets"]
    dmin = min(m["dice"][n]["mean"] for n in NAMES)
    worst = min(NAMES, key=lambda n: m["dice"][n]["mean"])
    p = m["patient"]
    sev = severe_sensitivity(m)
    return [
        (
            "Dice, every vertebra (lowest)",
            f"≥ {t['dice_min']:.2f}",
            f"{dmin:.3f} ({worst})",
            dmin >= t["dice_min"],
        ),
        (
            "Patient AUC",
            f"≥ {t['patient_auc']:.2f}",
            _ci(p["auc"]),
            p["auc"]["value"] >= t["patient_auc"],
        ),
        (
            "Patient sensitivity at threshold",
            f"≥ {t['sensitivity']:.2f}",
            _ci(p["sensitivity"]),
            p["sensitivity"]["value"] >= t["sensitivity"],
        ),
        (
            "Patient specificity at threshold",
            f"≥ {t['specificity']:.2f}",
            _ci(p["specificity"]),
            p["specificity"]["value"] >= t["specificity"],
        ),
        (
            "Severe fractures found (vertebra level)",
            f"≥ {t['severe_sensitivity']:.2f}",
            "n/a" if sev is None else f"{sev:.3f}",
            None if sev is None else sev >= t["severe_sensitivity"],
        ),
    ]


def report_markdown(m: dict[str, Any], ctx: dict[str, Any], thresholds: dict[str, float]) -> str:
    L = [f"# cspine evaluation — {ctx['n_test']} test studies", "", f"*{DISCLAIMER}*", ""]
    L += [
        f"Run `{ctx['run']}`, model `{ctx['model']}`, test data `{ctx['test_dir']}`; "
        f"thresholds chosen on the validation split ({ctx['n_val']} studies) for sensitivity "
        f"≥ {m['operating_point']['min_sensitivity']:.2f}. Intervals: 95% bootstrap over "
        "studies.",
        "",
    ]
    L += ["## Targets", "", "| metric | target | measured | met |", "|---|---|---|---|"]
    for what, target, measured, met in target_table(m):
        verdict = "—" if met is None else ("yes" if met else "NO")
        L.append(f"| {what} | {target} | {measured} | {verdict} |")
    L += ["", "## Patient level", "", "| | value (95% CI) |", "|---|---|"]
    p = m["patient"]
    for k in ("auc", "sensitivity", "specificity", "accuracy"):
        L.append(f"| {k} | {_ci(p[k])} |")
    L.append(f"| TP / FP / TN / FN | {p['tp']} / {p['fp']} / {p['tn']} / {p['fn']} |")
    L.append(f"| RSNA 2022 weighted log loss | {m['rsna_weighted_log_loss']:.4f} |")
    L += [
        "",
        "## Vertebra level",
        "",
        "| vertebra | Dice (mean, 95% CI) | AUC | sensitivity | specificity | accuracy | positives |",  # noqa: E501
        "|---|---|---|---|---|---|---|",
    ]
    for n in NAMES:
        d, r = m["dice"][n], m["per_vertebra"][n]
        L.append(
            f"| {n} | {_ci({'value': d['mean'], 'ci95': d['ci95']})} | {_ci(r['auc'])} | "
            f"{_ci(r['sensitivity'])} | {_ci(r['specificity'])} | {_ci(r['accuracy'])} | "
            f"{r['positives']} |"
        )
    r = m["vertebra_pooled"]
    L.append(
        f"| all | — | {_ci(r['auc'])} | {_ci(r['sensitivity'])} | "
        f"{_ci(r['specificity'])} | {_ci(r['accuracy'])} | {r['positives']} |"
    )
    if "auc_within_level" in r:
        L += [
            "",
            f"Pooled AUC {r['auc']['value']:.3f} against {r['auc_level_only']:.3f} for the level "
            "alone (each vertebra scored by its level's share of fractures in this set); AUC "
            f"within a level (fractured and intact vertebrae of the same level only): "
            f"{_ci(r['auc_within_level'])}.",
        ]
    L += [
        "",
        "## By fracture kind and severity",
        "",
        "A fracture is found at vertebra level when its vertebra is called fractured, at "
        "patient level when its study is.",
        "",
        "| group | fractures | found (vertebra) | found (patient) |",
        "|---|---|---|---|",
    ]
    for k, g in m["by_fracture"].items():
        L.append(
            f"| {k} | {g['n']} | {g['vertebra_sensitivity']:.3f} | {g['patient_sensitivity']:.3f} |"
        )
    L += [
        "",
        "## Fracture-free studies with mimics (false positives)",
        "",
        "| studies | n | patient FP rate | vertebra FP rate |",
        "|---|---|---|---|",
    ]
    for k, g in m["mimics"].items():
        if g["n"]:
            L.append(
                f"| {k} | {g['n']} | {g['patient_fp_rate']:.3f} | {g['vertebra_fp_rate']:.3f} |"
            )
        else:
            L.append(f"| {k} | 0 | — | — |")
    L += ["", "## Thresholds", "", "| key | threshold |", "|---|---|"]
    L += [f"| {k} | {v:.4f} |" for k, v in thresholds.items()]
    L += ["", "## Figures", ""] + [f"![{f[:-4]}]({f})" for f in FIGURES] + [""]
    return "\n".join(L)


def write_outputs(
    out: Path,
    metrics: dict[str, Any],
    outcomes: Sequence[StudyOutcome],
    seg_cm: np.ndarray,
    val: Sequence[StudyOutcome],
    thresholds: dict[str, float],
    ctx: dict[str, Any],
) -> None:
    write_figures(out, outcomes, val, seg_cm, thresholds, metrics)
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(metrics, ctx, thresholds), encoding="utf-8")


def card_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """The model card's "metrics": headline numbers with CIs, targets and breakdowns."""
    keep = (
        "n_studies",
        "dice",
        "patient",
        "vertebra_pooled",
        "rsna_weighted_log_loss",
        "by_fracture",
        "mimics",
        "operating_point",
        "targets",
        "validation",
    )
    out = {k: m[k] for k in keep if k in m}
    out["per_vertebra"] = {
        n: {k: m["per_vertebra"][n][k] for k in ("auc", "sensitivity", "specificity", "positives")}
        for n in NAMES
    }
    out["targets_met"] = {what: met for what, _, _, met in target_table(m)}
    out["evaluated_on"] = "held-out synthetic phantom test set (different seed)"
    return _jsonable(out)


def training_data(ctx: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    tm, sm = ctx.get("train_meta") or {}, ctx.get("test_meta") or {}
    return _jsonable(
        {
            "source": "synthetic cervical-spine CT phantom (cspine-phantom); no patient data",
            "train_seed": tm.get("seed"),
            "test_seed": sm.get("seed"),
            "studies": {"train": ctx["n_train"], "validation": ctx["n_val"], "test": ctx["n_test"]},
            "phantom_config": tm.get("config"),
            "slices_per_study_per_epoch": cfg.slices_per_study,
            "split": "by patient; validation chose the thresholds; test never seen in training",
        }
    )
