"""``stages outline`` writes the card section the app reads (and removes it with --off)."""

from __future__ import annotations

import json

from cspine_desktop.analysis.outline import OutlineConfig
from model_training.stages import main as stages_main


def test_the_outline_section_is_written_and_removed(tmp_path):
    card = tmp_path / "model_card.json"
    card.write_text(json.dumps({"version": "1.0.0", "notes": {"old": "x"}, "stage2": {}}))
    argv = ["outline", "--bundle", str(tmp_path), "--version", "1.0.1", "--note", "k=why"]
    assert stages_main(argv) == 0
    written = json.loads(card.read_text())
    assert OutlineConfig.from_card(written["outline"]) == OutlineConfig()
    assert written["version"] == "1.0.1"
    assert written["notes"] == {"old": "x", "k": "why"}  # the same networks: their notes stay
    assert written["stage2"] == {}
    assert stages_main(["outline", "--bundle", str(tmp_path), "--reach-mm", "1.5"]) == 0
    assert OutlineConfig.from_card(json.loads(card.read_text())["outline"]).reach_mm == 1.5
    assert stages_main(["outline", "--bundle", str(tmp_path), "--off"]) == 0
    assert "outline" not in json.loads(card.read_text())
