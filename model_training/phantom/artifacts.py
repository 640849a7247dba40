"""Scanner effects: the reconstruction kernel (sharpness and noise texture), noise (stronger at
the shoulders), beam hardening, dental-metal streaks, the patient table and the reconstruction
circle. Arrays are [z, y, x] HU float32, changed in place.

Kernels: a *soft* (standard / soft-tissue) kernel blurs more and its noise is coarse and blotchy
(noise power peaking near 0.2 cycles/mm); a *bone* kernel is sharp, overshoots at edges and its
noise is a fine grain (peak near 0.5–0.6 cycles/mm). Noise power spectra of filtered back
projection rise from zero at zero frequency (the ramp filter) to a kernel-dependent peak.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Kernel:
    """A reconstruction kernel: Gaussian point-spread ``psf_mm`` (SD), an unsharp-mask gain
    ``sharpen`` over ``sharpen_mm`` (edge overshoot of sharp kernels), and the spatial
    frequency (cycles/mm) where its noise power spectrum peaks."""

    name: str
    psf_mm: float
    sharpen: float
    sharpen_mm: float
    nps_peak: float

    def to_dict(self) -> dict[str, float | str]:
        return {k: v if isinstance(v, str) else round(v, 3) for k, v in asdict(self).items()}


def sample_kernel(rng: np.random.Generator, name: str) -> Kernel:
    """A soft or bone kernel with per-study variation (vendors and their settings differ)."""
    if name == "soft":
        return Kernel(
            "soft",
            float(rng.uniform(0.4, 0.6)),
            0.0,
            1.0,
            float(rng.uniform(0.15, 0.28)),
        )
    if name == "bone":
        return Kernel(
            "bone",
            float(rng.uniform(0.2, 0.32)),
            float(rng.uniform(0.2, 0.7)),
            float(rng.uniform(0.7, 1.2)),
            float(rng.uniform(0.45, 0.7)),
        )
    raise ValueError(f"unknown kernel {name!r}")


def slice_profile(hu: np.ndarray, ratio: float) -> None:
    """Slices ``ratio`` times thicker than their spacing (overlapping reconstruction): a box
    average along z over ``ratio`` slice spacings (fractional at its ends)."""
    if ratio <= 1.05:
        return
    half = ratio / 2
    taps = [(j, min(1.0, half + 0.5 - j)) for j in range(1, int(np.ceil(half + 0.5)))]
    src = hu.copy()
    hu *= np.float32(1.0 / ratio)
    nz = hu.shape[0]
    for j, wt in taps:
        if wt <= 0 or j >= nz:
            continue
        f = np.float32(wt / ratio)
        hu[j:] += f * src[:-j]
        hu[:-j] += f * src[j:]
        hu[:j] += f * src[:j]  # edges: the missing neighbours repeat the edge slices
        hu[-j:] += f * src[-j:]


def reconstruct(hu: np.ndarray, kernel: Kernel, pixel_mm: float) -> None:
    """The kernel's sharpness in each axial slice: Gaussian blur, then for sharp kernels an
    unsharp mask (bright/dark rims along bone edges)."""
    s1 = kernel.psf_mm / pixel_mm
    if kernel.sharpen <= 0:
        blur_inplane(hu, s1)
        return
    s2 = kernel.sharpen_mm / pixel_mm
    a = np.float32(kernel.sharpen)
    wide = np.empty(hu.shape[1:], np.float32)
    for k in range(hu.shape[0]):
        img = hu[k]
        cv2.GaussianBlur(img, (0, 0), s2, dst=wide, borderType=cv2.BORDER_REPLICATE)
        if s1 > 0.05:
            cv2.GaussianBlur(img, (0, 0), s1, dst=img, borderType=cv2.BORDER_REPLICATE)
        img *= 1 + a
        img -= a * wide


def blur_inplane(hu: np.ndarray, sigma_px: float) -> None:
    """Point-spread blur in each axial slice (sigma in pixels)."""
    if sigma_px <= 0.05:
        return
    for k in range(hu.shape[0]):
        cv2.GaussianBlur(hu[k], (0, 0), sigma_px, dst=hu[k], borderType=cv2.BORDER_REPLICATE)


_REP = cv2.BORDER_REPLICATE
_BANK: dict[tuple[int, int], np.ndarray] = {}
_BANK_SLICES = 6
_BUCKET = 1.3  # noise-texture peaks are rounded to powers of this (cycles/pixel)


def _bucket(peak_px: float) -> int:
    return round(math.log(min(max(peak_px, 0.02), 0.35) / 0.02) / math.log(_BUCKET))


def _noise_bank(size: int, bucket: int) -> np.ndarray:
    """A fixed stack of unit-variance noise images with a filtered-back-projection noise power
    spectrum f·exp(−(f/fc)²) peaking at ``0.02 × 1.3**bucket`` cycles/pixel. Studies take
    random windows of it, which is as random as fresh noise for a study and ten times cheaper."""
    bank = _BANK.get((size, bucket))
    if bank is None:
        peak = 0.02 * _BUCKET**bucket
        fc = peak * math.sqrt(2.0)
        rng = np.random.default_rng(20220101 + bucket)
        white = rng.standard_normal((_BANK_SLICES, size, size), dtype=np.float32)
        f = np.fft.fftfreq(size)
        fr = np.sqrt(f[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2)
        amp = np.sqrt(fr * np.exp(-((fr / fc) ** 2))).astype(np.float32)
        bank = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(size, size)).astype(np.float32)
        bank /= bank.std()
        _BANK[(size, bucket)] = bank
    return bank


def add_noise(
    hu: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator,
    peak_px: float = 0.25,
) -> None:
    """Add correlated noise with per-slice standard deviation ``sigma`` [z] (HU) whose power
    spectrum peaks at ``peak_px`` cycles per pixel (kernel ``nps_peak`` × pixel size)."""
    nz, ny, nx = map(int, hu.shape)
    size = max(ny, nx) + 128
    size = 1 << (size - 1).bit_length()
    bank = _noise_bank(size, _bucket(peak_px))
    pick = rng.integers(0, _BANK_SLICES, nz)
    oy = rng.integers(0, size - ny + 1, nz)
    ox = rng.integers(0, size - nx + 1, nz)
    flip = rng.random(nz) < 0.5
    for k in range(nz):
        win = bank[pick[k], oy[k] : oy[k] + ny, ox[k] : ox[k] + nx]
        if flip[k]:
            win = win.T if ny == nx else win[::-1]
        hu[k] += np.float32(sigma[k]) * win


def beam_hardening(hu: np.ndarray, pixel_mm: float, strength: float) -> None:
    """Dark streaks along rays through much bone (shoulders, skull base, mandible).

    The deficit of a ray grows with the square of its bone path (HU above 300, as mm of
    1000-HU bone); left–right and anterior–posterior rays are modelled, each a streak along its
    row or column (high-passed across rays), added to the whole slice. ``strength``: HU of
    deficit per mm² of bone path (≈ 0.005–0.03). Paths are summed on every 4th pixel."""
    if strength <= 0:
        return
    ny, nx = hu.shape[1:]
    step = 4 if min(ny, nx) >= 128 else 1
    e = np.maximum(hu[:, ::step, ::step] - np.float32(300.0), np.float32(0.0))
    sig = max(1.0, 4.0 / (pixel_mm * step))
    g = cv2.getGaussianKernel(2 * math.ceil(3 * sig) + 1, sig).astype(np.float32)
    one = np.ones((1, 1), np.float32)
    for axis, n in ((2, ny), (1, nx)):
        path = e.sum(axis=axis) * np.float32(pixel_mm * step / 1000.0)  # [z, rays] mm of bone
        d = np.float32(strength) * path * path
        hp = d - cv2.sepFilter2D(d, -1, g, one, borderType=_REP)
        for k in np.flatnonzero(np.abs(hp).max(axis=1) >= 2.0):
            streak = np.repeat(hp[k], step)[:n]
            if axis == 2:
                hu[k] -= streak[:, None]
            else:
                hu[k] -= streak[None, :]


def shoulder_streaks(hu: np.ndarray, weight: np.ndarray, rng: np.random.Generator) -> None:
    """Photon-starvation streaks running left–right through the shoulders (weight [z] 0..1)."""
    ny = hu.shape[1]
    yy = np.arange(ny, dtype=np.float32)
    for k in np.flatnonzero(weight > 0.05):
        prof = np.zeros(ny, np.float32)
        for _ in range(3):
            y0 = rng.uniform(0.3, 0.7) * ny
            prof += rng.normal(0.0, 60.0) * np.exp(-(((yy - y0) / rng.uniform(1.0, 3.0)) ** 2))
        hu[k] += weight[k] * prof[:, None]


def metal_streaks(
    hu: np.ndarray,
    centers_px: list[tuple[float, float, float]],
    rng: np.random.Generator,
    pixel_mm: float,
    slice_mm: float,
) -> None:
    """Bright and dark streaks radiating from metal at (z, y, x) voxel positions, strongest in
    the slices through the metal, fading over ~4 mm."""
    ny, nx = hu.shape[1:]
    yy = np.arange(ny, dtype=np.float32)[:, None]
    xx = np.arange(nx, dtype=np.float32)[None, :]
    reach = max(1, round(4.0 / slice_mm))
    for zc, yc, xc in centers_px:
        amp = rng.uniform(250.0, 700.0)
        m1, m2 = int(rng.integers(7, 15)), int(rng.integers(15, 31))
        f1, f2 = rng.uniform(0, 2 * np.pi, 2)
        theta = np.arctan2(yy - yc, xx - xc)
        r_mm = np.sqrt((yy - yc) ** 2 + (xx - xc) ** 2) * pixel_mm
        pattern = 0.6 * np.sin(m1 * theta + f1) + 0.4 * np.sin(m2 * theta + f2)
        pattern = np.sign(pattern) * np.abs(pattern) ** 3
        fade = np.exp(-r_mm / rng.uniform(40.0, 90.0)) * (r_mm > 3.0)
        img = (amp * pattern * fade).astype(np.float32)
        k0 = round(zc)
        for k in range(max(0, k0 - reach), min(hu.shape[0], k0 + reach + 1)):
            hu[k] += img * (1.0 - abs(k - zc) / (reach + 1))


def table(hu: np.ndarray, y_mm: np.ndarray, x_mm: np.ndarray, top_y: float, rng) -> None:
    """A curved patient-table top (two thin shells) below (posterior to) the patient."""
    depth = rng.uniform(1.5, 3.0)
    curve = rng.uniform(0.0008, 0.002)
    for dy, val in ((0.0, rng.uniform(150, 400)), (rng.uniform(6, 12), rng.uniform(80, 250))):
        yline = top_y + dy + curve * x_mm**2
        band = np.abs(y_mm[:, None] - yline[None, :]) < depth / 2
        if band.any():
            hu[:, band] = val


def fov_circle(hu: np.ndarray, value: float = -3024.0) -> None:
    """Pixels outside the reconstruction circle get the scanner's padding value."""
    ny, nx = hu.shape[1:]
    yy = (np.arange(ny) - (ny - 1) / 2)[:, None]
    xx = (np.arange(nx) - (nx - 1) / 2)[None, :]
    outside = yy * yy + xx * xx > (min(nx, ny) / 2) ** 2
    hu[:, outside] = value
