"""End to end with the bundled demo model on unseen phantom studies: a whole neck is assessed;
part of a neck, thick slices, a spine too large for a neck and a picture are not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cspine_desktop.analysis.pipeline import analyze
from cspine_desktop.imaging import load_study
from cspine_desktop.imaging.volume import Volume
from cspine_desktop.imaging.windows import BONE, apply_window

pytestmark = pytest.mark.slow
SEED = 777001  # never used for training (training seeds start at 1000, tests at 0)


@pytest.fixture(scope="module")
def study():
    from model_training.phantom import generate_study

    return generate_study(SEED)


def _run(demo, volume):
    engine, card = demo
    return analyze(volume, engine, card, explain=False)


def _statuses(result):
    return {v.name: v.status for v in result.vertebrae}


def test_a_whole_phantom_neck_segmented_right_is_assessed(demo, study, monkeypatch):
    """``analyze`` with the demo model, its segmentation replaced by the phantom's truth: a
    whole neck segmented right is assessed end to end. (How often the demo model's own
    segmentation is: tests/perf/test_plausibility_bench.py.)"""
    import dataclasses

    from cspine_desktop.analysis import pipeline
    from cspine_desktop.imaging.preprocess import to_grid

    model_run = pipeline.run_model

    def truth_labels(engine, prepared, **kw):
        grid = model_run(engine, prepared, **kw)
        return dataclasses.replace(
            grid, labels=to_grid(study.in_volume_order(study.labels), prepared)
        )

    monkeypatch.setattr(pipeline, "run_model", truth_labels)
    r = _run(demo, study.to_volume()).result
    assert set(_statuses(r).values()) == {"assessed"}, {v.name: v.reasons for v in r.vertebrae}
    assert r.patient_overall.status == "assessed" and r.patient_overall.reasons == ()
    assert r.patient_overall.fractured is not None


def test_a_neck_showing_only_c4_to_c7_never_says_no_fracture(demo, study):
    volume = study.to_volume()
    labels = study.in_volume_order(study.labels)  # volume order: feet first
    top = int(np.nonzero((labels == 4).any(axis=(1, 2)))[0].mean())  # cut through C4
    part = Volume(np.ascontiguousarray(volume.hu[: top + 1]), volume.affine, volume.spacing)
    part.meta = dict(volume.meta)
    r = _run(demo, part).result
    s = _statuses(r)
    assert [s[n] for n in ("C1", "C2", "C3")] == ["not_in_view"] * 3
    assert s["C4"] == "partly_in_view"
    assert "C4 is cut by the top edge of the scan" in r.vertebra("C4").reasons[0]
    assert r.patient_overall.fractured is not False  # no "no fracture" for half a neck
    if r.patient_overall.status == "indeterminate":
        assert "could not be assessed" in r.patient_overall.reasons[0]


def test_six_mm_slices_give_no_verdict(demo, study):
    volume = study.to_volume()
    step = int(np.ceil(6.0 / volume.spacing[0]))
    affine = volume.affine.copy()
    affine[:3, 2] *= step
    thick = Volume(
        np.ascontiguousarray(volume.hu[::step]),
        affine,
        (volume.spacing[0] * step, *volume.spacing[1:]),
        dict(volume.meta, SliceThickness=volume.spacing[0] * step),
    )
    r = _run(demo, thick).result
    assert r.patient_overall.status == "indeterminate" and r.patient_overall.fractured is None
    assert any(
        "mm thick; fracture verdicts need slices of at most 5 mm" in x
        for x in (r.patient_overall.reasons)
    )


def test_values_that_are_not_hounsfield_units_give_no_verdict(demo, study):
    """The phantom as an MR read from NIfTI would come (no modality stored, so assumed CT;
    air at 0, bone bright): no verdict, whatever the segmentation finds."""
    volume = study.to_volume()
    mr_like = np.clip(volume.hu + 1000.0, 0.0, None) * 0.4
    mr = Volume(mr_like, volume.affine, volume.spacing, dict(volume.meta, Modality="CT"))
    r = _run(demo, mr).result
    assert r.patient_overall.status == "indeterminate" and r.patient_overall.fractured is None
    assert r.patient_overall.reasons[0].startswith("No part of the images is as dark as air")
    assert all(v.fractured is None for v in r.vertebrae)


def test_a_ct_without_bone_gets_no_verdict(demo, study):
    """The phantom with its values clipped below bone (as a CT of the brain alone shows none):
    whatever the segmentation finds is not a spine to judge."""
    volume = study.to_volume()
    soft = Volume(np.minimum(volume.hu, 120.0), volume.affine, volume.spacing, dict(volume.meta))
    r = _run(demo, soft).result
    assert r.patient_overall.status == "indeterminate" and r.patient_overall.fractured is None
    assert r.patient_overall.reasons[0].startswith("Nothing in the images is as dense as bone")
    assert all(v.fractured is None for v in r.vertebrae)


def test_a_spine_too_large_for_a_neck_gets_no_verdict(demo, study):
    """The phantom blown up 1.8× (lumbar-sized vertebrae, as in an abdominal CT)."""
    volume = study.to_volume()
    affine = volume.affine.copy()
    affine[:3, :3] *= 1.8
    big = Volume(volume.hu, affine, tuple(s * 1.8 for s in volume.spacing), dict(volume.meta))
    r = _run(demo, big).result
    assert r.patient_overall.status == "indeterminate" and r.patient_overall.fractured is None
    assert r.patient_overall.reasons[0].startswith("No slice shows a neck")
    assert all(v.fractured is None for v in r.vertebrae)


def test_a_png_is_segmented_but_needs_a_ct_series_for_a_verdict(demo, study, tmp_path):
    labels = study.labels
    z = int(np.nonzero((labels == 5).any(axis=(1, 2)))[0].mean())
    png = tmp_path / "c5.png"
    cv2.imwrite(str(png), np.round(apply_window(study.hu[z], BONE) * 255).astype(np.uint8))
    out = _run(demo, load_study(png))
    assert out.labels.shape == (1, *study.hu.shape[1:])  # viewable, segmented
    r = out.result
    assert r.patient_overall.status == "indeterminate" and r.patient_overall.fractured is None
    assert "a fracture verdict needs a CT series" in r.patient_overall.reasons[0]
    assert all(v.fractured is None for v in r.vertebrae)
