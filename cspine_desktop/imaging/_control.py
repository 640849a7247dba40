"""The loader stages' progress and cancellation (see :mod:`cspine_desktop.progress`)."""

from __future__ import annotations

import threading

from ..progress import CancelToken, Progress, ProgressCallback, check_cancelled


class Control:
    """The caller's ``progress`` callback and ``cancel`` token, shared by the loader stages.

    :meth:`check` raises :class:`~cspine_desktop.errors.Cancelled` once the token says
    stop. Stages reported, in order, as :meth:`Progress.counted` files: ``"extracting"`` (zips
    only), ``"scanning"`` (finding files; total not yet known), ``"reading headers"``,
    ``"decoding"``. Reports from several threads reach the callback one at a time.
    """

    def __init__(self, progress: ProgressCallback | None, cancel: CancelToken) -> None:
        self._progress = progress
        self._cancel = cancel
        self._lock = threading.Lock()

    def check(self) -> None:
        check_cancelled(self._cancel, "Loading")

    def report(self, done: int, total: int, stage: str) -> None:
        if self._progress is not None:
            with self._lock:
                self._progress(Progress.counted(done, total, stage))
