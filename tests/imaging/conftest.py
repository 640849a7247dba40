"""Fixtures for the loader tests: a factory that writes synthetic CT series into tmp dirs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.factories.dicom_series import WrittenSeries, write_ct_series

_counter = itertools.count()


@pytest.fixture
def ct_series(tmp_path: Path):
    """``ct_series(**options)`` writes a series into a fresh folder under tmp_path."""

    def make(folder: Path | None = None, **options) -> WrittenSeries:
        target = folder if folder is not None else tmp_path / f"series{next(_counter)}"
        return write_ct_series(target, **options)

    return make
