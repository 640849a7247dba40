"""Property tests: file names, file order and InstanceNumber never change the volume."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cspine_desktop.errors import InconsistentSeriesError
from cspine_desktop.imaging import load_study
from cspine_desktop.imaging.geometry import stack_geometry
from tests.factories.dicom_series import write_ct_series

N = 7


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_ct_series(tmp_path_factory.mktemp("prop") / "s", n_slices=N, rows=12, cols=12)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.permutations(list(range(N))),
    numbers=st.permutations(list(range(1, N + 1))),
    nested=st.booleans(),
)
def test_any_permutation_of_files_gives_the_same_volume(written, names, numbers, nested):
    folder = Path(tempfile.mkdtemp(prefix="cspine-perm-"))
    try:
        for k, ds in enumerate(written.datasets):
            ds = ds.copy()
            ds.InstanceNumber = numbers[k]
            sub = folder / (f"d{k % 3}" if nested else "")
            sub.mkdir(exist_ok=True)
            ds.save_as(sub / f"{names[k]:03d}", enforce_file_format=True)
        vol = load_study(folder)
        np.testing.assert_array_equal(vol.hu, written.hu)
        assert vol.meta["sop_instance_uids"] == written.sop_uids
    finally:
        shutil.rmtree(folder)


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    ca, sa, cb, sb, cc, sc = (
        math.cos(a),
        math.sin(a),
        math.cos(b),
        math.sin(b),
        math.cos(c),
        math.sin(c),
    )
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rx = np.array([[1, 0, 0], [0, cc, -sc], [0, sc, cc]])
    return rz @ ry @ rx


angles = st.floats(-math.pi, math.pi, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    a=angles,
    b=angles,
    c=angles,
    n=st.integers(2, 40),
    dz=st.floats(0.3, 5.0),
    origin=st.tuples(*[st.floats(-500, 500)] * 3),
    data=st.data(),
)
def test_geometry_recovers_order_and_spacing_in_any_orientation(a, b, c, n, dz, origin, data):
    r = _rotation(a, b, c)
    row, col, normal = r[:, 0], r[:, 1], r[:, 2]
    positions = np.asarray(origin) + np.outer(np.arange(n) * dz, normal)
    perm = np.array(data.draw(st.permutations(list(range(n)))))
    geom = stack_geometry((*row, *col), positions[perm], (0.5, 0.7))
    np.testing.assert_array_equal(perm[geom.order], np.arange(n))
    assert geom.spacing == pytest.approx((dz, 0.5, 0.7))
    assert geom.shifts is None and geom.warnings == []
    np.testing.assert_allclose(geom.affine[:3, 3], origin, atol=1e-6)
    np.testing.assert_allclose(geom.affine[:3, 2], normal * dz, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(4, 30),
    gap_at=st.integers(0, 100),
    extra=st.integers(1, 5),
    dz=st.floats(0.5, 3.0),
)
def test_any_gap_of_a_whole_slice_or_more_is_refused(n, gap_at, extra, dz):
    k = gap_at % (n - 1)
    z = np.arange(n) * dz
    z[k + 1 :] += extra * dz
    positions = np.stack([np.zeros(n), np.zeros(n), z], axis=1)
    with pytest.raises(InconsistentSeriesError, match="missing"):
        stack_geometry((1, 0, 0, 0, 1, 0), positions, (1.0, 1.0))
