"""A real waitress server on 127.0.0.1: start/stop, bound port, exposure rules, TLS."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from server_support import PASSWORD, folder_files

from cspine_desktop.errors import SettingsError
from cspine_desktop.server import HttpEndpoint
from cspine_desktop.server.config import is_loopback_host


def _get(url: str, context: ssl.SSLContext | None = None, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
        return r.status, json.loads(r.read())


@pytest.fixture
def endpoint_for(app, services):
    started: list[HttpEndpoint] = []

    def make(settings=None, **kw):
        endpoint = HttpEndpoint(app, settings or services.settings, port=0, **kw)
        started.append(endpoint)
        return endpoint

    yield make
    for r in started:
        r.stop()


def test_start_serve_stop(endpoint_for):
    endpoint = endpoint_for()
    assert endpoint.state == "stopped" and not endpoint.is_running()
    url = endpoint.start()
    assert endpoint.is_running() and endpoint.state == "running"
    assert endpoint.port and url == f"http://127.0.0.1:{endpoint.port}"
    status, body = _get(url + "/api/v1/health")
    assert status == 200 and body["status"] == "ok"
    endpoint.stop()
    assert endpoint.state == "stopped"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=2).close()
    url2 = endpoint.start()  # the same endpoint starts again
    assert _get(url2 + "/api/v1/health")[0] == 200


def test_port_in_use_is_a_plain_settings_error(endpoint_for, services, app):
    first = endpoint_for()
    first.start()
    second = HttpEndpoint(app, services.settings, port=first.port)
    with pytest.raises(SettingsError, match="already in use"):
        second.start()
    assert second.state == "failed"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_lan_without_tls_is_refused(services, app, host):
    endpoint = HttpEndpoint(app, services.settings, host=host, port=0)
    with pytest.raises(SettingsError, match="without TLS"):
        endpoint.start()


def test_lan_without_tls_allowed_explicitly_logs_a_warning(services, app, caplog, endpoint_for):
    settings = services.settings.replace(allow_insecure_lan=True)
    endpoint = HttpEndpoint(app, settings, host="0.0.0.0", port=0)
    with caplog.at_level(logging.WARNING, logger="cspine_desktop.server.endpoint"):
        endpoint.start()
    try:
        assert "WITHOUT TLS" in caplog.text
        assert _get(f"http://127.0.0.1:{endpoint.port}/api/v1/health")[0] == 200
    finally:
        endpoint.stop()


def test_loopback_names():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost") and is_loopback_host("127.0.0.2")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("10.0.0.1")


# ---------------------------------------------------------------------- TLS
def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl command, or the cryptography package)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _with_cryptography(cert, key)
        return cert, key
    except ImportError:
        pass
    if shutil.which("openssl") is None:
        pytest.skip("neither the openssl command nor the cryptography package is installed")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _with_cryptography(cert: Path, key: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pk = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pk.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(pk, hashes.SHA256())
    )
    key.write_bytes(
        pk.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(crt.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def tls_files(tmp_path):
    return _self_signed(tmp_path)


@pytest.fixture
def tls_endpoint(endpoint_for, services, tls_files):
    cert, key = tls_files
    endpoint = endpoint_for(services.settings.replace(tls_cert=cert, tls_key=key))
    endpoint.start()
    context = ssl.create_default_context(cafile=str(cert))
    return endpoint, context


def test_tls_serves_https_and_verifies(tls_endpoint, tls_files):
    endpoint, context = tls_endpoint
    assert endpoint.url.startswith("https://127.0.0.1:")
    status, body = _get(endpoint.url + "/api/v1/health", context)
    assert status == 200 and body["status"] == "ok"
    with pytest.raises(urllib.error.URLError):  # an untrusting client refuses the self-signed cert
        _get(endpoint.url + "/api/v1/health", ssl.create_default_context())


def test_tls_refuses_plain_http_and_survives_stalled_handshakes(tls_endpoint):
    endpoint, context = tls_endpoint
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(f"http://127.0.0.1:{endpoint.port}/api/v1/health", timeout=5)
    stalled = [socket.create_connection(("127.0.0.1", endpoint.port)) for _ in range(5)]
    try:
        started = time.monotonic()
        assert _get(endpoint.url + "/api/v1/health", context)[0] == 200
        assert time.monotonic() - started < 5
    finally:
        for s in stalled:
            s.close()


def test_tls_upload_of_a_study_and_large_download(tls_endpoint, ct_folder):
    """Bodies larger than one TLS record both ways: token, multipart upload, job, result."""
    import http.client
    import uuid

    endpoint, context = tls_endpoint
    conn = http.client.HTTPSConnection("127.0.0.1", endpoint.port, context=context, timeout=20)
    conn.request(
        "POST",
        "/api/v1/auth/token",
        json.dumps({"username": "ana", "password": PASSWORD}),
        {"Content-Type": "application/json"},
    )
    token = json.loads(conn.getresponse().read())["token"]
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{n}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for n, data in folder_files(ct_folder)
    ]
    padding = (b"x" * 300_000,)  # a junk file the loader ignores: a body of many TLS records
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="pad.txt"'
        "\r\n\r\n".encode()
        + padding[0]
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    conn.request("POST", "/api/v1/studies", body, headers)
    r = conn.getresponse()
    accepted = json.loads(r.read())
    assert r.status == 202, accepted
    deadline = time.monotonic() + 20
    while True:
        conn.request("GET", accepted["status_url"], headers=headers)
        job = json.loads(conn.getresponse().read())
        if job["state"] == "succeeded":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    conn.request("GET", accepted["status_url"] + "/result", headers=headers)
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["schema"] == "cspine.analysis/2"
    conn.request("GET", "/api/v1/openapi.json", headers=headers)
    r = conn.getresponse()
    assert r.status == 200 and len(r.read()) > 10_000


def test_missing_tls_file_is_a_settings_error(services, app, tmp_path):
    settings = services.settings.replace(tls_cert=tmp_path / "no.pem", tls_key=tmp_path / "no.key")
    endpoint = HttpEndpoint(app, settings, port=0)
    with pytest.raises(SettingsError, match="does not exist"):
        endpoint.start()


def test_mismatched_tls_files_are_a_settings_error(services, app, tmp_path, tls_files):
    cert, _ = tls_files
    settings = services.settings.replace(tls_cert=cert, tls_key=cert)
    with pytest.raises(SettingsError, match="cannot be used"):
        HttpEndpoint(app, settings, port=0).start()


# ---------------------------------------------------------------------- real-server bodies
def _token(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request(
        "POST",
        "/api/v1/auth/token",
        json.dumps({"username": "ana", "password": PASSWORD}),
        {"Content-Type": "application/json"},
    )
    return json.loads(conn.getresponse().read())["token"]


def test_stow_with_chunked_transfer_encoding(make_app, services, tmp_path):
    """A PACS typically streams STOW-RS bodies chunked (no Content-Length)."""
    import http.client

    from factories.dicom_series import write_ct_series
    from server_support import related_body

    app = make_app(services)
    endpoint = HttpEndpoint(app, services.settings, port=0)
    endpoint.start()
    try:
        w = write_ct_series(tmp_path / "ct", n_slices=6, rows=16, cols=16)
        body, ctype = related_body([p.read_bytes() for p in w.files])
        conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=20)
        chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
        conn.request(
            "POST",
            "/dicomweb/studies",
            chunks,
            {"Authorization": f"Bearer {_token(endpoint.port)}", "Content-Type": ctype},
            encode_chunked=True,
        )
        r = conn.getresponse()
        reply = json.loads(r.read())
        assert r.status == 200, reply
        assert len(reply["00081199"]["Value"]) == 6
    finally:
        endpoint.stop()  # publishes the collected study
    [study] = services.studies.find()
    assert study.study_uid == w.study_uid and study.n_files == 6


def test_oversize_body_is_413_on_the_real_server(make_app, services):
    import http.client

    app = make_app(services, max_upload_bytes=50_000)
    endpoint = HttpEndpoint(app, services.settings, port=0)
    endpoint.start()
    try:
        token = _token(endpoint.port)
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "multipart/form-data; boundary=zz",
        }
        conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=20)
        conn.request("POST", "/api/v1/studies", b"x" * 60_000, headers)
        r = conn.getresponse()
        assert r.status == 413 and "limit" in json.loads(r.read())["error"]
        # far over the limit: refused from the headers alone, before any body is sent
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=20) as raw:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            raw.sendall(
                f"POST /api/v1/studies HTTP/1.1\r\nHost: x\r\n{head}"
                "Content-Length: 5000000\r\n\r\n".encode()
            )
            assert raw.recv(100).startswith(b"HTTP/1.1 413")
    finally:
        endpoint.stop()
    assert services.studies.find() == []
