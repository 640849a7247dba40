"""The first-start checks of installer/build.py, on stand-in programs instead of a real build:
the strace connect audit sees a native connect attempt (and lets loopback through), stray files
in HOME are found, the install-folder snapshot notices a write."""

from __future__ import annotations

import shutil
import socket
import sys
import threading

import pytest
from installer_support import load_installer_module

fs = load_installer_module("first_start")


def fake_app(tmp_path, body: str):
    """An executable that ignores its arguments and runs ``body`` in Python."""
    script = tmp_path / "app.py"
    script.write_text(body)
    exe = tmp_path / "app"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    exe.chmod(0o755)
    return exe


needs_strace = pytest.mark.skipif(not shutil.which("strace"), reason="strace not installed")


@needs_strace
@pytest.mark.skipif(
    not fs.can_unshare_net(),
    reason="needs a network namespace (unshare -n) so the attempt cannot leave the machine",
)
def test_network_audit_sees_a_connect_attempt(tmp_path):
    # 192.0.2.1 is TEST-NET-1; inside `unshare -n` the connect fails locally, nothing is sent
    exe = fake_app(
        tmp_path,
        "import socket\ns = socket.socket()\ns.settimeout(0.2)\n"
        "try:\n    s.connect(('192.0.2.1', 9))\nexcept OSError:\n    pass\n",
    )
    ok, attempts = fs.network_audit(exe, fs.fresh_env(tmp_path), offline=True)
    assert not ok and any("192.0.2.1" in a for a in attempts)


@needs_strace
def test_network_audit_allows_loopback(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
    exe = fake_app(
        tmp_path,
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n",
    )
    ok, attempts = fs.network_audit(exe, fs.fresh_env(tmp_path), offline=False)
    server.close()
    assert ok and attempts == []


def test_files_outside_the_data_folders_are_reported(tmp_path):
    for rel in (
        ".local/share/cspine/cspine.sqlite3",
        ".cache/cspine/backend-timings.json",
        ".local/state/cspine/log/cspine.log",
        ".cache/Microsoft/DeveloperTools/.onnxruntime/deviceid",
        ".pydicom/config",
        ".cache/cspine-other/x",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert fs.files_outside_cspine_dirs(tmp_path) == [
        ".cache/Microsoft/DeveloperTools/.onnxruntime/deviceid",
        ".cache/cspine-other/x",
        ".pydicom/config",
    ]


def test_snapshot_notices_a_new_or_changed_file(tmp_path):
    (tmp_path / "a").write_text("1")
    before = fs.snapshot(tmp_path)
    assert fs.snapshot(tmp_path) == before
    (tmp_path / "__pycache__").mkdir()
    assert fs.snapshot(tmp_path) != before


def test_fresh_env_drops_the_developers_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CSPINE_DATA_DIR", "/somewhere")
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "1")
    env = fs.fresh_env(tmp_path)
    assert env["HOME"] == str(tmp_path) and env["QT_QPA_PLATFORM"] == "offscreen"
    assert "CSPINE_DATA_DIR" not in env and "ORT_DISABLE_TELEMETRY" not in env
