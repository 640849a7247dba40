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

from cspine_desktop.imaging.crops import CropConfig, PlaneSpacing
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
    """The card as a Markdown page; ``figures``: the folder of the figures, relative to it."""
    L = [f"# Model card — {card['name']} {card['version']}", "", f"**{card['disclaimer']}**", ""]
    L += _what_it_is(card)
    L += _stage2_section(card)
    notes = card.get("notes") or {}
    for k, v in notes.items():
        L += [f"**{k}.** {v}", ""]
    L += _training(card)
    L += _results(card["metrics"])
    L += _end_to_end(card["metrics"])
    L += _thresholds(card)
    L += ["", "## Files", "", "| file | format | precision | sha256 |", "|---|---|---|---|"]
    L += [
        f"| {k} | {v['format']} | {v.get('precision', '')} | `{v['sha256'][:16]}…` |"
        for k, v in card["files"].items()
    ]
    L += ["", "## Figures", ""]
    L += [f"![{f[:-4]}]({figures}/{f})" for f in FIGURES]
    L += ["", f"*{card['disclaimer']}*", ""]
    return "\n".join(L)


def _what_it_is(card: dict[str, Any]) -> list[str]:
    pre, arch = card["preprocessing"], card["architecture"]
    fov = pre["input_size"] * pre["pixel_spacing_mm"]
    return [
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


def _training(card: dict[str, Any]) -> list[str]:
    td, tr = card.get("training_data", {}), card.get("training", {})
    arch = card["architecture"]
    return [
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


def _results(m: dict[str, Any]) -> list[str]:
    """The test-set figures: against their targets, per vertebra, per fracture kind and on
    studies with mimics."""
    L = [
        "## Results on the held-out test set vs targets",
        "",
        "| metric | target | measured | met |",
        "|---|---|---|---|",
    ]
    p = m["patient"]
    for what, target, value, shown in _target_rows(m):
        if what.startswith("Degenerative-only"):  # an upper bound
            met = "—" if value is None or target is None else ("yes" if value <= target else "NO")
            L.append(f"| {what} | ≤ {target} | {shown} | {met} |")
            continue
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
    return L


def _target_rows(m: dict[str, Any]) -> list[tuple[str, float | None, float | None, str]]:
    """(what, target, measured, measured as shown) for every target."""
    targets = m.get("targets", {})
    p = m["patient"]
    dmin = min(m["dice"][n]["mean"] for n in NAMES)
    sev = (m.get("by_fracture") or {}).get("severity:severe")
    rows: list[tuple[str, float | None, float | None, str]] = [
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
    return rows + list(_more_target_rows(m))


def _end_to_end(m: dict[str, Any]) -> list[str]:
    """The test studies run through ``analyze`` with both stages, as the app runs them."""
    e = m.get("end_to_end")
    if not e:
        return []
    p, v = e["patient"], e["vertebra_pooled"]
    rows = [
        ("Patient AUC", _ci(p.get("auc"))),
        (
            "Patient sensitivity / specificity at the thresholds",
            f"{_ci(p.get('sensitivity'))} / {_ci(p.get('specificity'))}",
        ),
        (
            "Per-vertebra AUC, pooled / within a level",
            f"{_ci(v.get('auc'))} / {_ci(v.get('auc_within_level'))}",
        ),
        (
            "Vertebra sensitivity / specificity at the thresholds",
            f"{_ci(v.get('sensitivity'))} / {_ci(v.get('specificity'))}",
        ),
        ("Studies assessed (plausibility checks)", f"{e['assessed_share']:.3f}"),
    ]
    L = [
        "",
        "## End to end, as the app runs it",
        "",
        f"{e['n_studies']} of the test studies through `analyze()`, both stages on the backend "
        "`auto` picks: "
        "stage 2 reads stage 1's masks, not the true ones, so these are the figures a user gets. "
        "Patient: "
        f"{p['tp']}/{p['fp']}/{p['tn']}/{p['fn']} TP/FP/TN/FN.",
        "",
        "| measure | end to end |",
        "|---|---|",
    ]
    return L + [f"| {k} | {val} |" for k, val in rows]


def _thresholds(card: dict[str, Any]) -> list[str]:
    op = card["metrics"].get("operating_point", {})
    floor = float(op.get("min_vertebra_sensitivity") or 0.0)
    L = [
        "",
        "## Thresholds",
        "",
        f"Chosen on the validation split for patient sensitivity ≥ "
        f"{op.get('min_sensitivity', 0.9)}"
        + (
            f", the vertebra calls finding at least {floor:.2f} of the fractured vertebrae"
            if floor
            else ""
        )
        + (f" ({op['chosen_on']})" if op.get("chosen_on") else "")
        + ":",
        "",
        "| key | threshold |",
        "|---|---|",
    ]
    L += [f"| {k} | {v:.4f} |" for k, v in card["thresholds"].items()]
    return L


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


def _more_target_rows(m: dict[str, Any]) -> list[tuple[str, float, float | None, str]]:
    """The two-stage targets beyond the first table: pooled vertebra AUC, minor fractures,
    degenerative-only studies called fractured."""
    rows: list[tuple[str, float, float | None, str]] = []
    pooled = (m.get("vertebra_pooled") or {}).get("auc")
    if pooled:
        rows.append(("Per-vertebra fracture AUC (pooled)", 0.95, pooled["value"], _ci(pooled)))
    within = (m.get("vertebra_pooled") or {}).get("auc_within_level")
    if within:
        level_only = m["vertebra_pooled"]["auc_level_only"]
        rows.append(
            (
                "Per-vertebra fracture AUC within a level",
                0.95,
                within["value"],
                f"{_ci(within)}; the level alone scores {level_only:.3f} pooled",
            )
        )
    minor = (m.get("by_fracture") or {}).get("severity:minor")
    if minor:
        v = minor["vertebra_sensitivity"]
        rows.append(("Minor fractures found (vertebra level)", 0.80, v, f"{v:.3f} of {minor['n']}"))
    deg = (m.get("mimics") or {}).get("degenerative_only") or {}
    if deg.get("n"):
        v = deg["patient_fp_rate"]
        rows.append(
            ("Degenerative-only studies called fractured", 0.10, v, f"{v:.3f} of {deg['n']}")
        )
    return rows


def _spacing_words(spacing: PlaneSpacing, c: dict[str, Any]) -> str:
    """How far apart the scored planes lie, as the card's ``stage2`` section says."""
    if spacing.step_mm > 0:
        return (
            f"planes scored every {spacing.step_mm:g} mm (axial: never closer than the source's "
            "slices, so every source slice is read)"
        )
    return (
        f"planes {c['plane_mm']} mm apart (or the source spacing), one in {spacing.stride} scored"
    )


def _sagittal_words(crops: dict[str, Any], spacing: PlaneSpacing) -> str:
    half = float(crops.get("sagittal_half_mm") or 0.0)
    if half <= 0:
        return ""
    step = spacing.sagittal_step_mm(CropConfig.from_dict(crops))
    return (
        f"A second view: sagittal planes scored {step:g} mm apart within {half:g} mm of the "
        "vertebra's midline (channels toward patient left, at, toward patient right, and the "
        "mask), scored by the same network; a near-axial fracture (dens, end-plate, a burst's "
        "height loss) shows only there. "
    )


# history columns: (title, key, format); a missing value (the starting point has no loss) is "—"
_HISTORY = (
    ("run", "run", "{}"),
    ("epoch", "epoch", "{}"),
    ("lr", "lr", "{:.2g}"),
    ("loss", "loss", "{:.3f}"),
    ("train plane AUC", "train_plane_auc", "{:.3f}"),
    ("train vertebra AUC", "train_vertebra_auc", "{:.3f}"),
    ("val plane AUC", "val_plane_auc", "{:.3f}"),
    ("val vertebra AUC", "val_vertebra_auc", "{:.3f}"),
    ("val axial only", "val_vertebra_auc_axial", "{:.3f}"),
    ("val sagittal only", "val_vertebra_auc_sagittal", "{:.3f}"),
    ("gap", "gap", "{:+.3f}"),
    ("studies seen", "studies_seen", "{}"),
    ("train s", "train_seconds", "{:.0f}"),
    ("eval s", "eval_seconds", "{:.0f}"),
)


def _history_table(hist: list[dict[str, Any]]) -> list[str]:
    """Every epoch of stage 2's training; columns no epoch has are left out."""
    cols = [c for c in _HISTORY if any(h.get(c[1]) is not None for h in hist)]
    rows = [
        "| " + " | ".join(t for t, _, _ in cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for h in hist:
        cells = [f.format(h[k]) if h.get(k) is not None else "—" for _, k, f in cols]
        rows.append("| " + " | ".join(cells) + " |")
    return [*rows, ""]


def _stage2_section(card: dict[str, Any]) -> list[str]:
    """What stage 2 is, how it was trained (every epoch) and calibrated, and its int8 gate."""
    s2 = card.get("stage2")
    if not s2:
        return []
    a, c, cal = s2["architecture"], s2["crops"], s2.get("calibration") or {}
    tr = s2.get("training") or {}
    spacing = PlaneSpacing.from_card(s2)
    L = [
        "## Stage 2 — the fracture classifier",
        "",
        f"Stage 1 (above) segments C1–C7. Stage 2 judges one vertebra at a time: "
        f"{a['family']} ({a['parameters']:,} parameters, encoder weights "
        f"{a.get('encoder_weights') or 'none — trained from scratch'}). Input: crop planes of "
        f"the source series, {c['size']}×{c['size']} px at {c['pixel_mm']} mm around the "
        f"vertebra's stage-1 mask, {_spacing_words(spacing, c)}; channels: bone window "
        f"{c['context_mm']:g} mm toward the head, at the plane, {c['context_mm']:g} mm toward "
        "the feet, and the vertebra's mask. "
        + _sagittal_words(c, spacing)
        + "Outputs per plane: `fracture` (sigmoid) and "
        f"`fracture_map` ({c['size'] // c['map_stride']}² localisation map, the heat-map). "
        f"Vertebra probability = Platt-calibrated mean of the top {s2.get('top_k')} plane "
        f"scores (a = {cal.get('a', 1.0):.3f}, b = {cal.get('b', 0.0):.3f}, "
        f"{cal.get('method', 'identity')}, {cal.get('n_vertebrae', 0)} vertebrae); patient "
        "probability = the maximum over the vertebrae present.",
        "",
        f"**Training.** {tr.get('data', '')}; {tr.get('epochs', 0)} epochs. Every epoch is "
        "scored like inference (every other plane of every vertebra, true masks) on a fixed "
        "validation set and on a probe of studies it trained on; a train − validation gap "
        "above 0.05 would be memorisation.",
        "",
    ]
    hist = tr.get("history") or []
    if hist:
        L += _history_table(hist)
    gate = s2.get("int8_gate") or {}
    if "passed" in gate:
        within = ""
        if "within_level_auc_int8" in gate:
            within = (
                f", within a level {gate['within_level_auc_fp32']:.4f} → "
                f"{gate['within_level_auc_int8']:.4f}"
            )
        bound = ""
        if "drop_upper_95" in gate:
            bound = (
                f"; paired study bootstrap, 95th percentile of the vertebra-AUC drop "
                f"{gate['drop_upper_95']:.4f} (allowed {gate['max_drop_upper']})"
            )
        L += [
            f"**int8 gate** ({gate['studies']} held-out phantoms, {gate['planes']} planes): "
            f"vertebra AUC fp32 {gate['vertebra_auc_fp32']:.4f} → int8 "
            f"{gate['vertebra_auc_int8']:.4f}{within}, plane AUC {gate['plane_auc_fp32']:.4f} → "
            f"{gate['plane_auc_int8']:.4f}; allowed drop {gate['max_drop']}{bound}: "
            f"{'passed, int8 shipped' if gate['passed'] else 'refused, int8 not shipped'}.",
            "",
        ]
    return L
