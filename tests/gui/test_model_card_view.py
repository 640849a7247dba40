"""The About dialog's model card: the shipped card's metrics, including the vertebra AUC within
a level beside the pooled one, and older cards without it."""

from __future__ import annotations

import json
from pathlib import Path

from cspine_desktop.gui.dialogs.model_card_view import card_html

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "models" / "cspine-demo"


def test_the_shipped_card_shows_the_within_level_auc_beside_the_pooled_one():
    card = json.loads((SHIPPED / "model_card.json").read_text())
    html = card_html(card)
    within = card["metrics"]["vertebra_pooled"]["auc_within_level"]["value"]
    assert "Vertebra AUC (all levels pooled)" in html
    assert f"Vertebra AUC within a level</td><td style='padding:1px 8px'>{within:.2f}" in html


def test_a_card_without_it_still_renders():
    card = json.loads((SHIPPED / "model_card.json").read_text())
    del card["metrics"]["vertebra_pooled"]["auc_within_level"]
    html = card_html(card)
    assert "Vertebra AUC (all levels pooled)" in html
    assert "within a level" not in html
