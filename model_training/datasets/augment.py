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
            blurred = cv2.GaussianBlur(field, (k, k), cfg.elastic_sigma_px)
            field = blurred.astype(np.float32, copy=False)  # float32 in, float32 out
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


# ---------------------------------------------------------------------------------------------
# Domain randomisation on CT volumes (HU, [z, y, x]): what differs between scanners, sites and
# protocols rather than between patients. Framework-free (numpy + OpenCV); every helper takes
# float32 arrays and returns new arrays (the input is left as it is). Apply before windowing;
# :func:`gamma` works on windowed [0, 1] images.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainConfig:
    """Ranges of :func:`randomize_volume` (each step applied with probability ``p``).

    hu_scale, hu_offset : calibration drift: HU × scale + offset
    blur_mm             : extra in-plane blur (Gaussian SD, mm): a softer kernel
    sharpen             : unsharp-mask gain: a sharper kernel (edge overshoot)
    noise_hu            : added noise SD (HU), correlated over ``noise_corr_mm``
    down_factor         : in-plane resolution loss: resample down by this factor and back up
    thickness_ratio     : slices averaged along z over this many slice spacings
    fov_frac            : kept fraction of the in-plane field of view (random crop)
    """

    p: float = 0.5
    hu_scale: tuple[float, float] = (0.92, 1.08)
    hu_offset: tuple[float, float] = (-30.0, 30.0)
    blur_mm: tuple[float, float] = (0.2, 0.8)
    sharpen: tuple[float, float] = (0.2, 0.8)
    noise_hu: tuple[float, float] = (5.0, 40.0)
    noise_corr_mm: tuple[float, float] = (0.0, 1.0)
    down_factor: tuple[float, float] = (1.2, 2.5)
    thickness_ratio: tuple[float, float] = (1.2, 3.0)
    fov_frac: tuple[float, float] = (0.7, 1.0)


def scale_offset(hu: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """HU calibration drift: ``hu × scale + offset``."""
    return np.asarray(hu, np.float32) * np.float32(scale) + np.float32(offset)


def gamma(img01: np.ndarray, g: float) -> np.ndarray:
    """Gamma on a windowed image in [0, 1] (g < 1 brightens mid-greys)."""
    return np.power(np.clip(np.asarray(img01, np.float32), 0.0, 1.0), np.float32(g))


def _per_slice(vol: np.ndarray, fn) -> np.ndarray:
    out = np.array(vol, dtype=np.float32, copy=True)
    flat = out.reshape(-1, *out.shape[-2:])
    for k in range(flat.shape[0]):
        flat[k] = fn(flat[k])
    return out


def blur(vol: np.ndarray, sigma_mm: float, pixel_mm: float) -> np.ndarray:
    """In-plane Gaussian blur of every slice ([y, x] or [z, y, x])."""
    s = sigma_mm / pixel_mm
    if s <= 0.05:
        return np.array(vol, dtype=np.float32, copy=True)
    return _per_slice(
        vol, lambda im: cv2.GaussianBlur(im, (0, 0), s, borderType=cv2.BORDER_REPLICATE)
    )


def sharpen(vol: np.ndarray, amount: float, radius_mm: float, pixel_mm: float) -> np.ndarray:
    """Unsharp mask: ``(1 + amount) × img − amount × blur(img, radius)``."""
    s = max(radius_mm / pixel_mm, 0.3)
    a = np.float32(amount)
    return _per_slice(
        vol,
        lambda im: (
            (1 + a) * im - a * cv2.GaussianBlur(im, (0, 0), s, borderType=cv2.BORDER_REPLICATE)
        ),
    )


def add_noise(vol: np.ndarray, std: float, corr_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of SD ``std`` (after smoothing over ``corr_px`` pixels, re-normalised)."""
    out = np.array(vol, dtype=np.float32, copy=True)
    noise = rng.standard_normal(out.shape, dtype=np.float32)
    if corr_px > 0.3:
        noise = _per_slice(noise, lambda im: cv2.GaussianBlur(im, (0, 0), corr_px))
        noise /= max(float(noise.std()), 1e-6)
    out += np.float32(std) * noise
    return out


def down_up(vol: np.ndarray, factor: float) -> np.ndarray:
    """Lose in-plane resolution: resample each slice down by ``factor`` (area) and back up
    (linear) to the same size."""
    h, w = vol.shape[-2:]
    small = (max(2, round(w / factor)), max(2, round(h / factor)))

    def fn(im: np.ndarray) -> np.ndarray:
        lo = cv2.resize(im, small, interpolation=cv2.INTER_AREA)
        return cv2.resize(lo, (w, h), interpolation=cv2.INTER_LINEAR)

    return _per_slice(vol, fn)


def slice_thickness(vol: np.ndarray, ratio: float) -> np.ndarray:
    """Thicker slices at the same spacing: a box average along z ([z, y, x]) over ``ratio``
    slice spacings (fractional weights at its ends; edge slices repeat)."""
    v = np.asarray(vol, np.float32)
    if ratio <= 1.0 or v.ndim != 3:
        return v.copy()
    half = ratio / 2
    reach = int(np.ceil(half - 0.5))
    weights = [min(1.0, half + 0.5 - abs(j)) for j in range(-reach, reach + 1)]
    padded = np.pad(v, ((reach, reach), (0, 0), (0, 0)), mode="edge")
    out = np.zeros_like(v)
    for i, wt in enumerate(weights):
        out += np.float32(wt) * padded[i : i + v.shape[0]]
    return out / np.float32(sum(weights))


def random_fov(
    shape: tuple[int, ...], frac: float, rng: np.random.Generator
) -> tuple[slice, slice]:
    """A random in-plane crop (rows, cols) keeping ``frac`` of each side: a smaller field of
    view around an off-centre point. Apply the same slices to image, labels and masks."""
    h, w = shape[-2:]
    ch, cw = max(1, round(h * frac)), max(1, round(w * frac))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    return slice(y0, y0 + ch), slice(x0, x0 + cw)


def randomize_volume(
    hu: np.ndarray,
    pixel_mm: float,
    rng: np.random.Generator,
    cfg: DomainConfig | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """One random scanner for a HU volume [z, y, x] (or a slice [y, x]): calibration, kernel
    (blur or sharpen), resolution, slice thickness and noise, each with probability ``cfg.p``.
    Geometry is unchanged, so labels stay valid. Returns the new volume and what was done."""
    c = cfg or DomainConfig()
    out = np.asarray(hu, np.float32)
    done: dict[str, float] = {}

    def hit() -> bool:
        return bool(rng.random() < c.p)

    if hit():
        s, o = float(rng.uniform(*c.hu_scale)), float(rng.uniform(*c.hu_offset))
        out = scale_offset(out, s, o)
        done.update(hu_scale=s, hu_offset=o)
    if hit():
        f = float(rng.uniform(*c.down_factor))
        out = down_up(out, f)
        done["down_factor"] = f
    if hit():
        if rng.random() < 0.5:
            b = float(rng.uniform(*c.blur_mm))
            out = blur(out, b, pixel_mm)
            done["blur_mm"] = b
        else:
            a = float(rng.uniform(*c.sharpen))
            out = sharpen(out, a, 1.0, pixel_mm)
            done["sharpen"] = a
    if out.ndim == 3 and hit():
        r = float(rng.uniform(*c.thickness_ratio))
        out = slice_thickness(out, r)
        done["thickness_ratio"] = r
    if hit():
        n = float(rng.uniform(*c.noise_hu))
        corr = float(rng.uniform(*c.noise_corr_mm)) / pixel_mm
        out = add_noise(out, n, corr, rng)
        done.update(noise_hu=n, noise_corr_px=corr)
    if out is hu:
        out = out.copy()
    return out, done
