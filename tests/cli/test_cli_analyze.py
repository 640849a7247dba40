"""``cspine analyze``: folder, zip, PNG slice and bad input; the files it writes are valid."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pydicom
import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop import DISCLAIMER
from cspine_desktop.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "cspine.analysis-2.schema.json").read_text())
CLS = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)  # C3 (bone ring) 0.9, C4 (ball) 0.1


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(
        tmp_path_factory.mktemp("m") / "bundle", {"model.onnx": threshold_onnx(cls_prob=CLS)}
    )


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct") / "study"
    write_ct_series(folder, n_slices=24, rows=32, cols=32)
    return folder


def _run(capsys, *argv):
    code = main(["analyze", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _result(out_dir):
    doc = json.loads((out_dir / "result.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    return doc


def test_a_dicom_folder_gives_the_table_and_every_export(capsys, tmp_path, bundle, series):
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, series, "--model", bundle, "--out", out)
    assert code == 0  # an indeterminate result is a finished analysis
    for name in ("C1", "C7", "Patient", "not in view", "Threshold"):
        assert name in stdout
    assert DISCLAIMER in stdout
    doc = _result(out)
    # the test model's ring and ball are not a spine: probabilities, but no verdicts
    c3 = doc["vertebrae"][2]
    assert c3["probability"] == pytest.approx(0.9, abs=1e-3) and c3["threshold"] == 0.5
    assert [v["fractured"] for v in doc["vertebrae"]] == [None] * 7
    po = doc["patient_overall"]
    assert po["status"] == "indeterminate" and po["fractured"] is None and po["reasons"]
    assert "Indeterminate - read the images" in stdout and "Why no verdict" in stdout
    for reason in doc["patient_overall"]["reasons"]:
        assert reason.replace("–", "-") in stdout

    rows = list(csv.reader((out / "verdicts.csv").open()))
    assert rows[0] == ["row_id", "fractured"]
    assert len(rows) == 9 and rows[-1][0].endswith("_patient_overall")
    assert float(dict(rows[1:])[f"{doc['study_instance_uid']}_C3"]) == pytest.approx(0.9, abs=1e-3)

    seg_path = next(p for p in out.glob("*_seg.dcm") if "fracture" not in p.name)
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and {s.SegmentLabel for s in seg.SegmentSequence} >= {"C3", "C4"}
    import highdicom as hd

    hd.seg.segread(seg_path)
    sr = pydicom.dcmread(next(out.glob("*_sr.dcm")))
    assert sr.Modality == "SR"
    assert next(out.glob("*_report.pdf")).read_bytes()[:5] == b"%PDF-"
    assert list(out.glob("*_labels.nii.gz")) and list(out.glob("*_key_C3.png"))


def test_a_dicom_series_without_a_frame_of_reference_says_why_it_has_no_seg(
    capsys, tmp_path, bundle
):
    folder = tmp_path / "ct"
    write_ct_series(folder, n_slices=24, rows=32, cols=32)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(path)
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, folder, "--model", bundle, "--out", out)
    assert code == 0
    assert "DICOM SEG not written: The source images carry no Frame of Reference UID" in stderr
    assert "DICOM SR not written" not in stderr
    assert list(out.glob("*_sr.dcm")) and list(out.glob("*_report.pdf"))
    assert not [p for p in out.glob("*_seg.dcm")]


def test_a_zip_gives_the_same_verdicts_as_the_folder(capsys, tmp_path, bundle, series):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in series.iterdir():
            zf.write(f, f"study/{f.name}")
    code, _, _ = _run(capsys, archive, "--model", bundle, "--out", tmp_path / "z", "--no-exports")
    assert code == 0
    code, _, _ = _run(capsys, series, "--model", bundle, "--out", tmp_path / "f", "--no-exports")
    zipped, folder = _result(tmp_path / "z"), _result(tmp_path / "f")
    assert zipped["vertebrae"] == folder["vertebrae"]
    assert sorted(p.name for p in (tmp_path / "z").iterdir()) == ["result.json", "verdicts.csv"]


def test_a_png_slice_is_analysed_without_dicom_exports(capsys, tmp_path, bundle):
    img = np.zeros((128, 128), np.uint8)
    cv2.circle(img, (64, 64), 50, 90, -1)  # soft tissue (~135 HU in the 8-bit bone window)
    cv2.circle(img, (64, 70), 14, 200, 5)  # a bone ring (~910 HU)
    png = tmp_path / "slice.png"
    cv2.imwrite(str(png), img)
    code, stdout, _ = _run(capsys, png, "--model", bundle, "--out", tmp_path / "p", "--json")
    assert code == 0
    doc = json.loads(stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["vertebrae"][2]["present"] is True  # viewed and segmented, yet …
    assert doc["patient_overall"]["status"] == "indeterminate"
    assert doc["patient_overall"]["fractured"] is None
    assert "a fracture verdict needs a CT series" in doc["patient_overall"]["reasons"][0]
    assert doc["vertebrae"][2]["status"] == "indeterminate"
    assert any("Hounsfield" in w or "HU" in w for w in doc["warnings"])
    names = {p.name for p in (tmp_path / "p").iterdir()}
    assert "result.json" in names and not any(n.endswith(".dcm") for n in names)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", ""),
        (lambda d: (d / "empty").mkdir() or d / "empty", ""),
    ],
)
def test_bad_input_exits_2_with_a_plain_message(capsys, tmp_path, bundle, make, words):
    path = make(tmp_path)
    code, _, err = _run(capsys, path, "--model", bundle, "--out", tmp_path / "o")
    assert code == 2
    assert err.startswith("cspine: ") and "Traceback" not in err
    assert words.lower() in err.lower()
    assert not (tmp_path / "o" / "result.json").exists()


def test_a_tampered_model_exits_2(capsys, tmp_path, bundle, series):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "model.onnx").write_bytes(b"not the model")
    code, _, err = _run(capsys, series, "--model", copy, "--out", tmp_path / "o")
    assert code == 2 and "does not match" in err


CSPINE = [sys.executable, "-c", "import sys; from cspine_desktop.cli import main; sys.exit(main())"]


def test_the_real_command_line_has_no_traceback_on_bad_input(tmp_path, bundle):
    proc = subprocess.run(
        [*CSPINE, "analyze", str(tmp_path / "nope"), "--model", str(bundle)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("cspine: ") and "does not exist" in proc.stderr


def test_a_single_segmented_vertebra_still_gets_seg_and_sr(capsys, tmp_path, series):
    """A SEG with one segment keeps it in the shared groups; the SR must still reference it."""
    one = write_bundle(
        tmp_path / "one", {"model.onnx": threshold_onnx(cls_prob=CLS, dense_label=None)}
    )
    out = tmp_path / "out"
    code, _, err = _run(capsys, series, "--model", one, "--out", out)
    assert code == 0, err
    sr = pydicom.dcmread(next(p for p in out.glob("*sr*.dcm")))
    assert sr.Modality == "SR"
    assert [v["name"] for v in _result(out)["vertebrae"] if v["present"]] == ["C3"]


def test_six_mm_slices_give_no_verdict_and_say_why(capsys, tmp_path, bundle):
    folder = tmp_path / "thick"
    write_ct_series(folder, n_slices=6, rows=32, cols=32, spacing=(6.0, 2.5, 2.5))
    code, stdout, _ = _run(capsys, folder, "--model", bundle, "--out", tmp_path / "o")
    assert code == 0
    doc = _result(tmp_path / "o")
    reasons = doc["patient_overall"]["reasons"]
    assert doc["patient_overall"]["status"] == "indeterminate"
    assert any("6.0 mm thick" in r and "at most 5 mm" in r for r in reasons)
    assert "indeterminate" in stdout and "6.0 mm thick" in stdout
