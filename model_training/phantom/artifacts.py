"""Scanner effects: blur, noise (stronger at the shoulders), dental-metal streaks, the patient
table and the reconstruction circle. Arrays are [z, y, x] HU float32, changed in place."""

from __future__ import annotations

import cv2
import numpy as np


def blur_inplane(hu: np.ndarray, sigma_px: float) -> None:
    """Point-spread blur in each axial slice (sigma in pixels)."""
    if sigma_px <= 0.05:
        return
    for k in range(hu.shape[0]):
        cv2.GaussianBlur(hu[k], (0, 0), sigma_px, dst=hu[k], borderType=cv2.BORDER_REPLICATE)


_BANK: dict[int, np.ndarray] = {}
_BANK_SLICES = 12


def _noise_bank(size: int) -> np.ndarray:
    """A fixed stack of unit-variance noise images (bone-kernel grain: white noise, lightly
    smoothed). Studies take random windows of it, which is as random as fresh noise for a
    study and ten times cheaper."""
    bank = _BANK.get(size)
    if bank is None:
        rng = np.random.default_rng(20220101)
        bank = rng.standard_normal((_BANK_SLICES, size, size), dtype=np.float32)
        for img in bank:
            cv2.GaussianBlur(img, (0, 0), 0.5, dst=img)
        bank /= bank.std()
        _BANK[size] = bank
    return bank


def add_noise(hu: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> None:
    """Add Gaussian noise with per-slice standard deviation ``sigma`` [z] (HU)."""
    nz, ny, nx = hu.shape
    size = max(ny, nx) + 128
    size = 1 << (size - 1).bit_length()
    bank = _noise_bank(size)
    pick = rng.integers(0, _BANK_SLICES, nz)
    oy = rng.integers(0, size - ny + 1, nz)
    ox = rng.integers(0, size - nx + 1, nz)
    flip = rng.random(nz) < 0.5
    for k in range(nz):
        win = bank[pick[k], oy[k] : oy[k] + ny, ox[k] : ox[k] + nx]
        if flip[k]:
            win = win.T if ny == nx else win[::-1]
        hu[k] += np.float32(sigma[k]) * win


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
