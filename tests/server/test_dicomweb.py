"""STOW-RS: PS3.18 status codes, the Store Instances Response, grouping by study and the
settle timeout that queues each study once."""

from __future__ import annotations

import time

import pytest
from factories.dicom_series import write_ct_series, write_localizer, write_mr_series
from server_support import related_body, wait_job

from cspine_desktop.server.multipart_related import MalformedMultipartError, iter_parts

REFERENCED, FAILED, REASON = "00081199", "00081198", "00081197"


def _stow(client, headers, parts, path="/dicomweb/studies", **kw):
    body, ctype = related_body(parts, **kw)
    return client.post(path, data=body, headers=headers, content_type=ctype)


def _settled(app, n=1, timeout=10.0):
    collector = app.extensions["cspine"].collector
    deadline = time.monotonic() + timeout
    while len(collector.history) < n:
        assert time.monotonic() < deadline, "the study never settled"
        time.sleep(0.05)
    return collector.history


def _series(tmp_path, name, **kw):
    w = write_ct_series(tmp_path / name, n_slices=6, rows=16, cols=16, **kw)
    return w, [p.read_bytes() for p in w.files]


def test_stow_all_stored_is_200_then_the_study_is_analysed(app, client, services, ana, tmp_path):
    w, parts = _series(tmp_path, "a")
    r = _stow(client, ana, parts)
    assert r.status_code == 200
    assert r.mimetype == "application/dicom+json"
    refs = r.get_json()[REFERENCED]["Value"]
    assert sorted(i["00081155"]["Value"][0] for i in refs) == sorted(w.sop_uids)
    assert FAILED not in r.get_json()
    [settled] = _settled(app)
    assert settled.error is None and settled.n_instances == 6
    job = wait_job(client, ana, settled.job_id)
    assert job["state"] == "succeeded"
    study = services.studies.get(job["study_id"])
    assert study.study_uid == w.study_uid and study.source == "remote"
    assert study.imported_by == "ana" and study.n_files == 6


def test_instances_in_several_requests_become_one_study(app, client, services, ana, tmp_path):
    _, parts = _series(tmp_path, "a")
    assert _stow(client, ana, parts[:3]).status_code == 200
    assert _stow(client, ana, parts[3:] + parts[:1]).status_code == 200  # one sent twice
    [settled] = _settled(app)
    assert settled.n_instances == 6
    assert len(services.studies.find()) == 1


def test_two_studies_in_one_request_are_grouped(app, client, services, ana, tmp_path):
    _, a = _series(tmp_path, "a")
    _, b = _series(tmp_path, "b")
    assert _stow(client, ana, a + b).status_code == 200
    history = _settled(app, 2)
    assert sorted(h.n_instances for h in history) == [6, 6]
    assert len({h.study_id for h in history}) == 2


def test_partly_failed_is_202_with_reasons(app, client, ana, tmp_path):
    _, ct = _series(tmp_path, "a")
    mr = [p.read_bytes() for p in write_mr_series(tmp_path / "mr").files]
    r = _stow(client, ana, ct + mr[:1] + [b"junk bytes, not dicom"])
    assert r.status_code == 202
    body = r.get_json()
    assert len(body[REFERENCED]["Value"]) == 6
    reasons = sorted(i[REASON]["Value"][0] for i in body[FAILED]["Value"])
    assert reasons == [0x0122, 0xC000]


def test_all_failed_is_409(client, services, ana, tmp_path):
    mr = [p.read_bytes() for p in write_mr_series(tmp_path / "mr").files]
    r = _stow(client, ana, mr)
    assert r.status_code == 409
    assert len(r.get_json()[FAILED]["Value"]) == len(mr)
    assert REFERENCED not in r.get_json()


def test_study_uid_in_the_url_must_match(client, ana, tmp_path):
    w, parts = _series(tmp_path, "a")
    r = _stow(client, ana, parts, path="/dicomweb/studies/1.2.999")
    assert r.status_code == 409
    assert {i[REASON]["Value"][0] for i in r.get_json()[FAILED]["Value"]} == {0xA900}
    assert _stow(client, ana, parts, path=f"/dicomweb/studies/{w.study_uid}").status_code == 200


def test_a_study_the_loader_refuses_is_dropped_after_settling(app, client, services, ana, tmp_path):
    """A CT localizer alone is stored (it is CT), but once settled the loader finds no series
    to analyse: nothing is kept, the reason is recorded and audited."""
    scout = write_localizer(tmp_path / "s", study_uid="1.2.826.0.1.77")
    assert _stow(client, ana, [scout.read_bytes()]).status_code == 200
    [settled] = _settled(app)
    assert settled.job_id is None and "no CT series to analyse" in settled.error
    assert "localizer" in settled.error.lower()
    assert services.studies.find() == []
    failed = services.audit.query(action="study_imported", outcome="failure")
    assert failed and failed[-1].address == "127.0.0.1"


@pytest.mark.parametrize(
    ("ctype", "status"),
    [
        ("application/dicom", 415),
        ("multipart/form-data; boundary=x", 415),
        ('multipart/related; type="application/dicom+json"; boundary=x', 415),
        ('multipart/related; type="application/dicom"', 400),
        ('multipart/related; type="application/dicom"; boundary=', 400),
    ],
)
def test_wrong_media_types_and_missing_boundary(client, ana, ctype, status):
    r = client.post(
        "/dicomweb/studies", data=b"--x\r\n\r\nabc\r\n--x--", headers=ana, content_type=ctype
    )
    assert r.status_code == status, r.get_json()
    assert r.get_json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no boundary anywhere",
        b"--other\r\nContent-Type: application/dicom\r\n\r\nabc\r\n--other--\r\n",
        b"--b1\r\nContent-Type: application/dicom\r\n\r\nabc",  # truncated
        b"--b1\r\nContent-Type application/dicom\r\n\r\nabc\r\n--b1--",  # broken header
        b"--b1--\r\n",  # no parts
    ],
)
def test_malformed_bodies_are_400(client, services, ana, body):
    ctype = 'multipart/related; type="application/dicom"; boundary=b1'
    r = client.post("/dicomweb/studies", data=body, headers=ana, content_type=ctype)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert services.studies.find() == []


def test_splitter_streams_parts_across_chunk_boundaries():
    import io

    payloads = [bytes(range(256)) * 40, b"", b"\r\n--b2 looks like a boundary but is not\r\n-"]
    body, _ = related_body(payloads, boundary="b1")
    stream = io.BytesIO(b"preamble\r\n" + body)
    parts = list(iter_parts(stream.read, b"b1", io.BytesIO, chunk=7))
    assert [p.file.read() for p in parts] == payloads
    assert [p.headers["content-type"] for p in parts] == ["application/dicom"] * 3


def test_splitter_refuses_garbage_after_the_boundary():
    import io

    with pytest.raises(MalformedMultipartError):
        list(iter_parts(io.BytesIO(b"--b1xx\r\n\r\nabc\r\n--b1--").read, b"b1", io.BytesIO))
