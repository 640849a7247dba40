"""A real waitress server under load (20 clients × 5 uploads) and under a password guesser.

The load test prints its figures (run with ``-s`` to see them); docs/benchmarks.md records them.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid

import pytest
from server_support import PASSWORD, add_users, folder_files

from cspine_desktop.server import HttpEndpoint

CLIENTS, UPLOADS = 20, 5


class Client:
    """A minimal HTTP/1.1 client on one keep-alive connection (stdlib only)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers: dict[str, str] = {}

    def call(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body, {**self.headers, **(headers or {})})
        r = self.conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "")
        return r.status, (json.loads(data) if ctype.startswith("application/json") else data), r

    def login(self, name, password):
        body = json.dumps({"username": name, "password": password})
        return self.call("POST", "/api/v1/auth/token", body, {"Content-Type": "application/json"})

    def upload(self, files):
        boundary = uuid.uuid4().hex
        chunks = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{n}"\r\n'
            "Content-Type: application/dicom\r\n\r\n".encode()
            + data
            + b"\r\n"
            for n, data in files
        ]
        body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
        ctype = f"multipart/form-data; boundary={boundary}"
        return self.call("POST", "/api/v1/studies", body, {"Content-Type": ctype})


@pytest.fixture
def server(make_services, make_app):
    sv = add_users(make_services(queue_max=CLIENTS * UPLOADS))
    for i in range(CLIENTS):
        sv.users.add_user(f"user{i:02d}", PASSWORD)
    endpoint = HttpEndpoint(make_app(sv), sv.settings, port=0, threads=8)
    endpoint.start()
    yield endpoint, sv
    endpoint.stop()


def test_load_20_clients_x_5_uploads(server, ct_folder):
    endpoint, sv = server
    files = folder_files(ct_folder)
    statuses: list[int] = []
    poll_s: list[float] = []
    jobs: dict[str, str] = {}  # job id → owner
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        try:
            c = Client(endpoint.port)
            status, body, _ = c.login(f"user{i:02d}", PASSWORD)
            assert status == 200, body
            c.headers["Authorization"] = f"Bearer {body['token']}"
            mine = []
            for _ in range(UPLOADS):
                status, body, _ = c.upload(files)
                with lock:
                    statuses.append(status)
                assert status == 202, body
                mine.append(body["job_id"])
            for job_id in mine:
                deadline = time.monotonic() + 120
                while True:
                    t0 = time.perf_counter()
                    status, body, _ = c.call("GET", f"/api/v1/jobs/{job_id}")
                    with lock:
                        poll_s.append(time.perf_counter() - t0)
                        statuses.append(status)
                    assert status == 200, body
                    if body["state"] not in ("pending", "running"):
                        break
                    assert time.monotonic() < deadline, body
                    time.sleep(0.05)
                assert body["state"] == "succeeded", body
                status, result, _ = c.call("GET", f"/api/v1/jobs/{job_id}/result")
                with lock:
                    statuses.append(status)
                    jobs[job_id] = f"user{i:02d}"
                assert status == 200 and result["schema"] == "cspine.analysis/2"
        except Exception as exc:  # reported below with the client number
            with lock:
                errors.append(f"client {i}: {exc!r}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    wall = time.perf_counter() - started

    assert errors == []
    assert len(jobs) == CLIENTS * UPLOADS  # 0 lost
    assert not [s for s in statuses if s >= 500]  # 0 5xx
    assert len(sv.studies.find(limit=1000)) == CLIENTS * UPLOADS
    owners = {j.id: j.requested_by for j in sv.jobs.list(limit=1000)}
    assert all(owners[j] == user for j, user in jobs.items())
    p50, p95 = statistics.median(poll_s), statistics.quantiles(poll_s, n=20)[18]
    print(
        f"\nload test: {CLIENTS} clients × {UPLOADS} uploads of {len(files)} files "
        f"({sum(len(d) for _, d in files) / 1024:.0f} KiB) in {wall:.1f} s; "
        f"{len(poll_s)} GET /jobs/<id>: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms; "
        f"0 lost, 0 5xx"
    )


def test_brute_force_is_slowed_at_once(server):
    """Fifty quick guesses: one real try, then 429s while the growing delay runs."""
    endpoint, sv = server
    c = Client(endpoint.port)
    codes = [c.login("ana", f"guess-{n:04d}-Xy")[0] for n in range(50)]
    assert codes[0] == 401 and codes[1:] == [429] * 49
    assert sv.audit.query(action="login", outcome="failure")


def test_brute_force_locks_the_account_then_429s(server):
    """Without the growing delay (as if the guesser waited it out), the account locks after
    max_failed_logins failures; from then on even the right password gets 429 + Retry-After."""
    endpoint, sv = server
    sv.users.throttle.base_delay_s = 0.0
    c = Client(endpoint.port)
    answers = [c.login("ana", f"guess-{n:04d}-Xy") for n in range(50)]
    codes = [status for status, _, _ in answers]
    n = sv.settings.max_failed_logins
    assert codes[: n - 1] == [401] * (n - 1)
    assert codes[n - 1 :] == [429] * (50 - n + 1)
    retry = int(answers[-1][2].getheader("Retry-After"))
    assert 0 < retry <= sv.settings.lockout_minutes * 60
    status, body, r = c.login("ana", PASSWORD)
    assert status == 429 and "locked" in body["error"] and r.getheader("Retry-After")
    assert sv.audit.query(action="account_locked")
