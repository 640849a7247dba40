"""cspine demo: the bundled phantom study, analysed, next to its known truth."""

from __future__ import annotations

import json
import sys

import pytest
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop import DISCLAIMER
from cspine_desktop.analysis.result import AnalysisResult
from cspine_desktop.cli import main
from cspine_desktop.cli.demo import compare_with_truth
from cspine_desktop.imaging import load_study
from cspine_desktop.inference import demo_study_path, demo_truth_path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(tmp_path_factory.mktemp("m") / "b", {"model.onnx": threshold_onnx()})


def test_the_bundled_demo_study_matches_its_truth_file():
    truth = json.loads(demo_truth_path().read_text())
    volume = load_study(demo_study_path())
    assert volume.meta["StudyInstanceUID"] == truth["study_instance_uid"]
    assert volume.shape[0] == truth["slices"]
    assert sum(truth["fractured"].values()) == 1 and truth["patient_overall"] is True


def test_demo_prints_verdicts_next_to_the_truth(capsys, tmp_path, bundle):
    code = main(["demo", "--model", str(bundle), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Known truth of this synthetic study" in out and "Agreement:" in out
    assert DISCLAIMER in out
    assert (tmp_path / "out" / "result.json").is_file()


def test_demo_json_comparison_is_consistent(capsys, tmp_path, bundle):
    assert (
        main(
            ["demo", "--json", "--no-exports", "--model", str(bundle), "--out", str(tmp_path / "o")]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    result = AnalysisResult.from_dict(doc["result"])
    assert doc["comparison"] == compare_with_truth(result, doc["truth"])
    for v in result.vertebrae:
        row = doc["comparison"][v.name]
        assert row["model"] == v.fractured and row["truth"] == doc["truth"]["fractured"][v.name]
        assert row["agree"] == (row["model"] == row["truth"])


def test_without_assets_or_phantom_code_the_demo_says_what_is_missing(
    capsys, tmp_path, monkeypatch, bundle
):
    monkeypatch.setenv("CSPINE_ASSETS_DIR", str(tmp_path / "no-assets"))
    monkeypatch.setitem(sys.modules, "model_training.demo_study", None)  # an installed app
    code = main(["demo", "--model", str(bundle)])
    assert code == 2
    assert "demo study is not installed" in capsys.readouterr().err


def test_an_indeterminate_verdict_does_not_run_into_the_truth_column():
    from cspine_desktop.cli.demo import format_comparison

    comparison = {
        "C5": {"model": None, "truth": False, "agree": False},
        "patient_overall": {"model": True, "truth": True, "agree": True},
    }
    line = next(x for x in format_comparison(comparison, {}).splitlines() if x.startswith("C5"))
    assert line.split() == ["C5", "indeterminate", "no", "fracture", "NO"]
