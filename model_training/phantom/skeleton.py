"""Bones around the cervical spine (all labelled background): skull base, first ribs,
clavicles, mandible with teeth, hyoid; plus the intervertebral discs.

Each builder returns SDF primitives in the frame of a nearby vertebra (u left, v posterior,
w superior, mm), so they follow the spine when the neck is bent or rotated.
"""

from __future__ import annotations

import numpy as np

from .sdf import Body, Capsule, Ellipsoid, Shell


def _chain(points: list[tuple[float, float, float]], r: float, w_scale: float = 1.0) -> list:
    return [Capsule(points[i], points[i + 1], r, w_scale) for i in range(len(points) - 1)]


def occiput(s: float, condyle_w: float) -> list:
    """Skull base in the C1 frame: condyles on the C1 lateral masses (their lower surface at
    ``condyle_w``), occipital bone as an ellipsoidal shell around the foramen magnum, clivus,
    mastoid processes."""
    cz = condyle_w + 4.5 * s
    prims: list = [
        Shell(
            (0.0, 18.0 * s, cz + 72.0 * s),
            (66.0 * s, 80.0 * s, 74.0 * s),
            6.5 * s,
            hole=(15.0 * s, 18.0 * s),
            hole_c=(0.0, -8.0 * s),
        ),
        Capsule((0.0, -9.0 * s, cz + 3.0), (0.0, -30.0 * s, cz + 28.0 * s), 5.0 * s),
    ]
    for sd in (-1, 1):
        prims.append(Ellipsoid((sd * 13.5 * s, 5.0 * s, cz), (6.0 * s, 9.5 * s, 4.8 * s)))
        prims.append(
            Ellipsoid((sd * 50.0 * s, 12.0 * s, cz + 14.0 * s), (8.0 * s, 11.0 * s, 14.0 * s))
        )
    return prims


def first_rib(side: int, a: float, b: float, s: float) -> list:
    """Rib 1 in the T1 frame: head at the body, over the transverse process, curving forward
    and down toward the manubrium."""
    pts = [
        (side * (a + 3.0), b - 1.0, 1.0),
        (side * (a + 20.0 * s), b + 7.0 * s, 0.0),
        (side * (a + 36.0 * s), b - 4.0 * s, -6.0 * s),
        (side * (a + 43.0 * s), b - 28.0 * s, -16.0 * s),
        (side * (a + 35.0 * s), b - 52.0 * s, -26.0 * s),
        (side * (a + 20.0 * s), b - 66.0 * s, -32.0 * s),
    ]
    return _chain(pts, 3.6 * s, 1.4)


def rib(side: int, a: float, b: float, s: float, k: int) -> list:
    """Rib ``k`` (2, 3, …) in its vertebra's frame: longer and more sloping than the first,
    arching back over the transverse process, round the lung, then forward and down."""
    f = 1.0 + 0.28 * (k - 1)
    pts = [
        (side * (a + 3.0), b - 1.0, 1.0),
        (side * (a + 18.0 * s), b + 9.0 * s, 0.0),
        (side * (a + 45.0 * s * f), b + 4.0 * s, -8.0 * s * f),
        (side * (a + 60.0 * s * f), b - 30.0 * s * f, -22.0 * s * f),
        (side * (a + 50.0 * s * f), b - 62.0 * s * f, -36.0 * s * f),
        (side * (a + 25.0 * s * f), b - 80.0 * s * f, -44.0 * s * f),
    ]
    return _chain(pts, 3.2 * s, 1.5)


def scapula(side: int, a: float, b: float, s: float) -> list:
    """Scapula in the T2 frame: a thin blade behind the upper ribs with its spine and the
    glenoid toward the shoulder."""
    x0 = side * (a + 45.0 * s)
    blade = [
        Capsule((x0, b + 45.0 * s, 25.0 * s), (x0 + side * 45.0 * s, b + 30.0 * s, 15.0 * s), 2.0),
        Capsule((x0, b + 45.0 * s, 25.0 * s), (x0, b + 48.0 * s, -60.0 * s), 2.5),
        Capsule((x0, b + 48.0 * s, -60.0 * s), (x0 + side * 45.0 * s, b + 30.0 * s, 15.0 * s), 2.5),
        Capsule(
            (x0 + side * 8.0 * s, b + 50.0 * s, 18.0 * s),
            (x0 + side * 50.0 * s, b + 30.0 * s, 30.0 * s),
            3.5,
        ),
    ]
    head = Ellipsoid((x0 + side * 62.0 * s, b + 18.0 * s, 22.0 * s), (22.0 * s, 22.0 * s, 24.0 * s))
    return [*blade, head]


def clavicle(side: int, b: float, s: float) -> list:
    """Clavicle in the T1 frame, from the sternal end laterally to the acromion."""
    pts = [
        (side * 22.0 * s, b - 78.0 * s, -22.0 * s),
        (side * 55.0 * s, b - 80.0 * s, -12.0 * s),
        (side * 95.0 * s, b - 62.0 * s, -4.0 * s),
        (side * 135.0 * s, b - 35.0 * s, 2.0 * s),
    ]
    return _chain(pts, 6.0 * s, 1.1)


def mandible(s: float, rng: np.random.Generator) -> tuple[list, list]:
    """Mandible in the C2 frame: body along a parabola in front of C2–C3, rami rising behind
    it; returns (bone primitives, tooth primitives)."""
    w0 = -12.0 * s
    v_chin, half = -62.0 * s, 42.0 * s
    ts = np.linspace(-1.0, 1.0, 9)
    arc = [(float(t * half), float(v_chin + 32.0 * s * t * t), w0) for t in ts]
    prims = _chain(arc, 5.5 * s, 2.4)
    teeth: list = []
    for sd in (-1, 1):
        prims += _chain(
            [
                (sd * half, v_chin + 32.0 * s, w0),
                (sd * 46.0 * s, -14.0 * s, w0 + 22.0 * s),
                (sd * 48.0 * s, -10.0 * s, w0 + 42.0 * s),
            ],
            4.5 * s,
            1.0,
        )
    for t in np.linspace(-0.85, 0.85, 12):
        u = float(t * half * 0.95)
        v = float(v_chin + 32.0 * s * t * t)
        teeth.append(Ellipsoid((u, v, w0 + 16.0 * s), (3.2 * s, 3.8 * s, 4.5 * s)))
    del rng  # teeth positions are fixed; metal choice is made by the caller
    return prims, teeth


def hyoid(s: float) -> list:
    """Hyoid in the C3 frame, a small U in front of the airway."""
    pts = [
        (-17.0 * s, -27.0 * s, 2.0),
        (-9.0 * s, -37.0 * s, 0.0),
        (0.0, -39.0 * s, 0.0),
        (9.0 * s, -37.0 * s, 0.0),
        (17.0 * s, -27.0 * s, 2.0),
    ]
    return _chain(pts, 2.0 * s, 1.6)


def disc(a: float, b: float, h_top: float, height: float) -> list:
    """Disc on top of a vertebra (its frame): fills the space up to the next end-plate."""
    return [
        Body(
            (0.0, -0.3, h_top + height / 2),
            a - 0.3,
            b - 0.3,
            height / 2 + 1.0,
            height / 2 + 0.5,
            round_mm=1.0,
        )
    ]
