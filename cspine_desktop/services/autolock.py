"""Auto-lock after idle time: one policy object the GUI and the HTTP sessions both use.

The front end calls :meth:`AutoLock.touch` on user activity (mouse, keys, requests) and polls
:meth:`AutoLock.should_lock` (e.g. from a 1 s timer); when it returns True the front end hides
patient data and asks for the password again, then calls :meth:`AutoLock.unlock` after a
successful re-authentication. The clock is injectable (``time.monotonic`` by default), so tests
never sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class AutoLock:
    """Idle timer. ``timeout_s`` ≤ 0 disables auto-lock (``should_lock`` is then always False
    unless :meth:`lock` was called)."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = float(timeout_s)
        self.clock = clock
        self._last = clock()
        self._locked = False
        self._mutex = threading.Lock()

    @classmethod
    def from_minutes(cls, minutes: float, clock: Callable[[], float] = time.monotonic) -> AutoLock:
        """From ``Settings.autolock_minutes``."""
        return cls(minutes * 60.0, clock)

    @property
    def enabled(self) -> bool:
        return self.timeout_s > 0

    @property
    def locked(self) -> bool:
        with self._mutex:
            return self._locked

    def touch(self) -> None:
        """Record user activity (ignored while locked: only :meth:`unlock` re-opens)."""
        with self._mutex:
            if not self._locked:
                self._last = self.clock()

    def remaining_s(self) -> float:
        """Seconds until auto-lock (``inf`` when disabled, 0 when locked or due)."""
        if not self.enabled:
            return float("inf")
        with self._mutex:
            if self._locked:
                return 0.0
            return max(0.0, self.timeout_s - (self.clock() - self._last))

    def should_lock(self) -> bool:
        """True when the session is locked or has been idle for ``timeout_s`` or longer;
        becoming due also sets the locked state (so a later ``touch`` does not undo it)."""
        with self._mutex:
            if not self._locked and self.enabled and self.clock() - self._last >= self.timeout_s:
                self._locked = True
            return self._locked

    def lock(self) -> None:
        """Lock now (the user chose "lock screen")."""
        with self._mutex:
            self._locked = True

    def unlock(self) -> None:
        """Re-open after the user re-authenticated; restarts the idle timer."""
        with self._mutex:
            self._locked = False
            self._last = self.clock()


IdlePolicy = AutoLock
