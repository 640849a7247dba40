"""Installer test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from installer_support import make_assets


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    return make_assets(tmp_path_factory.mktemp("src") / "assets", keras_file=True)
