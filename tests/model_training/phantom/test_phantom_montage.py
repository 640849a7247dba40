"""The figure script draws both PNGs from a study and the real slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cspine_desktop.errors import CspineInputError
from model_training.phantom import PhantomConfig, generate_study
from model_training.phantom.montage import REAL_DEFAULT, make_phantom_png, make_vs_real_png

SMALL = PhantomConfig(matrix=96, slice_spacing_mm=(2.0, 2.0), fracture_prevalence=1.0)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_figures_are_written(tmp_path):
    study = generate_study(4, SMALL)
    a = make_phantom_png(tmp_path / "docs" / "phantom.png", study, dpi=40)
    w, h = _png_size(a)
    assert w > 400 and h > 300
    assert REAL_DEFAULT.is_file()
    b = make_vs_real_png(tmp_path / "docs" / "phantom_vs_real.png", study, REAL_DEFAULT, dpi=40)
    w, h = _png_size(b)
    assert w > 400 and h > 200


def test_missing_real_slice_is_a_plain_error(tmp_path):
    study = generate_study(4, SMALL)
    with pytest.raises(CspineInputError, match="does not exist"):
        make_vs_real_png(tmp_path / "x.png", study, tmp_path / "nope.dcm")
    assert not np.any([p.suffix == ".png" for p in tmp_path.iterdir()])
