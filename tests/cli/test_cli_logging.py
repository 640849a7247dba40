"""The terminal shows the result first: library logs and warnings go to the rotating log file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop.cli import LOG_BACKUPS, LOG_MAX_BYTES, log_file_path, setup_logging
from cspine_desktop.settings import Settings


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, "_cspine", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    logging.captureWarnings(False)


def _emit() -> None:
    logging.getLogger("highdicom.seg.sop").info("library chatter")
    logging.getLogger("cspine_desktop.server.endpoint").info("own progress")
    logging.getLogger("cspine_desktop.imaging").warning("own warning")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("person name has odd characters", UserWarning, stacklevel=1)


def test_terminal_gets_own_warnings_only_and_the_file_gets_everything(capsys, restore_logging):
    settings = Settings.load()
    path = setup_logging(settings)
    assert path == log_file_path(settings) and path.parent.is_dir()
    _emit()
    err = capsys.readouterr().err
    assert "own warning" in err
    assert "library chatter" not in err and "own progress" not in err and "person name" not in err
    text = path.read_text(encoding="utf-8")
    for line in ("library chatter", "own progress", "own warning", "person name"):
        assert line in text
    handler = next(
        h for h in logging.getLogger().handlers if getattr(h, "baseFilename", None) == str(path)
    )
    assert handler.maxBytes == LOG_MAX_BYTES and handler.backupCount == LOG_BACKUPS


def test_verbose_shows_everything_on_the_terminal(capsys, restore_logging):
    setup_logging(Settings.load(), verbose=True)
    setup_logging(Settings.load(), verbose=True)  # a second call does not double the lines
    _emit()
    err = capsys.readouterr().err
    for line in ("library chatter", "own progress", "own warning", "UserWarning: person name"):
        assert err.count(line) == 1, err


def test_internal_error_traceback_goes_to_the_file_only(capsys, restore_logging, monkeypatch):
    import cspine_desktop.cli as cli
    from cspine_desktop.cli import users as users_cli

    def boom(args, settings):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(users_cli, "_list", boom)
    code = cli.main(["users", "list"])
    err = capsys.readouterr().err
    path = log_file_path(Settings.load())
    assert code == 1
    assert "Traceback" not in err and "secret internals" not in err
    assert "internal error" in err and str(path) in err
    assert "secret internals" in path.read_text(encoding="utf-8")


def test_analyze_prints_the_verdict_table_first_and_nothing_on_stderr(tmp_path):
    """A real run in a fresh process (pytest's own log capture would hide what a user sees):
    highdicom's INFO lines and pydicom's UserWarnings must not come before the table."""
    series = tmp_path / "study"
    write_ct_series(series, n_slices=24, rows=32, cols=32)
    bundle = write_bundle(tmp_path / "bundle", {"model.onnx": threshold_onnx()})
    env = {**os.environ, "CSPINE_DATA_DIR": str(tmp_path / "data")}
    env.pop("PYTHONWARNINGS", None)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cspine_desktop.cli import main; sys.exit(main())",
            "analyze",
            str(series),
            "--model",
            str(bundle),
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == ""
    first = run.stdout.lstrip().splitlines()[0]
    assert " INFO " not in first and "Warning" not in first
    log = Path(env["XDG_STATE_HOME"]) / "cspine" / "log" / "cspine.log"
    assert "highdicom" in log.read_text(encoding="utf-8")
