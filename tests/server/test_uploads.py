"""Uploads that must be refused: oversize, too many files, unsafe or bomb zips, non-DICOM, MR,
empty — each with its status code and a plain message, and nothing left behind."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from factories.dicom_series import write_ct_series, write_mr_series
from pydicom.data import get_testdata_file
from server_support import bearer, folder_files, token_for, upload, zip_bytes


def _nothing_kept(services):
    assert services.studies.find() == []
    scratch = services.settings.studies_dir
    assert [p.name for p in scratch.iterdir() if p.name.startswith(".tmp-")] == []
    tmp = services.settings.data_dir / "tmp" / "uploads"
    assert list(tmp.iterdir()) == []  # spooled parts are unlinked files


def _refused(r, status: int, words: str):
    assert r.status_code == status, r.get_json()
    assert words.lower() in r.get_json()["error"].lower()


def _zip_with(info: zipfile.ZipInfo, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(info, data)
    return buf.getvalue()


def test_oversize_request_is_413(make_app, services, ct_folder):
    client = make_app(services, max_upload_bytes=20_000).test_client()
    ana = bearer(token_for(client, "ana"))
    r = upload(client, ana, folder_files(ct_folder))  # a few kB: under the limit
    assert r.status_code == 202
    big = [("big.dcm", b"\0" * 30_000)]
    _refused(upload(client, ana, big), 413, "larger than the limit")


def test_too_many_files_is_413(make_app, services, ct_folder):
    client = make_app(services, max_upload_files=3).test_client()
    ana = bearer(token_for(client, "ana"))
    _refused(upload(client, ana, folder_files(ct_folder)), 413, "files")
    _refused(
        upload(client, ana, [("s.zip", zip_bytes(folder_files(ct_folder)))]), 413, "limit is 3"
    )
    _nothing_kept(services)


def test_zip_that_unpacks_beyond_the_limit_is_413(make_app, services, ct_folder):
    client = make_app(services, max_expanded_bytes=4_000).test_client()
    ana = bearer(token_for(client, "ana"))
    _refused(upload(client, ana, [("s.zip", zip_bytes(folder_files(ct_folder)))]), 413, "unpack")
    _nothing_kept(services)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../evil.dcm", "climbs out"),
        ("a/../../evil.dcm", "climbs out"),
        ("/etc/evil.dcm", "absolute path"),
        ("C:/evil.dcm", "absolute path"),
    ],
)
def test_zip_slip_is_400(client, services, ana, ct_folder, name, words):
    files = [*folder_files(ct_folder), (name, b"DICM")]
    _refused(upload(client, ana, [("s.zip", zip_bytes(files))]), 400, words)
    _nothing_kept(services)


@pytest.mark.parametrize(
    ("mode", "words"),
    [(stat.S_IFLNK | 0o777, "symbolic link"), (stat.S_IFCHR | 0o600, "device")],
)
def test_zip_links_and_devices_are_400(client, services, ana, mode, words):
    info = zipfile.ZipInfo("x.dcm")
    info.external_attr = mode << 16
    _refused(upload(client, ana, [("s.zip", _zip_with(info, b"/etc/passwd"))]), 400, words)
    _nothing_kept(services)


def test_zip_bomb_is_400(client, services, ana):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("bomb.dcm", b"\0" * (17 * 1024**2))
    assert len(bomb.getvalue()) < 100_000
    _refused(upload(client, ana, [("bomb.zip", bomb.getvalue())]), 400, "zip bomb")
    _nothing_kept(services)


def test_many_small_members_bomb_is_400(make_app, services):
    client = make_app(services, zip_ratio_floor_bytes=1024**2).test_client()
    ana = bearer(token_for(client, "ana"))
    files = [(f"{i}.dcm", b"\0" * 200_000) for i in range(10)]  # 2 MB in ~20 kB
    _refused(upload(client, ana, [("b.zip", zip_bytes(files))]), 400, "zip bomb")


def test_corrupt_zip_is_422(client, services, ana):
    _refused(upload(client, ana, [("s.zip", b"PK\x03\x04 definitely not a zip")]), 422, "zip")
    _nothing_kept(services)


def test_non_dicom_files_are_refused_with_the_loaders_message(client, services, ana):
    r = upload(client, ana, [("notes.txt", b"hello"), ("scan.dcm", b"not dicom at all")])
    _refused(r, 422, "holds no DICOM images")
    assert str(services.settings.data_dir) not in r.get_json()["error"]  # no private paths
    _nothing_kept(services)


def test_mr_study_is_422(client, services, ana, tmp_path):
    write_mr_series(tmp_path / "mr")
    r = upload(client, ana, folder_files(tmp_path / "mr"))
    _refused(r, 422, "no CT series")
    assert "MR" in r.get_json()["error"]
    _nothing_kept(services)


def test_pydicom_mr_small_is_422(client, services, ana):
    mr = Path(get_testdata_file("MR_small.dcm"))
    _refused(upload(client, ana, [("MR_small.dcm", mr.read_bytes())]), 422, "no CT series")
    _nothing_kept(services)


def test_empty_multipart_is_400(client, services, ana):
    r = client.post(
        "/api/v1/studies", data={}, headers=ana, content_type="multipart/form-data; boundary=x"
    )
    _refused(r, 400, "holds no files")
    r = client.post(
        "/api/v1/studies",
        data=b"--x--\r\n",
        headers=ana,
        content_type="multipart/form-data; boundary=x",
    )
    _refused(r, 400, "holds no files")
    _nothing_kept(services)


def test_empty_zip_is_refused(client, services, ana):
    r = upload(client, ana, [("e.zip", zip_bytes([]))])
    assert r.status_code in (400, 422)
    _nothing_kept(services)


def test_not_multipart_is_415(client, services, ana, ct_folder):
    data = folder_files(ct_folder)[0][1]
    r = client.post("/api/v1/studies", data=data, headers=ana, content_type="application/dicom")
    _refused(r, 415, "multipart/form-data")


def test_mixed_series_study_uses_the_ct_series(client, services, ana, tmp_path):
    """A localizer or MR beside the CT: the study is accepted and records the CT series."""
    ct = write_ct_series(tmp_path / "ct", n_slices=6, rows=16, cols=16, study_uid="1.2.3.4")
    write_mr_series(tmp_path / "mr", study_uid="1.2.3.4")
    mr = [(f"mr_{n}", d) for n, d in folder_files(tmp_path / "mr")]
    r = upload(client, ana, mr + folder_files(tmp_path / "ct"))
    assert r.status_code == 202, r.get_json()
    study_id = services.jobs.get(r.get_json()["job_id"]).study_id
    study = services.studies.get(study_id)
    assert study.series_uid == ct.series_uid and study.modality == "CT"
