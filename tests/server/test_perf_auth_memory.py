"""Memory before sign-in: peak RSS of a real ``cspine serve`` while 8 clients each send a
200 MiB body to ``POST /api/v1/auth/token`` at once (Linux: the kernel's VmHWM of the process).

Run: ``.venv/bin/python -m pytest -m perf -s tests/server/test_perf_auth_memory.py``;
docs/benchmarks.md records the figures (the "before" run was this file on the revision before
the gate).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.perf

CLIENTS, BODY_MIB = 8, 200
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def _send(port: int, answers: list) -> None:
    """One client: a JSON-looking 200 MiB body, streamed; whatever the server answers."""
    chunk = b"x" * 2**20
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.putrequest("POST", "/api/v1/auth/token")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(BODY_MIB * 2**20))
        conn.endheaders()
        head, tail = b'{"username": "ana", "password": "', b'"}'
        conn.send(head)
        for _ in range(BODY_MIB - 1):
            conn.send(chunk)
        conn.send(b"x" * (2**20 - len(head) - len(tail)) + tail)  # exactly BODY_MIB MiB
        r = conn.getresponse()
        answers.append(r.status)
        r.read()
    except OSError:  # the server answered and closed before the body was sent: refused unread
        try:
            r = conn.getresponse()
            answers.append(r.status)
        except (OSError, http.client.HTTPException):
            answers.append("closed")
    finally:
        conn.close()


def test_peak_rss_while_8_clients_send_200_mib_sign_in_bodies(tmp_path):
    port = _free_port()
    env = {**os.environ, "CSPINE_DATA_DIR": str(tmp_path / "data")}
    code = "import sys; from cspine_desktop.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        idle = _status_kib(proc.pid, "VmRSS")
        answers: list = []
        t0 = time.perf_counter()
        threads = [threading.Thread(target=_send, args=(port, answers)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        wall = time.perf_counter() - t0
        peak = _status_kib(proc.pid, "VmHWM")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=10) as r:
            assert json.loads(r.read())["status"] == "ok"  # still serving
    finally:
        proc.terminate()
        proc.wait(60)
    print(
        f"\nauth-body memory: {CLIENTS} clients x {BODY_MIB} MiB to /auth/token: RSS idle "
        f"{idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB; answers {sorted(map(str, answers))}; "
        f"{wall:.1f} s"
    )
    assert len(answers) == CLIENTS
