"""Web pages: sign-in with CSRF, session cookie flags, sign-up request, upload, job list,
result page with verdicts, key images and the disclaimer, logout."""

from __future__ import annotations

import re

from server_support import PASSWORD, add_users, folder_files, form

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client, path="/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _login(client, name="ana", password=PASSWORD):
    token = _csrf(client)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def _upload(client, files):
    token = _csrf(client, "/upload")
    return client.post(
        "/upload",
        data=form(files),
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
        content_type="multipart/form-data",
    )


def _wait(services, job_id):
    return services.jobs.wait(job_id, timeout=20)


def test_pages_need_a_session(client):
    for path in ("/", "/jobs", "/upload", "/jobs/x"):
        r = client.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path


def test_login_needs_the_csrf_token(client):
    r = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert r.status_code == 400 and "reload the page" in r.get_data(as_text=True)
    r = client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert r.status_code == 400


def test_login_sets_a_strict_http_only_cookie(client):
    r = _login(client)
    assert r.status_code == 302 and r.headers["Location"].endswith("/jobs")
    cookie = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("cspine_session=")][-1]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    assert client.get("/jobs").status_code == 200


def test_cookie_is_secure_under_tls(make_app, services):
    client = make_app(services, tls=True).test_client()
    r = _login(client)
    cookie = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("cspine_session=")][-1]
    assert "Secure" in cookie
    assert "max-age" in r.headers["Strict-Transport-Security"]


def test_wrong_password_shows_one_message(client, services):
    services.users.throttle.base_delay_s = 0.0
    a = _login(client, "ana", "x" * 12)
    b = _login(client, "nobody", "x" * 12)
    assert a.status_code == b.status_code == 401
    assert "Wrong user name or password." in a.get_data(as_text=True)
    assert "Wrong user name or password." in b.get_data(as_text=True)


def test_login_redirects_only_to_local_pages(client):
    token = _csrf(client)
    r = client.post(
        "/login?next=https://evil.example/x",
        data={"username": "ana", "password": PASSWORD, "csrf_token": token},
    )
    assert r.headers["Location"].endswith("/jobs")


def test_signup_creates_a_pending_account(client, services):
    token = _csrf(client, "/signup")
    data = {"username": "cleo", "full_name": "Cleo", "password": PASSWORD, "password2": PASSWORD}
    r = client.post("/signup", data={**data, "csrf_token": token})
    assert r.status_code == 200 and "administrator must approve" in r.get_data(as_text=True)
    assert services.users.get("cleo").status == "pending"
    r = _login(client, "cleo")
    assert r.status_code == 401 and "waiting for an administrator" in r.get_data(as_text=True)
    r = client.post("/signup", data={**data, "csrf_token": token})  # the name is taken now
    assert r.status_code == 200 and "administrator must approve" in r.get_data(as_text=True)
    assert "already exists" not in r.get_data(as_text=True)  # no hint which names exist
    weak = {**data, "username": "dan", "password": "short", "password2": "short"}
    assert client.post("/signup", data={**weak, "csrf_token": token}).status_code == 422


def test_upload_page_and_result_page(client, services, ct_folder):
    _login(client)
    page = client.get("/upload").get_data(as_text=True)
    assert 'type="file"' in page and "upload.js" in page
    assert client.get("/static/upload.js").status_code == 200
    r = _upload(client, folder_files(ct_folder))
    assert r.status_code == 202, r.get_data(as_text=True)
    job_id = r.get_json()["job_id"]
    assert r.get_json()["url"] == f"/jobs/{job_id}"
    _wait(services, job_id)

    jobs = client.get("/jobs").get_data(as_text=True)
    assert f"/jobs/{job_id}" in jobs and "fracture suspected" in jobs
    assert '<span class="fracture">fracture suspected</span>' in jobs
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Not for diagnostic use" in page
    for name in ("C1", "C2", "C7", "Patient"):
        assert f"<td>{name}</td>" in page or f"<th>{name}</th>" in page
    assert re.search(r'<tr class="fracture">\s*<td>C2</td>', page)
    assert "Fracture suspected — patient probability 0.91 (threshold 0.5)" in page
    assert "<th>Threshold</th>" in page
    img = re.search(r'<img src="([^"]+)"', page).group(1)
    png = client.get(img)
    assert png.status_code == 200 and png.mimetype == "image/png"
    pdf = client.get(f"/jobs/{job_id}/files/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/jobs/{job_id}/files/seg.dcm").status_code == 404
    assert services.audit.query(action="study_viewed")[-1].user_name == "ana"


def test_upload_without_csrf_is_refused(client, ct_folder):
    _login(client)
    r = client.post(
        "/upload",
        data=form(folder_files(ct_folder)),
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and "reload the page" in r.get_json()["error"]


def test_upload_errors_come_back_as_json_for_the_script(client):
    _login(client)
    r = _upload(client, [("notes.txt", b"hello")])
    assert r.status_code == 422 and "no DICOM" in r.get_json()["error"]


def test_other_users_cannot_open_a_job_page(app, services, ct_folder):
    ana, ben = app.test_client(), app.test_client()
    _login(ana)
    job_id = _upload(ana, folder_files(ct_folder)).get_json()["job_id"]
    _wait(services, job_id)
    _login(ben, "ben")
    assert ben.get(f"/jobs/{job_id}").status_code == 404
    assert ben.get(f"/jobs/{job_id}/files/report.pdf").status_code == 404
    assert f"/jobs/{job_id}" not in ben.get("/jobs").get_data(as_text=True)


def test_cancel_from_the_job_page(make_services, make_app, ct_folder):
    sv = add_users(make_services(start_jobs=False))  # the job stays pending
    client = make_app(sv).test_client()
    _login(client)
    job_id = _upload(client, folder_files(ct_folder)).get_json()["job_id"]
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and "Cancel" in page
    token = CSRF.search(page).group(1)
    r = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert r.status_code == 303
    assert sv.jobs.get(job_id).state == "cancelled"


def test_logout_ends_the_session(client, services):
    _login(client)
    token = _csrf(client, "/jobs")
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 302
    assert client.get("/jobs").status_code == 302
    assert services.audit.query(action="logout")[-1].user_name == "ana"


def test_idle_session_expires(make_app, services):
    client = make_app(services, session_idle_s=0.0).test_client()
    _login(client)
    assert client.get("/jobs").status_code == 302


def test_an_indeterminate_result_page_says_so_in_amber(client, services, ct_folder, monkeypatch):
    import server_support

    monkeypatch.setattr(server_support, "fake_result", server_support.indeterminate_result)
    _login(client)
    job_id = _upload(client, folder_files(ct_folder)).get_json()["job_id"]
    _wait(services, job_id)
    jobs = client.get("/jobs").get_data(as_text=True)
    assert '<span class="indeterminate">indeterminate</span>' in jobs
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert '<div class="verdict indeterminate">' in page
    assert "Indeterminate — read the images" in page
    assert "<li>No cervical vertebra was found in the images.</li>" in page
    assert re.search(r'<tr class="indeterminate">\s*<td>C2</td>', page)
    assert "no fracture" not in page and "fracture suspected" not in page
