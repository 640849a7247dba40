"""``cspine-evaluate stages export --version/--note``: a new version never carries the notes
that described the previous version's files."""

from __future__ import annotations

import pytest

from model_training.stages import build_parser
from model_training.stages.export_classifier import versioned

OLD = {"version": "0.4.0", "notes": {"Shipped files": "classifier.int8.onnx passed its gate"}}


def test_a_new_version_drops_the_old_notes_and_takes_the_new_ones():
    out = versioned(OLD, "0.6.0", ["Shipped files=classifier.onnx, fp16 weights", "Version=0.6.0"])
    assert out == {
        "version": "0.6.0",
        "notes": {"Shipped files": "classifier.onnx, fp16 weights", "Version": "0.6.0"},
    }
    assert OLD["notes"] == {"Shipped files": "classifier.int8.onnx passed its gate"}


def test_the_same_version_keeps_its_notes_and_a_note_without_a_key_is_refused():
    assert versioned(OLD, None, None) == OLD
    assert versioned(OLD, "0.4.0", ["Extra=x"])["notes"] == {**OLD["notes"], "Extra": "x"}
    with pytest.raises(ValueError, match="KEY=TEXT"):
        versioned(OLD, "0.6.0", ["no key here"])


def test_the_export_step_takes_version_and_repeated_notes():
    argv = "export --classifier r/best.keras --bundle b --version 0.6.0 --note A=1 --note B=2"
    args = build_parser().parse_args(argv.split())
    assert args.version == "0.6.0" and args.note == ["A=1", "B=2"]


def test_the_card_says_which_backend_and_settings_trained_the_classifier(tmp_path):
    from cspine_desktop.imaging.crops import CropConfig
    from model_training.stages.export_classifier import _stage2_section

    class Model:
        def count_params(self) -> int:
            return 7

    (tmp_path / "history.json").write_text('[{"epoch": 1}]')
    config = {
        "classifier": {"backbone": "densenet121"},
        "keras": {"version": "3", "backend": "torch", "devices": ["gpu"]},
        "args": {"run": "/somewhere/run", "batch": "128", "steps": "200", "lr": "0.001"},
    }
    args = build_parser().parse_args(["export", "--classifier", "c", "--bundle", "b"])
    section = _stage2_section({}, config, CropConfig(), Model(), tmp_path, args, {})
    training = section["training"]
    assert training["keras"]["backend"] == "torch" and training["epochs"] == 1
    assert training["settings"]["batch"] == "128"
    assert "run" not in training["settings"]  # where the run lived is no business of the card
