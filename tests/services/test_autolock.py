"""The idle auto-lock policy (injectable clock, no sleeping)."""

from __future__ import annotations

from cspine_desktop.services import AutoLock


class Tick:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_locks_after_the_idle_timeout_and_only_unlock_reopens():
    clock = Tick()
    lock = AutoLock.from_minutes(15, clock)
    clock.t += 14 * 60
    assert not lock.should_lock()
    assert 59 <= lock.remaining_s() <= 60
    lock.touch()  # activity restarts the timer
    clock.t += 14 * 60
    assert not lock.should_lock()
    clock.t += 60
    assert lock.should_lock() and lock.locked
    lock.touch()  # activity while locked does not unlock
    assert lock.should_lock()
    lock.unlock()
    assert not lock.should_lock()
    assert lock.remaining_s() == 15 * 60


def test_manual_lock_and_disabled_policy():
    clock = Tick()
    lock = AutoLock(0, clock)
    clock.t += 10**6
    assert not lock.should_lock()
    assert lock.remaining_s() == float("inf")
    lock.lock()
    assert lock.should_lock()


def test_users_service_builds_the_policy_from_settings(make_services):
    sv = make_services(start_jobs=False, autolock_minutes=2)
    clock = Tick()
    lock = sv.users.autolock(clock)
    clock.t += 119
    assert not lock.should_lock()
    clock.t += 1
    assert lock.should_lock()
