"""``cspine-train-classifier`` end to end on a tiny network: an epoch is recorded with the
backend that ran it, a chunk resumes where the last one stopped, and the evaluation sets built
in parallel are the ones built in one process."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from cspine_desktop.imaging.crops import CropConfig
from model_training.datasets.crops_stream import VAL_SEED0, StreamConfig, evaluation_planes
from model_training.model.classifier import ClassifierConfig, build_classifier
from model_training.train_classifier import main

RUN_ONLY = [
    "--steps", "2", "--batch", "8", "--val-studies", "3", "--probe-studies", "1", "--pool", "200",
]  # fmt: skip
TINY = ["--backbone", "tiny", "--crop-size", "32", "--sagittal-mm", "0", *RUN_ONLY]


def test_evaluation_planes_in_worker_processes_are_the_same_planes():
    crop, stream = CropConfig(size=32), StreamConfig()
    seeds = [VAL_SEED0, VAL_SEED0 + 1]
    one = evaluation_planes(seeds, crop, stream, workers=1)
    two = evaluation_planes(seeds, crop, stream, workers=2)
    assert len(one) > 0
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.study, two.study)
    np.testing.assert_array_equal(one.y, two.y)


def test_a_run_records_its_backend_and_resumes_where_it_stopped(tmp_path):
    run = tmp_path / "run"
    assert main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["keras"]["backend"] == keras.backend.backend()
    assert config["keras"]["devices"]  # what computed it, as the backend names it
    # float32 unless asked
    assert config["keras"]["precision"] == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    first = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in first] == [1]
    assert {"val_vertebra_auc_within_level", "gap", "studies_seen"} <= set(first[0])
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and state["seeds_used"] >= 1
    assert (run / "best.keras").is_file() and (run / "last.keras").is_file()

    # resumed without repeating the crops or the network: the run's own
    assert main(["--run", str(run), "--epochs", "2", "--resume", *RUN_ONLY]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]  # the next epoch, not a restart
    resumed = json.loads((run / "state.json").read_text())
    assert resumed["epoch"] == 2
    assert resumed["seeds_used"] >= state["seeds_used"]  # the stream continues its seeds


def test_a_run_from_earlier_weights_measures_them_first(tmp_path):
    """Epoch 0 is the starting weights scored on the same validation set: a run started from
    another run's ``best.keras`` scores exactly what that run chose it for."""
    first = tmp_path / "first"
    assert main(["--run", str(first), "--epochs", "1", *TINY]) == 0
    best = json.loads((first / "state.json").read_text())["best"]
    again = tmp_path / "again"
    init = ["--init-weights", str(first / "best.keras")]
    assert main(["--run", str(again), "--epochs", "1", *init, *TINY]) == 0
    history = json.loads((again / "history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1]
    assert history[0]["val_vertebra_auc_within_level"] == pytest.approx(best, abs=1e-6)
    assert "gap" in history[0] and "eval_seconds" in history[0]


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_a_mixed_precision_run_keeps_float32_weights_and_outputs_and_resumes_in_it(
    tmp_path, restore_policy
):
    run = tmp_path / "run"
    assert main(["--run", str(run), "--epochs", "1", "--precision", "bfloat16", *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["keras"]["precision"] == "bfloat16"
    keras.mixed_precision.set_global_policy("float32")  # what the file holds, not the global
    model = keras.models.load_model(run / "best.keras", compile=False)
    computed = {layer.dtype_policy.compute_dtype for layer in model.layers if layer.weights}
    assert "bfloat16" in computed
    assert {str(w.dtype) for w in model.weights} == {"float32"}
    out = model.predict(np.zeros((2, 32, 32, 4), np.float32), verbose=0)
    assert {str(np.asarray(v).dtype) for v in out.values()} == {"float32"}

    # the resuming command line says nothing about precision: the run keeps its own
    assert main(["--run", str(run), "--epochs", "2", "--resume", *RUN_ONLY]) == 0
    resumed = json.loads((run / "config.json").read_text())
    assert resumed["keras"]["precision"] == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def test_a_run_resumed_in_another_precision_goes_on_from_its_weights(tmp_path, restore_policy):
    run = tmp_path / "run"
    assert main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    keras.mixed_precision.set_global_policy("float32")
    before = keras.models.load_model(run / "last.keras", compile=False).get_weights()
    args = ["--run", str(run), "--epochs", "2", "--resume", "--precision", "bfloat16"]
    assert main([*args, *RUN_ONLY, "--steps", "1"]) == 0
    assert json.loads((run / "config.json").read_text())["keras"]["precision"] == "bfloat16"
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())] == [1, 2]
    keras.mixed_precision.set_global_policy("float32")
    after = keras.models.load_model(run / "last.keras", compile=False)
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in after.layers)
    fresh = build_classifier(
        ClassifierConfig.from_dict(json.loads((run / "config.json").read_text())["classifier"])
    )

    def distance(weights):
        return sum(float(np.abs(a - b).sum()) for a, b in zip(weights, before))

    # one step on from the run's weights: far nearer them than a network built afresh
    assert distance(after.get_weights()) < 0.2 * distance(fresh.get_weights())


def test_a_run_validates_on_stage_1s_masks_when_given_them(tmp_path):
    """``--stage1-masks``: every epoch also scores the validation studies cut around the given
    maps, and ``best.keras`` follows that score — from the epoch a run is first given them, its
    earlier best (on the true masks) no longer counts. Given the phantom's own maps, both scores
    agree; a file without the run's validation studies is refused before training."""
    from model_training.phantom.study import generate_study
    from model_training.stages.stage1_masks import save_label_maps

    maps = {}
    for seed in range(VAL_SEED0, VAL_SEED0 + 3):
        st = generate_study(seed, StreamConfig().phantom_config())
        maps[seed] = st.in_volume_order(st.labels)
    path = tmp_path / "s1.npz"
    save_label_maps(path, maps, "truth")
    run = tmp_path / "run"
    assert main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    state = json.loads((run / "state.json").read_text())
    state["best"] = 2.0  # a best on the true masks that nothing on stage 1's masks could beat
    (run / "state.json").write_text(json.dumps(state))
    masks = ["--stage1-masks", str(path)]
    assert main(["--run", str(run), "--epochs", "2", "--resume", *masks, *RUN_ONLY]) == 0
    first, rec = json.loads((run / "history.json").read_text())
    assert "val_stage1_vertebra_auc" not in first
    for key in ("plane_auc", "vertebra_auc", "vertebra_auc_within_level"):
        assert rec[f"val_stage1_{key}"] == pytest.approx(rec[f"val_{key}"], abs=1e-9)
    state = json.loads((run / "state.json").read_text())
    assert state["best"] == pytest.approx(rec["val_stage1_vertebra_auc_within_level"])
    assert json.loads((run / "config.json").read_text())["stage1_masks"] == str(path)
    # resumed with other maps: refused, not silently validated on the run's own
    other = tmp_path / "other.npz"
    save_label_maps(other, maps, "truth")
    resumed = ["--run", str(run), "--epochs", "3", "--resume", *RUN_ONLY]
    assert main([*resumed, "--stage1-masks", str(other)]) == 2
    assert len(json.loads((run / "history.json").read_text())) == 2

    short = tmp_path / "short.npz"
    save_label_maps(short, {VAL_SEED0: maps[VAL_SEED0]}, "truth")
    again = tmp_path / "again"
    assert main(["--run", str(again), "--epochs", "1", "--stage1-masks", str(short), *TINY]) == 2
    assert not (again / "history.json").exists()
