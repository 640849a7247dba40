"""One upload through the REAL analysis handler: a tiny ONNX model bundle built on the fly
(the inference tests' threshold model), a small synthetic CT series, every result served."""

from __future__ import annotations

import gzip
import io

import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle
from server_support import add_users, bearer, folder_files, token_for, upload, wait_job, zip_bytes

from cspine_desktop.analysis.result import AnalysisResult

# threshold model: the bone ring is C3 (fracture score 0.9), the dense ball C4
CLS = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)


@pytest.fixture
def real_services(make_services, tmp_path):
    bundle = write_bundle(tmp_path / "bundle", {"model.onnx": threshold_onnx(cls_prob=CLS)})
    sv = make_services(handler=None, model_dir=bundle, backend="onnx")  # handler=None: the real one
    return add_users(sv)


def test_upload_zip_analyse_and_fetch_every_result(real_services, make_app, tmp_path):
    import nibabel as nib
    import pydicom

    client = make_app(real_services).test_client()
    health = client.get("/api/v1/health").get_json()
    assert health["model"]["available"] and health["model"]["name"] == "cspine-test"
    ana = bearer(token_for(client, "ana"))
    write_ct_series(tmp_path / "ct", n_slices=30, rows=32, cols=32)
    r = upload(client, ana, [("study.zip", zip_bytes(folder_files(tmp_path / "ct")))])
    assert r.status_code == 202, r.get_json()
    job = wait_job(client, ana, r.get_json()["job_id"], timeout=120)
    assert job["state"] == "succeeded", job
    url = f"/api/v1/jobs/{job['job_id']}/result"

    result = AnalysisResult.from_dict(client.get(url, headers=ana).get_json())
    assert result.backend.startswith("onnx") and result.model.name == "cspine-test"
    # the test model's ring and ball are no spine: their probabilities come through, but no
    # fracture verdict may be given on them
    c3 = result.vertebra("C3")
    assert c3.present and c3.probability == pytest.approx(0.9, abs=1e-3) and c3.fractured is None
    assert result.patient_overall.status == "indeterminate"
    assert result.patient_overall.fractured is None

    mask = client.get(url + "/mask.nii.gz", headers=ana)
    assert mask.status_code == 200
    img = nib.Nifti1Image.from_bytes(gzip.decompress(mask.data))
    assert 3 in set(img.get_fdata().astype(int).ravel().tolist())

    seg = client.get(url + "/seg.dcm", headers=ana)
    assert seg.status_code == 200
    ds = pydicom.dcmread(io.BytesIO(seg.data))
    assert ds.Modality == "SEG" and ds.StudyInstanceUID == result.study_instance_uid

    pdf = client.get(url + "/report.pdf", headers=ana)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
