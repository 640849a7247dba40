"""What the two stream trainers share: run state, the epoch loop, the end of an epoch.

``cspine-train-segmenter`` (stage 1) and ``cspine-train-classifier`` (stage 2) both train on a
stream of fresh phantom studies with numpy batches through ``train_on_batch`` (any Keras
backend), score a fixed validation set *and* a probe of training studies after every epoch,
log a train − validation gap above :data:`MAX_GAP` as memorisation, keep ``best.keras`` on one
validation score, halve the learning rate when it has not improved for ``patience`` epochs,
and run in chunks (``--max-minutes``, ``--resume``). The loop lives here once; each trainer
says what it scores (:class:`Scoring`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from .jsonfile import write_json
from .model.config import PRECISIONS

log = logging.getLogger("cspine.stream_training")
MAX_GAP = 0.05


class _Closable(Protocol):
    def close(self) -> None: ...


StreamT = TypeVar("StreamT", bound=_Closable)


@dataclass(frozen=True)
class Scoring:
    """What a trainer scores after each epoch.

    ``evaluate(model)`` returns (validation metrics, training-probe metrics); ``select_on`` is
    the validation metric ``best.keras`` and the schedule follow; ``gap_on`` the metric whose
    probe − validation difference is the history's ``gap``; ``words_*`` name both in logs."""

    evaluate: Callable[[Any], tuple[dict[str, float], dict[str, float]]]
    select_on: str
    gap_on: str
    words_select: str
    words_gap: str


def devices(backend: str) -> list[str]:
    """The devices the backend computes on, as it names them."""
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices()]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_logical_devices()]
    except Exception as exc:  # a record, never a reason to stop training
        return [f"unknown ({exc})"]
    return []


def start_run(run: Path, args: Any) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(state, saved config) of the run: a new run's state and no config, or with
    ``args.resume`` the run's own — what it trains (the grid or crops, the network, the
    stream) is then the run's, whatever the resuming command line says. None, said on stderr,
    when the run to resume has no state or config (exit code 2)."""
    if not args.resume:
        return {"epoch": 0, "seeds_used": 0, "lr": args.lr, "best": -1.0, "wait": 0}, None
    state, config = run / "state.json", run / "config.json"
    for need in (state, config):
        if not need.is_file():
            print(f"--resume: {need} not found", file=sys.stderr)
            return None
    return dict(json.loads(state.read_text())), dict(json.loads(config.read_text()))


def add_precision_argument(p: argparse.ArgumentParser) -> None:
    """``--precision``: the compute dtype (:mod:`.model.runtime`)."""
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="compute dtype: bfloat16 or float16 (mixed precision: float32 weights and outputs; "
        "float16 with loss scaling), auto (float16 on a GPU, bfloat16 on a CPU with AMX or "
        "AVX-512 BF16) or float32. Default: a new run float32, a resumed run its own; a resumed "
        "run given another is rebuilt in it with its weights (the optimizer starts afresh)",
    )


def run_precision(config: dict[str, Any]) -> str:
    """The compute dtype a run's ``config.json`` records (runs from before it was: float32)."""
    return str(config.get("keras", {}).get("precision", "float32"))


def record_keras(run: Path, config: dict[str, Any], precision: str | None = None) -> Any:
    """Import Keras (after the stream's workers are spawned), set the compute dtype
    (``precision``; None: a resumed run's own, else float32), record in ``config.json`` which
    version, backend, devices and dtype train this run (docs/training.md says what has been
    run), and return the module. Set before the network is built: a model loaded from a
    ``.keras`` file keeps the dtype policy it was saved with (see :func:`in_precision`)."""
    import keras

    from .model.runtime import set_precision

    backend = keras.backend.backend()
    found = devices(backend)
    dtype = set_precision(precision or run_precision(config))  # a new run's config: float32
    config["keras"] = {
        "version": keras.__version__,
        "backend": backend,
        "devices": found,
        "precision": dtype,
    }
    write_json(run / "config.json", config)
    log.info("keras %s on %s: %s, %s", keras.__version__, backend, found, dtype)
    return keras


def in_precision(
    model: Any, saved: dict[str, Any] | None, config: dict[str, Any], rebuild: Callable[[], Any]
) -> Any:
    """``model`` as loaded to resume a run, or, when the resuming command chose another compute
    dtype than the run had (``saved``: its config before), ``rebuild()`` (the same network built
    and compiled under the dtype now set) with ``model``'s weights: the run goes on from the
    same weights, epoch and seeds, and its optimizer starts its moments afresh."""
    if saved is None or run_precision(saved) == config["keras"]["precision"]:
        return model
    fresh = rebuild()
    fresh.set_weights(model.get_weights())
    log.warning(
        "resumed in %s (the run trained in %s): the network was rebuilt with its weights; "
        "the optimizer starts afresh",
        config["keras"]["precision"],
        run_precision(saved),
    )
    return fresh


def run_config(
    run: Path,
    args: Any,
    seeds: tuple[int, int],
    saved: dict[str, Any] | None = None,
    **parts: Any,
) -> dict[str, Any]:
    """Write ``config.json``: ``parts`` (model, preprocessing, stream …), the command line and
    where the training and validation seeds start; returned for :func:`record_keras`. A
    resumed run keeps its ``saved`` config and adds its own command line to ``resumed_with``."""
    line = {k: str(v) for k, v in vars(args).items()}
    if saved is not None:
        config = dict(saved)
        config["resumed_with"] = [*config.get("resumed_with", []), line]
    else:
        config = {
            **parts,
            "args": line,
            "seeds": {"train_from": seeds[0], "validation_from": seeds[1]},
        }
    write_json(run / "config.json", config)
    return config


def open_stream(make: Callable[..., StreamT], args: Any, state: dict[str, Any]) -> closing[StreamT]:
    """``make(workers=, pool_size=, start_index=)`` with the command line's workers and pool,
    continuing the seeds where the run stopped (after the probe's), closed on leaving."""
    start = max(int(state["seeds_used"]), args.probe_studies)
    return closing(make(workers=args.workers, pool_size=args.pool, start_index=start))


def validation_seeds(args: Any, seed0: int) -> list[int]:
    """The seeds of the ``args.val_studies`` validation studies, from ``seed0``."""
    return [seed0 + i for i in range(args.val_studies)]


def evaluation_sets(
    build: Callable[[list[int]], Any], args: Any, seeds: tuple[int, int]
) -> tuple[Any, Any, list[int]]:
    """(validation set, training probe, the probe's seeds): ``args.val_studies`` studies from
    the validation seeds and ``args.probe_studies`` from the first training seeds (they are
    also trained on, each once, like every stream study); ``build(seeds)`` makes each."""
    t0 = time.time()
    probe_seeds = [seeds[0] + i for i in range(args.probe_studies)]
    val = build(validation_seeds(args, seeds[1]))
    probe = build(probe_seeds)
    log.info(
        "evaluation planes: %d validation, %d probe (%.0f s)",
        len(val),
        len(probe),
        time.time() - t0,
    )
    return val, probe, probe_seeds


def history_fields(val: dict[str, float], probe: dict[str, float], gap_on: str) -> dict[str, float]:
    """History fields: ``train_*`` (the probe), ``val_*`` and their ``gap`` in ``gap_on``."""
    out = {f"train_{k}": v for k, v in probe.items()}
    out.update({f"val_{k}": v for k, v in val.items()})
    out["gap"] = probe[gap_on] - val[gap_on]
    return out


def read_history(run: Path) -> list[dict[str, Any]]:
    path = run / "history.json"
    return list(json.loads(path.read_text())) if path.is_file() else []


def record_start(model: Any, run: Path, history: list[dict[str, Any]], scoring: Scoring) -> None:
    """Epoch 0: the starting weights, measured the same way and in the same run."""
    tv = time.time()
    v, pr = scoring.evaluate(model)
    rec = {"epoch": 0, **history_fields(v, pr, scoring.gap_on)}
    rec["eval_seconds"] = round(time.time() - tv, 1)
    history.append(rec)
    log.info("epoch %s", json.dumps(rec))
    write_json(run / "history.json", history)


def train_epochs(
    model: Any,
    stream: Any,
    args: Any,
    run: Path,
    state: dict[str, Any],
    scoring: Scoring,
    *,
    measure_start: bool,
    batch_fields: Callable[[dict[str, Any]], dict[str, float]] | None = None,
) -> None:
    """Epochs ``state["epoch"]`` … ``args.epochs`` of ``args.steps`` batches of ``args.batch``
    from ``stream``, each ended by :func:`finish_epoch`, after epoch 0 (the starting weights)
    with ``measure_start``; stops after the epoch that crosses ``args.max_minutes``.
    ``batch_fields(logs)`` adds fields from the last batch's logs."""
    history = read_history(run)
    if measure_start:
        record_start(model, run, history, scoring)
    start = time.time()
    for epoch in range(state["epoch"], args.epochs):
        te = time.time()
        if hasattr(model, "reset_metrics"):  # the logs' running metrics cover this epoch
            model.reset_metrics()
        logs: dict[str, Any] = {}
        losses = []
        for _ in range(args.steps):
            x, y = stream.batch(args.batch)
            logs = model.train_on_batch(x, y, return_dict=True)
            losses.append(float(logs["loss"]))
        train_s = time.time() - te
        tv = time.time()
        v, pr = scoring.evaluate(model)
        rec = {
            "epoch": epoch + 1,
            "lr": float(np.asarray(model.optimizer.learning_rate)),
            "loss": float(np.mean(losses)),
            **(batch_fields(logs) if batch_fields is not None else {}),
            **history_fields(v, pr, scoring.gap_on),
            "studies_seen": stream.seeds_used,
            "train_seconds": round(train_s, 1),
            "eval_seconds": round(time.time() - tv, 1),
        }
        finish_epoch(model, run, state, history, rec, scoring, args.patience)
        if (time.time() - start) / 60 > args.max_minutes and epoch + 1 < args.epochs:
            log.info(
                "time budget of %.0f min used: stopping; continue with --resume", args.max_minutes
            )
            break


def finish_epoch(
    model: Any,
    run: Path,
    state: dict[str, Any],
    history: list[dict[str, Any]],
    rec: dict[str, Any],
    scoring: Scoring,
    patience: int,
) -> None:
    """The end of an epoch: log ``rec`` (its ``gap``, train − validation, above ``MAX_GAP``
    is memorisation); save ``best.keras`` when its validation score (``scoring.select_on``)
    beats ``state["best"]``, halve the learning rate after ``patience`` epochs without; save
    ``last.keras``; write history.json and state.json (epoch, seeds, lr)."""
    score = rec[f"val_{scoring.select_on}"]
    gap_of, select_on = scoring.words_gap, scoring.words_select
    history.append(rec)
    log.info("epoch %s", json.dumps(rec))
    if rec["gap"] > MAX_GAP:
        log.warning(
            "train − validation %s gap %.3f > %.2f: memorisation, fix the data or the design",
            gap_of,
            rec["gap"],
            MAX_GAP,
        )
    if not np.isfinite(score):
        # e.g. no level with both fractured and intact vertebrae: nothing to choose on
        log.warning("validation %s undefined: use more --val-studies", select_on)
    elif score > state["best"]:
        state["best"], state["wait"] = score, 0
        model.save(run / "best.keras")
    else:
        state["wait"] += 1
        if state["wait"] >= patience:
            new_lr = rec["lr"] * 0.5
            model.optimizer.learning_rate.assign(new_lr)
            log.info(
                "validation %s flat for %d epochs: lr → %.2g", select_on, state["wait"], new_lr
            )
            state["wait"] = 0
    model.save(run / "last.keras")
    state.update(
        epoch=rec["epoch"],
        seeds_used=rec["studies_seen"],
        lr=float(np.asarray(model.optimizer.learning_rate)),
    )
    write_json(run / "history.json", history)
    write_json(run / "state.json", state)
