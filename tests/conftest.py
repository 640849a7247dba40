"""Suite-wide settings: Qt offscreen, no network, an isolated data dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own CSPINE_DATA_DIR so no test touches the user's real data (and its
    own XDG cache, where Settings.cache_dir keeps backend timings and the demo study, and XDG
    state folder, where Settings.log_dir keeps the log file)."""
    data_dir = tmp_path_factory.mktemp("cspine-data")
    monkeypatch.setenv("CSPINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))  # log file
    return data_dir
