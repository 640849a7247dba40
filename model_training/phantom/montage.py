"""Figures of the phantom: ``docs/phantom.png`` (axial, sagittal, coronal with vertebra labels
and a fracture) and ``docs/phantom_vs_real.png`` (a phantom slice at C7 next to a real neck CT
slice, both in the bone window at the same mm scale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cspine_desktop.errors import CspineInputError
from cspine_desktop.vertebrae import FRACTURE_RGB, VERTEBRAE

from .config import PhantomConfig
from .study import PhantomStudy, generate_study

BONE = (480.0, 2500.0)  # bone window centre, width (HU)
FIGURE_SEED = 2  # a study with a visible fracture (searched from here on)
REAL_DEFAULT = Path(__file__).resolve().parents[2] / "tests/data/ct-transfer-syntaxes/CTImage.dcm"
VIEW_MM = 150.0  # width of the side-by-side views


def _window(hu: np.ndarray, center: float = BONE[0], width: float = BONE[1]) -> np.ndarray:
    return np.clip((hu.astype(np.float32) - (center - width / 2)) / width, 0.0, 1.0)


def _overlay(gray: np.ndarray, labels: np.ndarray, frac: np.ndarray) -> np.ndarray:
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for v in VERTEBRAE:
        m = labels == v.label
        rgb[m] = 0.6 * rgb[m] + 0.4 * np.array(v.rgb) / 255.0
    m = frac > 0
    rgb[m] = 0.3 * rgb[m] + 0.7 * np.array(FRACTURE_RGB) / 255.0
    return rgb


def figure_study(seed: int | None = None) -> PhantomStudy:
    """A fine (0.4–0.5 mm, 1 mm slices) study with a fracture, for the figures."""
    cfg = PhantomConfig(
        matrix=320,
        pixel_spacing_mm=(0.5, 0.5),
        slice_spacing_mm=(1.0, 1.0),
        fracture_prevalence=1.0,
        fov_circle_probability=0.0,
    )
    s = FIGURE_SEED if seed is None else seed
    for k in range(s, s + 50):
        st = generate_study(k, cfg)
        lines = [f for f in st.fractures if f.kind in ("cortical_line", "dens_type2")]
        if seed is not None or (lines and not st.confounders.osteoporosis):
            return st
    return st


def _extent(n_cols: int, n_rows: int, col_mm: float, row_mm: float):
    return (0.0, n_cols * col_mm, n_rows * row_mm, 0.0)


def make_phantom_png(out: Path, study: PhantomStudy, dpi: int = 90) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hu, lab, frac = study.hu, study.labels, study.fracture_mask
    dz, dy, dx = study.spacing
    f = max(study.fractures, key=lambda f: f.n_voxels)
    zf = int(np.argmax((frac > 0).sum(axis=(1, 2))))
    zz, yy, _ = np.nonzero(frac)
    yf = int(np.median(yy[zz == zf]))
    _, _, xs = np.nonzero(lab)
    xc = int(np.median(xs))
    ax_img = (hu[zf], lab[zf], frac[zf], _extent(hu.shape[2], hu.shape[1], dx, dy))
    sag = (hu[:, :, xc], lab[:, :, xc], frac[:, :, xc], _extent(hu.shape[1], hu.shape[0], dy, dz))
    cor_y = yf  # coronal plane through the fracture
    cor = (
        hu[:, cor_y, :],
        lab[:, cor_y, :],
        frac[:, cor_y, :],
        _extent(hu.shape[2], hu.shape[0], dx, dz),
    )
    fig, axes = plt.subplots(2, 3, figsize=(15, 10.5), facecolor="black")
    titles = (f"axial, slice {zf + 1}", "sagittal (midline)", "coronal")
    for col, (img, lb, fr, ext) in enumerate((ax_img, sag, cor)):
        g = _window(img)
        axes[0, col].imshow(g, cmap="gray", extent=ext, interpolation="bilinear")
        axes[1, col].imshow(_overlay(g, lb, fr), extent=ext, interpolation="nearest")
        for row in (0, 1):
            a = axes[row, col]
            a.set_title(
                titles[col] + ("" if row == 0 else " + labels, fracture"), color="w", fontsize=10
            )
            a.tick_params(colors="0.6", labelsize=7)
            a.set_xlabel("mm", color="0.6", fontsize=7)
    kinds = ", ".join(f"{x.name} {x.kind} ({x.severity})" for x in study.fractures)
    fig.suptitle(
        f"cspine phantom (synthetic, not for diagnostic use) — bone window {BONE[1]:.0f}/"
        f"{BONE[0]:.0f}; labels C1–C7 coloured, fracture_mask yellow\nfractures: {kinds}; "
        f"largest shown: {f.name} {f.kind}",
        color="w",
        fontsize=11,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor="black")
    plt.close(fig)
    return out


def _real_slice(path: Path) -> tuple[np.ndarray, float, float]:
    from cspine_desktop.imaging import load_study

    if not path.exists():
        raise CspineInputError(f"The real CT slice {path} does not exist.")
    vol = load_study(path)
    return vol.hu[0], float(vol.spacing[1]), float(vol.spacing[2])


def _crop_mm(
    img: np.ndarray, row_mm: float, col_mm: float, cy: float, cx: float, fill: float
) -> tuple[np.ndarray, tuple]:
    """A VIEW_MM square around pixel (cy, cx), padded with ``fill``."""
    h = round(VIEW_MM / 2 / row_mm)
    w = round(VIEW_MM / 2 / col_mm)
    pad = max(h, w)
    big = np.pad(img, pad, constant_values=fill)
    cy, cx = int(cy) + pad, int(cx) + pad
    crop = big[cy - h : cy + h, cx - w : cx + w]
    return crop, (-w * col_mm, w * col_mm, h * row_mm, -h * row_mm)


def make_vs_real_png(out: Path, study: PhantomStudy, real_path: Path, dpi: int = 90) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, r_row, r_col = _real_slice(real_path)
    # real: the vertebral body is the bright bone nearest the image centre, lower half
    ry, rx = _body_centre(real)
    lab = study.labels
    z = int(np.argmax((lab == 7).sum(axis=(1, 2))))  # through the pedicles: the full ring
    ys, xs = np.nonzero(lab[z] == 7)
    py, px = np.median(ys), np.median(xs)
    _, dy, dx = study.spacing
    a, ea = _crop_mm(study.hu[z].astype(np.float32), dy, dx, py, px, -1000.0)
    b, eb = _crop_mm(real.astype(np.float32), r_row, r_col, ry, rx, -1000.0)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.8), facecolor="black")
    for ax, img, ext, title in (
        (axes[0], a, ea, f"phantom, C7 level (slice {z + 1}), {dx:.2f} mm pixels"),
        (axes[1], b, eb, f"real neck CT ({real_path.name}), {r_col:.2f} mm pixels"),
    ):
        ax.imshow(_window(img), cmap="gray", extent=ext, interpolation="bilinear")
        ax.set_title(title, color="w", fontsize=10)
        ax.tick_params(colors="0.6", labelsize=7)
        ax.set_xlabel("mm from the vertebral body", color="0.6", fontsize=8)
    fig.suptitle(
        f"Same mm scale ({VIEW_MM:.0f} mm wide), bone window {BONE[1]:.0f}/"
        f"{BONE[0]:.0f}; synthetic phantom, not for diagnostic use",
        color="w",
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor="black")
    plt.close(fig)
    return out


def _body_centre(hu: np.ndarray) -> tuple[float, float]:
    """Pixel (row, col) of the vertebral body: the largest bright bone blob near the midline."""
    import cv2

    bone = (hu > 250).astype(np.uint8)
    n, _, stats, cents = cv2.connectedComponentsWithStats(bone)
    h, w = hu.shape
    best, score = None, -1.0
    for i in range(1, n):
        cx, cy = cents[i]
        if abs(cx - w / 2) > w * 0.15:
            continue
        s = stats[i, cv2.CC_STAT_AREA]
        if s > score:
            best, score = (cy, cx), s
    return best if best is not None else (h / 2, w / 2)


def make_figures(
    out: str | Path = "docs/phantom.png",
    real_path: str | Path | None = None,
    seed: int | None = None,
) -> list[Path]:
    """Write ``out`` and ``<out dir>/phantom_vs_real.png``; returns both paths."""
    out = Path(out)
    study = figure_study(seed)
    paths = [make_phantom_png(out, study)]
    real = Path(real_path) if real_path else REAL_DEFAULT
    # the side-by-side uses the real slice's pixel size and the thickest phantom slices
    cfg = PhantomConfig(
        matrix=256,
        pixel_spacing_mm=(0.68, 0.68),
        slice_spacing_mm=(3.0, 3.0),
        fov_circle_probability=0.0,
        fracture_prevalence=0.0,
    )
    twin = generate_study(FIGURE_SEED if seed is None else seed, cfg)
    paths.append(make_vs_real_png(out.with_name("phantom_vs_real.png"), twin, real))
    return paths
