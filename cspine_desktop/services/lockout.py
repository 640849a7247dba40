"""Failed-login throttling: a growing delay, then a temporary lock, per account and per address.

After the n-th consecutive failure for a key, the next attempt is refused for
``base_delay_s * 2**(n-1)`` seconds (capped at ``max_delay_s``): 1, 2, 4, 8 s by default. After
``max_failures`` failures the key is locked for ``lockout_s``. Keys are the user name as typed
(lower-cased; unknown names are throttled exactly like real ones, so the answers never reveal
which accounts exist) and the remote address (``None``, i.e. this workstation, has no address
key). A success clears the account key; address keys only expire (``lockout_s`` after their last
failure), so a valid account cannot be used to reset a password-spraying address.

Sign-in is atomic: :meth:`LoginThrottle.reserve` checks the keys and counts the attempt as a
failure of the account in one database transaction, before the password is checked; a success
then clears it as before. So parallel attempts on one account cannot all pass the check: during
a delay only one password is checked, and never more than ``max_failures`` before the lock. The
address key is counted (atomically) only for wrong passwords, so many people signing in at once
from one address (a clinic behind NAT) do not hold each other up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AccountLockedError
from ..store.accounts import AccountTables


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    locked_until: float


def _wait_words(seconds: float) -> str:
    if seconds >= 90:
        return f"{math.ceil(seconds / 60)} minutes"
    n = max(1, math.ceil(seconds))
    return f"{n} second{'s' if n != 1 else ''}"


class LoginThrottle:
    def __init__(
        self,
        tables: AccountTables,
        max_failures: int,
        lockout_s: float,
        clock: Callable[[], float],
        base_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
    ) -> None:
        self.tables = tables
        self.max_failures = max(1, int(max_failures))
        self.lockout_s = float(lockout_s)
        self.clock = clock
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s

    @staticmethod
    def _keys(name: str, address: str | None) -> list[tuple[str, str]]:
        keys = [("account", name.strip().casefold())]
        if address:
            keys.append(("address", address))
        return keys

    def delay_after(self, failures: int) -> float:
        """Seconds an attempt is refused after ``failures`` consecutive failures."""
        if failures <= 0:
            return 0.0
        if failures >= self.max_failures:
            return self.lockout_s
        return min(self.base_delay_s * 2 ** (failures - 1), self.max_delay_s)

    def check(self, name: str, address: str | None) -> None:
        """Raise :class:`AccountLockedError` (with ``retry_after_s``) while a key is held."""
        keys = self._keys(name, address)
        self._raise_if_held({k: self.tables.throttle_get(*k) for k in keys}, self.clock())

    def reserve(self, name: str, address: str | None) -> ThrottleState:
        """Atomically: raise like :meth:`check` while a key is held, else count this attempt as
        a failure of the account key before the password is checked (so parallel attempts on
        one account wait: at most ``max_failures`` passwords are ever checked). A right
        password then clears it (:meth:`success`); a wrong one is counted on the address key by
        :meth:`failed`. Returns the account key's new state."""
        self.check(name, address)  # the common refusal without a write transaction
        now = self.clock()
        keys = self._keys(name, address)
        account = keys[0]
        out = [ThrottleState(0, 0.0)]

        def update(states):
            self._raise_if_held(states, now)
            state = states[account]
            failures = 0
            if state is not None and now - state[1] < self.lockout_s:
                failures = state[0]
            failures += 1
            out[0] = ThrottleState(failures, now + self.delay_after(failures))
            return {account: (failures, now, out[0].locked_until)}

        self.tables.throttle_update(keys, update)
        return out[0]

    def failed(self, address: str | None, reserved: ThrottleState) -> ThrottleState:
        """A wrong password after :meth:`reserve`: count it on the address key too (atomically;
        legitimate parallel sign-ins from one address are not held up by each other). Returns
        the worse of the account's and the address's states."""
        worst = reserved
        if not address:
            return worst
        now = self.clock()
        key = ("address", address)
        out = [worst]

        def update(states):
            state = states[key]
            failures = 0
            if state is not None and now - state[1] < self.lockout_s:
                failures = state[0]
            failures += 1
            until = now + self.delay_after(failures)
            if until > out[0].locked_until:
                out[0] = ThrottleState(failures, until)
            return {key: (failures, now, until)}

        self.tables.throttle_update([key], update)
        return out[0]

    def _raise_if_held(self, states, now: float) -> None:
        wait = 0.0
        locked = False
        for state in states.values():
            if state is not None and state[2] > now:
                wait = max(wait, state[2] - now)
                locked = locked or state[0] >= self.max_failures
        if wait > 0:
            if locked:
                msg = (
                    "Too many failed sign-in attempts. Sign-in is locked; "
                    f"try again in {_wait_words(wait)}."
                )
            else:
                msg = f"Please wait {_wait_words(wait)} before trying to sign in again."
            raise AccountLockedError(msg, retry_after_s=wait)

    def failure(self, name: str, address: str | None) -> ThrottleState:
        """Count one failure on every key; returns the worst resulting state."""
        now = self.clock()
        worst = ThrottleState(0, 0.0)
        for scope, key in self._keys(name, address):
            state = self.tables.throttle_get(scope, key)
            failures = 0
            if state is not None and now - state[1] < self.lockout_s:
                failures = state[0]
            failures += 1
            locked_until = now + self.delay_after(failures)
            self.tables.throttle_set(scope, key, failures, now, locked_until)
            if locked_until > worst.locked_until:
                worst = ThrottleState(failures, locked_until)
        return worst

    def is_lock(self, state: ThrottleState) -> bool:
        return state.failures >= self.max_failures

    def success(self, name: str) -> None:
        self.tables.throttle_clear("account", name.strip().casefold())
