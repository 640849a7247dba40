"""Background work without blocking the GUI thread (superqt/napari pattern).

A :class:`Worker` runs one callable in the global ``QThreadPool`` and reports through a
:class:`WorkerSignals` object living in the GUI thread, so every emission from the pool thread
arrives as a queued signal. Workers hold no logic: the callable is a service call that receives
a progress callback and a ``threading.Event`` cancel token (the convention of
:mod:`cspine_desktop.progress`) and checks the token cooperatively; each
:class:`~cspine_desktop.progress.Progress` it reports is emitted as it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..errors import Cancelled
from ..progress import Progress, ProgressCallback

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(object)  # Progress
    result = Signal(object)  # whatever the callable returned
    error = Signal(object)  # the exception (UserFacingError → dialog; others → logged)
    finished = Signal()  # always last, after result or error


Task = Callable[[ProgressCallback, threading.Event], Any]


class Worker(QRunnable):
    """Runs ``task(progress, cancel)`` off the GUI thread. :meth:`abort` sets ``cancel``;
    a task that returns after an abort is reported as :class:`Cancelled`."""

    _alive: ClassVar[set[Worker]] = set()  # keep Python wrappers alive until finished

    def __init__(self, task: Task, name: str = "task") -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.task = task
        self.name = name
        self.signals = WorkerSignals()
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()

    def abort(self) -> None:
        """Ask the task to stop at its next check (cooperative)."""
        self.cancel_event.set()

    @property
    def is_running(self) -> bool:
        return not self.done_event.is_set()

    def _report(self, progress: Progress) -> None:
        self.signals.progress.emit(progress)

    def run(self) -> None:
        self.signals.started.emit()
        try:
            result = self.task(self._report, self.cancel_event)
            if self.cancel_event.is_set():
                raise Cancelled(f"{self.name.capitalize()} was cancelled.")
        except Exception as exc:  # reported to the GUI thread, never swallowed
            if not isinstance(exc, Cancelled):
                log.debug("%s failed", self.name, exc_info=True)
            self.signals.error.emit(exc)
        else:
            self.signals.result.emit(result)
        finally:
            self.done_event.set()
            self.signals.finished.emit()

    def start(self, pool: QThreadPool | None = None) -> Worker:
        """Queue on ``pool`` (the global pool by default); returns self for chaining."""
        Worker._alive.add(self)
        self.signals.finished.connect(lambda: Worker._alive.discard(self))
        (pool or QThreadPool.globalInstance()).start(self)
        return self


def run_in_background(
    task: Task,
    *,
    name: str = "task",
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    pool: QThreadPool | None = None,
) -> Worker:
    """Create, wire and start a :class:`Worker` in one call."""
    worker = Worker(task, name)
    if on_progress:
        worker.signals.progress.connect(on_progress)
    if on_result:
        worker.signals.result.connect(on_result)
    if on_error:
        worker.signals.error.connect(on_error)
    if on_finished:
        worker.signals.finished.connect(on_finished)
    return worker.start(pool)
