"""Vertebra dimensions of the phantom fall within the published ranges of docs/phantom.md."""

from __future__ import annotations

import pytest

from model_training.phantom.config import PhantomConfig
from model_training.phantom.vertebrae import ATLAS_RING, LEVELS, geometry

# published adult ranges (mm), rounded — sources in docs/phantom.md
BODY_WIDTH = (13.0, 22.0)  # C3–C7 upper end-plate width (Panjabi 1991)
BODY_DEPTH = (13.0, 19.0)  # C3–C7 end-plate depth (Panjabi 1991; Gilad & Nissan 1985)
BODY_HEIGHT = (11.0, 16.5)  # C3–C7 body height (Panjabi 1991; Gilad & Nissan 1985)
CANAL_WIDTH = (20.0, 29.0)  # C3–C7 spinal canal width (Panjabi 1991)
CANAL_DEPTH = (12.0, 18.0)  # C3–C7 spinal canal depth (Panjabi 1991)
ATLAS_AP = (40.0, 52.0)  # C1 outer AP diameter (Doherty & Heggeness 1994)
DENS_WIDTH = (8.0, 12.0)  # dens transverse diameter (Schaffler et al. 1992)
LORDOSIS = (-15.0, 45.0)  # C2–C7 angle, kyphotic to lordotic (Hardacker et al. 1997)

SCALES = PhantomConfig().size_scale


@pytest.mark.parametrize("s", SCALES)
@pytest.mark.parametrize("level", [3, 4, 5, 6, 7])
def test_subaxial_dimensions_within_published_ranges(level, s):
    g = geometry(level, s)
    assert BODY_WIDTH[0] <= 2 * g.a <= BODY_WIDTH[1]
    assert BODY_DEPTH[0] <= 2 * g.b <= BODY_DEPTH[1]
    assert BODY_HEIGHT[0] <= g.h_top + g.h_bottom <= BODY_HEIGHT[1]
    assert CANAL_WIDTH[0] <= g.canal_w <= CANAL_WIDTH[1]
    assert CANAL_DEPTH[0] <= g.canal_d <= CANAL_DEPTH[1]


def test_widths_grow_caudally_and_c7_spinous_is_longest():
    widths = [LEVELS[k][0] for k in range(3, 8)]
    assert widths == sorted(widths)
    assert max(range(3, 8), key=lambda k: LEVELS[k][5]) == 7


@pytest.mark.parametrize("s", SCALES)
def test_atlas_and_dens_within_published_ranges(s):
    rb = ATLAS_RING[2]
    # outer AP: ring half axis plus arch thickness, plus the anterior and posterior tubercles
    ap = 2 * (rb + 2.5 + 1.5) * s
    assert ATLAS_AP[0] <= ap <= ATLAS_AP[1]
    dens_width = 2 * 4.8 * s  # vertebrae.axis: dens capsule radius 4.8 mm × s
    assert DENS_WIDTH[0] <= dens_width <= DENS_WIDTH[1]


def test_lordosis_range_within_published_range():
    lo, hi = PhantomConfig().lordosis_deg
    assert LORDOSIS[0] <= lo < hi <= LORDOSIS[1]
