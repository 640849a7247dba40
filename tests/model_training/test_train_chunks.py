"""``cspine-train --max-minutes``: the budget reaches the configuration (and a resumed run's
saved one), and a run stopped at it exits 3 with the command that continues it."""

from __future__ import annotations

from pathlib import Path

import pytest

import model_training.train as train_cli
from model_training.model.config import TrainConfig, TrainConfigError
from model_training.train import EXIT_TIME_BUDGET, build_parser, main, resolve_config


def test_max_minutes_flag_is_recorded_and_overrides_the_resumed_run(tmp_path):
    cfg = resolve_config(build_parser().parse_args(["--data", "d", "--max-minutes", "110"]))
    assert cfg.max_minutes == 110
    run = tmp_path / "run"
    run.mkdir()
    cfg.replace(out_dir=str(run)).save(run / "train_config.yaml")
    resumed = resolve_config(build_parser().parse_args(["--resume", str(run)]))
    assert resumed.max_minutes == 110  # every chunk of a chunked run keeps its budget
    resumed = resolve_config(
        build_parser().parse_args(["--resume", str(run), "--max-minutes", "0"])
    )
    assert not resumed.max_minutes  # 0: run to the end
    with pytest.raises(TrainConfigError, match="max_minutes"):
        TrainConfig(max_minutes=-1)


@pytest.mark.parametrize(("finished", "code"), [(False, EXIT_TIME_BUDGET), (True, 0)])
def test_stopping_at_the_budget_exits_3_and_says_how_to_resume(
    tmp_path, monkeypatch, capsys, finished, code
):
    seen: list[TrainConfig] = []

    def fake_train_run(cfg: TrainConfig, workers: int = 2) -> tuple[Path, bool]:
        seen.append(cfg)
        return Path(cfg.out_dir), finished

    monkeypatch.setattr(train_cli, "train_run", fake_train_run)
    argv = ["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--max-minutes", "1.5"]
    assert main(argv) == code
    assert seen[0].max_minutes == 1.5
    err = capsys.readouterr().err
    assert ("--resume" in err) is (not finished)
