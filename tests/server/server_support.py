"""Helpers for the endpoint tests: a fake analysis handler with a valid result, tokens, and
builders for uploads (form-data files, zips, multipart/related bodies)."""

from __future__ import annotations

import dataclasses
import io
import time
import zipfile
from pathlib import Path

from cspine_desktop.analysis.result import (
    AnalysisResult,
    ModelInfo,
    PatientVerdict,
    VertebraVerdict,
)
from cspine_desktop.progress import Progress
from cspine_desktop.vertebrae import NAMES

ROUNDS = 4  # bcrypt cost for tests
PASSWORD = "Correct-Horse-7"
FRACTURED = ("C2",)


def fake_result(ctx) -> AnalysisResult:
    """A valid cspine.analysis/2 result for the job's study (C2 fractured)."""
    verdicts = tuple(
        VertebraVerdict(
            name=name,
            present=True,
            probability=0.9 if name in FRACTURED else 0.1,
            fractured=name in FRACTURED,
            slice_range=(0, 3),
            peak_slice=1,
            threshold=0.5,
        )
        for name in NAMES
    )
    return AnalysisResult(
        study_instance_uid=ctx.study.study_uid,
        series_instance_uid=ctx.study.series_uid,
        model=ModelInfo("fake", "0", "0" * 64),
        backend="fake",
        patient_overall=PatientVerdict(0.91, True, threshold=0.5),
        vertebrae=verdicts,
        thresholds={**{n: 0.5 for n in NAMES}, "patient_overall": 0.5},
        timings_s={"total": 0.0},
        patient_id=ctx.study.patient_id,
    )


_ASSESSED = fake_result  # before a test swaps ``fake_result`` for the one below


def indeterminate_result(ctx) -> AnalysisResult:
    """The same study, but the spine failed a plausibility check: no verdict is given."""
    r = _ASSESSED(ctx)
    reason = "No cervical vertebra was found in the images."
    return dataclasses.replace(
        r,
        vertebrae=tuple(
            dataclasses.replace(v, fractured=None, status="indeterminate", reasons=(reason,))
            for v in r.vertebrae
        ),
        patient_overall=dataclasses.replace(
            r.patient_overall, fractured=None, status="indeterminate", reasons=(reason,)
        ),
    )


def fake_handler(ctx) -> dict:
    """Stands in for the analysis: progress, cancellation, the artifacts the real handler
    stores for nifti/pdf/png (no DICOM SEG, so its 404 can be tested), a valid result."""
    for pct in (20, 60):
        ctx.progress(Progress(pct / 100, "thinking"))
        ctx.check_cancelled()
    ctx.write_artifact("cspine_labels.nii.gz", "nifti", b"\x1f\x8bNIFTI")
    ctx.write_artifact("cspine_report.pdf", "pdf", b"%PDF-1.4 fake")
    ctx.write_artifact("cspine_key_C2.png", "png", b"\x89PNG\r\n\x1a\nfake")
    doc = fake_result(ctx).to_dict()
    doc["timings"] = {"total": 0.0}
    return doc


def add_users(sv):
    """admin (admin), ana and ben (radiologists), all with :data:`PASSWORD`."""
    sv.users.add_user("admin", PASSWORD, "admin")
    sv.users.add_user("ana", PASSWORD)
    sv.users.add_user("ben", PASSWORD)
    return sv


def token_for(client, name: str, password: str = PASSWORD) -> str:
    r = client.post("/api/v1/auth/token", json={"username": name, "password": password})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------- study builders
def folder_files(folder: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def zip_bytes(entries: list[tuple[str, bytes]] | list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def form(files: list[tuple[str, bytes]], field: str = "file") -> dict:
    return {field: [(io.BytesIO(data), name) for name, data in files]}


def upload(client, headers, files: list[tuple[str, bytes]]):
    return client.post(
        "/api/v1/studies", data=form(files), headers=headers, content_type="multipart/form-data"
    )


def related_body(
    parts: list[bytes], boundary: str = "cspine-boundary-42", ctype: str = "application/dicom"
) -> tuple[bytes, str]:
    out = io.BytesIO()
    for data in parts:
        out.write(f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    header = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return out.getvalue(), header


def wait_job(client, headers, job_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        if body["state"] in ("succeeded", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
