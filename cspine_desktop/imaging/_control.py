"""Progress reporting and cooperative cancellation shared by the loader stages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Union

from ..errors import AnalysisCancelled

ProgressCallback = Callable[[int, int, str], None]
CancelToken = Union[threading.Event, Callable[[], bool], None]  # noqa: UP007 - py3.10 alias


class Control:
    """Wraps the caller's ``progress(done, total, stage)`` callback and cancel token.

    ``cancel`` is a :class:`threading.Event` (cancelled when set) or a callable returning
    ``True`` when the user asked to stop. :meth:`check` raises :class:`AnalysisCancelled`.
    Stages reported, in order: ``"extracting"`` (zips only), ``"scanning"`` (finding files;
    total 0 = not yet known), ``"reading headers"``, ``"decoding"`` (done/total = files).
    """

    def __init__(self, progress: ProgressCallback | None, cancel: CancelToken) -> None:
        self._progress = progress
        self._cancel = cancel
        self._lock = threading.Lock()

    def cancelled(self) -> bool:
        if self._cancel is None:
            return False
        if isinstance(self._cancel, threading.Event):
            return self._cancel.is_set()
        return bool(self._cancel())

    def check(self) -> None:
        if self.cancelled():
            raise AnalysisCancelled("Loading was cancelled.")

    def report(self, done: int, total: int, stage: str) -> None:
        if self._progress is not None:
            with self._lock:
                self._progress(done, total, stage)
