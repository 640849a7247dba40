"""How often one remote address may ask for an account: a sliding window kept in memory.

Sign-up requests from the network are limited to :data:`SIGNUPS_PER_ADDRESS` per
:data:`SIGNUP_WINDOW_S` per remote address; a request beyond is audited and refused with a 429
:class:`~cspine_desktop.errors.AccountLockedError`. Requests made at the workstation itself (no
address) are not limited. The window restarts with the process, which is enough to keep a
script from filling the admin's approval list.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ..errors import AccountLockedError
from .audit import AuditLog

SIGNUPS_PER_ADDRESS = 3  # sign-up requests one remote address may make …
SIGNUP_WINDOW_S = 3600.0  # … per this many seconds


class SignupLimiter:
    """Counts sign-up requests per remote address (``clock`` gives epoch seconds)."""

    def __init__(self, audit: AuditLog, clock: Callable[[], float]) -> None:
        self.audit = audit
        self.clock = clock
        self._signups: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def count(self, address: str | None) -> None:
        """Count one request from ``address``; AccountLockedError when it asked too often."""
        if not address:  # at the workstation itself
            return
        now = self.clock()
        with self._lock:
            for key in [k for k, q in self._signups.items() if q and now - q[-1] > SIGNUP_WINDOW_S]:
                del self._signups[key]
            times = self._signups.setdefault(address, deque())
            while times and now - times[0] > SIGNUP_WINDOW_S:
                times.popleft()
            if len(times) >= SIGNUPS_PER_ADDRESS:
                wait = times[0] + SIGNUP_WINDOW_S - now
                self.audit.record(
                    "signup_requested",
                    outcome="failure",
                    address=address,
                    detail={"reason": "throttled"},
                )
                raise AccountLockedError(
                    "Too many sign-up requests from this address; try again in "
                    f"{max(1, round(wait / 60))} minutes.",
                    retry_after_s=wait,
                )
            times.append(now)
