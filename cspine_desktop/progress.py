"""How long work says how far it is, and learns that the user wants it to stop.

One convention for the loader, the analysis, the job queue and every front end (this module sits
outside the layers, like :mod:`cspine_desktop.errors`, so all of them may import it):

- a task takes ``progress``, a :data:`ProgressCallback` (or None), and calls it with a
  :class:`Progress` as work advances, from whatever thread does the work;
- a task takes ``cancel``, a :data:`CancelToken`, and calls :func:`check_cancelled` between
  steps, which raises :class:`~cspine_desktop.errors.Cancelled` once the user asked to stop;
- a task that is one part of a larger one reports through :func:`within`, so its fractions
  become the larger task's.

Front ends show a report as they always have: the command line a bar of ``fraction`` with the
``stage`` words, the GUI status bar :meth:`Progress.describe` with a bar (a busy indicator while
``fraction`` is not known), the job queue stores :attr:`Progress.percent` with the words.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Union

from .errors import Cancelled

CancelToken = Union[threading.Event, Callable[[], bool], None]  # noqa: UP007 - py3.10 alias
"""A :class:`threading.Event` (set: stop) or a callable returning True to stop; None: never."""


@dataclass(frozen=True)
class Progress:
    """One progress report.

    fraction : how much of the whole task is done, 0–1; None while that is not known (a folder
               still being scanned, a study being stored).
    stage    : a few words on what is being done ("decoding", "analysing slice 140 of 300").
    done     : units of this stage done (files read, …) when the stage counts them, of
    total    : the units it has; ``describe`` then shows them ("decoding 212/300").
    """

    fraction: float | None
    stage: str
    done: int | None = None
    total: int | None = None

    @classmethod
    def counted(cls, done: int, total: int, stage: str) -> Progress:
        """``done`` of ``total`` units of ``stage``; a total of 0 means not known yet."""
        done, total = int(done), int(total)
        if total <= 0:
            return cls(None, stage)
        return cls(min(1.0, max(0.0, done / total)), stage, done, total)

    @property
    def percent(self) -> int:
        """Whole per cent done, 0–100 (0 while not known)."""
        if self.fraction is None:
            return 0
        return max(0, min(100, int(100 * self.fraction + 1e-6)))

    def describe(self) -> str:
        """The words with the counts, when the stage counts units: "decoding 212/300"."""
        if self.total:
            return f"{self.stage} {self.done}/{self.total}"
        return self.stage

    def within(self, start: float, end: float) -> Progress:
        """This report as that of a part covering ``start``–``end`` of a larger task (while the
        part's own fraction is not known, the larger task stands at ``start``)."""
        f = self.fraction
        return replace(self, fraction=start if f is None else start + (end - start) * f)


ProgressCallback = Callable[[Progress], None]


def within(progress: ProgressCallback | None, start: float, end: float) -> ProgressCallback:
    """A callback for a part covering ``start``–``end`` of the task reporting to ``progress``."""
    if progress is None:
        return _ignore
    report = progress
    return lambda p: report(p.within(start, end))


def reporter(progress: ProgressCallback | None) -> ProgressCallback:
    """``progress``, or a callback that ignores every report."""
    return _ignore if progress is None else progress


def _ignore(_: Progress) -> None:
    return None


def is_cancelled(cancel: CancelToken) -> bool:
    """Whether the user asked to stop."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def check_cancelled(cancel: CancelToken, what: str = "The analysis") -> None:
    """Raise :class:`~cspine_desktop.errors.Cancelled` ("<what> was cancelled.") if the user
    asked to stop."""
    if is_cancelled(cancel):
        raise Cancelled(f"{what} was cancelled.")
