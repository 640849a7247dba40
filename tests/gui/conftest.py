"""GUI test fixtures: a real users service on an isolated store, with a fake clock."""

from __future__ import annotations

import pytest

from cspine_desktop.settings import Settings


class FakeClock:
    """Injectable clock: ``clock()`` returns the current fake time; ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def settings(_isolated_data_dir):
    return Settings.load({"max_failed_logins": 3, "lockout_minutes": 15.0})


@pytest.fixture
def users(settings, clock):
    """A real UserService (bcrypt at the minimum cost so tests stay fast)."""
    from cspine_desktop.services.audit import AuditLog
    from cspine_desktop.services.users import UserService
    from cspine_desktop.store import Store

    store = Store.open(settings.data_dir, clock=clock)
    service = UserService(store, AuditLog(store), settings, clock=clock, rounds=4)
    yield service
    store.close()


PASSWORD = "Correct-horse-7"


@pytest.fixture
def alice(users):
    users.create_first_admin("admin", "Root-secret-77x")
    return users.add_user("alice", PASSWORD, "radiologist", full_name="Alice Example")
