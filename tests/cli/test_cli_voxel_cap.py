"""``cspine analyze`` applies the voxel cap from the settings: a plain message and exit 2."""

from __future__ import annotations

import pytest
from factories.dicom_series import write_ct_series

from cspine_desktop.cli import main
from cspine_desktop.imaging import loader


@pytest.fixture(autouse=True)
def _reset_cap():
    yield
    loader.set_max_voxels(None)


def test_analyze_refuses_a_series_over_max_image_voxels_with_exit_2(capsys, tmp_path, monkeypatch):
    write_ct_series(tmp_path / "ct", n_slices=6, rows=16, cols=16)
    monkeypatch.setenv("CSPINE_MAX_IMAGE_VOXELS", str(6 * 16 * 16 - 1))
    code = main(["analyze", str(tmp_path / "ct"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "too large" in err and "max_image_voxels" in err and "6 slices of 16×16" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
