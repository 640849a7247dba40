"""What both stream trainers share (``model_training.stream_training``): resuming a run."""

from __future__ import annotations

import json

import pytest

from model_training import train_classifier, train_segmenter


@pytest.mark.parametrize(
    ("trainer", "words"),
    [(train_classifier.main, "cannot resume"), (train_segmenter.main, "cannot use")],
)
def test_resuming_a_run_whose_config_does_not_fit_is_a_plain_error(
    tmp_path, capsys, trainer, words
):
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"epoch": 1, "seeds_used": 3, "lr": 1e-3}))
    (run / "config.json").write_text(json.dumps({"stream": {}}))  # no grid or crops, no network
    assert trainer(["--run", str(run), "--resume"]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("trainer", [train_classifier.main, train_segmenter.main])
def test_resuming_needs_the_run_s_state_and_config(tmp_path, capsys, trainer):
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"epoch": 1, "seeds_used": 3, "lr": 1e-3}))
    assert trainer(["--run", str(run), "--resume"]) == 2  # config.json is missing
    assert "config.json not found" in capsys.readouterr().err
