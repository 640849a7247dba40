"""Fractures: which vertebrae break, how, and what that does to the bone.

A fracture is applied to a vertebra's :class:`~.render.Structure` in its local frame (u left,
v posterior, w superior, mm) as lucent lines (:class:`Cut`, 50–300 HU), fragment step-offs
(:class:`Shift`), height loss (:class:`Compression`), impaction density and the region the
``fracture_mask`` marks. Minor = hairline, non-displaced; severe = displaced or collapsed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .config import FractureSpec, PhantomConfig
from .structure import Compression, Cut, Dense, MaskRegion, Shift, Structure, Vec3
from .vertebrae import ATLAS_RING, VertebraGeometry

# kind → weight, per vertebra
KIND_WEIGHTS: dict[int, dict[str, float]] = {
    1: {"ring": 1.0},
    2: {"dens_type2": 0.45, "cortical_line": 0.25, "posterior_line": 0.2, "spinous": 0.1},
    **{
        k: {
            "cortical_line": 0.3,
            "compression": 0.2,
            "burst": 0.1,
            "posterior_line": 0.25,
            "spinous": 0.15,
        }
        for k in (3, 4, 5, 6)
    },
    7: {
        "cortical_line": 0.25,
        "compression": 0.15,
        "burst": 0.05,
        "posterior_line": 0.2,
        "spinous": 0.35,
    },
}


FILL_HU = (20.0, 90.0)  # a fracture cleft's fill: clot


def sample_fractures(rng: np.random.Generator, cfg: PhantomConfig) -> list[FractureSpec]:
    """Fractures of one study: none with probability 1 − prevalence, else ≥ 1 vertebra drawn
    with the per-vertebra frequencies (RSNA: C2 and C7 most often), 1–2 fractures each."""
    if rng.random() >= cfg.fracture_prevalence:
        return []
    freq = np.asarray(cfg.vertebra_fracture_frequency, dtype=float)
    hit = rng.random(7) < freq
    if not hit.any():
        hit[rng.choice(7, p=freq / freq.sum())] = True
    out: list[FractureSpec] = []
    for k in np.flatnonzero(hit) + 1:
        kinds = KIND_WEIGHTS[int(k)]
        names, w = list(kinds), np.array(list(kinds.values()))
        n = 2 if rng.random() < 0.2 else 1
        for kind in (
            rng.choice(names, size=n, replace=False, p=w / w.sum()) if n <= len(names) else names
        ):
            severity = "severe" if rng.random() < cfg.severe_fraction else "minor"
            if kind == "burst":
                severity = "severe"
            out.append(FractureSpec(vertebra=int(k), kind=str(kind), severity=severity))
    return out


def _vec3(p: ArrayLike) -> Vec3:
    x, y, z = np.asarray(p, dtype=float).tolist()
    return (x, y, z)


def _unit(x: ArrayLike) -> Vec3:
    v = np.asarray(x, dtype=float)
    return _vec3(v / np.linalg.norm(v))


def _tilt(n: ArrayLike, rng: np.random.Generator, deg: float) -> Vec3:
    return _unit(np.asarray(n) + rng.normal(0.0, np.tan(np.deg2rad(deg)), 3))


def _gap(rng: np.random.Generator, severe: bool) -> float:
    """Width (mm) of a lucent line: a minor (non-displaced) break is still ≥ 1 mm, so its
    cortical gap spans two 0.5 mm pixels and survives the reconstruction blur."""
    return float(rng.uniform(1.6, 2.6) if severe else rng.uniform(1.0, 1.5))


def _perp(n: ArrayLike, rng: np.random.Generator) -> np.ndarray:
    d = rng.normal(size=3)
    d -= np.dot(d, n) * np.asarray(n)
    return d / np.linalg.norm(d)


def _axis(a: np.ndarray, b: np.ndarray) -> tuple[float, ...]:
    """The unit vector from a to b."""
    return tuple((b - a) / np.linalg.norm(b - a))


@dataclass
class _Break:
    """One fracture being drawn into a vertebra: what the drawing of every kind shares.

    hu   : the fill of its lucent lines (clot, fragments); disp: the fragments' displacement,
           mm (0 unless severe and not a compression)."""

    st: Structure
    g: VertebraGeometry
    spec: FractureSpec
    index: int
    rng: np.random.Generator
    severe: bool
    hu: float
    disp: float

    def cut(self, p0: ArrayLike, n: Vec3, radius: float) -> None:
        """A lucent line through p0 with normal n, out to ``radius`` mm."""
        gap = _gap(self.rng, self.severe)
        wave = float(self.rng.uniform(0.2, 0.6))
        self.st.cuts.append(Cut(_vec3(p0), n, gap, radius, self.hu, wave, self.index))

    def shift(
        self,
        p0: ArrayLike,
        n: ArrayLike,
        vec: ArrayLike,
        radius: float,
        parts: tuple[str, ...] | None,
    ) -> None:
        """The fragment beyond the line through p0 (normal n) moves by ``vec`` mm."""
        self.st.shifts.append(Shift(_vec3(p0), _vec3(n), _vec3(vec), radius, parts))


def _cortical_line(f: _Break) -> None:
    """A line through the body: severe ones cross it and step off, minor ones are a hairline
    reaching the cortex on one side."""
    g, rng = f.g, f.rng
    n = _tilt(((1, 0, 0), (0, 1, 0), (0, 0.6, 1), (0.7, 0.7, 0))[rng.integers(4)], rng, 20)
    p0 = np.array(
        [
            rng.uniform(-0.4, 0.4) * g.a,
            rng.uniform(-0.5, 0.2) * g.b,
            rng.uniform(-0.3, 0.3) * g.h_top,
        ]
    )
    if f.severe:
        f.cut(p0, n, 1.3 * max(g.a, g.b))  # across the whole body
        vec = _perp(n, rng) * f.disp * 0.8 + np.asarray(n) * f.disp * 0.3
        f.shift(p0, n, vec, 12.0, ("body",))
    else:
        # a hairline reaching the cortex on one side: centre it near the surface
        d = _perp(n, rng)
        d[2] *= 0.3
        d /= np.linalg.norm(d)
        p0 = p0 + d * np.array([g.a, g.b, g.h_top]) * 0.6
        f.cut(p0, n, float(rng.uniform(6.0, 10.0)))


def _posterior_line(f: _Break) -> None:
    """A lamina or pedicle line (on C2 both pedicles: the hangman's fracture)."""
    g, rng = f.g, f.rng
    side = int(rng.choice((-1, 1)))
    part = "lamina" if rng.random() < 0.6 or g.level == 2 else "pedicle"
    a, b = (np.asarray(x) for x in (g.lamina(side) if part == "lamina" else g.pedicle(side)))
    p0 = a + rng.uniform(0.25, 0.7) * (b - a)
    n = _tilt(_axis(a, b), rng, 25)
    f.cut(p0, n, 7.0)
    if g.level == 2:  # hangman: both sides
        a2, b2 = (np.asarray(x) for x in g.pedicle(-side))
        f.cut(a2 + 0.6 * (b2 - a2), _tilt(_axis(a2, b2), rng, 20), 7.0)
    if f.severe:
        vec = _perp(n, rng) * f.disp * 0.7 + np.asarray(n) * f.disp * 0.4
        f.shift(p0, n, vec, 20.0, (f"{part}{side:+d}",))


def _spinous(f: _Break) -> None:
    """A spinous-process line (clay-shoveler's); severe: the tip drops back and down."""
    rng = f.rng
    a, b = (np.asarray(x) for x in f.g.spinous_axis())
    p0 = a + rng.uniform(0.35, 0.75) * (b - a)
    n = _tilt(_axis(a, b), rng, 20)
    f.cut(p0, n, 8.0)
    if f.severe:
        f.shift(p0, n, np.array([0.0, 0.6, -1.0]) * f.disp, 25.0, ("spinous",))


def _collapse(f: _Break, wedge: bool) -> float:
    """Height loss of the body (a wedge, or nearly uniform), the impacted bone under the
    sunken end-plate and a line through it; returns that end-plate's height (w, mm)."""
    g, rng = f.g, f.rng
    loss = float(rng.uniform(0.25, 0.5) if f.severe else rng.uniform(0.15, 0.25))
    anterior = float(rng.uniform(0.7, 1.0)) if wedge else 0.3
    f.st.compressions.append(Compression(g.h_top, -g.h_bottom, g.b, g.a, loss, anterior))
    top = g.h_top - loss * (g.h_top + g.h_bottom) * 0.75
    f.spec.height_loss = loss
    f.st.dense.append(
        Dense((0.0, -0.2 * g.b, top - 2.0), (g.a, g.b, 2.5), float(rng.uniform(200.0, 450.0)))
    )
    f.cut((0.0, -0.5 * g.b, top - 1.5), _tilt((0, 0.35, 1), rng, 10), g.a + 2.0)
    return top


def _compression(f: _Break) -> None:
    """A wedge: anterior height loss, buckled end-plate."""
    g = f.g
    top = _collapse(f, wedge=True)
    f.st.mask_regions.append(
        MaskRegion((0.0, -0.3 * g.b, top - 1.0), (g.a + 1.0, g.b + 1.0, 5.0), f.index)
    )


def _burst(f: _Break) -> None:
    """A burst: the body collapses, splits in several lines and its back bulges into the canal."""
    g, rng = f.g, f.rng
    top = _collapse(f, wedge=False)
    for _ in range(int(rng.integers(2, 4))):
        p0 = rng.uniform(-0.3, 0.3, 3) * np.array([g.a, g.b, g.h_top])
        f.cut(p0, _unit(rng.normal(size=3)), 1.2 * max(g.a, g.b))
    back = (0.0, g.b - 3.0, top - 3.0)
    f.shift(back, _unit((0, 0.7, 0.7)), (0.0, f.disp, 0.0), 10.0, ("body",))
    f.st.mask_regions.append(
        MaskRegion((0.0, 0.0, 0.0), (g.a + 1.0, g.b + 1.0, g.h_top + 1.0), f.index)
    )


def _dens_type2(f: _Break) -> None:
    """A line across the base of the dens; severe: the dens is displaced."""
    rng = f.rng
    p0 = (0.0, f.g.dens_v, f.g.h_top + 2.0)
    n = _tilt((0, 0.2, 1), rng, 10)
    f.cut(p0, n, 7.5)
    if f.severe:
        vec = (float(rng.normal(0, 0.5)), float(rng.choice((-1, 1)) * f.disp), 0.3)
        f.shift(p0, n, vec, 60.0, ("dens",))


def _ring(f: _Break) -> None:
    """C1: breaks of the anterior and/or posterior arch on one side; severe (Jefferson): both,
    and the lateral mass between them spreads outward."""
    rng = f.rng
    sc = f.g.canal_w / 30.0  # C1 size factor
    cv, ra, rb = (x * sc for x in ATLAS_RING)
    side = int(rng.choice((-1, 1)))
    breaks: list[tuple[np.ndarray, float, int]] = []
    if f.severe or rng.random() < 0.6:
        th = np.deg2rad(rng.uniform(12, 35))  # anterior arch, angle from the midline
        breaks.append((np.array([side * ra * np.sin(th), cv - rb * np.cos(th), 0.0]), th, -1))
    if f.severe or not breaks or rng.random() < 0.5:
        th = np.deg2rad(rng.uniform(20, 50))  # posterior arch
        breaks.append((np.array([side * ra * np.sin(th), cv + rb * np.cos(th), 0.0]), th, 1))
    for p0, th, ap in breaks:
        tangent = _unit((np.cos(th), ap * -np.sin(th) * side, 0.0))
        f.cut(p0, _tilt(tangent, rng, 10), 7.0)
    if f.severe:  # the lateral mass between the two breaks spreads outward
        pa, pp = breaks[0][0], breaks[1][0]
        d = pp - pa
        n = np.array([d[1], -d[0], 0.0]) / np.hypot(d[0], d[1])
        if n[0] * side < 0:
            n = -n
        f.shift(pa, n, (side * f.disp, 0.0, 0.0), 80.0, None)


_DRAW: dict[str, Callable[[_Break], None]] = {
    "cortical_line": _cortical_line,
    "posterior_line": _posterior_line,
    "spinous": _spinous,
    "compression": _compression,
    "burst": _burst,
    "dens_type2": _dens_type2,
    "ring": _ring,
}


def apply_fracture(
    st: Structure, g: VertebraGeometry, spec: FractureSpec, index: int, rng: np.random.Generator
) -> None:
    """Add fracture ``spec`` (index ``index`` in the study list) to vertebra ``st``."""
    severe = spec.severity == "severe"
    # the cleft holds clot (haematoma 20–90 HU), darker than any marrow but the most porotic:
    # a fill up to 260 HU was as bright as cancellous bone (150–300 HU), so a line through the
    # body showed only where it crossed the cortex, and not at all in osteoporotic bone
    hu = float(rng.uniform(FILL_HU[0], FILL_HU[1]))
    displaced = severe and spec.kind != "compression"
    disp = float(rng.uniform(1.5, 4.5)) if displaced else 0.0
    draw = _DRAW.get(spec.kind)
    if draw is None:  # pragma: no cover - guarded by KIND_WEIGHTS
        raise ValueError(spec.kind)
    n_shifts = len(st.shifts)
    draw(_Break(st, g, spec, index, rng, severe, hu, disp))
    moved = [float(np.linalg.norm(s.vec)) for s in st.shifts[n_shifts:]]
    spec.displacement_mm = round(max(moved, default=0.0), 2)
