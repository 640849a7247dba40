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


def run_fresh(home, code: str, *args: str, drop=lambda key: False) -> str:
    """Run ``code`` in a new Python with ``home`` as HOME, this checkout on the path and the
    environment variables ``drop`` names left out; returns its stdout."""
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not drop(k)}
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT)})
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def run_in_fresh_home(tmp_path, model, before: str):
    home = tmp_path / "home"
    # no XDG_* either: onnxruntime honours XDG_CACHE_HOME, and the suite may set it
    run_fresh(
        home,
        RUN_MODEL.format(before=before),
        str(model),
        drop=lambda k: k == "ORT_DISABLE_TELEMETRY" or k.startswith("XDG_"),
    )
    return home.joinpath(*TELEMETRY_DIR)


@pytest.fixture(scope="module")
def telemetry_observable(tmp_path_factory, model) -> bool:
    """Control: does plain onnxruntime write its telemetry files in this environment?"""
    telemetry = run_in_fresh_home(tmp_path_factory.mktemp("control"), model, before="")
    return telemetry.is_dir() and any(telemetry.iterdir())


def _need_observable(telemetry_observable: bool) -> None:
    if not telemetry_observable:
        pytest.skip(
            "plain onnxruntime wrote no telemetry files in this environment (the control run), "
            "so switching them off cannot be observed here"
        )


def test_importing_cspine_sets_the_switch_before_onnxruntime_loads(tmp_path, model):
    """Holds everywhere, whether or not this onnxruntime starts telemetry here."""
    before = (
        "import os, sys\n"
        "import cspine_desktop\n"
        "assert 'onnxruntime' not in sys.modules, 'cspine_desktop imported onnxruntime early'\n"
        "value = os.environ.get('ORT_DISABLE_TELEMETRY')\n"
        "assert value == '1', value\n"
    )
    run_in_fresh_home(tmp_path, model, before=before)


def test_cspine_turns_onnxruntime_telemetry_off(tmp_path, model, telemetry_observable):
    _need_observable(telemetry_observable)
    telemetry = run_in_fresh_home(tmp_path, model, before="import cspine_desktop")
    assert not telemetry.exists()


def test_the_onnx_backend_runs_without_telemetry(tmp_path, model, telemetry_observable):
    """The app's own path (inference backend), not just the package import."""
    _need_observable(telemetry_observable)
    before = (
        "from cspine_desktop.inference.backends import ort as backend\n"
        "assert backend.is_available()\n"
    )
    assert not run_in_fresh_home(tmp_path, model, before=before).exists()


# OpenVINO: `import openvino` imports its conversion tools, whose telemetry (unless opted out)
# writes a client id and a usage count under ~/intel and forks a sender of Google Analytics
# events. Those files are the local sign; the control (plain `import openvino`) proves that the
# installed OpenVINO still writes them, so the check can fail.
OPENVINO_TELEMETRY_DIR = "intel"
IMPORT_OPENVINO = """
import sys
{before}
import openvino
openvino.Core().available_devices
print("telemetry module:", sys.modules.get("openvino_telemetry"))
"""


def import_openvino_in_fresh_home(tmp_path, before: str):
    home = tmp_path / "home"
    # CI=true alone makes OpenVINO stay quiet: the control must not inherit it
    out = run_fresh(
        home,
        IMPORT_OPENVINO.format(before=before),
        drop=lambda k: k in ("CI", "TF_BUILD", "JENKINS_URL"),
    )
    return home / OPENVINO_TELEMETRY_DIR, out


def test_cspine_keeps_openvino_telemetry_from_loading(tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is an optional backend")
    control, out = import_openvino_in_fresh_home(tmp_path / "control", before="")
    assert control.is_dir() and any(control.iterdir()), (
        f"plain `import openvino` wrote nothing under ~/intel; output: {out}"
    )
    before = (
        "import cspine_desktop\n"
        "from cspine_desktop.inference.backends import ov\n"
        "assert ov.is_available()\n"
    )
    intel, out = import_openvino_in_fresh_home(tmp_path / "cspine", before=before)
    assert not intel.exists(), sorted(p.name for p in intel.iterdir())
    assert "telemetry module: None" in out
