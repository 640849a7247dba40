"""Factories for service tests: a fake clock, settings in the test's data dir, Services with a
fake analysis handler and a cheap bcrypt cost (tests about the cost itself use the real one)."""

from __future__ import annotations

import contextlib

import pytest

from cspine_desktop.progress import Progress
from cspine_desktop.services import Services
from cspine_desktop.settings import Settings

TEST_ROUNDS = 4  # bcrypt cost for tests that are not about the cost


class FakeClock:
    """Epoch-seconds clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def fake_handler(ctx):
    for pct in (10, 50, 90):
        ctx.progress(Progress(pct / 100, f"step {pct}"))
        ctx.check_cancelled()
    ctx.write_artifact("mask.bin", "mask", b"\x00\x01" * 8)
    return {
        "study_uid": ctx.study.study_uid,
        "model": {"name": "fake", "sha256": "f" * 64},
        "backend": "fake",
        "timings": {"total_s": 0.0},
        "patient_overall": {"probability": 0.1, "fractured": False},
    }


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def settings(_isolated_data_dir):
    return Settings.load({"data_dir": str(_isolated_data_dir)})


@pytest.fixture
def make_services(settings):
    opened: list[Services] = []

    def make(handler=fake_handler, start_jobs=True, clock=None, **overrides):
        s = settings.replace(**overrides) if overrides else settings
        kwargs = {"handler": handler, "start_jobs": start_jobs, "bcrypt_rounds": TEST_ROUNDS}
        if clock is not None:
            kwargs["clock"] = clock
        sv = Services.open(s, **kwargs)
        opened.append(sv)
        return sv

    yield make
    for sv in opened:
        with contextlib.suppress(Exception):
            sv.close(timeout=10)


@pytest.fixture
def services(make_services):
    return make_services()
