"""cspine bench: every backend measured side by side, rates against the matmul ceiling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories.model_bundle import classifier_onnx, threshold_onnx, write_bundle

from cspine_desktop.cli import main
from cspine_desktop.inference import load_bundle
from cspine_desktop.inference.backends import ov
from cspine_desktop.inference.bench import (
    analyze_auto,
    format_table,
    matmul_gflops,
    run_bench,
    synthetic_study,
)

FLOPS = 123_000_000


@pytest.fixture
def bench_bundle(tmp_path):
    return write_bundle(
        tmp_path / "b",
        {"model.onnx": threshold_onnx(), "model.int8.onnx": threshold_onnx(bone_level=0.46)},
        card={"flops_per_slice": FLOPS},
    )


def test_matmul_ceiling_is_measured():
    assert matmul_gflops(n=256, repeats=2) > 0.1


def test_synthetic_study_is_a_neck_like_ct():
    v = synthetic_study(n_slices=10, size=64)
    assert v.shape == (10, 64, 64) and v.hu.dtype.name == "int16"
    assert v.hu.max() == pytest.approx(720, abs=25) and v.hu.min() <= -980


def test_every_backend_and_precision_is_benchmarked_side_by_side(bench_bundle):
    report = run_bench(load_bundle(bench_bundle), n_slices=12, size=64)
    runs = {r["key"]: r for r in report["runs"]}
    measured = {"onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8"}
    assert measured | {"openvino-bf16"} == set(runs)
    if not ov.has_bf16():  # listed, with the reason, where the CPU cannot run it
        assert "not available on this CPU" in runs["openvino-bf16"]["error"]
    else:
        measured.add("openvino-bf16")
    for key in measured:
        r = runs[key]
        assert r["error"] is None and r["ms_per_slice"] > 0 and r["s_per_study"] > 0
        assert r["gflops"] == pytest.approx(FLOPS / (r["ms_per_slice"] / 1000) / 1e9)
        assert r["ceiling_fraction"] == pytest.approx(r["gflops"] / report["matmul_gflops"])
    # what the gate decided: the reference passes, the int8 file and OpenVINO were not judged
    assert runs["onnx-fp32"]["gate"] == "passed" and runs["openvino-fp32"]["gate"] == "unjudged"
    table = format_table(report)
    for label in ("onnx-cpu-fp32", "onnx-cpu-int8", "openvino-cpu-fp32", "openvino-cpu-int8"):
        assert label in table
    assert "ceiling" in table and "gate" in table


def test_the_stage2_classifier_is_benchmarked_per_crop_plane(tmp_path):
    folder = write_bundle(
        tmp_path / "two",
        {"model.onnx": threshold_onnx(), "classifier.onnx": classifier_onnx()},
        card={"stage2": {"crops": {"size": 32}}},
    )
    card = json.loads((folder / "model_card.json").read_text())
    card["files"]["classifier.onnx"]["stage"] = 2
    (folder / "model_card.json").write_text(json.dumps(card))
    report = run_bench(
        load_bundle(folder), n_slices=8, size=48, only=["onnx-fp32", "openvino-fp32"]
    )
    stage2 = {r["key"]: r for r in report["runs"] if r["stage"] == 2}
    assert set(stage2) == {"onnx-fp32", "openvino-fp32"}
    assert all(r["error"] is None and r["ms_per_slice"] > 0 for r in stage2.values())


def test_cspine_analyze_with_auto_is_timed_in_fresh_processes(bench_bundle, tmp_path):
    study = tmp_path / "study.nii.gz"
    import nibabel as nib

    v = synthetic_study(n_slices=12, size=64)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(v.hu.transpose(2, 1, 0)), v.affine), study)
    rows = analyze_auto(study, bench_bundle)
    assert [r["run"] for r in rows] == ["first (empty cache)", "cached choice"]
    for r in rows:
        assert r["exit_code"] == 0 and r["wall_s"] > 0, r
        assert r["backend"].startswith("onnx-cpu-")  # auto: only gate-passed pairs


def test_cspine_bench_json(capsys, bench_bundle):
    code = main(
        [
            "bench",
            "--json",
            "--model",
            str(bench_bundle),
            "--slices",
            "8",
            "--size",
            "48",
            "--only",
            "onnx-fp32",
            "--repeats",
            "2",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in doc["runs"]] == ["onnx-fp32"] and doc["repeats"] == 2
    assert doc["study"] == {
        "slices": 8,
        "size": 48,
        "grid_planes_run": doc["study"]["grid_planes_run"],
    }
