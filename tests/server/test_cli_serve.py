"""``cspine serve``: refuses an exposed address without TLS, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from cspine_desktop.cli import main


def test_serve_refuses_lan_without_tls(capsys, tmp_path):
    code = main(["serve", "--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--port", "8799"])
    assert code == 2
    err = capsys.readouterr().err
    assert "without TLS" in err and "--allow-insecure-lan" in err and "Traceback" not in err


def test_serve_refuses_half_a_tls_pair(capsys, tmp_path):
    code = main(["serve", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(tmp_path / "c")])
    assert code == 2
    assert "both a certificate file and a key file" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_until_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "CSPINE_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from cspine_desktop.cli import main; sys.exit(main())",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/health", timeout=2
                ) as r:
                    assert json.loads(r.read())["status"] == "ok"
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out
    assert "no user account exists yet" in err
