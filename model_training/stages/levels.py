"""Where the app puts each level on CTs that come with reference level labels.

``cspine-evaluate stages levels --data ROOT --bundle B --out OUT`` runs every study of an
RSNA-layout folder that has ``segmentations/<uid>.nii`` (the RSNA 2022 training set has 87 real
necks so labelled; ``cspine-phantom`` writes phantom ones) through ``analyze`` exactly as the
app does, and compares each level the app labelled with the reference:

* **centre**: the level's centre along the slices (the mean slice of its voxels), the app's
  against the reference's, in slices and millimetres; a level *lands* where the reference puts
  it when the two are at most ``WITHIN_SLICES`` slice apart;
* **on its level**: the app's centre lies less than halfway from the reference centre of the
  same level to the nearest other reference level (the count is not one off, whatever the
  slice thickness; at the ends of the reference too);
* **a confident wrong level**: assessed (a fracture verdict given) but not on its level.

Only reference levels wholly in the scan count (a level touching the first or last slice is
cut: its centre is not its vertebra's). Nothing is trained or calibrated here.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.analysis.postprocess import centroids_z
from cspine_desktop.vertebrae import NAMES

log = logging.getLogger("cspine.stages")

WITHIN_SLICES = 1.0  # a level lands where the reference puts it within this many slices
MIN_OWN_SHARE = 0.7  # of an assessed level's true vertebra under its own name


def misnamed_levels(
    labels: np.ndarray, truth: np.ndarray, levels: list[int], min_own: float = MIN_OWN_SHARE
) -> list[tuple[int, float]]:
    """Of ``levels``, those whose true vertebra carries their name on under ``min_own`` of its
    labelled voxels (the rest named as another level): a fracture there would be reported at
    the wrong level. (level, share) each."""
    out = []
    for k in levels:
        named = np.bincount(labels[truth == k].ravel(), minlength=8)[1:8]
        if named.sum() == 0:
            continue
        own = float(named[k - 1] / named.sum())
        if own < min_own:
            out.append((k, own))
    return out


def level_centres(labels: np.ndarray) -> dict[int, tuple[float, bool]]:
    """Level 1–7 → (centre along axis 0 in slices, cut by the first or last slice)."""
    lab = np.asarray(labels)
    at_edge = set(np.unique(lab[0]).tolist()) | set(np.unique(lab[-1]).tolist())
    out = {}
    for name, z in centroids_z(lab).items():
        k = NAMES.index(name) + 1
        out[k] = (z, k in at_edge)
    return out


def compare_levels(
    pred: np.ndarray, ref: np.ndarray, slice_mm: float, status: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per reference level wholly in the scan: where the app put it (``None`` when it
    found no such level), how far off, whether on its level, and its status."""
    got, want = level_centres(pred), level_centres(ref)
    rows = []
    for k, (zr, cut) in sorted(want.items()):
        if cut:
            continue
        name = NAMES[k - 1]
        row: dict[str, Any] = {"level": name, "reference_slice": round(zr, 2)}
        row["status"] = status.get(name, "not_in_view")
        if k not in got:
            row.update(found=False, off_slices=None, off_mm=None, lands=False, on_level=False)
        else:
            zp = got[k][0]
            off = zp - zr
            # on its level: nearer its own reference centre than halfway to the nearest other
            # (at the ends of the reference too, where no level lies beyond)
            gaps = [abs(want[j][0] - zr) for j in want if j != k]
            half = min(gaps) / 2.0 if gaps else float("inf")
            row.update(
                found=True,
                app_slice=round(zp, 2),
                off_slices=round(off, 2),
                off_mm=round(off * slice_mm, 2),
                lands=bool(abs(off) <= WITHIN_SLICES + 1e-9),
                on_level=bool(abs(off) < half),
            )
        row["confident_wrong_level"] = bool(row["status"] == "assessed" and not row["on_level"])
        rows.append(row)
    return rows


def summarise(studies: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the studies' rows."""
    rows = [r for s in studies for r in s["levels"]]
    found = [r for r in rows if r["found"]]
    assessed = [r for r in rows if r["status"] == "assessed"]
    off = np.array([abs(r["off_mm"]) for r in found], dtype=np.float64)

    def share(part: list[Any], whole: list[Any]) -> float | None:
        return round(len(part) / len(whole), 4) if whole else None

    return {
        "studies": len(studies),
        "reference_levels": len(rows),
        "found": len(found),
        "lands_within_slices": WITHIN_SLICES,
        "lands": share([r for r in rows if r["lands"]], rows),
        "on_level": share([r for r in rows if r["on_level"]], rows),
        "assessed": len(assessed),
        "assessed_lands": share([r for r in assessed if r["lands"]], assessed),
        "confident_wrong_levels": [
            f"{s['study']} {r['level']}"
            for s in studies
            for r in s["levels"]
            if r["confident_wrong_level"]
        ],
        "off_mm_median": round(float(np.median(off)), 2) if off.size else None,
        "off_mm_p90": round(float(np.percentile(off, 90)), 2) if off.size else None,
        "patients_assessed": sum(s["patient_status"] == "assessed" for s in studies),
    }


def _studies(args: argparse.Namespace) -> list[tuple[str, Path, Path]]:
    """(name, images, reference labels) of each study to compare: the segmented studies of an
    RSNA-layout ``args.data``, or the one ``args.image`` with ``args.reference``."""
    if args.image:
        return [(Path(args.image).name, Path(args.image), Path(args.reference))]
    from ..datasets.rsna import read_rsna

    index = read_rsna(args.data)
    todo = [(s.study_uid, s.image_dir, s.segmentation) for s in index.studies if s.segmentation]
    return todo[: args.max_studies] if args.max_studies else todo


def evaluate_levels(args: argparse.Namespace) -> dict[str, Any]:
    """Every study of :func:`_studies` through ``analyze`` with ``args.bundle``; writes
    ``levels.json`` and ``levels.md`` into ``args.out`` and returns the summary."""
    from cspine_desktop.analysis.pipeline import analyze
    from cspine_desktop.errors import CspineInputError
    from cspine_desktop.imaging import load_study
    from cspine_desktop.inference import load_bundle, open_engine

    from ..datasets.masks import MaskMismatchError, mask_on_volume

    try:
        ids = [int(v) for v in str(args.label_ids).split(",")]
    except ValueError:
        ids = []
    if len(ids) != len(NAMES):
        raise CspineInputError(f"--label-ids needs {len(NAMES)} values (C1 … C7), got {ids}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = _studies(args)
    bundle = load_bundle(Path(args.bundle))
    engine = open_engine(bundle, args.backend, None, measure=False)
    studies: list[dict[str, Any]] = []
    skipped: list[str] = []
    t0 = time.perf_counter()
    try:
        for n, (name, images, seg) in enumerate(todo, start=1):
            try:
                volume = load_study(images)
                # ids: the file's values for C1 … C7 (TotalSegmentator's 50 … 44)
                ref = mask_on_volume(seg, volume, max_label=len(NAMES), values=ids)
            except (CspineInputError, MaskMismatchError) as exc:
                skipped.append(f"{name}: {exc}")
                continue
            res = analyze(volume, engine, bundle.card, explain=False)
            status = {v.name: v.status for v in res.result.vertebrae}
            slice_mm = float(volume.spacing[0])
            studies.append(
                {
                    "study": name,
                    "slice_mm": round(slice_mm, 3),
                    "patient_status": res.result.patient_overall.status,
                    "levels": compare_levels(res.labels, ref, slice_mm, status),
                }
            )
            log.info("%d/%d studies (%.1f s each)", n, len(todo), (time.perf_counter() - t0) / n)
    finally:
        engine.close()
    if args.image and skipped:
        raise CspineInputError(f"cannot compare {skipped[0]}")
    summary = summarise(studies)
    summary["skipped"] = skipped
    report = {"bundle": bundle.card.get("version"), "summary": summary, "studies": studies}
    (out / "levels.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "levels.md").write_text(
        _markdown(summary, str(args.image or args.data)), encoding="utf-8"
    )
    return summary


def _markdown(s: dict[str, Any], data: str) -> str:
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.0%}"

    wrong = ", ".join(s["confident_wrong_levels"]) or "none"
    return (
        f"# Level placement against the reference labels of `{data}`\n\n"
        f"| | |\n|---|---|\n"
        f"| studies / reference levels wholly in the scan | {s['studies']} / "
        f"{s['reference_levels']} |\n"
        f"| levels found | {s['found']} |\n"
        f"| centre within {s['lands_within_slices']:g} slice of the reference | "
        f"{pct(s['lands'])} |\n"
        f"| centre on its own level (under halfway to the next reference level) | "
        f"{pct(s['on_level'])} |\n"
        f"| assessed levels / of them within {s['lands_within_slices']:g} slice | "
        f"{s['assessed']} / {pct(s['assessed_lands'])} |\n"
        f"| centre off by, median / 90th percentile | {s['off_mm_median']} / "
        f"{s['off_mm_p90']} mm |\n"
        f"| patients assessed | {s['patients_assessed']} |\n"
        f"| assessed on the wrong level | {wrong} |\n"
    )
