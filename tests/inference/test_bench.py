"""cspine bench: every backend measured side by side, rates against the matmul ceiling."""

from __future__ import annotations

import json

import pytest
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop.cli import main
from cspine_desktop.inference import load_bundle
from cspine_desktop.inference.bench import format_table, matmul_gflops, run_bench, synthetic_study

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


def test_every_onnx_file_is_benchmarked_side_by_side(bench_bundle):
    report = run_bench(load_bundle(bench_bundle), n_slices=12, size=64)
    runs = {r["key"]: r for r in report["runs"]}
    assert set(runs) == {"onnx-fp32", "onnx-int8"}
    for r in runs.values():
        assert r["error"] is None and r["ms_per_slice"] > 0 and r["s_per_study"] > 0
        assert r["gflops"] == pytest.approx(FLOPS / (r["ms_per_slice"] / 1000) / 1e9)
        assert r["ceiling_fraction"] == pytest.approx(r["gflops"] / report["matmul_gflops"])
    table = format_table(report)
    assert "onnx-cpu-fp32" in table and "onnx-cpu-int8" in table and "ceiling" in table


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
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in doc["runs"]] == ["onnx-fp32"]
    assert doc["study"] == {
        "slices": 8,
        "size": 48,
        "grid_planes_run": doc["study"]["grid_planes_run"],
    }
