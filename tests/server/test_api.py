"""The JSON API contract: every route and status code, with the bad inputs."""

from __future__ import annotations

import json

import pytest
from server_support import (
    PASSWORD,
    bearer,
    folder_files,
    token_for,
    upload,
    wait_job,
    zip_bytes,
)

from cspine_desktop.analysis.result import SCHEMA, AnalysisResult
from cspine_desktop.services.users import BAD_LOGIN


def _audit(services, action):
    return [e for e in services.audit.query(action=action)]


# ---------------------------------------------------------------------- health, tokens
def test_health_needs_no_token(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert {"model", "backend"} <= set(body)
    assert body["backend"] == "auto"
    assert "not for diagnostic use" in body["disclaimer"].lower()


def test_token_for_good_credentials(client, services):
    r = client.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 200
    body = r.get_json()
    assert body["token"].startswith("csp_") and body["expires_at"].endswith("Z")
    assert services.users.verify_token(body["token"]).name == "ana"


def test_unknown_user_and_wrong_password_get_the_same_401(client, services):
    services.users.throttle.base_delay_s = 0.0  # no growing delay between the two attempts
    wrong = client.post("/api/v1/auth/token", json={"username": "ana", "password": "x" * 12})
    unknown = client.post("/api/v1/auth/token", json={"username": "zed", "password": "x" * 12})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["error"] == unknown.get_json()["error"] == BAD_LOGIN


@pytest.mark.parametrize(
    "body",
    [None, "not json", [], {"username": "ana"}, {"username": 3, "password": PASSWORD}],
)
def test_token_request_without_credentials_is_400(client, body):
    if body is None:
        r = client.post("/api/v1/auth/token")
    elif isinstance(body, str):
        r = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    else:
        r = client.post("/api/v1/auth/token", json=body)
    assert r.status_code == 400
    assert "username" in r.get_json()["error"]


def test_locked_account_gets_429_with_retry_after(client, services):
    services.users.throttle.base_delay_s = 0.0  # only the lock, not the growing delay
    codes = [
        client.post(
            "/api/v1/auth/token", json={"username": "ana", "password": "x" * 12}
        ).status_code
        for _ in range(services.settings.max_failed_logins)
    ]
    assert codes[:-1] == [401] * (len(codes) - 1) and codes[-1] == 429
    r = client.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 60


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer csp_nonsense", "Token abc", "Basic !!!", "Basic " + "YW5h"],
)
def test_api_without_a_valid_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    for method, path in [
        ("get", "/api/v1/studies"),
        ("post", "/api/v1/studies"),
        ("get", "/api/v1/jobs/abc"),
        ("delete", "/api/v1/jobs/abc"),
        ("get", "/api/v1/jobs/abc/result"),
        ("get", "/api/v1/jobs/abc/result/report.pdf"),
        ("delete", "/api/v1/auth/token"),
        ("post", "/dicomweb/studies"),
    ]:
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.get_json()["error"]


def test_expired_and_revoked_tokens_are_401(client, services):
    ana = services.users.get("ana")
    expired = services.users.issue_token(ana, ttl_hours=1e-9).token
    assert client.get("/api/v1/studies", headers=bearer(expired)).status_code == 401
    token = token_for(client, "ana")
    assert client.get("/api/v1/studies", headers=bearer(token)).status_code == 200
    assert client.delete("/api/v1/auth/token", headers=bearer(token)).status_code == 204
    r = client.get("/api/v1/studies", headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.get_json()["error"]


def test_disabled_user_token_stops_working(client, services):
    token = token_for(client, "ben")
    services.users.disable("ben")
    assert client.get("/api/v1/studies", headers=bearer(token)).status_code == 401


def test_basic_auth_works_for_api_calls(client):
    import base64

    cred = base64.b64encode(f"ana:{PASSWORD}".encode()).decode()
    assert (
        client.get("/api/v1/studies", headers={"Authorization": f"Basic {cred}"}).status_code == 200
    )


# ---------------------------------------------------------------------- upload → job → result
def test_upload_files_then_poll_then_result(client, services, ana, ct_folder):
    r = upload(client, ana, folder_files(ct_folder))
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status_url"] == f"/api/v1/jobs/{body['job_id']}"
    assert r.headers["Location"] == body["status_url"]
    job = wait_job(client, ana, body["job_id"])
    assert job["state"] == "succeeded" and job["progress"] == 100 and job["error"] is None
    assert job["verdict"]["fractured_vertebrae"] == ["C2"]
    assert job["verdict"]["patient_status"] == "assessed"
    assert job["verdict"]["verdict"] == "fracture suspected"
    assert job["verdict"]["patient_threshold"] == 0.5

    res = client.get(f"/api/v1/jobs/{body['job_id']}/result", headers=ana)
    assert res.status_code == 200
    doc = res.get_json()
    assert doc["schema"] == SCHEMA
    parsed = AnalysisResult.from_dict(doc)
    study = services.studies.get(job["study_id"])
    assert parsed.study_instance_uid == study.study_uid != ""
    assert study.source == "remote" and study.imported_by == "ana"
    assert study.address == "127.0.0.1"
    assert study.n_files == len(folder_files(ct_folder))

    imports = _audit(services, "study_imported")
    assert imports[-1].address == "127.0.0.1" and imports[-1].user_name == "ana"
    exports = _audit(services, "export")
    assert exports[-1].detail["format"] == "json" and exports[-1].address == "127.0.0.1"


def test_upload_zip_with_folders(client, services, ana, ct_folder):
    files = [(f"study/CT/{n}", d) for n, d in folder_files(ct_folder)]
    r = upload(client, ana, [("study.zip", zip_bytes(files))])
    assert r.status_code == 202, r.get_json()
    job = wait_job(client, ana, r.get_json()["job_id"])
    assert job["state"] == "succeeded"
    study = services.studies.get(job["study_id"])
    assert study.n_files == len(files)
    assert all(p.suffix != ".zip" for p in study.files())


def test_result_files_are_served_and_audited(client, services, ana, ct_folder):
    job_id = upload(client, ana, folder_files(ct_folder)).get_json()["job_id"]
    wait_job(client, ana, job_id)
    pdf = client.get(f"/api/v1/jobs/{job_id}/result/report.pdf", headers=ana)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data == b"%PDF-1.4 fake"
    mask = client.get(f"/api/v1/jobs/{job_id}/result/mask.nii.gz", headers=ana)
    assert mask.status_code == 200 and mask.data.startswith(b"\x1f\x8b")
    seg = client.get(f"/api/v1/jobs/{job_id}/result/seg.dcm", headers=ana)
    assert seg.status_code == 404
    assert "no seg.dcm" in seg.get_json()["error"]
    assert client.get(f"/api/v1/jobs/{job_id}/result/other.txt", headers=ana).status_code == 404
    reports = _audit(services, "report")
    assert reports[-1].detail["job_id"] == job_id and reports[-1].user_name == "ana"
    assert _audit(services, "export")[-1].detail["format"] == "nifti"


def test_only_owner_or_admin_sees_a_job(client, ana, ben, admin, ct_folder):
    job_id = upload(client, ana, folder_files(ct_folder)).get_json()["job_id"]
    wait_job(client, ana, job_id)
    for path in ("", "/result", "/result/report.pdf"):
        other = client.get(f"/api/v1/jobs/{job_id}{path}", headers=ben)
        assert other.status_code == 404, path
        assert other.get_json()["error"] == f"No job with id {job_id}."
        assert client.get(f"/api/v1/jobs/{job_id}{path}", headers=admin).status_code == 200
    assert client.delete(f"/api/v1/jobs/{job_id}", headers=ben).status_code == 404
    assert client.get("/api/v1/jobs/doesnotexist", headers=ana).get_json()["error"] == (
        "No job with id doesnotexist."
    )


def test_study_list_shows_own_studies_with_latest_verdict(client, ana, ben, admin, ct_folder):
    job_id = upload(client, ana, folder_files(ct_folder)).get_json()["job_id"]
    wait_job(client, ana, job_id)
    mine = client.get("/api/v1/studies", headers=ana).get_json()["studies"]
    assert len(mine) == 1
    assert mine[0]["latest_job"]["job_id"] == job_id
    assert mine[0]["latest_job"]["verdict"]["patient_fractured"] is True
    assert client.get("/api/v1/studies", headers=ben).get_json()["studies"] == []
    assert len(client.get("/api/v1/studies", headers=admin).get_json()["studies"]) == 1


def test_cancel_a_pending_job_and_conflict_after(make_services, make_app, ct_folder):
    sv = make_services(start_jobs=False)  # nothing runs: the job stays pending
    sv.users.add_user("ana", PASSWORD)
    client = make_app(sv).test_client()
    ana = bearer(token_for(client, "ana"))
    job_id = upload(client, ana, folder_files(ct_folder)).get_json()["job_id"]
    assert client.get(f"/api/v1/jobs/{job_id}", headers=ana).get_json()["state"] == "pending"
    r = client.get(f"/api/v1/jobs/{job_id}/result", headers=ana)
    assert r.status_code == 409 and "still pending" in r.get_json()["error"]
    r = client.delete(f"/api/v1/jobs/{job_id}", headers=ana)
    assert r.status_code == 202 and r.get_json()["state"] == "cancelled"
    assert client.delete(f"/api/v1/jobs/{job_id}", headers=ana).status_code == 409
    assert client.get(f"/api/v1/jobs/{job_id}/result", headers=ana).status_code == 409


def test_failed_analysis_reports_its_error(make_services, make_app, ct_folder):
    from cspine_desktop.errors import InconsistentSeriesError

    def failing(ctx):
        raise InconsistentSeriesError("slice 3 of 6 is missing")

    sv = make_services(handler=failing)
    sv.users.add_user("ana", PASSWORD)
    client = make_app(sv).test_client()
    ana = bearer(token_for(client, "ana"))
    job = wait_job(client, ana, upload(client, ana, folder_files(ct_folder)).get_json()["job_id"])
    assert job["state"] == "failed" and job["error"] == "slice 3 of 6 is missing"
    r = client.get(f"/api/v1/jobs/{job['job_id']}/result", headers=ana)
    assert r.status_code == 409 and "slice 3 of 6 is missing" in r.get_json()["error"]


def test_queue_full_is_503_with_retry_after_and_keeps_nothing(make_services, make_app, ct_folder):
    sv = make_services(start_jobs=False, queue_max=1)
    sv.users.add_user("ana", PASSWORD)
    client = make_app(sv).test_client()
    ana = bearer(token_for(client, "ana"))
    assert upload(client, ana, folder_files(ct_folder)).status_code == 202
    r = upload(client, ana, folder_files(ct_folder))
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) >= 1
    assert "queue is full" in r.get_json()["error"]
    assert len(sv.studies.find()) == 1


def test_json_errors_for_unknown_api_paths_and_methods(client, ana):
    r = client.get("/api/v1/nothing", headers=ana)
    assert r.status_code == 404 and r.get_json()["status"] == 404
    r = client.put("/api/v1/studies", headers=ana)
    assert r.status_code == 405 and "POST" in r.headers["Allow"]


def test_internal_errors_are_500_without_details(make_services, make_app, monkeypatch):
    sv = make_services()
    sv.users.add_user("ana", PASSWORD)
    app = make_app(sv)
    client = app.test_client()
    ana = bearer(token_for(client, "ana"))

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sv.studies, "worklist", boom)
    r = client.get("/api/v1/studies", headers=ana)
    assert r.status_code == 500
    assert "secret" not in r.get_data(as_text=True)


def test_security_headers(client):
    r = client.get("/api/v1/health")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_openapi_document_is_json(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    json.dumps(doc)
