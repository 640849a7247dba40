"""Render a model card (``model_card.json``) as Markdown with the evaluation figures.

``write_card_docs(card_path, eval_dir, docs_dir)`` writes ``docs_dir/model_card.md`` and copies
the figures to ``docs_dir/model_card/``; the page states every number the card holds, next to
its target, and the disclaimer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cspine_desktop.vertebrae import NAMES

from .report import FIGURES


def _ci(m: dict[str, Any] | None) -> str:
    if not m or m.get("value") is None:
        return "n/a"
    lo, hi = (m.get("ci95") or [None, None])[:2]
    if lo is None or hi is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} ({lo:.3f}–{hi:.3f})"


def render(card: dict[str, Any], figures: str = "model_card") -> str:
    m, pre, td = card["metrics"], card["preprocessing"], card.get("training_data", {})
    tr, arch = card.get("training", {}), card["architecture"]
    fov = pre["input_size"] * pre["pixel_spacing_mm"]
    L = [f"# Model card — {card['name']} {card['version']}", "", f"**{card['disclaimer']}**", ""]
    L += [
        "## What it is",
        "",
        f"{arch['family']} ({arch['parameters']:,} parameters), Keras 3; created "
        f"{card['created']}. Input: one 2.5D model-grid slice "
        f"{pre['input_size']}×{pre['input_size']} px at {pre['pixel_spacing_mm']} mm "
        f"({fov:.0f} mm field of view), planes every {pre['slice_step_mm']} mm, "
        f"{len(pre['channels'])} channels: "
        + ", ".join(f"{w} window at {o:+.0f} mm" for w, o in pre["channels"])
        + ". "
        "Outputs: `vertebrae` (softmax, 0 background, 1–7 = C1–C7), `fracture_map` (sigmoid "
        "per pixel), `fracture_cls` (7 sigmoids per slice). Per-vertebra probability = mean "
        f"of the top {card['aggregation']['top_k']} slice scores within the predicted "
        "vertebra; patient probability = noisy-OR over present vertebrae.",
        "",
    ]
    notes = card.get("notes") or {}
    for k, v in notes.items():
        L += [f"**{k}.** {v}", ""]
    L += [
        "## Training data",
        "",
        f"{td.get('source', '')}. Training seed {td.get('train_seed')}, test seed "
        f"{td.get('test_seed')}; studies: "
        + ", ".join(f"{k} {v}" for k, v in (td.get("studies") or {}).items())
        + f". {td.get('split', '')}.",
        "",
        "## Training",
        "",
        f"Optimiser {tr.get('optimizer')} (learning rate {tr.get('learning_rate')}, "
        f"{tr.get('schedule')} schedule), batch {tr.get('batch_size')}, "
        f"{tr.get('slices_per_study')} slices per study per epoch, {tr.get('epochs')} epochs "
        f"planned, precision {tr.get('precision')}, encoder weights "
        f"{arch['model'].get('encoder_weights') or 'none (trained from scratch)'}.",
        "",
    ]
    L += [
        "## Results on the held-out test set vs targets",
        "",
        "| metric | target | measured | met |",
        "|---|---|---|---|",
    ]
    targets = m.get("targets", {})
    p = m["patient"]
    dmin = min(m["dice"][n]["mean"] for n in NAMES)
    sev = (m.get("by_fracture") or {}).get("severity:severe")
    rows = [
        ("Dice, every vertebra (lowest)", targets.get("dice_min"), dmin, f"{dmin:.3f}"),
        ("Patient AUC", targets.get("patient_auc"), p["auc"]["value"], _ci(p["auc"])),
        (
            "Patient sensitivity",
            targets.get("sensitivity"),
            p["sensitivity"]["value"],
            _ci(p["sensitivity"]),
        ),
        (
            "Patient specificity",
            targets.get("specificity"),
            p["specificity"]["value"],
            _ci(p["specificity"]),
        ),
        (
            "Severe fractures found (vertebra level)",
            targets.get("severe_sensitivity"),
            sev["vertebra_sensitivity"] if sev else None,
            f"{sev['vertebra_sensitivity']:.3f} of {sev['n']}" if sev else "n/a",
        ),
    ]
    for what, target, value, shown in rows:
        met = "—" if value is None or target is None else ("yes" if value >= target else "NO")
        L.append(f"| {what} | ≥ {target} | {shown} | {met} |")
    L += [
        "",
        f"RSNA 2022 weighted log loss: {m['rsna_weighted_log_loss']:.4f}. Patient "
        f"TP/FP/TN/FN: {p['tp']}/{p['fp']}/{p['tn']}/{p['fn']}. Intervals: 95% bootstrap "
        "over studies.",
        "",
        "| vertebra | Dice (mean, 95% CI) | AUC | sensitivity | specificity | positives |",
        "|---|---|---|---|---|---|",
    ]
    for n in NAMES:
        d, r = m["dice"][n], m["per_vertebra"][n]
        L.append(
            f"| {n} | {_ci({'value': d['mean'], 'ci95': d['ci95']})} | {_ci(r['auc'])} | "
            f"{_ci(r['sensitivity'])} | {_ci(r['specificity'])} | {r['positives']} |"
        )
    L += [
        "",
        "### By fracture kind and severity",
        "",
        "| group | fractures | found (vertebra) | found (patient) |",
        "|---|---|---|---|",
    ]
    for k, g in (m.get("by_fracture") or {}).items():
        L.append(
            f"| {k} | {g['n']} | {g['vertebra_sensitivity']:.3f} | {g['patient_sensitivity']:.3f} |"
        )
    L += [
        "",
        "### Fracture-free studies with mimics",
        "",
        "| studies | n | patient false-positive rate | vertebra false-positive rate |",
        "|---|---|---|---|",
    ]
    for k, g in (m.get("mimics") or {}).items():
        if g.get("n"):
            L.append(
                f"| {k} | {g['n']} | {g['patient_fp_rate']:.3f} | {g['vertebra_fp_rate']:.3f} |"
            )
    L += [
        "",
        "## Thresholds",
        "",
        f"Chosen on the validation split for sensitivity ≥ "
        f"{m.get('operating_point', {}).get('min_sensitivity', 0.9)}:",
        "",
        "| key | threshold |",
        "|---|---|",
    ]
    L += [f"| {k} | {v:.4f} |" for k, v in card["thresholds"].items()]
    L += ["", "## Files", "", "| file | format | precision | sha256 |", "|---|---|---|---|"]
    L += [
        f"| {k} | {v['format']} | {v.get('precision', '')} | `{v['sha256'][:16]}…` |"
        for k, v in card["files"].items()
    ]
    L += ["", "## Figures", ""]
    L += [f"![{f[:-4]}]({figures}/{f})" for f in FIGURES]
    L += ["", f"*{card['disclaimer']}*", ""]
    return "\n".join(L)


def write_card_docs(card_path: str | Path, eval_dir: str | Path, docs_dir: str | Path) -> Path:
    card = json.loads(Path(card_path).read_text(encoding="utf-8"))
    docs = Path(docs_dir)
    figs = docs / "model_card"
    figs.mkdir(parents=True, exist_ok=True)
    for f in FIGURES:
        src = Path(eval_dir) / f
        if src.is_file():
            shutil.copyfile(src, figs / f)
    out = docs / "model_card.md"
    out.write_text(render(card, "model_card"), encoding="utf-8")
    return out
