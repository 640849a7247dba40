"""The type checker is part of the test suite, beside lint and the layer contracts.

mypy runs with the configuration in ``pyproject.toml`` (strict for imaging, analysis and
inference) on the packages and modules in :data:`CLEAN`: the ones it finds no error in, which
must stay so. A package joins the list once ``mypy -p <package>`` passes; when every package
has joined, the list is ``["cspine_desktop", "model_training"]``. Modules outside the list
that these import are still read (their types count) but their own errors are not reported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CLEAN = ["cspine_desktop", "model_training"]


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def test_mypy_finds_no_error_in_the_clean_packages():
    targets = [arg for name in CLEAN for arg in ("-p", name)]
    proc = subprocess.run(
        [_tool("mypy"), "--follow-imports=silent", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout, proc.stdout
