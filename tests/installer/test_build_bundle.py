"""The whole installer pipeline: PyInstaller build, offline first start, self-test, audits.

Takes several minutes on 2 cores (the PyInstaller analysis alone is ~2 min) and writes
``dist/``, so it is a ``perf`` test: deselected by default (``-m 'not perf'`` in the pytest
options, hence not in CI) and run before each release tag with

    .venv/bin/python -m pytest -m perf tests/installer/test_build_bundle.py -s

It builds with the assets in ``assets/``, using stand-ins (``installer/stand_in.py``) only for a
demo model or study that is not there yet. Its numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from installer_support import INSTALLER, ROOT


@pytest.mark.perf
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_bundle_builds_and_passes_its_offline_checks():
    proc = subprocess.run(
        [sys.executable, str(INSTALLER / "build.py"), "--stand-in", "--no-tarball"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3500,
    )
    print(proc.stdout[-6000:])
    report = json.loads((ROOT / "dist" / "cspine-build-report.json").read_text())
    failed = {k: v for k, v in report["checks"].items() if not v["ok"]}
    assert proc.returncode == 0 and report["passed"], failed or proc.stderr[-3000:]
    assert report["self_test"]["network_attempts"] == []
    assert "tensorflow" not in json.dumps(report["biggest_parts_mb"]).lower()
