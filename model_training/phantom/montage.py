"""Figures of the phantom: ``docs/phantom.png`` (axial, sagittal, coronal with vertebra labels
and a fracture) and ``docs/phantom_vs_real.png`` (a gallery: a real neck CT slice beside phantom
axials at C7, C5, C2 and C1 and a sagittal, tissue HU histograms, and the scanner variety, in
the bone window at the same mm scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.errors import CspineInputError
from cspine_desktop.vertebrae import FRACTURE_RGB, VERTEBRAE

from .config import PhantomConfig
from .study import PhantomStudy, generate_study

BONE = (480.0, 2500.0)  # bone window centre, width (HU)
FIGURE_SEED = 2  # a study with a visible fracture (searched from here on)
REAL_DEFAULT = Path(__file__).resolve().parents[2] / "tests/data/ct-transfer-syntaxes/CTImage.dcm"
VIEW_MM = 150.0  # width of the side-by-side views
REAL_BODY_RC = (291, 272)  # vertebral body centre (row, col) on the bundled real slice


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
        head_neck_probability=0.0,
        trauma_probability=0.0,
        gantry_tilt_probability=0.0,
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


def _axial_at(study: PhantomStudy, level: int) -> tuple[np.ndarray, float, float, int]:
    """The axial slice through the middle of a vertebra and its body centre (row, col)."""
    from .realism import body_centre

    z = int(np.argmax((study.labels == level).sum(axis=(1, 2))))
    cy, cx = body_centre(study.labels[z], level)
    return study.hu[z].astype(np.float32), cy, cx, z


def _variety(matrix: int, seed: int) -> list[tuple[str, PhantomStudy, int]]:
    """The same neck under other scanners: (title, study, level shown)."""
    base: dict[str, Any] = {
        "matrix": matrix,
        "fov_circle_probability": 0.0,
        "fracture_prevalence": 0.0,
        "head_neck_probability": 0.0,
        "trauma_probability": 0.0,
        "gantry_tilt_probability": 0.0,
    }
    fine = max(0.5, 110.0 / matrix)
    rows = [
        (
            "soft kernel, 3 mm slices, noise 8 HU",
            {
                "soft_kernel_probability": 1.0,
                "slice_spacing_mm": (3.0, 3.0),
                "noise_hu": (8.0, 8.0),
                "pixel_spacing_mm": (fine, fine),
            },
            5,
        ),
        (
            "bone kernel, 0.6 mm slices, noise 40 HU",
            {
                "soft_kernel_probability": 0.0,
                "slice_spacing_mm": (0.6, 0.6),
                "noise_hu": (40.0, 40.0),
                "pixel_spacing_mm": (fine, fine),
            },
            5,
        ),
        (
            "trauma scan, 450 mm field of view",
            {
                "trauma_probability": 1.0,
                "wide_fov_mm": (450.0, 450.0),
                "slice_spacing_mm": (2.0, 2.0),
            },
            7,
        ),
        (
            "gantry tilted 20°",
            {
                "gantry_tilt_probability": 1.0,
                "gantry_tilt_deg": 20.0,
                "slice_spacing_mm": (1.0, 1.0),
                "pixel_spacing_mm": (fine, fine),
            },
            5,
        ),
    ]
    out = []
    for title, kw, level in rows:
        cfg = PhantomConfig(**{**base, **kw})
        out.append((title, generate_study(seed, cfg), level))
    return out


def make_vs_real_png(out: Path, study: PhantomStudy, real_path: Path, dpi: int = 90) -> Path:
    """The gallery: the real slice beside phantom axials at C7, C5, C2 and C1 and a midline
    sagittal; tissue HU histograms (same regions, same rules); the scanner variety."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .realism import TISSUES, tissue_masks

    real, r_row, r_col = _real_slice(real_path)
    ry, rx = REAL_BODY_RC if real.shape == (512, 512) else _body_centre(real)
    _, dy, dx = study.spacing
    fig, axes = plt.subplots(3, 4, figsize=(17, 13.5), facecolor="black")

    def show(ax, img, row_mm, col_mm, cy, cx, title):
        crop, ext = _crop_mm(img, row_mm, col_mm, cy, cx, -1000.0)
        ax.imshow(_window(crop), cmap="gray", extent=ext, interpolation="bilinear")
        ax.set_title(title, color="w", fontsize=9)
        ax.tick_params(colors="0.6", labelsize=6)

    show(
        axes[0, 0],
        real.astype(np.float32),
        r_row,
        r_col,
        ry,
        rx,
        f"real neck CT ({real_path.name}), {r_col:.2f} mm, 5 mm slice",
    )
    # C7 and the histograms at the real slice's protocol (pixels, 5 mm slices, soft kernel)
    px = max(r_col, 110.0 / study.hu.shape[1])
    matched = generate_study(
        study.seed,
        PhantomConfig(
            matrix=study.hu.shape[1],
            pixel_spacing_mm=(px, px),
            slice_spacing_mm=(5.0, 5.0),
            soft_kernel_probability=1.0,
            fov_circle_probability=0.0,
            fracture_prevalence=0.0,
            head_neck_probability=0.0,
            trauma_probability=0.0,
            gantry_tilt_probability=0.0,
        ),
    )
    hu7, cy7, cx7, _ = _axial_at(matched, 7)
    acq = matched.acquisition
    _, dy7, dx7 = matched.spacing
    show(
        axes[0, 1],
        hu7,
        dy7,
        dx7,
        cy7,
        cx7,
        f"phantom C7, {dx7:.2f} mm, {acq.slice_thickness_mm:.1f} mm, {acq.kernel['name']} kernel",
    )
    for ax, level in ((axes[0, 2], 5), (axes[1, 0], 2), (axes[1, 1], 1)):
        img, cy, cx, _ = _axial_at(study, level)
        show(ax, img, dy, dx, cy, cx, f"phantom C{level}")
    # midline sagittal
    _, _, xs = np.nonzero(study.labels)
    xc = int(np.median(xs))
    sag = study.hu[:, :, xc].astype(np.float32)
    dz = study.spacing[0]
    ax = axes[0, 3]
    ax.imshow(
        _window(sag),
        cmap="gray",
        interpolation="bilinear",
        extent=(0.0, sag.shape[1] * dy, sag.shape[0] * dz, 0.0),
    )
    ax.set_title(
        f"phantom midline sagittal ({acq.extras.get('coverage', 'neck')} coverage)",
        color="w",
        fontsize=9,
    )
    ax.tick_params(colors="0.6", labelsize=6)
    # tissue histograms
    ax = axes[1, 2]
    axes[1, 3].axis("off")
    ax.set_facecolor("black")
    m_real = tissue_masks(real.astype(np.float32), (ry, rx), r_col)
    m_ph = tissue_masks(hu7, (cy7, cx7), dx7)
    colors = {"cortical": "w", "cancellous": "gold", "muscle": "tomato", "fat": "deepskyblue"}
    bins = np.linspace(-250, 1300, 80)
    lines = []
    for t in TISSUES:
        a, b = real[m_real[t]], hu7[m_ph[t]]
        ax.hist(a, bins, density=True, histtype="step", color=colors[t], lw=1.4)
        ax.hist(b, bins, density=True, histtype="step", color=colors[t], lw=1.0, ls="--")
        lines.append(f"{t}: real {np.median(a):.0f}, phantom {np.median(b):.0f} HU")
    ax.set_title("tissue HU: real (solid) vs phantom C7 (dashed)", color="w", fontsize=9)
    ax.tick_params(colors="0.6", labelsize=6)
    axes[1, 3].text(
        0.0,
        0.5,
        "medians\n" + "\n".join(lines),
        color="w",
        fontsize=10,
        va="center",
        transform=axes[1, 3].transAxes,
    )
    for ax, (title, st, level) in zip(axes[2], _variety(study.hu.shape[1], study.seed)):
        img, cy, cx, _ = _axial_at(st, level)
        _, vy, vx = st.spacing
        if st.acquisition.extras.get("coverage") == "trauma":
            cy, cx = (img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2
            crop = img
            ext = (0.0, img.shape[1] * vx, img.shape[0] * vy, 0.0)
            ax.imshow(_window(crop), cmap="gray", extent=ext, interpolation="bilinear")
            ax.set_title(title, color="w", fontsize=9)
            ax.tick_params(colors="0.6", labelsize=6)
        else:
            show(ax, img, vy, vx, cy, cx, title)
    fig.suptitle(
        f"cspine phantom vs a real neck CT — bone window {BONE[1]:.0f}/{BONE[0]:.0f}, axial "
        f"views {VIEW_MM:.0f} mm wide; synthetic phantom, not for diagnostic use",
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
    # the gallery: a head-and-neck study at 0.68 mm pixels (the real slice's) and 1 mm slices
    cfg = PhantomConfig(
        matrix=320,
        pixel_spacing_mm=(0.68, 0.68),
        slice_spacing_mm=(1.0, 1.0),
        fov_circle_probability=0.0,
        fracture_prevalence=0.0,
        head_neck_probability=1.0,
        gantry_tilt_probability=0.0,
        soft_kernel_probability=0.0,
        osteoporosis_probability=0.0,
    )
    twin = generate_study(FIGURE_SEED if seed is None else seed, cfg)
    paths.append(make_vs_real_png(out.with_name("phantom_vs_real.png"), twin, real))
    return paths
