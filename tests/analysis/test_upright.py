"""A first reading left unsure read again on the CT turned upright: the turn itself on a drawn
column, and the demo model's stage 1 on phantom necks that lean, one it then labels right and
one it does not, and on upright necks, one it then labels right and one it does not."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.analysis.aggregate import AggregationConfig
from cspine_desktop.analysis.levels import column_lean_deg, onto_body_tops
from cspine_desktop.analysis.model_pass import run_model
from cspine_desktop.analysis.pipeline import analyze, read_spine
from cspine_desktop.analysis.plausibility import (
    ASSESSED,
    INDETERMINATE,
    NOT_IN_VIEW,
)
from cspine_desktop.analysis.upright import (
    LEANING_DEG,
    Turn,
    clean_and_check,
    second_reading_lean,
    turned_deg,
)
from cspine_desktop.imaging.preprocess import PreprocessConfig, prepare_volume, to_grid
from cspine_desktop.vertebrae import NAMES
from model_training.phantom import generate_study
from model_training.stages.levels import compare_levels, misnamed_levels

STEP, PX = 1.25, 1.0


def _leaning_column(lean_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Seven 10-plane blocks stacked into a column whose centre moves back by tan(lean) per
    millimetre down (labels 1–7), on soft tissue; the first plane is bone across the image."""
    z, s = 90, 96
    labels = np.zeros((z, s, s), np.uint8)
    slope = np.tan(np.radians(lean_deg)) * STEP / PX  # rows per plane
    for k in range(7):
        for p in range(8 + 10 * k, 18 + 10 * k):
            row = round(30 + slope * p)
            labels[p, row - 6 : row + 6, 42:54] = k + 1
    hu = np.where(labels > 0, 700.0, 40.0).astype(np.float32)
    hu[0] = 300.0
    return labels, hu


def _dice(a: np.ndarray, b: np.ndarray, k: int) -> float:
    x, y = a == k, b == k
    return 2.0 * float((x & y).sum()) / float(x.sum() + y.sum())


def test_the_turn_stands_the_column_upright_and_gives_its_labels_back():
    labels, hu = _leaning_column(16.0)
    lean = column_lean_deg(labels, STEP, PX)
    assert 15.0 < lean < 17.0
    turn = Turn.upright(labels, lean, STEP, PX, 5.0)

    upright = turn.to_upright(labels, labels=True)
    assert abs(column_lean_deg(upright, STEP, PX)) < 1.5
    less = turn.to_upright(labels, 5.0, labels=True)
    assert 3.5 < column_lean_deg(less, STEP, PX) < 6.5  # still leaning its own way
    assert upright.shape[0] == labels.shape[0] + 2 * turn.pad

    back = turn.labels_back(upright)
    assert back.shape == labels.shape
    assert min(_dice(back, labels, k) for k in range(1, 8)) > 0.9

    # beyond the scan the turned CT repeats the scan's own planes: no air comes in
    assert turn.to_upright(hu)[: turn.pad].min() >= 40.0 - 1e-3

    # class scores read on the CT left leaning 5° land where the upright ones are
    onehot = np.eye(8, dtype=np.float32)[less]
    moved = turn.into_upright(onehot, 5.0)
    assert np.allclose(moved.sum(axis=-1), 1.0, atol=1e-4)
    assert min(_dice(moved.argmax(axis=-1), upright, k) for k in range(1, 8)) > 0.85


def test_boundaries_move_onto_a_body_top_two_or_three_planes_away_and_no_further():
    """Upright levels of 10 planes each (C2 from plane 10): C6|C7 at plane 60 with C7's top
    found at 57 moves there (C6's small arch piece stays C6); C4|C5 at 40 with a top at 39 (as
    good as on it) and C3|C4 at 30 with one at 25 (another body's) stay."""
    labels = np.zeros((80, 32, 32), np.uint8)
    for k in range(2, 8):
        labels[10 * (k - 1) : 10 * k, 8:24, 8:24] = k
    labels[57:60, 28:31, 14:17] = 6  # an arch of C6 behind C7's body: its own piece
    labels[57:60, 26:28, 14:17] = 0
    moved, which = onto_body_tops(labels, (25, 39, 57))
    assert which == [(7, 60, 57)]
    assert (moved[57:60, 8:24, 8:24] == 7).all() and (moved[57:60, 28:31, 14:17] == 6).all()
    assert np.array_equal(moved[:57], labels[:57]) and np.array_equal(moved[60:], labels[60:])
    assert onto_body_tops(labels, ())[1] == []
    # a top below the boundary gives the planes between to the level above
    down, which = onto_body_tops(labels, (62,))
    assert which == [(7, 60, 62)] and (down[60:62, 8:24, 8:24] == 6).all()


def _stage_1(seed: int, engine, card):
    study = generate_study(seed)
    volume = study.to_volume()
    prepared = prepare_volume(volume, PreprocessConfig.from_dict(dict(card["preprocessing"])))
    truth = to_grid(study.in_volume_order(study.labels), prepared)
    return study, volume, prepared, truth, run_model(engine, prepared).labels


@pytest.mark.slow
def test_a_leaning_neck_read_upright_is_assessed_with_every_level_in_place(demo):
    """Phantom study 96000132 leans 14.6° against the slices (its gantry tilt): the demo
    model's first reading names a C2 part as C1 and the checks leave it indeterminate. Read
    again upright, every level is assessed on its own vertebra; end to end, so is the
    patient, and the result says how it was read."""
    engine, card = demo
    study, volume, prepared, truth, raw = _stage_1(96000132, engine, card)
    assert abs(study.acquisition.extras["gantry_tilt_deg"]) > 13.0
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    step, px = prepared.cfg.slice_step_mm, prepared.cfg.pixel_spacing_mm

    first = read_spine(None, prepared, raw, aggregation)
    assert first.check.study_reasons and first.warnings == ()
    assert abs(second_reading_lean(first.check, first.clean.labels, step, px)) > LEANING_DEG

    again = read_spine(engine, prepared, raw, aggregation)
    assert not again.check.study_reasons
    assert all(again.check.status[n] == ASSESSED for n in NAMES)
    assert "turned upright" in again.warnings[0]
    assert again.clean.labels.shape == raw.shape
    assert misnamed_levels(again.clean.labels, truth, list(range(1, 8))) == []
    rows = compare_levels(again.clean.labels, truth, step, dict(again.check.status))
    assert not any(r["confident_wrong_level"] for r in rows)
    # a reading that passes is not read again
    assert second_reading_lean(again.check, again.clean.labels, step, px) is None

    result = analyze(volume, engine, card, explain=False).result
    assert result.patient_overall.status == ASSESSED
    assert all(v.status == ASSESSED for v in result.vertebrae)
    assert any("turned upright" in w for w in result.warnings)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "warning"),
    [
        (95000008, "against the slices; read again turned upright, it did not pass the checks"),
        (91000088, "The first pass of the model did not pass the checks, nor did a second pass"),
    ],
)
def test_a_second_reading_that_fails_too_leaves_the_first_and_its_reasons(demo, seed, warning):
    """Phantom study 95000008 leans 17.7°: read upright, stage 1 still names C2 as C1 (its
    "C1" is 8 mm across). 91000088 stands upright; on both passes stage 1 gives part of C5 to
    C4 and the checks leave C4–C6 indeterminate. The first reading stands, indeterminate with
    its own reasons, and the warning says how it was read again."""
    engine, card = demo
    _, _, prepared, _, raw = _stage_1(seed, engine, card)
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    first = read_spine(None, prepared, raw, aggregation)
    again = read_spine(engine, prepared, raw, aggregation)
    assert again.check == first.check and np.array_equal(again.clean.labels, first.clean.labels)
    assert any(again.check.status[n] == INDETERMINATE for n in NAMES)
    assert warning in again.warnings[0]


def test_nothing_labelled_is_not_read_again():
    labels, hu = _leaning_column(0.0)
    cfg = PreprocessConfig(slice_step_mm=STEP, pixel_spacing_mm=PX, input_size=hu.shape[1])
    _, check = clean_and_check(np.zeros_like(labels), hu, cfg)
    assert check.study_reasons  # no vertebra found: unsure
    assert second_reading_lean(check, np.zeros_like(labels), STEP, PX) is None
    assert turned_deg(12.0) == (12.0, 7.0) and turned_deg(-3.0) == (-3.0, 2.0)


@pytest.mark.slow
def test_a_leaning_neck_whose_c1_the_first_pass_missed_is_read_again_and_assessed(demo):
    """Phantom study 777047 leans 19° (a head-and-neck scan: the skull is in view). The first
    reading labels no C1 above a whole C2, which the checks leave to the reader (C1 missed, or
    every level named one too high); read again upright, every level is assessed on its own
    vertebra."""
    engine, card = demo
    _, _, prepared, truth, raw = _stage_1(777047, engine, card)
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    first = read_spine(None, prepared, raw, aggregation)
    assert first.check.study_reasons[0].startswith("No C1 was found above C2")
    assert first.check.status["C1"] == NOT_IN_VIEW
    again = read_spine(engine, prepared, raw, aggregation)
    assert all(again.check.status[n] == ASSESSED for n in NAMES), again.check.status
    assert misnamed_levels(again.clean.labels, truth, list(range(1, 8))) == []
    assert again.warnings[0].endswith("its vertebrae were labelled on the CT turned upright.")


@pytest.mark.slow
def test_an_upright_neck_left_unsure_is_read_again_and_assessed(demo):
    """Phantom study 97200062 stands upright and the demo model's first reading leaves C6 and
    C7 indeterminate (C7 labelled in part C6). Its column leans a few degrees in the planes;
    read again on the CT turned by that and by 5° more, averaged, every level is assessed on
    its own vertebra, and the warning says a second pass of the model labelled them."""
    engine, card = demo
    _, _, prepared, truth, raw = _stage_1(97200062, engine, card)
    step, px = prepared.cfg.slice_step_mm, prepared.cfg.pixel_spacing_mm
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    first = read_spine(None, prepared, raw, aggregation)
    assert any(first.check.status[n] == INDETERMINATE for n in NAMES)
    lean = second_reading_lean(first.check, first.clean.labels, step, px)
    assert lean is not None and abs(lean) <= LEANING_DEG

    spine = read_spine(engine, prepared, raw, aggregation)
    assert not spine.check.study_reasons
    assert all(spine.check.status[n] == ASSESSED for n in NAMES)
    assert misnamed_levels(spine.clean.labels, truth, list(range(1, 8))) == []
    assert spine.warnings[0].startswith("The vertebrae were labelled by a second pass")


@pytest.mark.slow
def test_an_upright_neck_whose_c6_stage_1_squeezes_is_split_again_at_the_endplates(demo):
    """Phantom study 97200043 stands upright; stage 1 gives half of C6's body to C7 on both
    passes, and the bodies run together at every bone threshold, so no body's top is found
    between them. The endplates show where they meet (:func:`~cspine_desktop.analysis.anchors.
    endplate_planes`): the first reading splits C5–C7 again, every level is assessed on its own
    vertebra, and it is not read again."""
    engine, card = demo
    _, _, prepared, truth, raw = _stage_1(97200043, engine, card)
    aggregation = AggregationConfig.from_dict(card.get("aggregation"))
    step, px = prepared.cfg.slice_step_mm, prepared.cfg.pixel_spacing_mm
    first = read_spine(None, prepared, raw, aggregation)
    assert not first.check.study_reasons
    assert all(first.check.status[n] == ASSESSED for n in NAMES)
    assert any("Part of C6 had been labelled C5 or C7" in w for w in first.clean.warnings)
    assert misnamed_levels(first.clean.labels, truth, list(range(1, 8))) == []
    rows = compare_levels(first.clean.labels, truth, step, dict(first.check.status))
    assert not any(r["confident_wrong_level"] for r in rows)
    assert second_reading_lean(first.check, first.clean.labels, step, px) is None
