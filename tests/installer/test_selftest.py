"""``cspine self-test`` on a tiny installation: passes when everything is there, fails (exit 1)
with a plain reason when the model is damaged, the study is missing, the verdicts contradict
the truth (``--strict``) or anything tries to reach the network."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
import urllib.request

import pytest
from installer_support import TRUTH, make_assets

from cspine_desktop.cli import main, network_guard, selftest_checks
from cspine_desktop.cli.selftest import read_truth


@pytest.fixture
def install(tmp_path, monkeypatch):
    """A fresh copy of the tiny assets, found by the app through CSPINE_ASSETS_DIR."""
    root = make_assets(tmp_path / "assets")
    monkeypatch.setenv("CSPINE_ASSETS_DIR", str(root))
    return root


def self_test(capsys, *args):
    code = main(["self-test", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def by_name(report):
    return {c["name"]: c for c in report["checks"]}


def test_passes_on_a_complete_installation(install, capsys):
    code, report = self_test(capsys)
    checks = by_name(report)
    assert code == 0 and report["passed"], [c for c in report["checks"] if not c["ok"]]
    expected = {"runtime", "model", "decoders", "qt", "engine", "demo study", "truth"}
    assert expected | {"exports", "isolation", "telemetry", "network"} == set(checks)
    assert "sha256 ok for model.onnx" in checks["model"]["detail"]
    assert checks["engine"]["data"]["label"].startswith("onnx-cpu")
    # the threshold model calls the bone ring "C3" with fracture score 0.9; a ring is no
    # spine, so no verdict is given — reported, not a failure without --strict
    c3 = report["verdicts"]["C3"]
    assert c3["probability"] == pytest.approx(0.9, abs=1e-3) and c3["status"] == "indeterminate"
    assert c3["fractured"] is None and report["verdicts"]["patient_overall"]["fractured"] is None
    assert report["truth"] == TRUTH["fractured"]
    assert report["agrees_with_truth"] is False
    assert "no verdict (indeterminate) at C1, C2" in checks["truth"]["detail"]
    assert {"json", "csv", "pdf", "seg", "sr"} <= set(
        checks["exports"]["detail"].split("(")[1][:-1].split(", ")
    )
    assert report["network_attempts"] == []
    assert report["total_s"] >= sum(c["seconds"] for c in report["checks"]) * 0.9


def test_text_report_shows_verdicts_timings_and_disclaimer(install, capsys):
    code = main(["self-test", "--no-gui", "--no-exports"])
    out = capsys.readouterr().out
    assert code == 0
    assert "indeterminate" in out and "Not for diagnostic use" in out
    assert "[ok  ] model" in out and "self-test PASSED in" in out


def test_damaged_model_fails_with_the_reason(install, capsys):
    model = install / "models" / "cspine-demo" / "model.onnx"
    blob = bytearray(model.read_bytes())
    blob[-1] ^= 0xFF
    model.write_bytes(bytes(blob))
    code, report = self_test(capsys, "--no-gui")
    checks = by_name(report)
    assert code == 1 and not report["passed"]
    assert not checks["model"]["ok"] and "sha256" in checks["model"]["detail"]
    assert "demo study" not in checks  # nothing runs on an unverified model


def test_missing_card_fails(install, capsys):
    (install / "models" / "cspine-demo" / "model_card.json").unlink()
    code, report = self_test(capsys, "--no-gui")
    assert code == 1 and "model_card.json" in by_name(report)["model"]["detail"]


def test_missing_demo_study_fails(install, capsys):
    shutil.rmtree(install / "demo")
    code, report = self_test(capsys, "--no-gui")
    assert code == 1
    assert "missing" in by_name(report)["demo study"]["detail"]


def test_verdicts_against_truth_fail_only_when_strict(install, capsys):
    truth = {"fractured": {f"C{i}": i == 5 for i in range(1, 8)}, "patient_overall": True}
    (install / "demo" / "demo-study.json").write_text(json.dumps(truth))
    code, report = self_test(capsys, "--no-gui", "--no-exports")
    assert code == 0 and report["agrees_with_truth"] is False
    assert "no verdict (indeterminate) at C1" in by_name(report)["truth"]["detail"]
    code, report = self_test(capsys, "--no-gui", "--no-exports", "--strict")
    assert code == 1 and not by_name(report)["truth"]["ok"]


def test_a_network_attempt_fails_the_self_test(install, capsys, monkeypatch):
    """Anything that tries to leave the machine during the run is refused and reported.
    (192.0.2.1 is TEST-NET-1; the guard refuses before any packet is sent.)"""
    original = selftest_checks.check_runtime

    def phoning_home():
        for attempt in (
            lambda: urllib.request.urlopen("http://updates.example.invalid/cspine", timeout=1),
            lambda: socket.create_connection(("192.0.2.1", 443), timeout=1),
        ):
            with pytest.raises(OSError):
                attempt()
        return original()

    monkeypatch.setattr(selftest_checks, "check_runtime", phoning_home)
    monkeypatch.setattr("cspine_desktop.cli.selftest.check_runtime", phoning_home)
    code, report = self_test(capsys, "--no-gui", "--no-exports")
    assert code == 1
    assert report["network_attempts"] == ["updates.example.invalid:80", "192.0.2.1:443"]
    assert not by_name(report)["network"]["ok"]


def test_onnxruntime_telemetry_left_on_fails(install, capsys, monkeypatch):
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    code, report = self_test(capsys, "--no-gui", "--no-exports")
    assert code == 1 and "telemetry is on" in by_name(report)["telemetry"]["detail"]


def test_openvino_telemetry_loaded_fails(install, capsys, monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "openvino_telemetry", types.ModuleType("openvino_telemetry"))
    code, report = self_test(capsys, "--no-gui", "--no-exports")
    assert code == 1 and "OpenVINO telemetry is loaded" in by_name(report)["telemetry"]["detail"]


def test_guard_allows_loopback_and_restores_the_socket_module():
    before = (socket.socket.connect, socket.getaddrinfo)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
    accepted.start()
    with network_guard.NetworkGuard() as guard:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with pytest.raises(OSError):
            socket.getaddrinfo("example.org", 80)
    accepted.join(5)
    server.close()
    assert guard.attempts == ["example.org:80"]
    assert (socket.socket.connect, socket.getaddrinfo) == before


def test_truth_file_of_the_demo_study_is_read(tmp_path):
    path = tmp_path / "truth.json"
    path.write_text(json.dumps({**TRUTH, "seed": 1, "fractures": []}))
    assert read_truth(path)["fractured"] == TRUTH["fractured"]


@pytest.mark.parametrize(
    "doc",
    [
        [1, 2],
        {"fractured": ["C3"], "patient_overall": True},
        {"fractured": {"C1": True}, "patient_overall": True},
        {"fractured": {f"C{i}": 0 for i in range(1, 8)}, "patient_overall": False},
        {"fractured": {f"C{i}": False for i in range(1, 8)}},
    ],
)
def test_truth_without_vertebrae_is_refused(tmp_path, doc):
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError):
        read_truth(path)


def test_isolation_counts_only_what_the_self_test_loaded(monkeypatch):
    import sys
    import types

    # the whole suite may have loaded Keras or TensorFlow for real before this test
    for name in selftest_checks.TRAINING_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    assert selftest_checks.check_isolation("onnx-cpu", frozenset({"tensorflow"})).ok
    late = selftest_checks.check_isolation("onnx-cpu", frozenset())
    assert not late.ok and "tensorflow" in late.detail
