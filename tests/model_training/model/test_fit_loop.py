"""The training loop (``fit``) learns, and its schedule, checkpoint choice, warm-up, AUC-gap
report and time budget do what the configuration says — on a tiny stand-in network with the
U-Net's outputs and plain Python generators (seconds on a CPU)."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
from tiny_unet import SIZE, batch, repeat, tiny_unet

from model_training.model import fit as fit_mod
from model_training.model.config import ModelConfig, TrainConfig
from model_training.model.fit import (
    AucGap,
    FitData,
    fit_run,
    monitored,
    warmup_epochs,
)
from model_training.model.runtime import make_strategy


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(
        data_dir="unused",
        out_dir=str(out),
        model=ModelConfig(input_size=32),  # tiny_unet takes its size from cfg.model
        epochs=3,
        batch_size=4,
        optimizer="adam",
        learning_rate=0.01,
        schedule="constant",
        early_stopping_patience=0,
        bn_calibration_steps=0,
        precision="float32",
    )
    base.update(kw)
    cfg = TrainConfig(**base)
    # the stand-in works on SIZE px (ModelConfig needs a multiple of 32)
    object.__setattr__(cfg.model, "input_size", SIZE)
    return cfg


def _data(steps: int = 2, val: bool = True, val_positive: bool = True) -> FitData:
    train = repeat(batch(seed=0))
    v = repeat(batch(seed=1, cls_positive=val_positive)) if val else None
    return FitData(train, v, steps, 1 if val else None)


def _history(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "history.csv").read_text().splitlines()))


def _fit(cfg: TrainConfig, data: FitData, **kw):
    keras.utils.set_random_seed(0)
    return fit_run(cfg, data, make_strategy("default"), model_factory=tiny_unet, **kw)


class _LrPerEpoch(keras.callbacks.Callback):
    """The learning rate the optimiser applied during each epoch's batches."""

    def __init__(self) -> None:
        super().__init__()
        self.lrs: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if batch == 0:
            self.lrs.append(lr)


# --------------------------------------------------------------------------- learning
def test_fit_overfits_one_repeated_batch(tmp_path):
    """Loss on one repeated tiny batch falls by a large factor: gradients reach every head
    (400 steps, ~15 s)."""
    cfg = _cfg(tmp_path / "run", epochs=40, learning_rate=0.01)
    out = _fit(cfg, _data(steps=10, val=False))
    rows = _history(tmp_path / "run")
    assert out.finished and len(rows) == 40
    first, last = rows[0], rows[-1]
    assert float(last["loss"]) < float(first["loss"]) / 10, (first["loss"], last["loss"])
    for head in ("vertebrae", "fracture_map", "fracture_cls"):
        assert float(last[f"{head}_loss"]) < float(first[f"{head}_loss"]) / 3, head
    assert float(last["fracture_cls_auc"]) > 0.99
    assert float(last["vertebrae_dice"]) > 0.8


# --------------------------------------------------------------------------- plateau
def test_plateau_schedule_really_lowers_the_learning_rate(tmp_path):
    """A validation AUC that never improves (no positive in the validation batch: constant 0)
    with patience 1 must lower the rate the optimiser uses — a per-epoch scheduler must not
    set it back."""
    cfg = _cfg(tmp_path / "run", epochs=4, schedule="plateau", plateau_patience=1)
    probe = _LrPerEpoch()
    _fit(cfg, _data(val_positive=False), extra_callbacks=[probe])
    rows = _history(tmp_path / "run")
    assert {r["val_fracture_cls_auc"] for r in rows} == {"0.0"}  # the precondition
    assert probe.lrs[0] == pytest.approx(0.01)
    assert probe.lrs[-1] < probe.lrs[0]
    assert probe.lrs == sorted(probe.lrs, reverse=True)
    assert float(rows[-1]["learning_rate"]) < float(rows[0]["learning_rate"])
    assert min(probe.lrs) >= 0.01 * cfg.min_lr_factor - 1e-12


# --------------------------------------------------------------------------- warm-up
class _EncoderTrainable(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def on_train_begin(self, logs=None):
        self.seen.append(self.model.get_layer("enc_conv").trainable)


@pytest.mark.parametrize("weights", ["random", "scratch", "none", "imagenet"])
def test_randomly_initialised_encoder_is_never_frozen(tmp_path, monkeypatch, caplog, weights):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))  # no ImageNet file
    cfg = _cfg(tmp_path / "run", epochs=3, warmup_epochs=2)
    object.__setattr__(cfg.model, "encoder_weights", weights)
    assert warmup_epochs(cfg) == 0
    probe = _EncoderTrainable()
    with caplog.at_level("INFO"):
        _fit(cfg, _data(val=False), extra_callbacks=[probe])
    assert probe.seen == [True]  # one phase, encoder trainable from the first step
    assert not (tmp_path / "run" / "warmup_done.weights.h5").exists()
    assert "randomly initialised" in caplog.text


def test_pretrained_encoder_is_frozen_for_the_warm_up(tmp_path):
    """The positive control: a weights file that exists gives the frozen warm-up."""
    weights = tmp_path / "encoder.weights.h5"
    weights.write_bytes(b"stand-in: tiny_unet does not read it")
    cfg = _cfg(tmp_path / "run", epochs=3, warmup_epochs=2)
    object.__setattr__(cfg.model, "encoder_weights", str(weights))
    assert warmup_epochs(cfg) == 2
    probe = _EncoderTrainable()
    _fit(cfg, _data(val=False), extra_callbacks=[probe])
    assert probe.seen == [False, True]
    assert (tmp_path / "run" / "warmup_done.weights.h5").is_file()


# --------------------------------------------------------------------------- best checkpoint
class _ScriptedLogs(keras.callbacks.Callback):
    """Overwrites the epoch's validation loss and AUC with scripted values (before the
    checkpoint callbacks see them) and keeps the weights each epoch ended with."""

    def __init__(self, script: list[tuple[float, float]]) -> None:
        super().__init__()
        self.script = script
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"], logs["val_fracture_cls_auc"] = self.script[epoch]
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_best_checkpoint_is_chosen_on_validation_auc_not_loss(tmp_path, monkeypatch):
    # val_loss keeps falling while the AUC is best in the first epoch
    scripted = _ScriptedLogs([(1.0, 0.90), (0.5, 0.60), (0.1, 0.70)])
    original = fit_mod._callbacks
    monkeypatch.setattr(fit_mod, "_callbacks", lambda *a, **k: [scripted, *original(*a, **k)])
    cfg = _cfg(tmp_path / "run", epochs=3)
    assert monitored(cfg, True) == ("val_fracture_cls_auc", "max")
    _fit(cfg, _data())
    best = keras.saving.load_model(tmp_path / "run" / "checkpoints" / "best.keras", compile=False)
    assert not _same(scripted.weights[0], scripted.weights[2])  # the epochs differ
    assert _same(best.get_weights(), scripted.weights[0])


# --------------------------------------------------------------------------- AUC gap
def test_train_and_validation_auc_recorded_and_a_large_gap_reported(tmp_path, monkeypatch):
    # the stand-in learns its one training batch by heart; the validation batch's fracture
    # flags are unrelated to its input, so the training AUC runs away from the validation AUC
    cfg = _cfg(tmp_path / "run", epochs=12)
    out = _fit(cfg, _data(steps=10))
    rows = _history(tmp_path / "run")
    assert len(rows) == 12
    for r in rows:  # both AUCs every epoch, and their difference
        gap = float(r["fracture_cls_auc"]) - float(r["val_fracture_cls_auc"])
        assert float(r["auc_gap"]) == pytest.approx(gap, abs=1e-3)
    assert float(rows[-1]["fracture_cls_auc"]) > 0.9
    assert max(float(r["auc_gap"]) for r in rows) > 0.05
    assert out.warnings
    text = (tmp_path / "run" / "warnings.log").read_text()
    assert "WARNING" in text and "memorising" in text


def test_auc_gap_at_or_below_the_limit_is_not_reported(tmp_path):
    cb = AucGap("fracture_cls_auc", 0.05, tmp_path / "w.log")
    logs = {"fracture_cls_auc": 0.93, "val_fracture_cls_auc": 0.90}
    cb.on_epoch_end(0, logs)
    assert logs["auc_gap"] == pytest.approx(0.03)
    assert not cb.warnings and not (tmp_path / "w.log").exists()
    cb.on_epoch_end(1, {"fracture_cls_auc": 0.99, "val_fracture_cls_auc": 0.90})
    assert len(cb.warnings) == 1 and "epoch 2" in cb.warnings[0]


# --------------------------------------------------------------------------- chunks + resume
class _FakeClock:
    """Advances 10 s each time it is read."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 10.0
        return self.t


class _OptimizerAtStart(keras.callbacks.Callback):
    """Optimiser iterations, learning rate and variables once the backup is restored."""

    def on_train_begin(self, logs=None):
        opt = self.model.optimizer
        self.iterations = int(keras.ops.convert_to_numpy(opt.iterations))
        self.lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
        self.variables = [keras.ops.convert_to_numpy(v) for v in opt.variables]


def test_time_budget_stops_at_an_epoch_boundary_and_resume_continues(tmp_path):
    steps = 2
    # a plateau schedule, so that the restored learning rate shows the optimiser state
    kw = dict(epochs=5, schedule="plateau", plateau_patience=1)
    run = tmp_path / "run"
    # budget 0.5 min on a clock that moves 10 s a read: two epochs fit, the third would not
    first = _fit(_cfg(run, max_minutes=0.5, **kw), _data(steps, val_positive=False),
                 clock=_FakeClock())  # fmt: skip
    assert not first.finished and first.stopped_for_time
    assert [r["epoch"] for r in _history(run)] == ["0", "1"]
    opt = first.model.optimizer
    saved_vars = [keras.ops.convert_to_numpy(v) for v in opt.variables]
    saved_lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
    assert saved_lr < 0.01  # lowered at the end of epoch 2

    probe, lrs = _OptimizerAtStart(), _LrPerEpoch()
    second = _fit(_cfg(run, **kw), _data(steps, val_positive=False), extra_callbacks=[probe, lrs])
    assert second.finished and not second.stopped_for_time
    assert [r["epoch"] for r in _history(run)] == ["0", "1", "2", "3", "4"]
    assert probe.iterations == 2 * steps
    assert probe.lr == pytest.approx(saved_lr)
    assert all(np.array_equal(a, b) for a, b in zip(probe.variables, saved_vars, strict=True))
    assert int(keras.ops.convert_to_numpy(second.model.optimizer.iterations)) == 5 * steps
    # the plateau counters came back too: the AUC still has not improved, so every epoch of
    # the second chunk lowers the rate again (reset counters would first wait an epoch)
    assert lrs.lrs == pytest.approx([saved_lr, saved_lr * 0.3, saved_lr * 0.09])
    assert fit_mod.epochs_done(run) == 5


def test_budget_reaching_the_last_epoch_is_a_finished_run(tmp_path):
    out = _fit(_cfg(tmp_path / "run", epochs=2, max_minutes=0.01), _data(val=False),
               clock=_FakeClock())  # fmt: skip
    assert [r["epoch"] for r in _history(tmp_path / "run")] == ["0"]
    assert not out.finished
    out = _fit(_cfg(tmp_path / "run", epochs=2, max_minutes=0.01), _data(val=False),
               clock=_FakeClock())  # fmt: skip
    assert out.finished  # the budget ran out, but with the last epoch
    assert [r["epoch"] for r in _history(tmp_path / "run")] == ["0", "1"]
