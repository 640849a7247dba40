"""``load_study`` and ``list_series``: any CT study in, a trustworthy :class:`Volume` out.

A DICOM load runs in stages, each in its own module: find files (:mod:`.sources`, zips via
:mod:`.archive`) → read headers (:mod:`.dicom_index`) → group, clean and choose a series
(:mod:`.series`) → order and measure the stack (:mod:`.geometry`) → decode into one volume
(:mod:`.dicom_volume`). NIfTI files go through :mod:`.nifti`, PNG/JPEG through :mod:`.raster`.

Provenance in ``Volume.meta`` for DICOM (lists in final slice order, one entry per slice):
``sop_instance_uids``, ``source_files``, ``source_frames`` (frame index in a multi-frame file,
else None). ``source_files`` are absolute paths; when the study came in a zip they are member
names inside ``source_archive`` (the zip's path), because the unpacked copy is deleted after
loading. :func:`source_datasets` re-reads the headers from either.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from ..errors import CorruptFileError, ImageTooLargeError, InconsistentSeriesError
from ..progress import CancelToken, ProgressCallback
from ._control import Control
from .dicom_index import ImageHeader, scan_headers
from .dicom_values import get_str, sop_uid_of
from .dicom_volume import DecodeResult, decode_into_volume
from .geometry import stack_geometry
from .series import SeriesGroup, choose_series, group_series
from .sources import KIND_DICOM, KIND_NIFTI, Source, open_source
from .volume import SeriesInfo, Volume

# A float32 volume may take at most 1/16 of the physical memory by default (the analysis holds
# a few copies of it at once); ``Settings.max_image_voxels`` overrides the automatic cap.
MEMORY_BYTES_PER_VOXEL = 16
FALLBACK_MAX_VOXELS = 2**30  # when the memory size cannot be read
_voxel_cap: int | None = None  # set by the front ends from the settings (None: automatic)

MAX_BAD_FRACTION = 0.10  # refuse when more than this share of a series' files is unreadable
IMPLAUSIBLE_REFUSE_FRACTION = 0.5
_NAMES_SHOWN = 5


def physical_memory_bytes() -> int | None:
    """The computer's physical memory, or None when it cannot be read."""
    try:
        if hasattr(os, "sysconf"):
            return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        import ctypes  # Windows

        class _Status(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = _Status()
        status.dwLength = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullTotalPhys)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def automatic_max_voxels() -> int:
    """The voxel cap from this computer's memory (1/16 of it, counted in float32 voxels)."""
    memory = physical_memory_bytes()
    return memory // MEMORY_BYTES_PER_VOXEL if memory else FALLBACK_MAX_VOXELS


def set_max_voxels(cap: int | None) -> None:
    """Set the process-wide voxel cap (``Settings.max_image_voxels``); 0 or None: automatic."""
    global _voxel_cap
    _voxel_cap = int(cap) if cap and int(cap) > 0 else None


def max_voxels() -> int:
    """The voxel cap in force: the configured one, else :func:`automatic_max_voxels`."""
    return _voxel_cap if _voxel_cap is not None else automatic_max_voxels()


def load_study(
    path: str | os.PathLike[str],
    series_uid: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken = None,
) -> Volume:
    """Read the CT study at ``path`` (folder, zip, DICOM file, NIfTI, PNG/JPEG) into a Volume.

    ``series_uid`` picks a series explicitly (default: the axial CT series with most slices).
    ``progress`` is called with a :class:`~cspine_desktop.progress.Progress` (files done of
    total per stage) from the loading thread(s) as work advances; ``cancel`` (a
    :data:`~cspine_desktop.progress.CancelToken`) stops the load with
    :class:`~cspine_desktop.errors.Cancelled`. A series larger than :func:`max_voxels`
    (declared rows × columns × slices, checked before any pixel is decoded) raises
    :class:`~cspine_desktop.errors.ImageTooLargeError`. Every problem the input can cause raises
    a :class:`~cspine_desktop.errors.CspineInputError` subclass with a plain message; oddities
    that were handled are listed in ``Volume.warnings``.
    """
    control = Control(progress, cancel)
    with open_source(path, control) as source:
        if source.kind == KIND_DICOM:
            return _load_dicom(source, series_uid, control)
        if source.kind == KIND_NIFTI:
            from .nifti import load_nifti

            return load_nifti(
                source.files[0],
                source_path=source.path,
                archive=source.archive,
                max_voxels=max_voxels(),
            )
        from .raster import load_raster

        return load_raster(source.files[0], source_path=source.path, archive=source.archive)


def list_series(path: str | os.PathLike[str]) -> list[SeriesInfo]:
    """Every series found at ``path``, usable ones first (for the series chooser).

    NIfTI and PNG/JPEG inputs give one entry describing the file. A series larger than
    :func:`max_voxels` is listed as not usable, with the reason; when that leaves no usable
    series, :class:`~cspine_desktop.errors.ImageTooLargeError` is raised.
    """
    control = Control(None, None)
    with open_source(path, control) as source:
        if source.kind != KIND_DICOM:
            return [
                SeriesInfo(
                    series_uid="",
                    description=source.display_name(source.files[0]),
                    modality="CT" if source.kind == KIND_NIFTI else "OT",
                    n_slices=0,
                    image_type=(source.kind.upper(),),
                    slice_thickness_mm=None,
                    usable=True,
                    reason="",
                )
            ]
        scan = scan_headers(source.files, control)
        groups = group_series(scan)
        _apply_voxel_cap(groups, _where(source))
        return [g.info() for g in groups]


def source_datasets(volume: Volume, stop_before_pixels: bool = True) -> list[Dataset]:
    """The DICOM headers behind ``volume``, one per distinct source file, in slice order."""
    files = list(dict.fromkeys(volume.meta.get("source_files") or []))
    archive = volume.meta.get("source_archive")
    if archive:
        with zipfile.ZipFile(archive) as zf:
            headers = [_read_member(zf, name, stop_before_pixels) for name in files]
    else:
        headers = [
            pydicom.dcmread(f, stop_before_pixels=stop_before_pixels, force=True) for f in files
        ]
    for ds in headers:  # as the index read them: blanked SOP UIDs from the file meta
        for keyword in ("SOPClassUID", "SOPInstanceUID"):
            if not get_str(ds, keyword) and (uid := sop_uid_of(ds, keyword)):
                setattr(ds, keyword, uid)
    return headers


def _read_member(zf: zipfile.ZipFile, name: str, stop_before_pixels: bool) -> Dataset:
    with zf.open(name) as f:
        return pydicom.dcmread(f, stop_before_pixels=stop_before_pixels, force=True)


def _where(source: Source) -> str:
    if source.archive is not None:
        return f"The zip {source.archive.name}"
    return f"The folder {source.path}" if source.path.is_dir() else f"The file {source.path.name}"


def _names(source: Source, files: list[Path]) -> str:
    shown = ", ".join(source.display_name(f) for f in files[:_NAMES_SHOWN])
    more = f" and {len(files) - _NAMES_SHOWN} more" if len(files) > _NAMES_SHOWN else ""
    return shown + more


def _load_dicom(source: Source, series_uid: str | None, control: Control) -> Volume:
    scan = scan_headers(source.files, control)
    bad_files = list(scan.unreadable)
    n_bad = len(bad_files) + len(source.damaged)
    if not scan.headers and not scan.others and n_bad:
        example = next(iter(scan.unreadable.values()), "damaged in the zip")
        raise CorruptFileError(
            f"None of the {n_bad} DICOM file(s) could be read ({example}): "
            f"{_names(source, bad_files) or ', '.join(source.damaged[:_NAMES_SHOWN])}."
        )
    groups = group_series(scan)
    too_large = _apply_voxel_cap(groups, _where(source))
    if series_uid is not None and series_uid in too_large:
        raise ImageTooLargeError(too_large[series_uid])
    group = choose_series(groups, series_uid, _where(source))
    warnings = list(group.warnings)
    if n_bad:
        _check_bad_share(source, scan.unreadable, source.damaged, len(group.headers), warnings)
    control.check()
    h0 = group.headers[0]
    positions = np.array([h.position for h in group.headers], dtype=np.float64)
    spacing = h0.pixel_spacing
    if spacing is None or min(spacing) <= 0:
        warnings.append("PixelSpacing is missing or invalid; 1 mm × 1 mm was assumed.")
        spacing = (1.0, 1.0)
    try:
        geom = stack_geometry(h0.orientation, positions, spacing, group.thickness)  # type: ignore[arg-type]
    except InconsistentSeriesError as exc:
        if not n_bad:
            raise
        raise InconsistentSeriesError(
            f"{exc} {n_bad} unreadable file(s) may hold the missing slices: "
            f"{_names(source, bad_files) or ', '.join(source.damaged[:_NAMES_SHOWN])}."
        ) from exc
    warnings.extend(geom.warnings)
    ordered = [group.headers[i] for i in geom.order]
    decoded = decode_into_volume(ordered, geom.shifts, control)
    hu, affine, ordered = _drop_failed(source, decoded, ordered, geom.affine, warnings)
    _check_plausible(hu, decoded, ordered, warnings)
    meta = _dicom_meta(source, group, ordered)
    return Volume(hu=hu, affine=affine, spacing=geom.spacing, meta=meta, warnings=warnings)


def _declared_voxels(group: SeriesGroup) -> int:
    return sum(h.rows * h.cols for h in group.headers)


def _apply_voxel_cap(groups: list[SeriesGroup], where: str) -> dict[str, str]:
    """Mark usable series larger than the cap as not usable (from their declared size: nothing
    is decoded or allocated yet); raise when that leaves none. Returns uid → message."""
    cap = max_voxels()
    refused: dict[str, str] = {}
    for g in groups:
        n = _declared_voxels(g)
        if not g.usable or n <= cap:
            continue
        h = g.headers[0]
        g.usable = False
        g.reason = (
            f"too large to load: {len(g.headers)} slices of {h.rows}×{h.cols} pixels are "
            f"{n / 1e6:,.0f} million voxels ({n * 4 / 2**30:,.1f} GiB in memory), more than "
            f"the limit of {cap / 1e6:,.0f} million voxels on this computer (setting "
            "max_image_voxels)"
        )
        refused[g.uid] = f"{where} holds a series that is {g.reason}."
    if refused and not any(g.usable for g in groups):
        raise ImageTooLargeError(next(iter(refused.values())))
    groups.sort(key=lambda g: (not g.usable, not g.axial, -len(g.headers)))
    return refused


def _check_bad_share(
    source: Source,
    unreadable: dict[Path, str],
    damaged: list[str],
    n_good: int,
    warnings: list[str],
) -> None:
    files = list(unreadable)
    n_bad = len(files) + len(damaged)
    names = ", ".join(
        [source.display_name(f) for f in files[:_NAMES_SHOWN]] + damaged[:_NAMES_SHOWN]
    )
    first_reason = next(iter(unreadable.values()), "damaged in the zip")
    if n_bad > MAX_BAD_FRACTION * (n_good + n_bad):
        raise CorruptFileError(
            f"{n_bad} of {n_good + n_bad} DICOM files are truncated or unreadable "
            f"(more than {MAX_BAD_FRACTION:.0%}); e.g. {names} ({first_reason})."
        )
    warnings.append(
        f"{n_bad} unreadable or truncated file(s) were skipped: {names} ({first_reason})."
    )


def _drop_failed(
    source: Source,
    decoded: DecodeResult,
    ordered: list[ImageHeader],
    affine: np.ndarray,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray, list[ImageHeader]]:
    """Trim slices that failed to decode at either end; refuse holes inside the stack."""
    hu, failed = decoded.hu, decoded.failed
    if not failed:
        return hu, affine, ordered
    n = len(ordered)
    files = list(dict.fromkeys(ordered[z].file for z in sorted(failed)))
    reason = failed[min(failed)]
    ok = [z for z in range(n) if z not in failed]
    if not ok or len(failed) > MAX_BAD_FRACTION * n:
        raise CorruptFileError(
            f"{len(failed)} of {n} slices could not be decoded ({reason}): {_names(source, files)}."
        )
    first, last = ok[0], ok[-1]
    if last - first + 1 != len(ok):
        raise CorruptFileError(
            f"Slice(s) inside the stack could not be decoded ({reason}): "
            f"{_names(source, files)}; the series would have a hole."
        )
    warnings.append(
        f"{len(failed)} slice(s) at the end of the stack could not be decoded and were left "
        f"out: {_names(source, files)} ({reason})."
    )
    affine = affine.copy()
    affine[:3, 3] = affine[:3, 3] + first * affine[:3, 2]
    return hu[first : last + 1], affine, ordered[first : last + 1]


def _check_plausible(
    hu: np.ndarray, decoded: DecodeResult, ordered: list[ImageHeader], warnings: list[str]
) -> None:
    n = len(ordered)
    bad = sorted(decoded.implausible)
    if len(bad) > IMPLAUSIBLE_REFUSE_FRACTION * n:
        raise CorruptFileError(
            f"{len(bad)} of {n} slices hold values far outside the Hounsfield range of CT "
            "(below -3100 or above 4000 HU); the pixel data are probably decoded wrongly "
            "or damaged."
        )
    if bad:
        shown = ", ".join(str(z + 1) for z in bad[:10])
        warnings.append(
            f"{len(bad)} slice(s) hold many values outside the plausible CT range "
            f"(slices {shown}{'…' if len(bad) > 10 else ''}); check them before relying on them."
        )
    if decoded.clipped:
        warnings.append(
            f"{decoded.clipped} slice(s) held values beyond ±32767 HU; they were clipped."
        )
    if hu.size and float(hu.min()) > -500:
        warnings.append(
            "No voxel is below -500 HU (there is no air in the images): the values may not be "
            "calibrated Hounsfield units."
        )


def _dicom_meta(source: Source, group: SeriesGroup, ordered: list[ImageHeader]) -> dict[str, Any]:
    meta = dict(group.meta)
    meta.setdefault("SeriesInstanceUID", group.uid)
    if not group.has_uid:
        meta["SeriesInstanceUID"] = ""  # none was given; never invent one
    if not meta.get("Modality"):
        meta["Modality"] = group.modality or "CT"
    meta["source_kind"] = "dicom"
    meta["source_path"] = str(source.path)
    meta["source_archive"] = str(source.archive) if source.archive else None
    if source.archive is not None:
        meta["source_files"] = [source.members.get(h.file, h.file.name) for h in ordered]
    else:
        meta["source_files"] = [str(h.file) for h in ordered]
    meta["sop_instance_uids"] = [h.sop_uid for h in ordered]
    meta["source_frames"] = [h.frame for h in ordered]
    meta["transfer_syntaxes"] = sorted({h.transfer_syntax for h in ordered})
    if meta.get("SliceThickness") is None:
        meta["SliceThickness"] = group.thickness
    return meta
