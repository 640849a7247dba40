"""Draw the cspine application icon: ``assets/icons/cspine.svg``, ``.png`` (256 px) and ``.ico``.

One geometry, written as SVG text and rasterised with Pillow (4× supersampled), so the three
files always show the same picture: seven cervical vertebral bodies in a gentle lordotic curve
on a dark blue tile, C5 highlighted with a fracture line. Run once after changing the drawing:
``.venv/bin/python installer/make_icons.py``; the outputs are committed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

SIZE = 256
BACKGROUND = "#1f3a5f"
BONE = "#e8eef5"
HIGHLIGHT = "#f28c28"
CRACK = "#1f3a5f"
HIGHLIGHTED = 4  # 0-based: C5
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def vertebrae() -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of C1..C7 on a SIZE × SIZE canvas, top to bottom."""
    boxes = []
    top, step, height = 30.0, 29.0, 22.0
    for i in range(7):
        width = 42.0 + 3.0 * i  # lower vertebral bodies are larger
        # lordosis: the middle of the column bulges forward (to the left in this view)
        centre_x = SIZE / 2 - 18.0 - 16.0 * math.sin(math.pi * (i + 0.5) / 7)
        boxes.append((centre_x - width / 2, top + i * step, width, height))
    return boxes


def process(box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """The posterior elements: a bar from the back of the body, pointing back and down."""
    x, y, w, h = box
    back = x + w - 2
    return [
        (back, y + 0.22 * h),
        (back + 44, y + 0.55 * h + 5),
        (back + 46, y + 0.85 * h + 6),
        (back, y + 0.78 * h),
    ]


def crack(box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """A zig-zag fracture line across the highlighted vertebral body."""
    x, y, w, h = box
    return [
        (x + 0.22 * w, y - 1),
        (x + 0.40 * w, y + 0.45 * h),
        (x + 0.30 * w, y + 0.60 * h),
        (x + 0.48 * w, y + h + 1),
    ]


def svg() -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" '
        f'viewBox="0 0 {SIZE} {SIZE}">',
        "<title>cspine</title>",
        f'<rect x="8" y="8" width="{SIZE - 16}" height="{SIZE - 16}" rx="44" fill="{BACKGROUND}"/>',
    ]
    for i, (x, y, w, h) in enumerate(vertebrae()):
        fill = HIGHLIGHT if i == HIGHLIGHTED else BONE
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="7" fill="{fill}"/>'
        )
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in process((x, y, w, h)))
        parts.append(
            f'<polygon points="{pts}" fill="{fill}" stroke="{fill}" '
            'stroke-width="3" stroke-linejoin="round"/>'
        )
    pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in crack(vertebrae()[HIGHLIGHTED]))
    parts.append(
        f'<polyline points="{pts}" fill="none" stroke="{CRACK}" stroke-width="4" '
        'stroke-linejoin="round"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def raster(size: int = SIZE):
    """The icon as a Pillow RGBA image of ``size`` px (drawn at 4× and downsampled)."""
    from PIL import Image, ImageDraw

    k = 4 * size / SIZE
    img = Image.new("RGBA", (4 * size, 4 * size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([8 * k, 8 * k, (SIZE - 8) * k, (SIZE - 8) * k], 44 * k, fill=BACKGROUND)
    for i, (x, y, w, h) in enumerate(vertebrae()):
        fill = HIGHLIGHT if i == HIGHLIGHTED else BONE
        d.rounded_rectangle([x * k, y * k, (x + w) * k, (y + h) * k], 7 * k, fill=fill)
        d.polygon([(px * k, py * k) for px, py in process((x, y, w, h))], fill=fill)
    d.line(
        [(px * k, py * k) for px, py in crack(vertebrae()[HIGHLIGHTED])],
        fill=CRACK,
        width=max(1, round(4 * k)),
        joint="curve",
    )
    return img.resize((size, size), Image.Resampling.LANCZOS)


def write_icons(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    svg_path, png_path, ico_path = (out_dir / f"cspine.{ext}" for ext in ("svg", "png", "ico"))
    svg_path.write_text(svg(), encoding="utf-8")
    raster(SIZE).save(png_path, optimize=True)
    raster(SIZE).save(ico_path, sizes=[(s, s) for s in ICO_SIZES])
    return [svg_path, png_path, ico_path]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "assets" / "icons"
    for path in write_icons(out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
