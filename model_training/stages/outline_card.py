"""``stages outline``: set (or remove) the card's ``outline`` section, which moves the outlines
the app shows and exports onto the bone edge (:mod:`cspine_desktop.analysis.outline`).

Stage 2 keeps reading stage 1's own labels, so the calibration and the thresholds stay valid;
what changes is the segmentation a reader sees, the SEG, and the Dice ``stages test`` measures.
Measured in docs/benchmarks.md, "Outlines on the bone edge".

    cspine-evaluate stages outline --bundle BUNDLE [--off] [--version V] [--note KEY=TEXT]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from cspine_desktop.analysis.outline import OutlineConfig

from ..jsonfile import write_json
from .export_classifier import with_notes

log = logging.getLogger("cspine.stages")


def set_outline(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.bundle) / "model_card.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    if args.off:
        card.pop("outline", None)
    else:
        cfg = OutlineConfig(reach_mm=args.reach_mm)
        OutlineConfig.from_card(cfg.to_dict())  # the same validation the app applies
        card["outline"] = cfg.to_dict()
    if args.version:  # the same networks: their notes still hold, unlike a new export's
        card["version"] = args.version
    card["notes"] = with_notes(dict(card.get("notes") or {}), args.note)
    write_json(path, card)
    log.info("%s: outline %s", path, "removed" if args.off else card["outline"])
    return card
