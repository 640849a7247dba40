"""DICOM Segmentation objects: the vertebrae (BINARY) and the fracture heat-map (FRACTIONAL).

Both refer to the source CT instances, so PACS viewers (OHIF, Slicer, Weasis) overlay them on
the original images. Only studies opened from DICOM can have them: for NIfTI/PNG input the
writers raise :class:`~cspine_desktop.errors.ExportNotAvailableError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

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
from ._common import OutcomeLike, atomic_path, check_outcome, label_counts

SEG_WHAT = "A DICOM SEG"
# Heat-map values below this (2 %, about 5 of 255 steps) are stored as 0, so the slices where
# the model saw nothing are left out instead of filling the SEG with near-zero noise.
FRACTIONAL_FLOOR = 0.02


def _sct(code: tuple[str, str]) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=code[0], scheme_designator="SCT", meaning=code[1])


def segmented_vertebrae(outcome: OutcomeLike) -> list[Vertebra]:
    """Vertebrae judged present that also have voxels in the label map, C1 first.

    Segment number ``i + 1`` of the vertebra SEG is ``segmented_vertebrae(outcome)[i]``.
    """
    present = {v.name for v in outcome.result.vertebrae if v.present}
    counts = label_counts(outcome.labels)
    return [v for v in VERTEBRAE if v.name in present and counts[v.label] > 0]


def build_vertebra_seg(
    outcome: OutcomeLike, sources: list[Dataset] | None = None
) -> hd.seg.Segmentation:
    """A BINARY SEG with one segment per present vertebra (SNOMED code and colour from
    ``vertebrae.py``, category Anatomical structure), made by the model named in the result.

    ``sources`` are the source CT headers (read from ``volume.meta["source_files"]`` if None).
    """
    check_outcome(outcome)
    volume, result = outcome.volume, outcome.result
    if sources is None:
        sources = _dicom.read_source_headers(volume, SEG_WHAT)
    segmented = segmented_vertebrae(outcome)
    if not segmented:
        raise ExportNotAvailableError(
            "No vertebra was found in this study, so there is no segmentation to export."
        )
    remap = np.zeros(256, np.uint8)  # label 1–7 → segment number 1..n (present only)
    for number, v in enumerate(segmented, start=1):
        remap[v.label] = number
    labels = np.asarray(outcome.labels)
    # Only the slab of slices holding a segment goes to highdicom (memory ∝ what is exported).
    z0, z1 = _dicom.slab(np.array([remap[plane].any() for plane in labels])) or (0, 0)
    segments = remap[labels[z0:z1]]
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
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=_dicom.hd_volume(
            volume, segments, _dicom.frame_of_reference(sources, volume), z0
        ),
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


def build_fracture_seg(
    outcome: OutcomeLike, sources: list[Dataset] | None = None
) -> hd.seg.Segmentation:
    """A FRACTIONAL (probability) SEG holding the fracture heat-map as one segment "Fracture"
    (8-bit, 255 = probability 1); values below ``FRACTIONAL_FLOOR`` are stored as 0 and slices
    without any value above it are left out."""
    check_outcome(outcome)
    if outcome.heatmap is None:
        raise ExportNotAvailableError("This analysis has no fracture heat-map to export.")
    volume, result = outcome.volume, outcome.result
    if sources is None:
        sources = _dicom.read_source_headers(volume, SEG_WHAT)
    heatmap = np.asarray(outcome.heatmap)
    zs = _dicom.slab(heatmap.reshape(heatmap.shape[0], -1).max(axis=1) >= FRACTIONAL_FLOOR)
    if zs is None:
        raise ExportNotAvailableError(
            "The fracture heat-map is empty for this study, so there is nothing to export."
        )
    z0, z1 = zs  # only the slab with values goes to highdicom
    heat = np.clip(heatmap[z0:z1], 0.0, 1.0, dtype=np.float32)
    heat[heat < FRACTIONAL_FLOOR] = 0.0
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
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=_dicom.hd_volume(volume, heat, _dicom.frame_of_reference(sources, volume), z0),
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
        fractional_type=hd.seg.SegmentationFractionalTypeValues.PROBABILITY,
        max_fractional_value=255,
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


def read_seg(path: str | os.PathLike[str]) -> hd.seg.Segmentation:
    """Read a SEG written by :func:`write_dicom_seg` (for the SR export)."""
    return hd.seg.segread(Path(path))
