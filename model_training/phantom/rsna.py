"""Write phantom studies in the RSNA 2022 Cervical Spine Fracture Detection layout.

::

    out_dir/
      train.csv                     StudyInstanceUID, patient_overall, C1..C7 (0/1)
      train_bounding_boxes.csv      StudyInstanceUID, x, y, width, height, slice_number
      train_images/<StudyUID>/<n>.dcm   n = InstanceNumber, 1 = most superior slice
      segmentations/<StudyUID>.nii  labels 0 bg, 1..7 = C1..C7
      fracture_masks/<StudyUID>.nii.gz  1 = fractured bone (cspine extra)
      cspine_phantom.csv            one row per fracture: vertebra, kind, severity, slices
      cspine_phantom.json           config, conventions, per-study truth and acquisition

NIfTI axis order (ours, not RSNA's sagittal order): array index (i, j, k) = (column x, row y,
slice index z) of the DICOM series, k = InstanceNumber − 1; the affine maps (i, j, k) to RAS mm
(= the DICOM LPS affine with x and y negated). Read it with its affine, never by array order.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .config import PhantomConfig
from .dicom_writer import write_ct_series
from .study import PhantomStudy, generate_study

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIFTI_CONVENTION = (
    "array (i, j, k) = (DICOM column, row, InstanceNumber - 1); affine (i, j, k) -> RAS mm"
)


def study_seed(seed: int, index: int) -> int:
    """Seed of study ``index`` in a dataset made with ``seed`` (independent of n)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def nifti_image(array_zyx: np.ndarray, affine_lps: np.ndarray) -> nib.Nifti1Image:
    """A [z, y, x] array on the grid of ``affine_lps`` as a NIfTI image with a RAS affine."""
    data = np.ascontiguousarray(np.transpose(array_zyx, (2, 1, 0)))
    img = nib.Nifti1Image(data, LPS_TO_RAS @ affine_lps)
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    return img


def write_study(
    study: PhantomStudy, out_dir: Path, *, compress: bool = False, segmentation: bool = True
) -> None:
    """Images, segmentation and fracture mask of one study (CSVs are written by the caller)."""
    uid = study.study_uid
    write_ct_series(
        out_dir / "train_images" / uid,
        study.hu,
        study.affine,
        study_uid=uid,
        series_uid=study.series_uid,
        patient_id=study.patient_id,
        slice_thickness_mm=study.acquisition.slice_thickness_mm,
        compress=compress,
    )
    if segmentation:
        (out_dir / "segmentations").mkdir(parents=True, exist_ok=True)
        nib.save(nifti_image(study.labels, study.affine), out_dir / "segmentations" / f"{uid}.nii")
    (out_dir / "fracture_masks").mkdir(parents=True, exist_ok=True)
    nib.save(
        nifti_image(study.fracture_mask, study.affine), out_dir / "fracture_masks" / f"{uid}.nii.gz"
    )


def _one(args: tuple) -> dict[str, Any]:
    index, seed, cfg, out_dir, compress, segmentation = args
    study = generate_study(study_seed(seed, index), cfg)
    write_study(study, out_dir, compress=compress, segmentation=segmentation)
    summary = study.summary()
    summary["has_segmentation"] = segmentation
    summary["boxes"] = [
        {"x": x, "y": y, "width": w, "height": h, "slice_number": z + 1, "fracture": i}
        for z, x, y, w, h, i in study.boxes
    ]
    return summary


def write_rsna_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    config: PhantomConfig | None = None,
    *,
    compress: bool = False,
    segmentation_fraction: float = 1.0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Generate ``n`` studies and write them to ``out_dir`` in the RSNA 2022 layout.

    segmentation_fraction: share of studies that get ``segmentations/<uid>.nii`` (RSNA: 87 of
    2,019); the first round(n × fraction) studies get one. Returns the per-study summaries.
    """
    cfg = config or PhantomConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_seg = round(n * segmentation_fraction)
    jobs = [(i, seed, cfg, out, compress, i < n_seg) for i in range(n)]
    summaries: list[dict[str, Any]] = []
    if workers > 1 and n > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, s in enumerate(pool.map(_one, jobs)):
                summaries.append(s)
                if progress:
                    progress(i + 1, n)
    else:
        for i, job in enumerate(jobs):
            summaries.append(_one(job))
            if progress:
                progress(i + 1, n)
    _write_tables(out, summaries, cfg, seed)
    return summaries


def _write_tables(
    out: Path, summaries: list[dict[str, Any]], cfg: PhantomConfig, seed: int
) -> None:
    names = [f"C{k}" for k in range(1, 8)]
    with open(out / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "patient_overall", *names])
        for s in summaries:
            w.writerow([s["StudyInstanceUID"], s["patient_overall"], *(s[c] for c in names)])
    with open(out / "train_bounding_boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "x", "y", "width", "height", "slice_number"])
        for s in summaries:
            for b in s["boxes"]:
                w.writerow(
                    [
                        s["StudyInstanceUID"],
                        b["x"],
                        b["y"],
                        b["width"],
                        b["height"],
                        b["slice_number"],
                    ]
                )
    with open(out / "cspine_phantom.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "StudyInstanceUID",
                "vertebra",
                "kind",
                "severity",
                "slice_first",
                "slice_last",
                "displacement_mm",
                "height_loss",
                "n_voxels",
            ]
        )
        for s in summaries:
            for f in s["fractures"]:
                first, last = f["slice_range"] or (None, None)
                w.writerow(
                    [
                        s["StudyInstanceUID"],
                        f["vertebra_name"],
                        f["kind"],
                        f["severity"],
                        "" if first is None else first + 1,
                        "" if last is None else last + 1,
                        f["displacement_mm"],
                        round(f["height_loss"], 3),
                        f["n_voxels"],
                    ]
                )
    meta = {
        "generator": "cspine phantom",
        "disclaimer": "Synthetic data - not for diagnostic use",
        "seed": seed,
        "config": cfg.to_dict(),
        "conventions": {
            "slice_number": "DICOM InstanceNumber; 1 = most superior slice",
            "nifti": NIFTI_CONVENTION,
            "labels": {
                "0": "background (incl. occiput, T1)",
                **{str(k): f"C{k}" for k in range(1, 8)},
            },
            "fracture_masks": "1 = fractured bone within a few mm of a fracture line",
        },
        "studies": summaries,
    }
    with open(out / "cspine_phantom.json", "w") as fh:
        json.dump(meta, fh, indent=1, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))
