"""``cspine-train-segmenter`` on a tiny grid: the stream's planes come from the one
preprocessing with their targets, the evaluation planes built in worker processes are the ones
built in one, the Dice is pooled per level, and a run records its backend and resumes where it
stopped."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from cspine_desktop.imaging.preprocess import PreprocessConfig, model_input, prepare_volume
from model_training.datasets.grid_stream import (
    TRAIN_SEED0,
    VAL_SEED0,
    GridStreamConfig,
    evaluation_planes,
    spine_planes,
    study_planes,
    whole_studies,
)
from model_training.train_segmenter import dice_by_level, judge_levels, main, stray_pixels

PRE = PreprocessConfig(input_size=32, pixel_spacing_mm=5.0)
RUN_ONLY = [
    "--steps", "1", "--batch", "4", "--val-studies", "2", "--probe-studies", "1", "--pool", "64",
    "--judge-studies", "1", "--run-eagerly",
]  # fmt: skip
TINY = ["--input-size", "32", "--pixel-mm", "5", *RUN_ONLY]


def test_training_planes_are_the_inference_input_with_their_targets():
    stream = GridStreamConfig(planes_per_study=6, augment=False)
    a = study_planes(TRAIN_SEED0 + 3, PRE, stream, train=True)
    b = study_planes(TRAIN_SEED0 + 3, PRE, stream, train=True)
    assert len(a) == 6
    np.testing.assert_array_equal(a.x, b.x)  # the seed decides the planes
    assert a.labels.max() >= 1  # most planes go through the spine
    x, y = a.batch()
    assert x.shape == (6, 32, 32, PRE.n_channels) and x.dtype == np.float32
    assert y["vertebrae"].shape == (6, 32, 32) and y["fracture_cls"].shape == (6, 7)
    # unaugmented, a training plane is exactly what inference feeds the model
    from model_training.phantom.study import generate_study

    st = generate_study(TRAIN_SEED0 + 3, stream.phantom_config())
    prepared = prepare_volume(st.to_volume(), PRE)
    planes = [
        z for z in range(prepared.n_slices)
        if np.allclose(model_input(prepared, [z])[0], a.x[0].astype(np.float32), atol=1e-3)
    ]  # fmt: skip
    assert planes, "the first training plane is not a plane of the prepared study"


def test_evaluation_planes_in_worker_processes_are_the_same_planes():
    seeds = [VAL_SEED0, VAL_SEED0 + 1]
    one = evaluation_planes(seeds, PRE, GridStreamConfig(), workers=1)
    two = evaluation_planes(seeds, PRE, GridStreamConfig(), workers=2)
    assert len(one) > 0
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(one.study, two.study)


def test_evaluation_covers_the_whole_study_not_only_the_spine():
    # stage 1 runs on every plane; labels it puts in the skull or chest must cost it Dice
    from model_training.phantom.study import generate_study

    stream = GridStreamConfig()
    prepared = prepare_volume(generate_study(VAL_SEED0, stream.phantom_config()).to_volume(), PRE)
    planes = study_planes(VAL_SEED0, PRE, stream, train=False)
    every_other = range(0, prepared.n_slices, 2)
    assert len(planes) == len(every_other)
    np.testing.assert_allclose(
        planes.x.astype(np.float32), model_input(prepared, every_other), atol=1e-2
    )


def test_stray_pixels_are_counted_on_planes_without_a_vertebra_and_lower_the_dice():
    truth = np.zeros((3, 4, 4), np.uint8)
    truth[1, :2] = 1  # C1 on the middle plane only
    pred = truth.copy()
    assert stray_pixels(truth, pred) == 0.0
    pred[0, 3, :3] = 1  # 3 px of "C1" in the skull
    assert stray_pixels(truth, pred) == 1.5  # over the two planes without a vertebra
    assert dice_by_level(truth, pred)["dice_C1"] == 16 / 19
    assert np.isnan(stray_pixels(truth[1:2], pred[1:2]))


class _Labels:
    """A stand-in for stage 1 that labels each plane as ``labels`` says."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def predict(self, x, batch_size, verbose):
        assert len(x) == len(self.labels)
        return {"vertebrae": np.eye(8, dtype=np.float32)[self.labels]}


def test_stage_one_is_judged_by_the_checks_an_analysis_runs():
    (study,) = whole_studies([VAL_SEED0], PreprocessConfig(), GridStreamConfig())
    assert study.x.shape[0] == study.hu.shape[0] == study.truth.shape[0]
    assert judge_levels(_Labels(study.truth), [study]) == {"assessed": 1.0, "misnamed": 0.0}
    swapped = study.truth.copy()
    swapped[study.truth == 4], swapped[study.truth == 5] = 5, 4  # C4 and C5 swapped
    judged = judge_levels(_Labels(swapped), [study])
    assert judged["assessed"] == 0.0 and judged["misnamed"] == 0.0
    assert judge_levels(_Labels(study.truth), []) == {}


def test_spine_planes_reach_ten_mm_beyond_the_labels():
    lab = np.zeros((40, 4, 4), np.uint8)
    lab[10:20, 1, 1] = 3
    assert spine_planes(lab, 2.0).tolist() == list(range(5, 25))
    assert spine_planes(np.zeros((5, 2, 2), np.uint8), 2.0).tolist() == list(range(5))


def test_dice_is_pooled_per_level_and_averaged_over_the_levels_present():
    truth = np.zeros((2, 4, 4), np.uint8)
    truth[0, :2] = 1  # 8 px of C1
    truth[1, :1] = 2  # 4 px of C2
    pred = truth.copy()
    pred[1, :1] = 0  # C2 missed
    pred[1, 3] = 3  # C3 where there is none
    d = dice_by_level(truth, pred)
    assert d["dice_C1"] == 1.0 and d["dice_C2"] == 0.0 and d["dice_C3"] == 0.0
    assert np.isnan(d["dice_C4"])
    assert d["dice_mean"] == pytest.approx(0.5)  # C1 and C2: the levels in the truth


@pytest.mark.slow
def test_a_run_records_its_backend_and_resumes_where_it_stopped(tmp_path):
    run = tmp_path / "run"
    assert main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["keras"]["backend"] == keras.backend.backend()
    assert config["preprocessing"]["input_size"] == 32
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1]
    assert {"val_dice_mean", "train_dice_mean", "val_dice_C7", "gap"} <= set(history[0])
    assert {"val_stray_px", "val_assessed", "val_misnamed"} <= set(history[0])
    assert np.isfinite(history[0]["loss"])
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and state["seeds_used"] >= 1
    assert (run / "best.keras").is_file() and (run / "last.keras").is_file()

    # resumed as the docs say, without repeating the grid: the run's own grid and model
    assert main(["--run", str(run), "--epochs", "2", "--resume", *RUN_ONLY]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]  # the next epoch, not a restart
    resumed = json.loads((run / "state.json").read_text())
    assert resumed["epoch"] == 2 and resumed["seeds_used"] >= state["seeds_used"]
    config = json.loads((run / "config.json").read_text())
    assert config["preprocessing"]["input_size"] == 32 and len(config["resumed_with"]) == 1
    assert config["keras"]["precision"] == "float32"

    # resumed in mixed precision (a GPU's bfloat16): the same weights go on, float32 outputs
    try:
        args = ["--run", str(run), "--epochs", "3", "--resume", "--precision", "bfloat16"]
        assert main([*args, *RUN_ONLY]) == 0
    finally:
        keras.mixed_precision.set_global_policy("float32")
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3] and np.isfinite(history[-1]["loss"])
    assert json.loads((run / "config.json").read_text())["keras"]["precision"] == "bfloat16"
    model = keras.models.load_model(run / "last.keras", compile=False)
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.layers)
    outputs = model.predict(np.zeros((1, 32, 32, 4), np.float32), verbose=0)
    assert {str(np.asarray(v).dtype) for v in dict(outputs).values()} == {"float32"}


def test_resume_without_a_run_is_a_plain_error(tmp_path, capsys):
    assert main(["--run", str(tmp_path / "none"), "--resume", *TINY]) == 2
    assert "not found" in capsys.readouterr().err


def test_pose_askew_streams_necks_posed_beyond_the_default_range(tmp_path):
    from model_training.phantom.config import ASKEW_POSE, PhantomConfig
    from model_training.train_segmenter import _configs, _parser

    args = _parser().parse_args(["--run", str(tmp_path / "r"), "--pose", "askew"])
    _pre, _model, stream = _configs(args, None)
    cfg = stream.phantom_config()
    assert stream.phantom == ASKEW_POSE  # stored with the run (config.json), so a resume keeps it
    default = PhantomConfig()
    for key, value in ASKEW_POSE.items():
        assert getattr(cfg, key) == value > getattr(default, key)
    plain = _configs(_parser().parse_args(["--run", str(tmp_path / "p")]), None)[2]
    assert plain.phantom_config() == default


def test_pose_leaning_leans_most_necks_and_the_spine_share_is_the_runs(tmp_path):
    from model_training.phantom.config import LEANING_POSE, PhantomConfig
    from model_training.train_segmenter import _configs, _parser

    argv = ["--run", str(tmp_path / "r"), "--pose", "leaning", "--spine-share", "0.5"]
    _pre, _model, stream = _configs(_parser().parse_args(argv), None)
    cfg = stream.phantom_config()
    assert stream.phantom == LEANING_POSE and stream.spine_share == 0.5
    default = PhantomConfig()
    assert cfg.gantry_tilt_probability == 0.6 > default.gantry_tilt_probability
    assert cfg.gantry_tilt_deg == default.gantry_tilt_deg  # as far, more often
