"""Package metadata that installs without setuptools warnings."""

from __future__ import annotations

import re
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _project_line(text: str, key: str) -> str:
    """The value of ``key`` in the [project] table (read as text: Python 3.10 has no tomllib)."""
    table = text.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    match = re.search(rf"^{key}\s*=\s*(.+)$", table, re.MULTILINE)
    assert match, f"no {key} in [project]"
    return match.group(1).strip()


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    """A ``license = {text = ...}`` table makes ``pip install`` print a setuptools deprecation
    warning; PEP 639 wants an SPDX expression, which setuptools reads from version 77."""
    text = PYPROJECT.read_text(encoding="utf-8")
    license_ = _project_line(text, "license")
    assert re.fullmatch(r'"(LicenseRef-[A-Za-z0-9.\-]+|[A-Za-z0-9.\-+ ()]+)"', license_), license_
    build = text.split("[build-system]", 1)[1].split("\n[", 1)[0]
    minimum = re.search(r'"setuptools>=(\d+)', build)
    assert minimum and int(minimum.group(1)) >= 77, build
