"""DICOM Segmentation objects: the vertebrae (BINARY) and the fracture heat-map (FRACTIONAL).

Both refer to the source CT instances, so PACS viewers (OHIF, Slicer, Weasis) overlay them on
the original images. Only studies opened from DICOM can have them: for NIfTI/PNG input the
writers raise :class:`~cspine_desktop.errors.ExportNotAvailableError`.

Only slices that hold a segment become frames, and both are compressed losslessly in a transfer
syntax the standard allows for them: the BINARY SEG as Deflated Explicit VR Little Endian (the
whole dataset deflated: a generic transfer syntax every DICOM toolkit reads; highdicom's only
compressed one for 1-bit frames is JPEG 2000), the FRACTIONAL SEG as RLE Lossless (frames stay
separately decodable). pydicom and highdicom read both back without extra packages.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, RLELossless

from ..errors import ExportNotAvailableError
from ..vertebrae import (
    FRACTURE_CATEGORY,
    FRACTURE_CODE,
    FRACTURE_RGB,
    SNOMED_CATEGORY,
    VERTEBRAE,
    Vertebra,
)
from . import _dicom
from ._common import OutcomeLike, atomic_path, check_outcome, slice_label_counts

SEG_WHAT = "A DICOM SEG"
# Heat-map values below this (2 %, about 5 of 255 steps) are stored as 0, so the slices where
# the model saw nothing are left out instead of filling the SEG with near-zero noise.
FRACTIONAL_FLOOR = 0.02
# 8-bit fractions: 255 = probability 1 (steps of 0.4 %).
MAX_FRACTIONAL_VALUE = 255


def _sct(code: tuple[str, str]) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=code[0], scheme_designator="SCT", meaning=code[1])


def segmented_vertebrae(outcome: OutcomeLike, counts: np.ndarray | None = None) -> list[Vertebra]:
    """Vertebrae judged present that also have voxels in the label map, C1 first.

    Segment number ``i + 1`` of the vertebra SEG is ``segmented_vertebrae(outcome)[i]``.
    ``counts``: the label map's voxel count per label value, if already known.
    """
    present = {v.name for v in outcome.result.vertebrae if v.present}
    if counts is None:
        counts = slice_label_counts(outcome.labels).sum(axis=0)
    return [v for v in VERTEBRAE if v.name in present and counts[v.label] > 0]


def _frames(
    volume: Any, sources: list[Dataset], keep: np.ndarray, planes: Callable[[Any], np.ndarray]
) -> dict[str, Any]:
    """``source_images``, ``pixel_array`` (and ``further_source_images``) for a SEG whose frames
    are the slices where ``keep`` is true; ``planes(index)`` returns those slices' pixels.

    When volume slice z *is* source image z (same grid: the usual, untilted series), the kept
    slices go to highdicom as a plain array beside their own source images, so each frame takes
    its position and reference from its source image; the other source images are passed as
    further sources, so the SEG still refers to the whole series. (Given a highdicom Volume,
    highdicom instead compares every frame with every source image, which takes seconds for a
    few hundred slices.) Otherwise (a volume resampled for gantry tilt, a multi-frame source)
    the slab from the first to the last kept slice goes as a Volume in patient space and
    highdicom matches frames to source images by position.
    """
    frame_of_reference = _dicom.frame_of_reference(sources, volume)
    zs = np.flatnonzero(keep)
    if _dicom.on_source_grid(volume, sources):
        return {
            "source_images": [sources[z] for z in zs],
            "further_source_images": [s for s, k in zip(sources, keep) if not k],
            "pixel_array": planes(zs),
        }
    z0, z1 = int(zs[0]), int(zs[-1]) + 1
    return {
        "source_images": sources,
        "pixel_array": _dicom.hd_volume(volume, planes(slice(z0, z1)), frame_of_reference, z0),
    }


def _lookup(table: np.ndarray, labels: np.ndarray, index: Any) -> np.ndarray:
    """``table[labels[index]]`` for the slices ``index`` selects, slice by slice; when ``table``
    leaves every level as it is (all seven found, the usual case) the label map's own slices,
    a read-only view where they are consecutive (no copy of a few hundred 512² slices)."""
    zs = np.arange(labels.shape[0])[index]
    identity = np.arange(len(VERTEBRAE) + 1)
    if len(zs) and labels.dtype == table.dtype and np.array_equal(table[: len(identity)], identity):
        consecutive = zs[-1] - zs[0] + 1 == len(zs)  # zs increase strictly
        kept = labels[zs[0] : zs[-1] + 1] if consecutive else labels[zs]
        if kept.max() < len(identity):
            kept.flags.writeable = False
            return kept
    out = np.empty((len(zs), *labels.shape[1:]), table.dtype)
    for plane, z in zip(out, zs):
        np.take(table, labels[z], out=plane)
    return out


class _HeatmapSegmentation(hd.seg.Segmentation):
    """highdicom's Segmentation for the one-segment fracture heat-map, which
    :func:`build_fracture_seg` has already clipped to [0, 1] itself.

    highdicom checks a float array by listing its distinct values (``np.unique``: a sort of every
    pixel, over a second of CPU for a few hundred 512² frames) to find values outside [0, 1] and
    whether segments overlap. For one float32 segment in [0, 1] its answer is known: the array
    as given, and "NO" overlap. Anything else goes through highdicom's own check.
    ``tests/reports/test_report_dicom_seg.py`` compares the result with plain highdicom's.
    """

    @classmethod
    def _check_and_cast_pixel_array(
        cls,
        pixel_array: Any,
        segment_numbers: np.ndarray,
        segmentation_type: hd.seg.SegmentationTypeValues,
        dtype: type,
    ) -> tuple[Any, hd.seg.SegmentsOverlapValues]:
        plain = pixel_array.array if isinstance(pixel_array, hd.Volume) else pixel_array
        if (
            segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
            and len(segment_numbers) == 1
            and isinstance(plain, np.ndarray)
            and plain.dtype == np.float32
            and plain.ndim == 3
            and plain.size
            and plain.min() >= 0.0
            and plain.max() <= 1.0
        ):
            return pixel_array, hd.seg.SegmentsOverlapValues.NO
        return super()._check_and_cast_pixel_array(
            pixel_array, segment_numbers, segmentation_type, dtype
        )


def build_vertebra_seg(
    outcome: OutcomeLike, sources: list[Dataset] | None = None
) -> hd.seg.Segmentation:
    """A BINARY SEG with one segment per present vertebra (SNOMED code and colour from
    ``vertebrae.py``, category Anatomical structure), made by the model named in the result;
    frames only where a segment is, written deflated (see the module docstring).

    ``sources`` are the source CT headers (read from ``volume.meta["source_files"]`` if None).
    """
    check_outcome(outcome)
    volume, result = outcome.volume, outcome.result
    if sources is None:
        sources = _dicom.read_source_headers(volume, SEG_WHAT)
    per_slice = slice_label_counts(outcome.labels)
    segmented = segmented_vertebrae(outcome, per_slice.sum(axis=0))
    if not segmented:
        raise ExportNotAvailableError(
            "No vertebra was found in this study, so there is no segmentation to export."
        )
    remap = np.zeros(256, np.uint8)  # label 1–7 → segment number 1..n (present only)
    for number, v in enumerate(segmented, start=1):
        remap[v.label] = number
    labels = np.asarray(outcome.labels)
    keep = np.asarray(per_slice[:, [v.label for v in segmented]].any(axis=1))
    algorithm = _dicom.algorithm_identification(result)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=v.name,
            segmented_property_category=_sct(SNOMED_CATEGORY),
            segmented_property_type=_sct((v.snomed_code, v.snomed_meaning)),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_id=v.name,
            tracking_uid=hd.UID(),
            display_color=hd.color.CIELabColor.from_rgb(*v.rgb),
        )
        for number, v in enumerate(segmented, start=1)
    ]
    seg = hd.seg.Segmentation(
        **_frames(volume, sources, keep, lambda index: _lookup(remap, labels, index)),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=_dicom.SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        series_description="cspine C1-C7 vertebrae (not for diagnostic use)",
        content_label="VERTEBRAE",
        content_description="AI segmentation of C1-C7; not for diagnostic use",
        content_qualification=_dicom.CONTENT_QUALIFICATION,
        omit_empty_frames=True,
        **_dicom.equipment_kwargs(),
    )
    # 1-bit frames, mostly zeros: deflating the dataset shrinks it ~100-fold in ~0.1 s.
    seg.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return seg


def build_fracture_seg(
    outcome: OutcomeLike, sources: list[Dataset] | None = None
) -> hd.seg.Segmentation:
    """A FRACTIONAL (probability) SEG holding the fracture heat-map as one segment "Fracture"
    (8-bit, ``MAX_FRACTIONAL_VALUE`` = probability 1, RLE Lossless); values below
    ``FRACTIONAL_FLOOR`` are stored as 0 and slices without any value above it are left out."""
    check_outcome(outcome)
    if outcome.heatmap is None:
        raise ExportNotAvailableError("This analysis has no fracture heat-map to export.")
    volume, result = outcome.volume, outcome.result
    if sources is None:
        sources = _dicom.read_source_headers(volume, SEG_WHAT)
    heatmap = np.asarray(outcome.heatmap)
    keep = heatmap.reshape(heatmap.shape[0], -1).max(axis=1) >= FRACTIONAL_FLOOR
    if not keep.any():
        raise ExportNotAvailableError(
            "The fracture heat-map is empty for this study, so there is nothing to export."
        )

    def planes(index: Any) -> np.ndarray:  # slice by slice: no full-size temporaries
        zs = np.arange(heatmap.shape[0])[index]
        heat = np.empty((len(zs), *heatmap.shape[1:]), np.float32)
        for plane, z in zip(heat, zs):
            np.clip(heatmap[z], 0.0, 1.0, out=plane)
            plane[plane < FRACTIONAL_FLOOR] = 0.0
        return heat

    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Fracture",
        segmented_property_category=_sct(FRACTURE_CATEGORY),
        segmented_property_type=_sct(FRACTURE_CODE),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=_dicom.algorithm_identification(result),
        tracking_id="Fracture heat-map",
        tracking_uid=hd.UID(),
        display_color=hd.color.CIELabColor.from_rgb(*FRACTURE_RGB),
    )
    return _HeatmapSegmentation(
        **_frames(volume, sources, keep, planes),
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
        fractional_type=hd.seg.SegmentationFractionalTypeValues.PROBABILITY,
        max_fractional_value=MAX_FRACTIONAL_VALUE,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=_dicom.FRACTURE_SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        series_description="cspine fracture heat-map (not for diagnostic use)",
        content_label="FRACTURE",
        content_description="AI fracture likelihood; not for diagnostic use",
        content_qualification=_dicom.CONTENT_QUALIFICATION,
        omit_empty_frames=True,
        transfer_syntax_uid=RLELossless,
        **_dicom.equipment_kwargs(),
    )


def write_dicom_seg(
    outcome: OutcomeLike, path: str | os.PathLike[str], sources: list[Dataset] | None = None
) -> hd.seg.Segmentation:
    """Build :func:`build_vertebra_seg` and write it to ``path`` (atomic); returns the dataset
    (the SR export refers to its segments)."""
    seg = build_vertebra_seg(outcome, sources)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return seg


def write_fracture_seg(
    outcome: OutcomeLike, path: str | os.PathLike[str], sources: list[Dataset] | None = None
) -> hd.seg.Segmentation:
    """Build :func:`build_fracture_seg` and write it to ``path`` (atomic)."""
    seg = build_fracture_seg(outcome, sources)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return seg
