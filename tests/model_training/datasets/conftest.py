"""Fixtures of the dataset tests: tiny synthetic studies, cached without DICOM."""

from __future__ import annotations

from pathlib import Path

import pytest
from rsna_fixture import TINY_CFG, make_neck

from model_training.datasets.cache import write_study
from model_training.datasets.rsna import RsnaStudy
from model_training.datasets.samples import build_sample


def cache_necks(out_dir: Path, specs: list[tuple[str, str, int | None]]):
    """Cache (study_uid, patient_id, fractured vertebra or None) necks; returns records."""
    records = []
    for n, (uid, pid, vert) in enumerate(specs):
        neck = make_neck(seed=n, fractured_vertebra=vert)
        sample = build_sample(
            neck.volume(uid), neck.labels, neck.fracture, neck.fractured, TINY_CFG
        )
        study = RsnaStudy(uid, pid, out_dir, neck.fractured, any(neck.fractured))
        records.append(
            write_study(
                out_dir, study, sample.prepared, sample.labels, sample.fracture, sample.flags
            )
        )
    return records


@pytest.fixture
def cached_four(tmp_path):
    """Four cached studies: two fractured (C3, C5), two without fracture."""
    return cache_necks(
        tmp_path / "cache",
        [("1.1", "A", 3), ("1.2", "B", None), ("1.3", "C", 5), ("1.4", "D", None)],
    )
