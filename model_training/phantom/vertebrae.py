"""Cervical vertebrae C1–C7 (and T1) as unions of SDF primitives in their own frame.

Frame: origin at the centre of the vertebral body (C1: at the dens axis, mid-height of the
ring), u = patient left, v = posterior, w = superior, mm. Sizes follow ANATOMY-style textbook
values scaled by a per-study factor ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sdf import Body, Capsule, Ellipsoid, Pillar, Ring

Parts = dict[str, list]  # part name ("body", "dens", "lamina+1", …) → SDF primitives

# level: body width, body depth, body height, canal width, canal depth, spinous length
LEVELS: dict[int, tuple[float, float, float, float, float, float]] = {
    2: (16.0, 15.0, 16.0, 24.0, 16.0, 15.0),
    3: (15.5, 15.0, 13.5, 24.0, 14.5, 11.0),
    4: (16.0, 15.5, 13.5, 24.5, 14.5, 12.0),
    5: (17.0, 16.0, 13.5, 25.0, 14.0, 13.0),
    6: (18.0, 16.0, 14.0, 25.5, 14.0, 15.0),
    7: (19.5, 16.5, 14.5, 25.0, 14.0, 20.0),
    8: (23.0, 17.0, 16.0, 22.0, 14.0, 24.0),  # T1
    9: (24.0, 18.0, 17.0, 18.0, 14.0, 26.0),  # T2
    10: (25.0, 19.5, 18.0, 16.5, 14.0, 27.0),  # T3
}
FACET_SLOPE = 0.9  # tan of the facet-joint angle (≈ 42° from axial, sloping down to posterior)
DISC_MM: dict[int, float] = {2: 4.5, 3: 5.0, 4: 5.0, 5: 5.5, 6: 5.5, 7: 4.5}  # disc below level


@dataclass(frozen=True)
class VertebraGeometry:
    """Dimensions of one vertebra (mm), used by fractures and confounders."""

    level: int  # 1..7, 8 = T1
    a: float  # body half width
    b: float  # body half depth
    h_top: float
    h_bottom: float
    canal_w: float
    canal_d: float
    spinous: float
    dens_v: float = 0.0  # C2: dens axis v at its base
    dens_top: float = 0.0  # C2: w of the dens tip

    def lamina(self, side: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        return (
            (side * (self.canal_w / 2 + 3.5), self.b + 9.0, -1.0),
            (0.0, self.b + self.canal_d + 3.0, -2.0),
        )

    def pedicle(self, side: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        return (
            (side * (self.a - 2.5), self.b - 3.0, 0.0),
            (side * (self.canal_w / 2 + 2.0), self.b + 4.5, 0.0),
        )

    def spinous_axis(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        v0 = self.b + self.canal_d + 3.0
        return (0.0, v0, -2.0), (0.0, v0 + self.spinous, -2.0 - 0.45 * self.spinous)


def geometry(level: int, s: float) -> VertebraGeometry:
    if level == 1:
        return VertebraGeometry(1, 0.0, 0.0, 4.5 * s, 4.5 * s, 30.0 * s, 30.0 * s, 0.0)
    wd, dp, ht, cw, cd, sp = LEVELS[level]
    if level == 2:
        return VertebraGeometry(
            2,
            wd / 2 * s,
            dp / 2 * s,
            ht / 2 * s,
            ht / 2 * s,
            cw * s,
            cd * s,
            sp * s,
            dens_v=-1.0 * s,
            dens_top=(ht / 2 + 15.5) * s,
        )
    return VertebraGeometry(
        level, wd / 2 * s, dp / 2 * s, ht / 2 * s, ht / 2 * s, cw * s, cd * s, sp * s
    )


def _pillars(g: VertebraGeometry, s: float, up: float, down: float) -> Parts:
    """Articular pillars reaching to ``up``/``down`` mm above/below the body centre (measured
    at the pillar centre), cut by oblique facet planes."""
    return {
        "pillar": [
            Pillar(
                (sd * (g.canal_w / 2 + 5.0 * s), g.b + 6.5 * s),
                5.5 * s,
                6.5 * s,
                up,
                down,
                slope=FACET_SLOPE,
            )
            for sd in (-1, 1)
        ]
    }


def _transverse(g: VertebraGeometry, s: float, foramen_r: float, reach: float) -> Parts:
    out: list = []
    for sd in (-1, 1):
        fu, fv = sd * (g.a + 5.5 * s), g.b - 2.5 * s
        if foramen_r > 0:
            t = 2.0 * s
            out.append(Ring((fu, fv, 0.0), foramen_r + t, foramen_r + t, t, 3.2 * s))
        else:
            out.append(Capsule((sd * g.a, fv, 0.0), (fu, fv + 3.0 * s, 0.0), 3.2 * s, 1.1))
        out.append(
            Capsule(
                (fu + sd * 3.5 * s, fv - 4.0 * s, 0.0),
                (sd * (g.a + reach * s), fv - 3.5 * s, -1.0),
                2.5 * s,
                1.5,
            )
        )
        out.append(
            Capsule(
                (fu + sd * 3.5 * s, fv + 4.0 * s, 0.0),
                (sd * (g.a + (reach + 1.0) * s), fv + 3.5 * s, -1.0),
                2.6 * s,
                1.5,
            )
        )
    return {"transverse": out}


def _posterior_arch(
    g: VertebraGeometry, s: float, lamina_r: float, spinous_r: float, bifid: bool
) -> Parts:
    parts: Parts = {}
    for sd in (-1, 1):
        a, b = g.pedicle(sd)
        parts[f"pedicle{sd:+d}"] = [Capsule(a, b, 3.2 * s, 1.2)]
        a, b = g.lamina(sd)
        parts[f"lamina{sd:+d}"] = [Capsule(a, b, lamina_r * s, 2.0)]
    a, b = g.spinous_axis()
    sp: list = [Capsule(a, b, spinous_r * s, 2.0)]
    if bifid:
        for sd in (-1, 1):
            sp.append(Ellipsoid((sd * 3.0 * s, b[1] - 1.0, b[2]), (2.8 * s, 3.0 * s, 3.5 * s)))
    else:
        sp.append(Ellipsoid((0.0, b[1], b[2]), (3.8 * s, 3.8 * s, 4.5 * s)))
    parts["spinous"] = sp
    return parts


def subaxial(level: int, s: float, up: float, down: float) -> tuple[Parts, VertebraGeometry]:
    """C3–C7 and T1. ``up``/``down``: distance (mm) from the body centre to the middle of the
    disc above/below, so neighbouring articular pillars meet at a 1–2 mm facet joint."""
    g = geometry(level, s)
    parts: Parts = {
        "body": [
            Body(
                (0.0, 0.0, 0.0),
                g.a,
                g.b,
                g.h_top,
                g.h_bottom,
                uncinate=1.8 * s if level <= 7 else 0.0,
            )
        ]
    }
    parts.update(_pillars(g, s, up - 0.7, down - 0.7))
    if level <= 6:
        parts.update(_transverse(g, s, foramen_r=2.8 * s, reach=11.0))
    elif level == 7:
        parts.update(_transverse(g, s, foramen_r=1.0 * s, reach=16.0))
    else:
        parts.update(_transverse(g, s, foramen_r=0.0, reach=20.0))
    parts.update(
        _posterior_arch(g, s, lamina_r=2.9, spinous_r=3.0 if level <= 6 else 3.8, bifid=level <= 6)
    )
    return parts, g


def axis(s: float, down: float) -> tuple[Parts, VertebraGeometry]:
    """C2: body, dens rising through the C1 ring, superior facets, bifid spinous process."""
    g = geometry(2, s)
    parts: Parts = {
        "body": [
            Body((0.0, 0.0, 0.0), g.a, g.b, g.h_top, g.h_bottom, uncinate=0.0, round_mm=2.0),
            Ellipsoid((0.0, -g.b + 2.0 * s, -g.h_bottom + 1.0), (5.0 * s, 3.0 * s, 3.0 * s)),
        ],
        "dens": [
            Capsule(
                (0.0, g.dens_v, g.h_top - 2.0),
                (0.0, g.dens_v + 1.5 * s, g.dens_top - 4.8 * s),
                4.8 * s,
            )
        ],
        "facet": [],
        "pillar": [],
        "transverse": [],
    }
    for sd in (-1, 1):
        parts["facet"].append(
            Ellipsoid((sd * 11.5 * s, 0.5 * s, 4.5 * s), (7.0 * s, 8.5 * s, 5.0 * s))
        )
        # pars / pedicle toward the inferior articular pillar
        a, b = g.pedicle(sd)
        parts[f"pedicle{sd:+d}"] = [Capsule(a, b, 3.2 * s, 1.3)]
        parts["pillar"].append(  # inferior articular process, facing C3's superior one
            Pillar(
                (sd * (g.canal_w / 2 + 5.0 * s), g.b + 6.5 * s),
                5.5 * s,
                6.5 * s,
                1.0,
                down - 0.7,
                slope=FACET_SLOPE,
            )
        )
        fu, fv = sd * (g.a + 4.5 * s), 3.0 * s
        t = 1.5 * s
        parts["transverse"].append(Ring((fu, fv, -1.0), 2.8 * s + t, 2.8 * s + t, t, 3.0 * s))
        parts["transverse"].append(
            Capsule((fu + sd * 3.0 * s, fv, -1.0), (sd * (g.a + 11.0 * s), fv, -2.0), 2.2 * s, 1.4)
        )
        a, b = g.lamina(sd)
        parts[f"lamina{sd:+d}"] = [Capsule(a, b, 2.8 * s, 2.5)]
    a, tip = g.spinous_axis()
    parts["spinous"] = [Capsule(a, tip, 3.5 * s, 2.0)] + [
        Ellipsoid((sd * 4.0 * s, tip[1] - 1.0, tip[2]), (3.5 * s, 3.5 * s, 4.5 * s))
        for sd in (-1, 1)
    ]
    return parts, g


# C1 ring ellipse: centre v, half axes (lateral, AP)
ATLAS_RING = (8.5, 20.0, 18.5)


def atlas(s: float) -> tuple[Parts, VertebraGeometry]:
    """C1: anterior arch, lateral masses, posterior arch and transverse processes; no body."""
    g = geometry(1, s)
    cv, ra, rb = (x * s for x in ATLAS_RING)
    parts: Parts = {
        "arch_anterior": [
            Ring((0.0, cv, 0.0), ra, rb, 2.5 * s, 4.5 * s, v_range=(-40.0, 0.0)),
            Ellipsoid((0.0, cv - rb - 1.5 * s, 0.0), (4.0 * s, 3.0 * s, 5.5 * s)),
        ],
        "arch_posterior": [
            Ring((0.0, cv, 0.0), ra, rb + 0.3 * s, 2.2 * s, 3.8 * s, v_range=(8.0 * s, 60.0)),
            Ellipsoid((0.0, cv + rb + 1.5 * s, 0.0), (4.0 * s, 3.5 * s, 5.0 * s)),
        ],
        "lateral_mass": [],
        "transverse": [],
    }
    for sd in (-1, 1):
        parts["lateral_mass"].append(
            Ellipsoid((sd * 14.0 * s, 5.0 * s, 0.0), (6.5 * s, 10.0 * s, 8.0 * s))
        )
        t = 2.0 * s
        parts["transverse"].append(
            Ring((sd * 24.5 * s, 6.0 * s, 0.0), 3.0 * s + t, 3.0 * s + t, t, 3.5 * s)
        )
        parts["transverse"].append(
            Capsule((sd * 28.5 * s, 7.0 * s, 0.0), (sd * 37.0 * s, 8.0 * s, -1.0), 3.5 * s, 1.2)
        )
    return parts, g
