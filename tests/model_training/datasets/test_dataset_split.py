"""Patient-level split: no leakage, stratified by fracture, repeatable from its saved file."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cspine_desktop.errors import CorruptFileError
from model_training.datasets import load_split, save_split, split_studies


@dataclass
class S:
    study_uid: str
    patient_id: str
    patient_overall: bool


def _cohort(n_patients=100, positive_every=3):
    """Patients with 1–3 studies each; every third patient has a fracture (33 %)."""
    out = []
    for p in range(n_patients):
        for k in range(1 + p % 3):
            # one positive study makes the patient positive
            out.append(S(f"1.{p}.{k}", f"P{p}", p % positive_every == 0 and k == 0))
    return out


@pytest.mark.parametrize(("test_fraction", "expected_train_share"), [(0.2, 0.8), (0.3, 0.7)])
def test_no_patient_in_two_splits_and_ratios_hold(test_fraction, expected_train_share):
    studies = _cohort()
    split = split_studies(studies, test_fraction=test_fraction, val_fraction=0.1, seed=3)
    patient = {s.study_uid: s.patient_id for s in studies}
    groups = {n: {patient[u] for u in split.of(n)} for n in ("train", "val", "test")}
    assert not groups["train"] & groups["test"]
    assert not groups["train"] & groups["val"]
    assert not groups["val"] & groups["test"]
    assert sorted(split.train + split.val + split.test) == sorted(s.study_uid for s in studies)
    n_test = len(groups["test"])
    assert n_test == pytest.approx(100 * test_fraction, abs=1)
    assert len(groups["train"]) + len(groups["val"]) == pytest.approx(
        100 * expected_train_share, abs=1
    )
    assert len(groups["val"]) == pytest.approx((100 - n_test) * 0.1, abs=1)


def test_split_is_stratified_by_patient_fracture_status():
    studies = _cohort(n_patients=200)
    positive = {s.patient_id for s in studies if s.patient_overall}
    split = split_studies(studies, test_fraction=0.2, val_fraction=0.1, seed=0)
    patient = {s.study_uid: s.patient_id for s in studies}
    for name in ("train", "val", "test"):
        pats = {patient[u] for u in split.of(name)}
        share = len(pats & positive) / len(pats)
        assert share == pytest.approx(len(positive) / 200, abs=0.03), name


def test_split_is_deterministic_by_seed_and_saved_file_reloads(tmp_path):
    studies = _cohort()
    a = split_studies(studies, seed=5)
    assert split_studies(studies, seed=5) == a
    assert split_studies(studies, seed=6).test != a.test
    path = save_split(a, tmp_path / "split.json")
    b = load_split(path)
    assert b == a
    assert sorted(s.study_uid for s in b.select(studies, "test")) == sorted(a.test)


def test_a_broken_split_file_is_refused_in_words(tmp_path):
    path = tmp_path / "split.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(CorruptFileError, match=r"split file split\.json cannot be used"):
        load_split(path)
