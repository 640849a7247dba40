"""Patient-level train/val/test split, stratified by fracture, saved for repeatable evaluation.

All studies of one patient go to the same split. Patients are stratified by whether any of
their studies has a fracture (``patient_overall``); within each stratum they are shuffled with
``seed`` and cut by the requested fractions (80:20 by default, 70:30 with
``test_fraction=0.3``); the validation set is then cut from the training patients.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cspine_desktop.errors import CorruptFileError

SPLIT_FORMAT = "cspine.split/1"


class _StudyLike(Protocol):
    study_uid: str
    patient_id: str
    patient_overall: bool


@dataclass(frozen=True)
class Split:
    """StudyInstanceUIDs per split, with the parameters that produced them."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int
    test_fraction: float
    val_fraction: float
    patients: dict[str, str] = field(default_factory=dict)  # study → patient

    def of(self, name: str) -> tuple[str, ...]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)

    def select(self, studies: Iterable[Any], name: str) -> list[Any]:
        """The items of ``studies`` (anything with ``study_uid``) that belong to ``name``."""
        wanted = set(self.of(name))
        return [s for s in studies if s.study_uid in wanted]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"format": SPLIT_FORMAT, **d}
        for k in ("train", "val", "test"):
            d[k] = list(d[k])
        return d


def _cut(n: int, fraction: float) -> int:
    """How many of ``n`` go to the held-out part: rounded, at least 1 when both sides can
    have one."""
    if fraction <= 0 or n == 0:
        return 0
    k = round(n * fraction)
    if n >= 2:
        k = min(max(k, 1), n - 1)
    return k


def split_studies(
    studies: Sequence[_StudyLike],
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Split:
    """Split ``studies`` by patient (see module docstring).

    ``test_fraction``: share of patients held out for test (0.2 → 80:20, 0.3 → 70:30).
    ``val_fraction``: share of the remaining (training) patients held out for validation.
    """
    if not 0 <= test_fraction < 1 or not 0 <= val_fraction < 1:
        raise ValueError("fractions must be in [0, 1)")
    by_patient: dict[str, list[_StudyLike]] = {}
    for s in studies:
        by_patient.setdefault(s.patient_id or s.study_uid, []).append(s)
    positive = {p: any(s.patient_overall for s in ss) for p, ss in by_patient.items()}
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for label in (False, True):
        patients = sorted(p for p, pos in positive.items() if pos == label)
        patients = [patients[i] for i in rng.permutation(len(patients))]
        n_test = _cut(len(patients), test_fraction)
        test, rest = patients[:n_test], patients[n_test:]
        n_val = _cut(len(rest), val_fraction)
        parts["test"] += test
        parts["val"] += rest[:n_val]
        parts["train"] += rest[n_val:]
    uids = {
        k: tuple(sorted(s.study_uid for p in v for s in by_patient[p])) for k, v in parts.items()
    }
    patient_of = {s.study_uid: (s.patient_id or s.study_uid) for s in studies}
    return Split(
        uids["train"], uids["val"], uids["test"], seed, test_fraction, val_fraction, patient_of
    )


def save_split(split: Split, path: str | os.PathLike[str]) -> Path:
    """Write ``split`` as JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.to_dict(), indent=2), encoding="utf-8")
    return path


def load_split(path: str | os.PathLike[str]) -> Split:
    """Read a split written by :func:`save_split`."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        if d.get("format") != SPLIT_FORMAT:
            raise ValueError(f"format {d.get('format')!r}, expected {SPLIT_FORMAT}")
        return Split(
            train=tuple(d["train"]),
            val=tuple(d["val"]),
            test=tuple(d["test"]),
            seed=int(d["seed"]),
            test_fraction=float(d["test_fraction"]),
            val_fraction=float(d["val_fraction"]),
            patients=dict(d.get("patients", {})),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"split file {Path(path).name} cannot be used: {exc}") from exc
