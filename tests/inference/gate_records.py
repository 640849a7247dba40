"""Accuracy-gate records written into a test bundle's card, as cspine-export writes them."""

from __future__ import annotations


def record_gate(folder, file_name: str, pair: str, passed: bool = True) -> None:
    """Write an accuracy-gate record for ``pair`` into ``file_name``'s card entry, as
    ``cspine-export`` does (``accuracy_gate`` for the file's own ONNX Runtime pair, else
    ``runtime_gates``)."""
    import json
    from pathlib import Path

    path = Path(folder) / "model_card.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    entry = card["files"][file_name]
    rec = {"passed": passed, "max_dice_drop": 0.0 if passed else 0.2, "auc_drop": 0.0}
    if pair == f"onnx-{entry['precision']}":
        entry["accuracy_gate"] = rec
    else:
        entry.setdefault("runtime_gates", {})[pair] = rec
    path.write_text(json.dumps(card, indent=2), encoding="utf-8")
