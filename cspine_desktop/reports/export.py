"""``export_all``: every export of one analysis into a folder, all or nothing.

Formats (names used by ``cspine analyze --export``, the GUI and the HTTP API):

==============  =====================================  ===========================================
format          file(s) in ``out_dir``                 needs
==============  =====================================  ===========================================
json            ``<stem>_result.json``                 -
csv             ``<stem>_rsna.csv``                    -
nifti           ``<stem>_labels.nii.gz``               -
png             ``<stem>_key_C<k>.png``,               -
                ``<stem>_sagittal.png``
pdf             ``<stem>_report.pdf``                  -
seg             ``<stem>_seg.dcm``                     DICOM source, a vertebra found
fracture_seg    ``<stem>_fracture_seg.dcm``            DICOM source, a non-empty heat-map
sr              ``<stem>_sr.dcm``                      DICOM source (adds ``seg`` when possible)
==============  =====================================  ===========================================

``formats=None`` means every format this outcome can have; the DICOM ones are left out for
NIfTI/PNG input (:func:`available_formats` says why). Naming an unavailable or unknown format
raises :class:`~cspine_desktop.errors.ExportNotAvailableError` before anything is written.
Files are written into a hidden staging folder inside ``out_dir`` and renamed into place
only when all succeeded; on any failure the staging folder is removed, so no partial file and
no partial set is left behind (existing files of the same name are replaced only on success).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ExportNotAvailableError
from ._common import (
    OutcomeLike,
    check_outcome,
    dicom_source_files,
    missing_dicom_source,
    require_dicom_source,
    unreferenceable_dicom_source,
)

FORMATS: tuple[str, ...] = ("json", "csv", "nifti", "png", "pdf", "seg", "fracture_seg", "sr")
DICOM_FORMATS = frozenset({"seg", "fracture_seg", "sr"})


def available_formats(outcome: OutcomeLike) -> dict[str, str | None]:
    """{format: None if it can be exported, else the reason in plain words}."""
    out: dict[str, str | None] = dict.fromkeys(FORMATS)
    if not dicom_source_files(outcome.volume):
        try:
            require_dicom_source(outcome.volume, "DICOM SEG/SR")
        except ExportNotAvailableError as exc:
            for f in DICOM_FORMATS:
                out[f] = str(exc)
        return out
    gone = missing_dicom_source(outcome.volume)
    if gone:
        for f in DICOM_FORMATS:
            out[f] = gone
        return out
    out.update(unreferenceable_dicom_source(outcome.volume))
    from .dicom_seg import FRACTIONAL_FLOOR, segmented_vertebrae

    if out["seg"] is None and not segmented_vertebrae(outcome):
        out["seg"] = "No vertebra was found in this study, so there is no segmentation."
    heat = outcome.heatmap
    if out["fracture_seg"] is None and (heat is None or float(np.max(heat)) < FRACTIONAL_FLOOR):
        out["fracture_seg"] = "The fracture heat-map is empty for this study."
    return out


def _requested(outcome: OutcomeLike, formats: Iterable[str] | None) -> list[str]:
    if formats is None:
        avail = available_formats(outcome)
        return [f for f in FORMATS if avail[f] is None]
    wanted = [str(f).strip().lower() for f in formats]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ExportNotAvailableError(
            f"Unknown export format {', '.join(repr(f) for f in unknown)}; "
            f"choose from {', '.join(FORMATS)}."
        )
    if DICOM_FORMATS & set(wanted):  # only these can be unavailable
        avail = available_formats(outcome)
        for f in wanted:
            if avail[f] is not None:
                raise ExportNotAvailableError(avail[f] or f)
        if "sr" in wanted and "seg" not in wanted and avail["seg"] is None:
            wanted.append("seg")  # the SR refers to the vertebra segments: ship them together
    return [f for f in FORMATS if f in wanted]


def safe_stem(text: str, default: str = "cspine") -> str:
    """A file-name stem made of letters, digits, '.', '_' and '-' only."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return stem[:80] or default


def export_all(
    outcome: OutcomeLike,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] | None = None,
    stem: str = "cspine",
) -> dict[str, Path]:
    """Write the requested exports of ``outcome`` into ``out_dir`` (created if needed).

    Returns {key: final path}; keys are the format names, except PNGs which are
    ``key_image_C<k>`` and ``key_image_sagittal``. See the module docstring for names,
    availability and the all-or-nothing guarantee.
    """
    check_outcome(outcome)
    todo = _requested(outcome, formats)
    stem = safe_stem(stem)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cspine-export-", dir=out_dir))
    final: dict[str, Path] = {}
    try:
        staged = _write_formats(outcome, todo, staging, stem)
        for key, path in staged.items():
            target = out_dir / path.name
            os.replace(path, target)
            final[key] = target
        return final
    except BaseException:
        for target in final.values():  # a failure while renaming: take back what moved
            with contextlib.suppress(OSError):
                target.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_formats(outcome: OutcomeLike, todo: list[str], d: Path, stem: str) -> dict[str, Path]:
    """Write ``todo`` into ``d``; {key: path} in ``FORMATS`` order (key images with png).

    The writers share nothing but the (read-only) outcome, so the independent ones run in
    threads: NIfTI (gzip), key images + PDF (OpenCV, reportlab) and the fracture SEG beside the
    vertebra SEG + SR in this thread. Much of their work is NumPy, zlib and OpenCV, which run
    without the GIL, so on two cores the exports take little longer than the longest of them.
    Every thread is finished before this returns or raises (the executor waits), so nothing is
    written into the staging folder after it is removed.
    """
    results: dict[str, dict[str, Path]] = {}
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="cspine-export") as pool:
        jobs: dict[str, Future[dict[str, Path]]] = {}
        if "nifti" in todo:
            jobs["nifti"] = pool.submit(_write_nifti, outcome, d, stem)
        if "png" in todo or "pdf" in todo:
            jobs["png"] = pool.submit(_write_pictures, outcome, todo, d, stem)
        try:
            if "json" in todo:
                from .tables import write_result_json

                results["json"] = {"json": write_result_json(outcome, d / f"{stem}_result.json")}
            if "csv" in todo:
                from .tables import write_rsna_csv

                results["csv"] = {"csv": write_rsna_csv(outcome, d / f"{stem}_rsna.csv")}
            if DICOM_FORMATS & set(todo):
                results["dicom"] = _write_dicom(outcome, todo, d, stem, pool)
        except BaseException:
            for job in jobs.values():  # not started yet: never start; running: awaited below
                job.cancel()
            raise
        for key, job in jobs.items():
            results[key] = job.result()  # a thread's failure is raised here
    parts = ("json", "csv", "nifti", "png", "dicom")
    return {k: v for part in parts for k, v in results.get(part, {}).items()}


def _write_nifti(outcome: OutcomeLike, d: Path, stem: str) -> dict[str, Path]:
    from .nifti import write_label_nifti

    return {"nifti": write_label_nifti(outcome, d / f"{stem}_labels.nii.gz")}


def _write_pictures(outcome: OutcomeLike, todo: list[str], d: Path, stem: str) -> dict[str, Path]:
    """Key images (rendered once, for the PNGs and the PDF) and the PDF report."""
    from .key_images import render_key_images, write_key_images

    out: dict[str, Path] = {}
    images = render_key_images(outcome)
    if "png" in todo:
        out.update(write_key_images(outcome, d, stem, images))
    if "pdf" in todo:
        from .pdf import write_report_pdf

        out["pdf"] = write_report_pdf(outcome, d / f"{stem}_report.pdf", images)
    return out


def _write_dicom(
    outcome: OutcomeLike, todo: list[str], d: Path, stem: str, pool: ThreadPoolExecutor
) -> dict[str, Path]:
    from . import _dicom
    from .dicom_seg import write_dicom_seg, write_fracture_seg
    from .dicom_sr import write_dicom_sr

    out: dict[str, Path] = {}
    sources = _dicom.read_source_headers(outcome.volume, "A DICOM export")
    fracture = None
    if "fracture_seg" in todo:  # independent of the vertebra SEG and the SR: its own thread
        _dicom.load_standard_tables()  # once, not in both threads
        out["fracture_seg"] = d / f"{stem}_fracture_seg.dcm"
        fracture = pool.submit(write_fracture_seg, outcome, out["fracture_seg"], sources)
    try:
        seg = None
        if "seg" in todo:
            out["seg"] = d / f"{stem}_seg.dcm"
            seg = write_dicom_seg(outcome, out["seg"], sources)
        if "sr" in todo:
            out["sr"] = d / f"{stem}_sr.dcm"
            write_dicom_sr(outcome, out["sr"], seg, sources)
    except BaseException:
        if fracture is not None:
            fracture.cancel()
        raise
    if fracture is not None:
        fracture.result()
    return {k: out[k] for k in ("seg", "fracture_seg", "sr") if k in out}
