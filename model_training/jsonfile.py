"""JSON files of training runs and bundle cards: written atomically (a crash leaves the old
file, never half a new one), numpy values made plain numbers and lists."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=plain) + "\n")
    os.replace(tmp, path)


def plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
