"""The loop's own Keras callbacks: epoch time, the train − validation AUC gap, the time budget,
and a plateau schedule that survives a resume (see :mod:`model_training.model.fit`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

log = logging.getLogger("model_training.model.fit")


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time_s`` (wall time of the epoch) to the logs, so CSVLogger keeps it."""

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if logs is not None:
            logs["epoch_time_s"] = round(time.perf_counter() - self._t0, 2)


class AucGap(keras.callbacks.Callback):
    """Adds ``auc_gap`` = training − validation AUC (``<metric>`` − ``val_<metric>``) to the
    epoch logs and reports a gap above ``max_gap`` as a warning: in the log and, when
    ``report`` is given, as a line in that file. A gap that large means the model learns its
    training set rather than the task — a defect to fix, not a result."""

    def __init__(self, metric: str, max_gap: float, report: Path | None = None) -> None:
        super().__init__()
        self.metric, self.max_gap, self.report = metric, max_gap, report
        self.warnings: list[str] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if logs is None or self.metric not in logs or f"val_{self.metric}" not in logs:
            return
        train, val = float(logs[self.metric]), float(logs[f"val_{self.metric}"])
        gap = train - val
        logs["auc_gap"] = round(gap, 4)
        if gap > self.max_gap:
            msg = (
                f"epoch {epoch + 1}: training {self.metric} {train:.3f} exceeds validation "
                f"{val:.3f} by {gap:.3f} (> {self.max_gap:.2f}): the model is memorising "
                "its training data"
            )
            log.warning(msg)
            self.warnings.append(msg)
            if self.report is not None:
                with self.report.open("a", encoding="utf-8") as f:
                    f.write(f"WARNING {msg}\n")


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of an epoch when the next epoch would end past ``deadline``
    (a ``clock()`` value), judged by the longest epoch so far; the first epoch always runs.
    The epoch just finished is backed up as usual, so ``--resume`` continues after it."""

    def __init__(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.deadline, self.clock = deadline, clock
        self.longest = 0.0
        self.stopped = False
        self.last_epoch = -1  # the last (0-based) epoch finished under this budget

    def on_train_begin(self, logs: Any = None) -> None:
        self._last = self.clock()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        now = self.clock()
        self.longest = max(self.longest, now - self._last)
        self._last = now
        self.last_epoch = epoch
        if now + self.longest > self.deadline:
            log.info("time budget: stopping after epoch %d (resume to continue)", epoch + 1)
            self.stopped = True
            self.model.stop_training = True


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose counters (best value, epochs without improvement, cooldown)
    survive a resume: kept in ``state`` (a JSON file beside the backup) every epoch. The
    learning rate itself lives in the optimiser state of the backup."""

    def __init__(self, state: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state

    def on_train_begin(self, logs: Any = None) -> None:
        super().on_train_begin(logs)
        try:
            saved = json.loads(self.state.read_text(encoding="utf-8"))
            self.best = None if saved["best"] is None else float(saved["best"])
            self.wait = int(saved["wait"])
            self.cooldown_counter = int(saved["cooldown_counter"])
        except (OSError, ValueError, KeyError, TypeError):
            return

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        super().on_epoch_end(epoch, logs)
        self.state.parent.mkdir(parents=True, exist_ok=True)
        best = None if self.best is None else float(self.best)
        state = {"best": best, "wait": self.wait}
        state["cooldown_counter"] = self.cooldown_counter
        self.state.write_text(json.dumps(state), encoding="utf-8")
