"""Augmentation of one model-grid slice and its targets with one shared geometric transform.

Geometry (applied identically to image, vertebra labels and fracture map): rotation about
the slice centre (± ``rotation_deg``), isotropic scaling, shift, optional elastic deformation.
The image is resampled bilinearly, the label maps by nearest neighbour, so labels stay
integers. Intensity (image only): contrast, brightness, Gaussian noise, clipped to [0, 1].

No left-right flip by default. Flipping would be label-safe (C1–C7 are midline structures,
no target is sided), but ``prepare_volume`` always puts the patient's left on the same image
side, so a mirrored slice is something the model never meets at inference, and the neck
around the spine is not symmetric (airway, oesophagus, vessels, scoliosis and head rotation
have a side). ``flip_lr=True`` turns it on for those who want the extra variety.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform (all symmetric around "no change").

    rotation_deg     : max in-plane rotation (degrees)
    scale            : (min, max) isotropic scale factor
    shift_frac       : max shift as a fraction of the slice size
    contrast         : max relative contrast change around mid-grey
    brightness       : max additive change ([0, 1] units)
    noise_std        : max standard deviation of added Gaussian noise ([0, 1] units)
    elastic_alpha_px : max elastic displacement (pixels); 0 turns elastic off
    elastic_sigma_px : smoothness of the elastic field (pixels)
    flip_lr          : mirror left-right with probability 0.5 (see module docstring)
    """

    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift_frac: float = 0.05
    contrast: float = 0.1
    brightness: float = 0.05
    noise_std: float = 0.02
    elastic_alpha_px: float = 0.0
    elastic_sigma_px: float = 8.0
    flip_lr: bool = False


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    g = _GRIDS.get(size)
    if g is None:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        g = _GRIDS[size] = (xx, yy)
    return g


def _draw_transform(size: int, cfg: AugmentConfig, rng: np.random.Generator):
    """The random geometry: a 2×3 matrix mapping output pixel (x, y) → source pixel (x, y),
    and per-pixel elastic offsets (dx, dy) added before it (None when elastic is off)."""
    c = (size - 1) / 2.0
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    scale = rng.uniform(*cfg.scale)
    sx, sy = rng.uniform(-cfg.shift_frac, cfg.shift_frac, size=2) * size
    f = -1.0 if (cfg.flip_lr and rng.random() < 0.5) else 1.0
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    # output (X, Y): undo shift, rotation and scale about the centre, then mirror x if asked
    m = np.array(
        [
            [f * cos, f * sin, c - f * (cos * (c + sx) + sin * (c + sy))],
            [-sin, cos, c + sin * (c + sx) - cos * (c + sy)],
        ]
    )
    elastic = None
    if cfg.elastic_alpha_px > 0:
        k = int(2 * round(3 * cfg.elastic_sigma_px) + 1)
        fields = []
        for _ in range(2):
            field = rng.uniform(-1, 1, size=(size, size)).astype(np.float32)
            field = cv2.GaussianBlur(field, (k, k), cfg.elastic_sigma_px)
            field *= cfg.elastic_alpha_px / max(float(np.abs(field).max()), 1e-6)
            fields.append(field)
        elastic = tuple(fields)
    return m, elastic


def _warp(image: np.ndarray, m: np.ndarray, maps, interp: int) -> np.ndarray:
    """Resample ``image`` [S, S] or [S, S, C] (any C; cv2 takes at most 4 at once)."""
    if image.ndim == 3 and image.shape[2] > 4:
        parts = [
            _warp(np.ascontiguousarray(image[..., i : i + 4]), m, maps, interp)
            for i in range(0, image.shape[2], 4)
        ]
        return np.concatenate([p.reshape(*image.shape[:2], -1) for p in parts], axis=2)
    size = image.shape[0]
    if maps is None:
        out = cv2.warpAffine(
            image,
            m,
            (size, size),
            flags=interp | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    else:
        out = cv2.remap(
            image, maps[0], maps[1], interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    return out.reshape(image.shape)


def _maps(size: int, m: np.ndarray, elastic) -> tuple[np.ndarray, np.ndarray] | None:
    if elastic is None:
        return None
    xx, yy = _pixel_grid(size)
    x, y = xx + elastic[0], yy + elastic[1]
    mx = (m[0, 0] * x + m[0, 1] * y + m[0, 2]).astype(np.float32)
    my = (m[1, 0] * x + m[1, 1] * y + m[1, 2]).astype(np.float32)
    return mx, my


def augment_slice(
    x: np.ndarray,
    labels: np.ndarray,
    fracture: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Augment one sample: ``x`` float32 [S, S, C] in [0, 1], ``labels`` [S, S] integer,
    ``fracture`` [S, S] (or [S, S, 1]) — all with the same geometric transform.
    Returns arrays of the same shapes and dtypes."""
    size = x.shape[0]
    m, elastic = _draw_transform(size, cfg, rng)
    maps = _maps(size, m, elastic)
    x_out = _warp(np.ascontiguousarray(x, dtype=np.float32), m, maps, cv2.INTER_LINEAR)
    lab_out = _warp(np.ascontiguousarray(labels, dtype=np.uint8), m, maps, cv2.INTER_NEAREST)
    frac_out = _warp(np.ascontiguousarray(fracture, dtype=np.float32), m, maps, cv2.INTER_NEAREST)
    if cfg.contrast or cfg.brightness:
        gain = np.float32(1.0 + rng.uniform(-cfg.contrast, cfg.contrast))
        bias = np.float32(rng.uniform(-cfg.brightness, cfg.brightness))
        x_out *= gain
        x_out += np.float32(0.5) * (1 - gain) + bias
    if cfg.noise_std > 0:
        # one noise field for all channels: they are windows/neighbours of the same CT
        sigma = np.float32(rng.uniform(0.0, cfg.noise_std))
        noise = rng.standard_normal((size, size), dtype=np.float32)
        noise *= sigma
        x_out += noise[..., None] if x_out.ndim == 3 else noise
    np.clip(x_out, 0.0, 1.0, out=x_out)
    return (
        x_out,
        lab_out.astype(labels.dtype, copy=False),
        frac_out.astype(fracture.dtype, copy=False),
    )
