"""One study → model-grid volume + targets, through the one preprocessing.

``prepare_volume`` puts the CT on the model grid; ``to_grid`` carries the vertebra labels and
the fracture mask there (nearest neighbour); :func:`~.targets.slice_flags` derives the
per-slice per-vertebra fracture flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cspine_desktop.errors import CspineInputError
from cspine_desktop.imaging.preprocess import (
    PreparedVolume,
    PreprocessConfig,
    prepare_volume,
    to_grid,
)
from cspine_desktop.imaging.volume import Volume

from .masks import MaskMismatchError, mask_on_volume
from .report import PARTIAL, SkipReport
from .rsna import RsnaStudy
from .targets import TargetConfig, boxes_to_mask, slice_flags


@dataclass
class Sample:
    """A study on the model grid with its targets.

    prepared : PreparedVolume (hu float32 [Zg, S, S])
    labels   : uint8 [Zg, S, S] 0 bg, 1–7, or None (no segmentation)
    fracture : uint8 [Zg, S, S] 1 = fractured bone, or None (location unknown)
    flags    : bool [Zg, 7] slice shows a fractured C_k (all False when labels are unknown)
    """

    prepared: PreparedVolume
    labels: np.ndarray | None
    fracture: np.ndarray | None
    flags: np.ndarray


def build_sample(
    volume: Volume,
    labels_src: np.ndarray | None,
    fracture_src: np.ndarray | None,
    fractured: Sequence[bool],
    cfg: PreprocessConfig,
    targets: TargetConfig | None = None,
) -> Sample:
    """Prepare ``volume`` and move its source-grid labels/fracture mask ([z, y, x], same grid
    as ``volume.hu``) onto the model grid; compute the slice flags."""
    prepared = prepare_volume(volume, cfg)
    labels = to_grid(labels_src.astype(np.uint8), prepared) if labels_src is not None else None
    fracture = (
        to_grid((fracture_src != 0).astype(np.uint8), prepared)
        if fracture_src is not None
        else None
    )
    if labels is not None:
        flags = slice_flags(
            labels, fracture, fractured, cfg.pixel_spacing_mm, cfg.slice_step_mm, targets
        )
    else:
        flags = np.zeros((prepared.n_slices, 7), dtype=bool)
    return Sample(prepared, labels, fracture, flags)


def _load_volume(study: RsnaStudy) -> Volume:
    from cspine_desktop.imaging import load_study

    return load_study(study.image_dir)


def prepare_study(
    study: RsnaStudy,
    cfg: PreprocessConfig,
    targets: TargetConfig | None,
    report: SkipReport,
) -> Sample | None:
    """Read one RSNA study (DICOM + masks/boxes) and build its :class:`Sample`.

    Unreadable images → None (reported as skipped). A segmentation or fracture mask that
    cannot be placed on the images is left out (reported as PARTIAL): the study is still
    cached for study-level evaluation but has no vertebra labels (or no fracture location).
    """
    uid = study.study_uid
    try:
        volume = _load_volume(study)
    except CspineInputError as exc:
        report.add(uid, "images", f"images cannot be read: {exc}", study.image_dir)
        return None

    labels_src = None
    if study.segmentation is not None:
        try:
            labels_src = mask_on_volume(study.segmentation, volume, max_label=7)
        except MaskMismatchError as exc:
            report.add(
                uid,
                "segmentation",
                f"segmentation {exc}; vertebra labels not used",
                study.segmentation,
                action=PARTIAL,
            )
    fracture_src = None
    if study.fracture_mask is not None:
        try:
            fracture_src = mask_on_volume(study.fracture_mask, volume, binary=True)
        except MaskMismatchError as exc:
            report.add(
                uid,
                "fracture_mask",
                f"fracture mask {exc}; not used",
                study.fracture_mask,
                action=PARTIAL,
            )
    if fracture_src is None and study.boxes:
        try:
            fracture_src, notes = boxes_to_mask(study.boxes, study.image_dir, volume)
        except Exception as exc:  # unreadable header of a box's image
            fracture_src, notes = None, [f"boxes not used ({type(exc).__name__}: {exc})"]
        for note in notes:
            report.add(uid, "boxes", note, study.image_dir, action=PARTIAL)
        if fracture_src is not None and not fracture_src.any():
            fracture_src = None
    if not study.patient_overall and fracture_src is None:
        fracture_src = np.zeros(volume.hu.shape, dtype=np.uint8)  # known: no fracture anywhere
    return build_sample(volume, labels_src, fracture_src, study.fractured, cfg, targets)
