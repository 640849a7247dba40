"""cspine keeps ONNX Runtime's native telemetry off.

ONNX Runtime (the 1.32 Linux wheel) writes a device id and an event store under
``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` when it starts, and a few seconds later tries
to resolve and reach a Microsoft collector from native code, where a Python socket guard cannot
see it. ``ORT_DISABLE_TELEMETRY=1`` before the import turns all of it off; cspine_desktop sets
it. The files are the quick, local sign that telemetry is running; the control run without
cspine proves the check still sees them with the installed onnxruntime.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from factories.model_bundle import threshold_onnx
from installer_support import CLS, ROOT

TELEMETRY_DIR = (".cache", "Microsoft", "DeveloperTools", ".onnxruntime")

RUN_MODEL = """
import sys
import numpy as np
{before}
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
session.run(None, {{"image": np.zeros((1, 64, 64, 4), np.float32)}})
import time
time.sleep(3)  # onnxruntime writes its telemetry store from a background thread
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    path.write_bytes(threshold_onnx(cls_prob=CLS))
    return path


def run_in_fresh_home(tmp_path, model, before: str):
    home = tmp_path / "home"
    home.mkdir()
    # no XDG_* either: onnxruntime honours XDG_CACHE_HOME, and the suite may set it
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "ORT_DISABLE_TELEMETRY" and not k.startswith("XDG_")
    }
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT)})
    proc = subprocess.run(
        [sys.executable, "-c", RUN_MODEL.format(before=before), str(model)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return home.joinpath(*TELEMETRY_DIR)


def test_control_plain_onnxruntime_starts_its_telemetry(tmp_path, model):
    telemetry = run_in_fresh_home(tmp_path, model, before="")
    assert telemetry.is_dir() and any(telemetry.iterdir()), (
        "onnxruntime no longer writes its telemetry files: revisit this test and "
        "cspine_desktop's ORT_DISABLE_TELEMETRY"
    )


def test_cspine_turns_onnxruntime_telemetry_off(tmp_path, model):
    telemetry = run_in_fresh_home(tmp_path, model, before="import cspine_desktop")
    assert not telemetry.exists()


def test_the_onnx_backend_runs_without_telemetry(tmp_path, model):
    """The app's own path (inference backend), not just the package import."""
    before = (
        "from cspine_desktop.inference.backends import ort as backend\n"
        "assert backend.is_available()\n"
    )
    assert not run_in_fresh_home(tmp_path, model, before=before).exists()
