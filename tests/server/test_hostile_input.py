"""Hostile and careless clients against a real waitress server on 127.0.0.1: bodies refused from
their headers, atomic lockout, sign-up that tells nothing, sessions that end, JSON refusals."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import socket
import threading
import time
import urllib.parse
import zipfile

import pydicom
import pytest
from factories.dicom_series import write_ct_series
from pydicom.uid import RLELossless
from server_support import PASSWORD, add_users, folder_files
from test_load import Client

from cspine_desktop.errors import NotFoundError
from cspine_desktop.imaging import loader
from cspine_desktop.server import HttpEndpoint, gate
from cspine_desktop.server.gate import SMALL_BODY_MAX
from cspine_desktop.services import users as users_module

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def live(make_services, make_app):
    """``live(**settings)`` → (endpoint, services) of a started server; stopped afterwards."""
    started = []

    def start(app_overrides=None, **settings):
        sv = add_users(make_services(**settings))
        endpoint = HttpEndpoint(make_app(sv, **(app_overrides or {})), sv.settings, port=0)
        endpoint.start()
        started.append(endpoint)
        return endpoint, sv

    yield start
    for endpoint in started:
        endpoint.stop()
    loader.set_max_voxels(None)


def raw(port: int, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[bytes, float]:
    """Send a request head (and maybe some body) on a raw socket; read what comes back until
    the server closes or ``timeout`` passes. Returns (bytes, seconds to the first byte)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        t0 = time.perf_counter()
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        first = None
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                first = first or time.perf_counter() - t0
                chunks.append(data)
                if b"100 Continue" in data and len(data) < 64:
                    break  # the caller decides what to send next
        except TimeoutError:
            pass
        return b"".join(chunks), first if first is not None else float("inf")


def status_and_json(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def token(port: int, name: str = "ana") -> str:
    status, body, _ = Client(port).login(name, PASSWORD)
    assert status == 200, body
    return body["token"]


def audit_reasons(sv, action: str) -> list[str]:
    return [(e.detail or {}).get("reason") for e in sv.audit.query(action=action)]


# ---------------------------------------------------------------------- 1. sign-in bodies
def test_a_large_sign_in_body_is_refused_from_its_headers(live):
    endpoint, sv = live()
    head = (
        "POST /api/v1/auth/token HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        f"Content-Length: {200 * 2**20}\n"
    )
    reply, first = raw(endpoint.port, head)  # no body sent at all: the answer comes anyway
    status, body = status_and_json(reply)
    assert status == 413 and "64 KiB" in body["error"] and first < 5
    # a body just over the bound, sent in full, and the same body chunked (no length up front)
    c = Client(endpoint.port)
    big = json.dumps({"username": "ana", "password": "x" * (65 * 1024)})
    status, body, _ = c.call(
        "POST", "/api/v1/auth/token", big, {"Content-Type": "application/json"}
    )
    assert status == 413 and "64 KiB" in body["error"]
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    chunks = (big[i : i + 4096].encode() for i in range(0, len(big), 4096))
    conn.request(
        "POST",
        "/api/v1/auth/token",
        chunks,
        {"Content-Type": "application/json"},
        encode_chunked=True,
    )
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["status"] == 413
    deadline = time.monotonic() + 20  # the gate audits off the event loop
    while "body_too_large" not in audit_reasons(sv, "login"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert token(endpoint.port)  # a normal sign-in still works


def _read_answer(s: socket.socket) -> bytes:
    """Read one answer with a Content-Length body from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def _refused_sign_in(port: int) -> tuple[socket.socket, bytes, bytes]:
    """Send an oversized sign-in's head only; return (socket, its body, the refusal read)."""
    body = b"x" * (SMALL_BODY_MAX + 40_000)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    s.sendall(head.encode())
    return s, body, _read_answer(s)


def test_a_client_that_sends_its_body_after_a_refusal_is_not_reset(live):
    """Lingering close: the refused body is read and thrown away, so a careless client finishes
    sending, reads an orderly end, and a connection reset never hides the refusal."""
    endpoint, _ = live()
    for _ in range(3):
        s, body, reply = _refused_sign_in(endpoint.port)
        with s:
            assert status_and_json(reply)[0] == 413
            time.sleep(0.2)  # the server has finished answering: it would have closed by now
            s.sendall(body)  # the body comes anyway
            s.shutdown(socket.SHUT_WR)
            assert s.recv(65536) == b""  # an orderly end, not ConnectionResetError


@pytest.mark.parametrize(
    ("seconds", "size", "wait"),
    [
        (0.2, 2**30, 2.5),  # time is up; the event loop wakes at least once a second
        (30.0, 8192, 0.0),  # the client sends far more than the byte bound
    ],
)
def test_a_lingering_connection_is_closed_at_its_bound(live, monkeypatch, seconds, size, wait):
    monkeypatch.setattr(gate, "LINGER_SECONDS", seconds)
    monkeypatch.setattr(gate, "LINGER_BYTES", size)
    endpoint, _ = live()
    s, _, reply = _refused_sign_in(endpoint.port)
    with s:
        assert status_and_json(reply)[0] == 413
        assert s.recv(65536) == b""  # the server has stopped writing (half-closed)
        time.sleep(wait)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            for _ in range(200):  # a closed socket answers the next bytes with a reset
                s.sendall(b"x" * 4096)
                time.sleep(0.01)


def test_the_token_endpoint_takes_json_only(live):
    endpoint, _ = live()
    form = urllib.parse.urlencode({"username": "ana", "password": PASSWORD})
    c = Client(endpoint.port)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body, _ = c.call("POST", "/api/v1/auth/token", form, headers)
    assert status == 400 and "JSON" in body["error"]


# ---------------------------------------------------------------------- 2. uploads
def test_an_upload_without_valid_credentials_is_refused_before_its_body(live):
    endpoint, sv = live()
    size = 300 * 2**20
    base = (
        "POST /api/v1/studies HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
        f"Content-Length: {size}\nExpect: 100-continue\n"
    )
    wrong = base64.b64encode(b"ana:wrong-Password-1").decode()
    for extra in ("", "Authorization: Bearer csp_forged\n", f"Authorization: Basic {wrong}\n"):
        reply, first = raw(endpoint.port, base + extra)
        status, body = status_and_json(reply)
        assert status == 401 and first < 5 and body["error"], (extra, reply[:200])
        assert b"100 Continue" not in reply
    # the web upload: no session cookie, no upload
    reply, _ = raw(endpoint.port, base.replace("/api/v1/studies", "/upload"))
    assert status_and_json(reply)[0] == 401
    assert not list(sv.settings.data_dir.joinpath("tmp", "uploads").iterdir())
    assert sv.studies.find() == []


@pytest.mark.parametrize("scheme", ["Bearer", "Basic"])
def test_valid_credentials_get_100_continue_then_the_upload_is_read(live, ct_folder, scheme):
    endpoint, sv = live()
    files = folder_files(ct_folder)
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="file"; filename="{n}"\r\n'
        "Content-Type: application/dicom\r\n\r\n".encode()
        + data
        + b"\r\n"
        for n, data in files
    ]
    body = b"".join(parts) + b"--b--\r\n"
    cred = (
        token(endpoint.port)
        if scheme == "Bearer"
        else base64.b64encode(f"ana:{PASSWORD}".encode()).decode()
    )
    head = (
        "POST /api/v1/studies HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
        f"Content-Length: {len(body)}\nExpect: 100-continue\nAuthorization: {scheme} {cred}\n"
    )
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=20) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            reply += s.recv(65536)
    status, answer = status_and_json(reply)
    assert status == 202, answer
    assert sv.jobs.get(answer["job_id"]).requested_by == "ana"
    logins = sv.audit.query(action="login", outcome="failure")
    assert logins == []  # checked once, before the body, and not again after it


def test_refused_uploads_are_audited(live, ct_folder):
    endpoint, sv = live(app_overrides={"max_upload_bytes": 50_000}, start_jobs=False, queue_max=1)
    auth = {"Authorization": f"Bearer {token(endpoint.port)}"}
    c = Client(endpoint.port)
    c.headers.update(auth)
    status, body, _ = c.call("POST", "/api/v1/studies", b"x" * 100, {"Content-Type": "text/plain"})
    assert status == 415
    reply, _ = raw(
        endpoint.port,
        "POST /api/v1/studies HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
        f"Content-Length: 60000\nAuthorization: {auth['Authorization']}\n",
    )
    assert status_and_json(reply)[0] == 413
    c = Client(endpoint.port)
    c.headers.update(auth)
    assert c.upload(folder_files(ct_folder))[0] == 202  # fills the queue (no worker runs)
    status, body, r = c.upload(folder_files(ct_folder))
    assert status == 503 and r.getheader("Retry-After") and "queue" in body["error"]
    deadline = time.monotonic() + 20  # the gate audits off the event loop
    while "too_large" not in audit_reasons(sv, "study_imported"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "unsupported_media_type" in audit_reasons(sv, "study_imported")
    assert "queue_full" in audit_reasons(sv, "analysis_queued")


# ---------------------------------------------------------------------- 3. lockout
@pytest.mark.parametrize("delay", [1.0, 0.0])
def test_parallel_wrong_passwords_check_at_most_max_failures(live, monkeypatch, delay):
    endpoint, sv = live()
    sv.users.throttle.base_delay_s = delay  # 0: as if every guesser waited out the delay
    checked = []
    real = users_module.verify_password

    def counting(password, stored):
        checked.append(password)
        time.sleep(0.05)  # a slower hash widens the window a race needs
        return real(password, stored)

    monkeypatch.setattr(users_module, "verify_password", counting)
    barrier = threading.Barrier(16)
    codes = []

    def guess(n: int) -> None:
        c = Client(endpoint.port)
        barrier.wait()
        codes.append(c.login("ana", f"guess-{n:02d}-Xy")[0])

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    n_max = sv.settings.max_failed_logins
    assert len(codes) == 16 and set(codes) <= {401, 429}
    assert len(checked) <= (1 if delay else n_max), len(checked)
    failures = sv.store.accounts.throttle_get("account", "ana")[0]
    assert failures == len(checked)  # every checked password was counted


# ---------------------------------------------------------------------- 4. sign-up
class WebClient(Client):
    """A browser-like client: keeps the session cookie, reads the CSRF token from forms."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.cookie = ""

    def call(self, method, path, body=None, headers=None):
        extra = dict(headers or {})
        if self.cookie:
            extra["Cookie"] = self.cookie
        status, data, r = super().call(method, path, body, extra)
        for value in r.headers.get_all("Set-Cookie") or []:
            self.cookie = value.split(";", 1)[0]
        return status, data, r

    def form(self, path: str, fields: dict, page: str | None = None):
        _, html, _ = self.call("GET", page or path)
        fields = {**fields, "csrf_token": CSRF.search(html.decode()).group(1)}
        body = urllib.parse.urlencode(fields)
        return self.call("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})


def _signup(port: int, name: str):
    t0 = time.perf_counter()
    pw = "Another-Good-Pass-42"
    status, html, _ = WebClient(port).form(
        "/signup", {"username": name, "password": pw, "password2": pw}
    )
    return status, re.sub(r'value="[^"]+"', "", html.decode()), time.perf_counter() - t0


def test_sign_up_does_not_tell_which_names_exist_and_is_throttled(live, monkeypatch):
    endpoint, sv = live()
    hashed = []
    real = users_module.hash_password
    monkeypatch.setattr(
        users_module, "hash_password", lambda pw, rounds: hashed.append(1) or real(pw, rounds)
    )
    taken = _signup(endpoint.port, "ana")
    new = _signup(endpoint.port, "newcomer")
    assert taken[0] == new[0] == 200
    assert taken[1] == new[1] and "approve" in new[1]
    assert len(hashed) == 2  # the same bcrypt work for both, so the same time
    assert sv.users.get("newcomer").status == "pending"
    assert "name_taken" in audit_reasons(sv, "signup_requested")
    _signup(endpoint.port, "third")
    status, page, _ = _signup(endpoint.port, "fourth")
    assert status == 429 and "Too many sign-up requests" in page
    with pytest.raises(NotFoundError):
        sv.users.get("fourth")


# ---------------------------------------------------------------------- 5. sessions
@pytest.mark.parametrize("how", ["sign_out", "password_reset", "disable"])
def test_a_copied_session_cookie_stops_working(live, how):
    endpoint, sv = live()
    browser = WebClient(endpoint.port)
    status, _, r = browser.form("/login", {"username": "ana", "password": PASSWORD})
    assert status == 302, r.getheader("Location")
    assert browser.call("GET", "/jobs")[0] == 200
    thief = WebClient(endpoint.port)
    thief.cookie = browser.cookie
    assert thief.call("GET", "/jobs")[0] == 200
    if how == "sign_out":
        assert browser.form("/logout", {}, page="/jobs")[0] == 302
    elif how == "password_reset":
        sv.users.reset_password("ana", "Brand-New-Pass-77")
    else:
        sv.users.disable("ana")
    status, _, r = thief.call("GET", "/jobs")
    assert status == 302 and "/login" in r.getheader("Location")


# ---------------------------------------------------------------------- 6. voxel cap
def huge_declared_zip(tmp_path, n: int = 300, size: int = 8192) -> bytes:
    """A small zip of ``n`` RLE slices whose headers declare ``size``² pixels."""
    w = write_ct_series(tmp_path / "ct", n_slices=n, rows=8, cols=8, transfer_syntax=RLELossless)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in w.files:
            ds = pydicom.dcmread(path)
            ds.Rows = ds.Columns = size
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            zf.writestr(path.name, out.getvalue())
    return buf.getvalue()


def test_a_series_declaring_a_huge_size_is_422_before_any_pixel_is_decoded(live, tmp_path):
    endpoint, sv = live(max_image_voxels=2**30)  # what a 16 GiB computer gets automatically
    data = huge_declared_zip(tmp_path)
    assert len(data) < 2**20
    c = Client(endpoint.port)
    c.headers["Authorization"] = f"Bearer {token(endpoint.port)}"
    status, body, _ = c.upload([("study.zip", data)])
    assert status == 422, body
    assert "too large" in body["error"] and "8192×8192" in body["error"]
    assert "max_image_voxels" in body["error"]
    assert sv.studies.find() == []


# ---------------------------------------------------------------------- 7. waitress's refusals
def test_waitress_own_refusals_are_json(live):
    endpoint, _ = live(app_overrides={"max_upload_bytes": 50_000})
    auth = f"Authorization: Bearer {token(endpoint.port)}\n"
    bad = [
        ("POST /api/v1/auth/token HTTP/1.1\nHost: x\nContent-Length: abc\n", 400),
        ("POST /api/v1/studies HTTP/1.1\nHost: x\nTransfer-Encoding: gzip\n" + auth, 501),
    ]
    for head, code in bad:
        reply, _ = raw(endpoint.port, head)
        status, body = status_and_json(reply)
        assert status == code and body["error"], reply[:300]
    # a chunked upload past waitress's own body limit
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=20)
    chunks = (b"x" * 8192 for _ in range(200))
    conn.request(
        "POST",
        "/api/v1/studies",
        chunks,
        {"Authorization": auth.split(": ", 1)[1].strip(), "Content-Type": "multipart/form-data"},
        encode_chunked=True,
    )
    r = conn.getresponse()
    assert r.status == 413 and r.getheader("Content-Type") == "application/json"
    assert "limit" in json.loads(r.read())["error"]


# ---------------------------------------------------------------------- 8. docs agree
def test_openapi_names_basic_auth_and_the_sign_in_body_limit(live):
    endpoint, _ = live()
    status, doc, _ = Client(endpoint.port).call("GET", "/api/v1/openapi.json")
    assert status == 200
    assert {"basic": []} in doc["security"] and {"bearer": []} in doc["security"]
    token_op = doc["paths"]["/api/v1/auth/token"]["post"]
    assert "413" in token_op["responses"]
    assert list(token_op["requestBody"]["content"]) == ["application/json"]
    stow = doc["paths"]["/dicomweb/studies"]["post"]
    assert stow.get("security") != []  # Basic or bearer, from the document-wide default
