"""The one-page PDF report (A4, reportlab): identifiers, model, the patient headline (amber
"Indeterminate - read the images" with its reasons when no verdict can be given), verdict table
with each threshold, key images, warnings, and the "not for diagnostic use" disclaimer at the
top and the bottom.

Everything is drawn on a single canvas page; long content (warnings, key images) is shortened
to fit rather than flowing onto a second page.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Table, TableStyle

from .. import __version__
from ..analysis import wording
from ..vertebrae import by_name
from ._common import OutcomeLike, atomic_path, check_outcome
from .key_images import encode_png, render_key_images

PAGE_W, PAGE_H = A4
MARGIN = 36.0
WIDTH = PAGE_W - 2 * MARGIN
MAX_KEY_IMAGES = 3
MAX_WARNINGS = 6
_RED = colors.HexColor("#B00020")
_AMBER = colors.HexColor(wording.COLOURS[wording.UNSURE])
MAX_REASONS = 6


def _tone_colour(status: str | None, fractured: bool | None):
    """Red for a fracture, amber where no verdict is given, black otherwise (print-friendly)."""
    t = wording.tone(status, fractured)
    return {wording.FRACTURE: _RED, wording.UNSURE: _AMBER}.get(t, colors.black)


def _latin1(text: object) -> str:
    """The standard PDF fonts cover Latin-1; anything else becomes '?'."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


class _Page:
    """A canvas with a cursor ``y`` moving down the page."""

    def __init__(self, canvas: Canvas) -> None:
        self.c, self.y = canvas, PAGE_H - MARGIN

    def text(
        self, text: str, size: float = 9, bold: bool = False, colour=colors.black, gap: float = 2.0
    ) -> None:
        font = "Helvetica-Bold" if bold else "Helvetica"
        for line in simpleSplit(_latin1(text), font, size, WIDTH):
            self.y -= size + gap
            self.c.setFont(font, size)
            self.c.setFillColor(colour)
            self.c.drawString(MARGIN, self.y, line)
        self.c.setFillColor(colors.black)

    def pairs(self, items: list[tuple[str, str]], size: float = 8.5) -> None:
        for key, value in items:
            self.y -= size + 3
            self.c.setFont("Helvetica-Bold", size)
            self.c.drawString(MARGIN, self.y, _latin1(key))
            self.c.setFont("Helvetica", size)
            self.c.drawString(MARGIN + 100, self.y, _latin1(value)[:110])

    def disclaimer_box(self, disclaimer: str) -> None:
        lines = simpleSplit(_latin1(disclaimer), "Helvetica-Bold", 9, WIDTH - 16)
        h = 20 + 12 * len(lines)
        self.y -= h + 6
        self.c.setStrokeColor(_RED)
        self.c.setLineWidth(1.5)
        self.c.rect(MARGIN, self.y, WIDTH, h)
        self.c.setFillColor(_RED)
        self.c.setFont("Helvetica-Bold", 11)
        self.c.drawString(MARGIN + 8, self.y + h - 15, "NOT FOR DIAGNOSTIC USE")
        self.c.setFont("Helvetica-Bold", 9)
        for i, line in enumerate(lines):
            self.c.drawString(MARGIN + 8, self.y + h - 29 - 12 * i, line)
        self.c.setFillColor(colors.black)
        self.c.setStrokeColor(colors.black)


def _verdict_table(outcome: OutcomeLike) -> Table:
    r = outcome.result
    rows = [["Vertebra", "Present", "Probability", "Threshold", "Verdict"]]
    style = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8E8E8")),
        ("ALIGN", (2, 1), (3, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    for i, v in enumerate(r.vertebrae, start=1):
        t = v.threshold if v.threshold is not None else r.thresholds.get(v.name)
        word = wording.vertebra_word(v.status, v.fractured)
        rows.append(
            [
                v.name,
                "yes" if v.present else "no",
                _fmt_p(v.probability if v.present else None),
                "-" if t is None else f"{t:.3g}",
                word,
            ]
        )
        style.append(
            ("LINEBEFORE", (0, i), (0, i), 5, colors.Color(*np.array(by_name(v.name).rgb) / 255))
        )
        style.append(("TEXTCOLOR", (4, i), (4, i), _tone_colour(v.status, v.fractured)))
        if v.fractured or v.status in ("indeterminate", "partly_in_view"):
            style.append(("FONT", (4, i), (4, i), "Helvetica-Bold", 8.5))
    po = r.patient_overall
    t = po.threshold if po.threshold is not None else r.thresholds.get("patient_overall")
    rows.append(
        [
            "Patient",
            "",
            _fmt_p(po.probability),
            "-" if t is None else f"{t:.3g}",
            wording.patient_word(po.status, po.fractured),
        ]
    )
    style += [
        ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8.5),
        ("LINEABOVE", (0, -1), (-1, -1), 1.0, colors.black),
        ("TEXTCOLOR", (4, -1), (4, -1), _tone_colour(po.status, po.fractured)),
    ]
    table = Table(rows, colWidths=[70, 60, 80, 70, 110], hAlign="LEFT")
    table.setStyle(TableStyle(style))
    return table


def _draw_images(page: _Page, images: list[np.ndarray], bottom: float) -> None:
    """Key images side by side, scaled to the width and to the space above ``bottom``."""
    if not images:
        return
    gap = 8.0
    cell_w = (WIDTH - gap * (len(images) - 1)) / len(images)
    avail_h = page.y - bottom - 6
    scale = min(min(cell_w / im.shape[1], avail_h / im.shape[0]) for im in images)
    if scale <= 0:
        return
    top = page.y - 4
    for i, im in enumerate(images):
        w, h = im.shape[1] * scale, im.shape[0] * scale
        x = MARGIN + i * (cell_w + gap) + (cell_w - w) / 2
        page.c.drawImage(ImageReader(io.BytesIO(encode_png(im))), x, top - h, w, h)
    page.y = top - max(im.shape[0] * scale for im in images)


def _warning_lines(warnings: list[str]) -> list[str]:
    """Warnings wrapped to the page: at most MAX_WARNINGS, two lines each, then a count."""
    lines: list[str] = []
    for w in warnings[:MAX_WARNINGS]:
        wrapped = simpleSplit(_latin1(f"- {w.strip()}"), "Helvetica", 8, WIDTH)
        if len(wrapped) > 2:
            wrapped = [wrapped[0], wrapped[1][:-4].rstrip() + " ..."]
        lines += wrapped
    if len(warnings) > MAX_WARNINGS:
        lines.append(f"... and {len(warnings) - MAX_WARNINGS} more (see the JSON export)")
    return lines


def _person_name(value: object) -> str:
    """DICOM PN "Family^Given^Middle" as "Family, Given Middle"."""
    parts = [p.strip() for p in str(value or "").split("=")[0].split("^")]
    family, rest = parts[0], " ".join(p for p in parts[1:4] if p)
    return ", ".join(p for p in (family, rest) if p)


def _identifiers(outcome: OutcomeLike) -> list[tuple[str, str]]:
    r, meta = outcome.result, outcome.volume.meta or {}
    return [
        ("Patient ID", r.patient_id or str(meta.get("PatientID") or "-")),
        ("Patient name", _person_name(meta.get("PatientName")) or "-"),
        ("Study date", str(meta.get("StudyDate") or "-")),
        ("Study UID", r.study_instance_uid or "-"),
        ("Series UID", r.series_instance_uid or "-"),
        ("Series", str(meta.get("SeriesDescription") or "-")),
    ]


def _model_lines(outcome: OutcomeLike) -> list[tuple[str, str]]:
    r = outcome.result
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings_s.items()) or "-"
    return [
        ("Model", f"{r.model.name} {r.model.version} (sha256 {r.model.sha256[:12]})"),
        ("Backend", r.backend),
        ("Timings", timings),
    ]


def build_report_pdf(
    outcome: OutcomeLike, key_images: dict[str, np.ndarray] | None = None
) -> bytes:
    """The one-page PDF as bytes. ``key_images`` as from
    :func:`~cspine_desktop.reports.key_images.render_key_images` (rendered if None); at most
    ``MAX_KEY_IMAGES`` are shown, the sagittal reformat last."""
    check_outcome(outcome)
    r = outcome.result
    if key_images is None:
        key_images = render_key_images(outcome)
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, invariant=False)
    canvas.setTitle("cspine cervical spine CT report (not for diagnostic use)")
    canvas.setAuthor("cspine")
    page = _Page(canvas)
    page.text("Cervical spine CT: AI fracture analysis", size=16, bold=True)
    page.disclaimer_box(r.disclaimer)
    page.y -= 4
    page.pairs(_identifiers(outcome) + _model_lines(outcome))
    page.y -= 8
    po = r.patient_overall
    t = po.threshold if po.threshold is not None else r.thresholds.get("patient_overall")
    page.text(
        wording.patient_headline(po.status, po.fractured, po.probability, t, ascii=True),
        size=12,
        bold=True,
        colour=_tone_colour(po.status, po.fractured),
    )
    reasons = wording.reason_lines(r, ascii=True)
    if r.indeterminate:
        page.text(
            f"No patient-level verdict (probability {po.probability:.3f}"
            + (f", threshold {t:.3g}" if t is not None else "")
            + "). Why:",
            size=8.5,
        )
    for line in reasons[:MAX_REASONS]:
        page.text(f"- {line}", size=8, colour=_AMBER if r.indeterminate else colors.black)
    if len(reasons) > MAX_REASONS:
        page.text(f"... and {len(reasons) - MAX_REASONS} more (see the JSON export)", size=8)
    op = po.operating_point
    if op is not None:
        page.text("Patient threshold " + wording.threshold_text(t, op), size=7.5)
    page.y -= 6
    table = _verdict_table(outcome)
    _, th = table.wrapOn(canvas, WIDTH, page.y)
    page.y -= th
    table.drawOn(canvas, MARGIN, page.y)
    warn_lines = _warning_lines(list(r.warnings))
    footer_h = 40.0
    warn_h = 15 + 11 * len(warn_lines) if warn_lines else 0
    axials = [im for k, im in key_images.items() if k != "sagittal"]
    chosen = axials[: MAX_KEY_IMAGES - ("sagittal" in key_images)]
    chosen += [key_images["sagittal"]] if "sagittal" in key_images else []
    if chosen:
        page.y -= 6
        page.text(
            "Key images (bone window; labels and fracture heat-map overlaid)", size=9, bold=True
        )
        _draw_images(page, chosen, MARGIN + footer_h + warn_h)
    if warn_lines:
        page.y -= 4
        page.text("Warnings", size=9, bold=True)
        canvas.setFont("Helvetica", 8)
        for line in warn_lines:
            page.y -= 11
            canvas.drawString(MARGIN, page.y, line)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    canvas.setFont("Helvetica-Bold", 8)
    canvas.setFillColor(_RED)
    for i, line in enumerate(simpleSplit(_latin1(r.disclaimer), "Helvetica-Bold", 8, WIDTH)):
        canvas.drawString(MARGIN, MARGIN + 12 - 10 * i, line)
    canvas.setFillColor(colors.grey)
    canvas.setFont("Helvetica", 7)
    canvas.drawString(MARGIN, MARGIN - 16, f"cspine {__version__}, report created {stamp}")
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def write_report_pdf(
    outcome: OutcomeLike,
    path: str | os.PathLike[str],
    key_images: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write :func:`build_report_pdf` to ``path`` (atomic)."""
    data = build_report_pdf(outcome, key_images)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
