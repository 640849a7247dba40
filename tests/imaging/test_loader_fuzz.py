"""Fuzzing: whatever bytes a file holds, load_study returns a Volume or raises a
CspineInputError — never anything else."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cspine_desktop.errors import CspineInputError
from cspine_desktop.imaging import Volume, load_study
from tests.factories.dicom_series import write_ct_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom complains, rightly


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("fuzz")
    out = {}
    for name, syntax in (
        ("native", "1.2.840.10008.1.2.1"),
        ("implicit", "1.2.840.10008.1.2"),
        ("rle", "1.2.840.10008.1.2.5"),
        ("big", "1.2.840.10008.1.2.2"),
    ):
        s = write_ct_series(root / name, n_slices=1, rows=8, cols=8, transfer_syntax=syntax)
        out[name] = s.files[0].read_bytes()
    return out


mutation = st.tuples(st.integers(0, 10_000), st.integers(0, 255))


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.sampled_from(["native", "implicit", "rle", "big"]),
    flips=st.lists(mutation, min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
    insert=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.binary(max_size=16))),
    copies=st.integers(1, 2),
)
def test_mutated_dicom_never_escapes_as_anything_but_cspine_input_error(
    seeds, seed, flips, cut, insert, copies
):
    data = bytearray(seeds[seed])
    for pos, value in flips:
        # most flips land in the header, where parsers break
        data[pos % min(len(data), 700)] = value
    if insert is not None:
        pos, blob = insert
        data[pos % len(data) : pos % len(data)] = blob
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    folder = Path(tempfile.mkdtemp(prefix="cspine-fuzz-"))
    try:
        for k in range(copies):
            (folder / f"f{k}").write_bytes(bytes(data))
        for target in (folder, folder / "f0"):
            try:
                result = load_study(target)
            except CspineInputError as exc:
                assert str(exc).strip()
            else:
                assert isinstance(result, Volume)
    finally:
        shutil.rmtree(folder)
