"""The one progress and cancel convention (cspine_desktop.progress)."""

from __future__ import annotations

import threading

import pytest

from cspine_desktop.errors import Cancelled
from cspine_desktop.progress import Progress, check_cancelled, is_cancelled, within


def test_counted_progress_shows_its_counts_and_knows_its_fraction():
    p = Progress.counted(212, 300, "decoding")
    assert p.describe() == "decoding 212/300"
    assert p.fraction == pytest.approx(212 / 300) and p.percent == 70


def test_an_unknown_total_has_no_fraction():
    p = Progress.counted(512, 0, "scanning")
    assert p.fraction is None and p.percent == 0 and p.describe() == "scanning"


def test_percent_is_whole_and_survives_float_noise():
    assert Progress(0.29, "x").percent == 29  # 0.29 * 100 = 28.999999999999996
    assert Progress(1.5, "x").percent == 100


def test_a_part_reports_into_its_share_of_the_whole():
    seen: list[Progress] = []
    part = within(seen.append, 0.25, 1.0)
    part(Progress(0.5, "analysing slice 5 of 10"))
    part(Progress.counted(3, 0, "scanning"))  # not known yet: the part's start
    assert [p.fraction for p in seen] == [pytest.approx(0.625), 0.25]
    assert seen[0].stage == "analysing slice 5 of 10"
    within(None, 0.0, 0.5)(Progress(1.0, "ignored"))


@pytest.mark.parametrize("kind", ["event", "callable", "none"])
def test_one_cancel_token_for_every_task(kind):
    event = threading.Event()
    token = {"event": event, "callable": event.is_set, "none": None}[kind]
    check_cancelled(token)
    event.set()
    assert is_cancelled(token) is (kind != "none")
    if kind == "none":
        check_cancelled(token)
    else:
        with pytest.raises(Cancelled, match="Loading was cancelled"):
            check_cancelled(token, "Loading")
