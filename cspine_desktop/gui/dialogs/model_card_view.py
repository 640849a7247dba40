"""The model card in words a reader can check: what the model is, what it was trained on, how
it measured against its targets, and the thresholds it decides with (HTML for the About box)."""

from __future__ import annotations

import html
from typing import Any

from ...vertebrae import NAMES

esc = html.escape

# (label, where the value is in "metrics", key in "targets"): value ≥ target is met
TARGETED = (
    ("Patient AUC", ("patient", "auc"), "patient_auc"),
    ("Patient sensitivity at the threshold", ("patient", "sensitivity"), "sensitivity"),
    ("Patient specificity at the threshold", ("patient", "specificity"), "specificity"),
    ("Vertebra AUC (all levels pooled)", ("vertebra_pooled", "auc"), None),
    ("Vertebra AUC within a level", ("vertebra_pooled", "auc_within_level"), None),
    ("Vertebra sensitivity (pooled)", ("vertebra_pooled", "sensitivity"), None),
    ("Vertebra specificity (pooled)", ("vertebra_pooled", "specificity"), None),
)


def _num(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("value", value.get("mean"))
    return float(value) if isinstance(value, (int, float)) else None


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _ci(value: Any) -> str:
    ci = value.get("ci95") if isinstance(value, dict) else None
    return f" (95 % CI {ci[0]:.2f}–{ci[1]:.2f})" if isinstance(ci, list) and len(ci) == 2 else ""


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items() if not isinstance(v, dict))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _row(*cells: str, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag} style='padding:1px 8px'>{c}</{tag}>" for c in cells) + "</tr>"


def _architecture(card: dict) -> str:
    arch = card.get("architecture")
    parts = [arch.get("family", "") if isinstance(arch, dict) else str(arch or "")]
    stage2 = _dig(card, ("stage2", "architecture", "family"))
    if stage2:
        parts = [f"stage 1: {parts[0]}", f"stage 2: {stage2}"]
    return "; ".join(p for p in parts if p)


def _training(card: dict) -> str:
    data = card.get("training_data")
    if not isinstance(data, dict):
        return esc(str(data or "not stated"))
    words = [esc(str(data.get("source", "")))]
    studies = data.get("studies")
    if isinstance(studies, dict):
        words.append(", ".join(f"{esc(str(n))} {esc(k)}" for k, n in studies.items()) + " studies")
    if data.get("split"):
        words.append(esc(str(data["split"])))
    return "<br>".join(w for w in words if w)


def _metrics(card: dict) -> list[str]:
    metrics = card.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return ["<p>The card holds no measurements.</p>"]
    given = metrics.get("targets")
    targets = given if isinstance(given, dict) else {}
    where = metrics.get("evaluated_on") or "its test set"
    n = metrics.get("n_studies")
    out = [f"<p>Measured on {esc(str(where))}" + (f", {int(n)} studies" if n else "") + ".</p>"]
    out.append("<table>" + _row("measure", "value", "target", "met", head=True))
    dice = metrics.get("dice")
    if isinstance(dice, dict):
        found = [_num(dice.get(name)) for name in NAMES if name in dice]
        means = [m for m in found if m is not None]
        if means:
            target = _num(targets.get("dice_min"))
            out.append(_metric_row("Dice, lowest vertebra", min(means), "", target))
    for label, path, key in TARGETED:
        value = _dig(metrics, path)
        number = _num(value)
        if number is not None:
            target = _num(targets.get(key)) if key else None
            out.append(_metric_row(label, number, _ci(value), target))
    for key, value in metrics.items():  # plain numbers of simpler cards
        if isinstance(value, (int, float)) and key != "n_studies":
            out.append(_row(esc(key), f"{value:.3g}", "", ""))
    out.append("</table>")
    return out


def _metric_row(label: str, value: float, ci: str, target: float | None) -> str:
    if target is None:
        return _row(esc(label), f"{value:.2f}{esc(ci)}", "—", "")
    met = value >= target
    colour = "#1b5e20" if met else "#b00020"
    word = f"<span style='color:{colour}'><b>{'yes' if met else 'no'}</b></span>"
    return _row(esc(label), f"{value:.2f}{esc(ci)}", f"≥ {target:.2f}", word)


def _thresholds(card: dict) -> list[str]:
    th = card.get("thresholds")
    if not isinstance(th, dict) or not th:
        return []
    out = ["<h4>Thresholds</h4>"]
    op = _dig(card, ("metrics", "operating_point"))
    if isinstance(op, dict) and op.get("min_sensitivity") is not None:
        where = f" on {op['chosen_on']}" if op.get("chosen_on") else ""
        out.append(
            f"<p>Chosen{esc(where)} for a sensitivity of at least "
            f"{float(op['min_sensitivity']):.2f}.</p>"
        )
    elif isinstance(op, dict) and op:
        out.append(f"<p>Chosen for {esc(_text(op))}.</p>")
    out.append("<table>" + _row("level", "probability ≥", head=True))
    for key in (*NAMES, "patient_overall"):
        if isinstance(th.get(key), (int, float)):
            label = "patient" if key == "patient_overall" else key
            out.append(_row(esc(label), f"{float(th[key]):.3f}"))
    out.append("</table>")
    return out


def card_html(card: dict) -> str:
    """The model section of the About box."""
    out = ["<table>"]
    for label, value in (
        ("Model", f"{card.get('name', '?')} {card.get('version', '')}".strip()),
        ("Created", str(card.get("created") or "")),
        ("Architecture", _architecture(card)),
    ):
        if value:
            out.append(_row(f"<b>{esc(label)}</b>", esc(value)))
    out.append(_row("<b>Training data</b>", _training(card)))
    out.append("</table>")
    out.append("<h4>Measured against its targets</h4>")
    out.extend(_metrics(card))
    out.extend(_thresholds(card))
    return "".join(out)
