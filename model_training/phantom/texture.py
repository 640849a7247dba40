"""Trabecular bone texture: a fixed, periodic 3D pattern looked up by local bone coordinates.

Cancellous bone is a network of plates and rods 0.1–0.3 mm thick, 0.5–1.5 mm apart (wider
apart with osteoporosis). CT at 0.3–0.8 mm pixels does not resolve single trabeculae; it shows a
mottled grain of 1–2 mm whose HU follows the local bone fraction. The pattern here is the
zero-level sheets of band-pass noise (|n| small = bone), which gives such a connected
plate-and-pocket network; vertical trabeculae dominate in vertebral bodies, so lookups stretch
it along the superior axis. One bank, built once per process from a fixed seed, serves every
study (a random offset and scale per vertebra), so studies stay reproducible and cheap.
"""

from __future__ import annotations

import numpy as np

N = 64  # cells per side (a power of two: indices wrap with a bit mask)
CELL_MM = 0.3  # cell size at scale 1: the pattern repeats every 19.2 mm
PEAK_PER_MM = 0.55  # spatial frequency of the band-pass noise (spacing ≈ 1.8 mm)

_BANK: list[np.ndarray] = []


def bank() -> np.ndarray:
    """The flat (N³,) float32 texture, zero mean, unit standard deviation."""
    if not _BANK:
        rng = np.random.default_rng(0x7EA8)
        white = rng.standard_normal((N, N, N))
        f = np.fft.fftfreq(N, d=CELL_MM)
        fr = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
        band = np.exp(-(((fr - PEAK_PER_MM) / (0.35 * PEAK_PER_MM)) ** 2))
        n = np.real(np.fft.ifftn(np.fft.fftn(white) * band))
        n /= n.std()
        t = np.exp(-((n / 1.1) ** 2))  # sheets where the noise crosses zero …
        t = (t - t.mean()) / t.std() + 0.6 * n  # … blended with the blotchy band-pass noise
        t = (t - t.mean()) / t.std()
        _BANK.append(t.astype(np.float32).ravel())
    return _BANK[0]


def sample_params(rng: np.random.Generator, osteoporosis: bool) -> tuple[float, ...]:
    """Per-vertebra lookup: (offset u, v, w in cells, cells per mm in-plane, along w)."""
    scale = float(rng.uniform(0.8, 1.15)) * (0.75 if osteoporosis else 1.0)  # coarser if thin
    per_mm = scale / CELL_MM
    off = rng.uniform(0, N, 3)
    return (float(off[0]), float(off[1]), float(off[2]), per_mm, per_mm * 0.6)


def lookup(params: tuple[float, ...], u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Texture values (unit SD) at local coordinates (mm), nearest cell."""
    ou, ov, ow, k, kw = params
    big = float(N * 4096)  # keep indices positive before the wrap-around mask
    m = N - 1
    iu = (u * np.float32(k) + np.float32(ou + big)).astype(np.int32) & m
    iv = (v * np.float32(k) + np.float32(ov + big)).astype(np.int32) & m
    iw = (w * np.float32(kw) + np.float32(ow + big)).astype(np.int32) & m
    return bank()[(iu * N + iv) * N + iw]
