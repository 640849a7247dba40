"""The OpenAPI document matches the routes, and requests built from it never cause a 5xx."""

from __future__ import annotations

import re
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import PASSWORD, bearer, token_for

from cspine_desktop.server.openapi import openapi_document

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _documented() -> set[tuple[str, str]]:
    doc = openapi_document()
    return {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def _routed(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/v1/", "/dicomweb/")):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        out |= {(path, m) for m in rule.methods - IGNORED_METHODS}
    return out


def test_document_lists_exactly_the_api_routes(app):
    assert _documented() == _routed(app)


def test_every_operation_documents_its_errors_and_ids_are_unique():
    doc = openapi_document()
    ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            public = op.get("security") == []
            if not public:
                assert "401" in op["responses"], (path, method)
            params = set(re.findall(r"{([^}]+)}", path))
            assert params == {p["name"] for p in op.get("parameters", [])}, path
    assert len(ids) == len(set(ids))


def test_contract_paths_and_codes_are_documented():
    doc = openapi_document()["paths"]
    assert set(doc["/api/v1/studies"]["post"]["responses"]) >= {
        "202",
        "401",
        "413",
        "415",
        "422",
        "503",
    }
    assert set(doc["/api/v1/auth/token"]["post"]["responses"]) >= {"200", "401", "429"}
    assert set(doc["/dicomweb/studies"]["post"]["responses"]) >= {"200", "202", "400", "409", "415"}
    for name in ("mask.nii.gz", "seg.dcm", "report.pdf"):
        assert f"/api/v1/jobs/{{job_id}}/result/{name}" in doc


# ---------------------------------------------------------------------- fuzzing
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), max_size=40
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10,
)
_ctype = st.sampled_from(
    [
        None,
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=zz",
        'multipart/related; type="application/dicom"; boundary=zz',
        "multipart/related; boundary=",
        "text/plain",
    ]
)
_segment = _text.filter(lambda s: "/" not in s and s not in (".", "..") and "\\" not in s)


def _path_for(template: str, value: str) -> str:
    from urllib.parse import quote

    return re.sub(r"{[^}]+}", lambda _: quote(value, safe="") or "x", template)


def test_fuzz_every_operation_from_the_document_gives_no_5xx(app, services):
    client = app.test_client()
    services.users.throttle.base_delay_s = 0.0
    services.users.throttle.max_failures = 10**6  # keep the fuzzer from locking itself out
    token = token_for(client, "ana")
    operations = sorted(_documented())
    started = time.monotonic()
    seen: dict[int, int] = {}

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(
        op=st.sampled_from(operations),
        param=_segment,
        auth=st.sampled_from(["none", "token", "junk", "basic"]),
        body=st.one_of(st.none(), _json, st.binary(max_size=300)),
        ctype=_ctype,
    )
    def run(op, param, auth, body, ctype):
        path, method = op
        headers = {}
        header_safe = "".join(c for c in param if c.isprintable())
        if auth == "token":
            headers.update(bearer(token))
        elif auth == "junk":
            headers["Authorization"] = "Bearer csp_" + header_safe
        elif auth == "basic":
            headers["Authorization"] = "Basic " + header_safe
        kwargs = {"headers": headers}
        if isinstance(body, bytes):
            kwargs["data"] = body
        elif body is not None:
            kwargs["json"] = body
        if ctype and "json" not in kwargs:
            kwargs["content_type"] = ctype
        r = client.open(_path_for(path, param), method=method, **kwargs)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (method, path, r.status_code, r.get_data(as_text=True))
        if r.status_code >= 400 and path.startswith("/api/"):
            assert r.get_json()["error"]

    run()
    assert time.monotonic() - started < 60
    assert {200, 401, 404} <= set(seen), seen  # the fuzzer reached past authentication


def test_fuzz_token_endpoint_credentials(app, services):
    client = app.test_client()
    services.users.throttle.base_delay_s = 0.0
    services.users.throttle.max_failures = 10**6

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=_text, password=_text | st.just(PASSWORD))
    def run(name, password):
        r = client.post("/api/v1/auth/token", json={"username": name, "password": password})
        assert r.status_code in (200, 400, 401, 429), r.get_data(as_text=True)

    run()
