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


def _sampling_maps(size: int, cfg: AugmentConfig, rng: np.random.Generator):
    """Per output pixel, the source (x, y) to read: float32 maps [S, S] for cv2.remap."""
    c = (size - 1) / 2.0
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    scale = rng.uniform(*cfg.scale)
    shift = rng.uniform(-cfg.shift_frac, cfg.shift_frac, size=2) * size
    flip = cfg.flip_lr and rng.random() < 0.5
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if cfg.elastic_alpha_px > 0:
        k = int(2 * round(3 * cfg.elastic_sigma_px) + 1)
        for grid in (xx, yy):
            field = rng.uniform(-1, 1, size=(size, size)).astype(np.float32)
            field = cv2.GaussianBlur(field, (k, k), cfg.elastic_sigma_px)
            field *= cfg.elastic_alpha_px / max(float(np.abs(field).max()), 1e-6)
            grid += field
    # output (u, v) → source: undo shift, rotation and scale about the centre
    u, v = xx - c - shift[0], yy - c - shift[1]
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    src_x = cos * u + sin * v
    src_y = -sin * u + cos * v
    if flip:
        src_x = -src_x
    return (src_x + c).astype(np.float32), (src_y + c).astype(np.float32)


def _remap(image: np.ndarray, mx: np.ndarray, my: np.ndarray, interp: int) -> np.ndarray:
    """cv2.remap for any channel count (cv2 handles at most 4 at once)."""
    if image.ndim == 2 or image.shape[2] <= 4:
        out = cv2.remap(image, mx, my, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.reshape(image.shape)
    parts = [
        _remap(np.ascontiguousarray(image[..., i : i + 4]), mx, my, interp)
        for i in range(0, image.shape[2], 4)
    ]
    return np.concatenate([p.reshape(*image.shape[:2], -1) for p in parts], axis=2)


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
    mx, my = _sampling_maps(size, cfg, rng)
    x_out = _remap(np.ascontiguousarray(x, dtype=np.float32), mx, my, cv2.INTER_LINEAR)
    lab_out = _remap(np.ascontiguousarray(labels, dtype=np.uint8), mx, my, cv2.INTER_NEAREST)
    frac_out = _remap(np.ascontiguousarray(fracture, dtype=np.float32), mx, my, cv2.INTER_NEAREST)
    if cfg.contrast or cfg.brightness:
        gain = np.float32(1.0 + rng.uniform(-cfg.contrast, cfg.contrast))
        bias = np.float32(rng.uniform(-cfg.brightness, cfg.brightness))
        x_out = (x_out - np.float32(0.5)) * gain + np.float32(0.5) + bias
    if cfg.noise_std > 0:
        sigma = rng.uniform(0.0, cfg.noise_std)
        x_out = x_out + rng.standard_normal(x_out.shape, dtype=np.float32) * np.float32(sigma)
    np.clip(x_out, 0.0, 1.0, out=x_out)
    return (
        x_out.astype(np.float32, copy=False),
        lab_out.astype(labels.dtype, copy=False),
        frac_out.astype(fracture.dtype, copy=False),
    )
