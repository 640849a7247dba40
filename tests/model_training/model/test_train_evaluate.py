"""``cspine-train`` for one epoch on a tiny phantom set, then ``cspine-evaluate`` on another.

64 px model input (2.5 mm pixels, the same 160 mm field of view as the default), a few
studies: this checks the whole path (data → cache → split → fit → checkpoints → validation
thresholds → test metrics → report, plots, bundle), not the model's quality.
"""

from __future__ import annotations

import csv
import json

import pytest

from cspine_desktop.analysis.aggregate import PATIENT_KEY
from cspine_desktop.vertebrae import NAMES
from model_training.evaluate import main as evaluate_main
from model_training.phantom import PhantomConfig, write_rsna_dataset
from model_training.train import main as train_main

pytestmark = pytest.mark.slow  # ~1–2 min on 2 cores (DenseNet121 graph building dominates)


@pytest.fixture(scope="module")
def phantom_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    cfg = PhantomConfig.tiny(fracture_prevalence=0.5)
    write_rsna_dataset(root / "train", 8, 101, cfg)
    write_rsna_dataset(root / "test", 4, 202, cfg)
    return root


@pytest.fixture(scope="module")
def trained_run(phantom_sets):
    run = phantom_sets / "run"
    argv = [
        "--data",
        str(phantom_sets / "train"),
        "--out",
        str(run),
        "--input-size",
        "64",
        "--pixel-spacing",
        "2.5",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--slices-per-study",
        "2",
        "--val-fraction",
        "0.25",
        "--workers",
        "1",
        "--precision",
        "float32",
    ]
    assert train_main(argv) == 0
    return run


def test_training_writes_a_resumable_run(trained_run):
    for name in (
        "train_config.yaml",
        "model_config.json",
        "split.json",
        "history.csv",
        "checkpoints/last.keras",
        "checkpoints/best.keras",
    ):
        assert (trained_run / name).exists(), name
    rows = list(csv.DictReader((trained_run / "history.csv").read_text().splitlines()))
    assert len(rows) == 1 and float(rows[0]["epoch_time_s"]) > 0
    assert float(rows[0]["loss"]) > 0 and "val_loss" in rows[0]
    split = json.loads((trained_run / "split.json").read_text())
    assert split["val"] and not set(split["val"]) & set(split["train"])
    # weights + optimiser state of the last epoch stay, so the run can be extended
    assert any((trained_run / "backup").rglob("*.weights.h5"))


def test_resume_continues_after_the_last_epoch(trained_run):
    argv = ["--resume", str(trained_run), "--epochs", "2", "--workers", "1"]
    assert train_main(argv) == 0
    rows = list(csv.DictReader((trained_run / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1"]


def test_time_budget_stops_between_epochs_and_resume_finishes(trained_run, capsys):
    """Training in chunks: a budget smaller than one epoch still runs one epoch, then stops
    (exit 3, with the command that continues); ``--resume`` picks up at the next epoch."""
    from model_training.model.fit import epochs_done

    argv = ["--resume", str(trained_run), "--epochs", "4", "--workers", "1"]
    assert train_main([*argv, "--max-minutes", "0.001"]) == 3
    assert "--resume" in capsys.readouterr().err
    rows = list(csv.DictReader((trained_run / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and epochs_done(trained_run) == 3
    assert train_main([*argv, "--max-minutes", "0"]) == 0
    rows = list(csv.DictReader((trained_run / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert all(r["val_fracture_cls_auc"] for r in rows)


def test_evaluate_writes_report_metrics_plots_and_bundle(trained_run, phantom_sets, tmp_path):
    out, bundle = tmp_path / "eval", tmp_path / "bundle"
    argv = [
        "--run",
        str(trained_run),
        "--test",
        str(phantom_sets / "test"),
        "--out",
        str(out),
        "--bootstrap",
        "20",
        "--workers",
        "1",
        "--bundle",
        str(bundle),
    ]
    assert evaluate_main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_studies"] == 4
    assert set(m["dice"]) == set(NAMES)
    assert set(m["thresholds"]) == {*NAMES, PATIENT_KEY}
    assert 0 <= m["rsna_weighted_log_loss"] < 50
    assert m["patient"]["tp"] + m["patient"]["fn"] == m["patient"]["positives"]
    report = (out / "report.md").read_text()
    assert "Not for diagnostic use" in report and "## Targets" in report
    for png in ("roc_patient.png", "calibration.png", "confusion_segmentation.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((bundle / "model_card.json").read_text())
    assert card["preprocessing"]["input_size"] == 64
    assert set(card["thresholds"]) == {*NAMES, PATIENT_KEY}
    assert card["files"]["model.keras"]["sha256"]
    from cspine_desktop.inference.bundle import load_bundle

    b = load_bundle(bundle)
    assert b.verified_path(b.find("keras")).is_file()


def test_evaluate_refuses_test_data_seen_in_training(trained_run, phantom_sets, tmp_path):
    argv = [
        "--run",
        str(trained_run),
        "--test",
        str(phantom_sets / "train"),
        "--out",
        str(tmp_path / "e"),
        "--workers",
        "1",
    ]
    assert evaluate_main(argv) == 2


def test_bad_inputs_exit_2(tmp_path, capsys):
    assert train_main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        evaluate_main(
            ["--run", str(tmp_path), "--test", str(tmp_path), "--out", str(tmp_path / "e")]
        )
        == 2
    )
