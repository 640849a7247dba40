"""``cspine-evaluate stages export``: a new version never carries the notes that described the
previous version's files, nor the previous classifier's int8 file."""

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


@pytest.mark.slow
def test_a_float_only_export_leaves_no_earlier_int8_classifier_behind(tmp_path):
    """``stages export --no-int8`` replaces the classifier: the previous classifier's int8 file
    (in the folder, and in the card) must not stay beside it, or a bundle ships a stale file."""
    import json

    from model_training.stages.export_classifier import export
    from model_training.train_classifier import main as train

    run = tmp_path / "run"
    tiny = "--backbone tiny --crop-size 32 --sagittal-mm 0 --steps 1 --batch 4 --epochs 1"
    evals = "--val-studies 2 --probe-studies 1 --pool 50"
    assert train(["--run", str(run), *tiny.split(), *evals.split()]) == 0
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "classifier.int8.onnx").write_bytes(b"an earlier classifier")
    old = {"format": "onnx", "precision": "int8", "sha256": "0", "stage": 2}
    card = {"version": "0.1.0", "files": {"classifier.int8.onnx": old}}
    (bundle / "model_card.json").write_text(json.dumps(card))
    argv = f"export --classifier {run / 'best.keras'} --bundle {bundle} --no-int8 --gate-studies 2"
    export(build_parser().parse_args(argv.split()))
    written = json.loads((bundle / "model_card.json").read_text())
    assert set(written["files"]) == {"classifier.onnx"}
    assert not (bundle / "classifier.int8.onnx").exists()
    assert (bundle / "classifier.onnx").is_file()


def _saved_scores(path, seeds, masks="stage1"):
    """Raw validation scores as ``stages calibrate --save`` writes them: every second study has
    one fractured vertebra, scored higher than the intact ones."""
    import numpy as np

    rng = np.random.default_rng(0)
    truth = np.zeros((len(seeds), 7), bool)
    truth[1::2, 3] = True
    raw = np.clip(rng.uniform(0.05, 0.5, truth.shape) + 0.45 * truth, 0, 1)
    np.savez(path, raw=raw, present=np.ones_like(truth), truth=truth, seeds=seeds, masks=masks)


def test_calibrate_chooses_the_operating_point_again_from_saved_scores(tmp_path):
    """``--scores`` reads what an earlier ``--save`` wrote: no study is scored again, and the
    card says which seeds and masks the point was chosen on, and the vertebra floor."""
    import json

    from model_training.stages.calibrate import calibrate_bundle

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model_card.json").write_text(json.dumps({"stage2": {}, "metrics": {}}))
    _saved_scores(tmp_path / "val.npz", list(range(500, 540)))
    argv = f"calibrate --bundle {bundle} --scores {tmp_path / 'val.npz'}"
    args = build_parser().parse_args([*argv.split(), "--min-vertebra-sensitivity", "0.8"])
    card = calibrate_bundle(args)
    assert json.loads((bundle / "model_card.json").read_text()) == card
    op = card["metrics"]["operating_point"]
    assert op["chosen_on"] == "validation phantoms (seeds 500–539), stage 2 on stage 1's masks"
    assert op["min_vertebra_sensitivity"] == 0.8
    assert card["stage2"]["calibration"]["seeds"] == [500, 539]
    assert card["stage2"]["calibration"]["a"] > 0  # higher raw score, higher probability
    assert card["metrics"]["validation"]["vertebra_pooled"]["sensitivity"]["value"] >= 0.8
    assert card["metrics"]["validation"]["patient"]["sensitivity"]["value"] >= 0.9


def test_calibrate_refuses_saved_scores_without_their_seeds(tmp_path):
    import numpy as np

    from model_training.stages.calibrate import calibrate_bundle

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model_card.json").write_text('{"stage2": {}, "metrics": {}}')
    np.savez(
        tmp_path / "old.npz", raw=np.zeros((2, 7)), present=np.ones((2, 7)), truth=np.zeros((2, 7))
    )
    args = build_parser().parse_args(
        f"calibrate --bundle {bundle} --scores {tmp_path / 'old.npz'}".split()
    )
    with pytest.raises(ValueError, match="seeds"):
        calibrate_bundle(args)
