"""The backend timing cache: how long each way of running a model took on this machine.

:func:`~cspine_desktop.inference.select.choose` measures a candidate the first time it runs a
model here and keeps its load time and time per slice in ``<cache_dir>/backend-timings.json``,
keyed by machine fingerprint, model digest and candidate, so later starts open only the winner.
A damaged or missing cache is measured again; a cache that cannot be written is only logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TIMINGS_FILE = "backend-timings.json"
_lock = threading.Lock()


def timing_key(machine: str, sha256: str, key: str) -> str:
    """The cache key of candidate ``key`` running the file ``sha256`` on ``machine``."""
    return f"{machine}:{sha256[:16]}:{key}"


def expected_seconds(timing: dict[str, Any] | None, per_study: int) -> float:
    """Expected time for a study of ``per_study`` slices (infinite when not measured yet)."""
    if not timing:
        return float("inf")
    return float(timing["load_s"]) + float(timing["ms_per_slice"]) * per_study / 1000.0


def _timings_path(cache_dir: Path | None) -> Path | None:
    return None if cache_dir is None else Path(cache_dir) / TIMINGS_FILE


def load_timings(cache_dir: Path | None) -> dict[str, Any]:
    """The cached timings (empty without a cache folder or when the file is damaged)."""
    path = _timings_path(cache_dir)
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache is re-measured
    return data if isinstance(data, dict) else {}


def save_timings(cache_dir: Path | None, timings: dict[str, Any]) -> None:
    """Replace the cached timings atomically; a failure is logged, never raised."""
    path = _timings_path(cache_dir)
    if path is None:
        return
    with _lock:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(timings, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # caching is an optimisation; never fail the analysis for it
            log.warning("could not cache backend timings in %s: %s", path, exc)
