"""Levels counted from the anatomy on phantom CTs with the skull and/or thorax in view: down
from the dens, and up from T1's first ribs.

The phantom study is resampled to the model grid exactly as the pipeline does; its true labels
are then corrupted the way a model trained on neck-only scans failed on a real head-and-neck
CT: the skull base labelled C1, everything below one level too high.
"""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.analysis.anchors import find_anchors
from cspine_desktop.analysis.levels import (
    C7_ABOVE_RIBS_MM,
    PAIR_RESPLIT_MAX_LEAN_DEG,
    _level_counts,
    _main_run,
    _proportion_faults,
    _rib_problems,
    assign_levels,
    column_lean_deg,
)
from cspine_desktop.analysis.plausibility import check_cleaned, check_spine
from cspine_desktop.analysis.postprocess import clean_labels
from cspine_desktop.imaging.preprocess import PreprocessConfig, prepare_volume, to_grid
from model_training.phantom import PhantomConfig, generate_study
from model_training.phantom.config import ASKEW_POSE
from model_training.stages.levels import misnamed_levels
from tests.factories.phantoms import c1_named_c2, c2_named_c1, like_the_real_failure

PRE = PreprocessConfig()
STEP, PX = PRE.slice_step_mm, PRE.pixel_spacing_mm


def _grid_study(
    seed: int, coverage: str, gantry_tilt_probability: float = PhantomConfig.gantry_tilt_probability
):
    cfg = PhantomConfig(
        matrix=256,
        pixel_spacing_mm=(0.6, 0.75),
        slice_spacing_mm=(1.0, 2.0),
        head_neck_probability=float(coverage == "head_neck"),
        trauma_probability=float(coverage == "trauma"),
        gantry_tilt_probability=gantry_tilt_probability,
        fov_circle_probability=0.0,
        fracture_prevalence=0.0,
    )
    st = generate_study(seed, cfg)
    prep = prepare_volume(st.to_volume(), PRE)
    return st, prep.hu, to_grid(st.in_volume_order(st.labels), prep)


def _plane_levels(labels: np.ndarray) -> np.ndarray:
    flat = labels.reshape(labels.shape[0], -1)
    counts = np.stack([(flat == v).sum(axis=1) for v in range(1, 8)], axis=1)
    return np.where(counts.sum(axis=1) >= 10, counts.argmax(axis=1) + 1, 0)


def _tops(plane_level: np.ndarray) -> dict[int, int]:
    return {
        k: int(np.nonzero(plane_level == k)[0][0]) for k in range(1, 8) if (plane_level == k).any()
    }


@pytest.fixture(scope="module")
def studies():
    return {
        (cov, seed): _grid_study(seed, cov)
        for cov, seed in (("head_neck", 1), ("head_neck", 5), ("trauma", 4), ("neck", 2))
    }


def test_dens_tip_is_found_at_the_top_of_c2(studies):
    for (cov, seed), (_st, hu, lab) in studies.items():
        a = find_anchors(hu, lab, STEP, PX)
        c2_top = int(np.nonzero((lab == 2).any(axis=(1, 2)))[0][0])
        assert a.dens_tip is not None, (cov, seed)
        assert abs(a.dens_tip - c2_top) <= 2, (cov, seed, a.dens_tip, c2_top)
        # the skull-base labels of the failure do not move it
        b = find_anchors(hu, like_the_real_failure(lab, hu), STEP, PX)
        assert b.dens_tip is not None and abs(b.dens_tip - a.dens_tip) <= 1


@pytest.mark.parametrize("seed", [777010, 777025, 777043, 95000040])
def test_a_few_labels_at_the_top_of_the_scan_do_not_hide_the_dens(seed):
    """Stage 1 put a few pixels on the top planes of head-and-neck and trauma phantoms (the
    generator's default mix, the demo model's grid), far above the spine. The dens was then
    looked for within 70 mm of those pixels, missed, and the levels were not counted from it:
    on stage 1's labels of 114 such studies the dens was found on 38 (64 with this fix)."""
    pre = PreprocessConfig(input_size=128, pixel_spacing_mm=1.25)
    st = generate_study(seed)
    prep = prepare_volume(st.to_volume(), pre)
    lab = to_grid(st.in_volume_order(st.labels), prep)
    step, px = pre.slice_step_mm, pre.pixel_spacing_mm
    clean = assign_levels(lab, step, hu=prep.hu, pixel_mm=px)
    assert clean.anchors is not None and clean.anchors.dens_tip is not None
    top = int(np.nonzero((prep.hu > 300).any(axis=(1, 2)))[0][0])  # the skull's top
    assert (clean.anchors.dens_tip - top) * step > 80.0  # farther than the window reaches
    pred = lab.copy()
    pred[top][tuple(np.argwhere(prep.hu[top] > 300)[:6].T)] = 1  # six pixels of "C1"
    res = assign_levels(pred, step, hu=prep.hu, pixel_mm=px)
    assert res.anchors is not None and res.anchors.dens_tip == clean.anchors.dens_tip
    assert (res.labels[lab > 0] == lab[lab > 0]).mean() > 0.97


@pytest.mark.parametrize("seed", [96000135, 95000009, 777042, 95000023])
def test_a_faint_dens_is_followed_up_from_c2s_body(seed):
    """Phantom studies (the generator's default mix, the demo model's 1.25 mm grid) whose dens
    is faint: 2.8 mm slices, a dens split off its body at the threshold, a hollow osteoporotic
    dens. The column of bodies then started at C2's body, 8–14 mm below the dens tip, and the
    count from it moved every level by one (92 % and 87 % of the model's pixels relabelled
    on 96000135 and 95000009, whose own labels were 98 % right)."""
    pre = PreprocessConfig(input_size=128, pixel_spacing_mm=1.25)
    st = generate_study(seed)
    prep = prepare_volume(st.to_volume(), pre)
    lab = to_grid(st.in_volume_order(st.labels), prep)
    a = find_anchors(prep.hu, lab, pre.slice_step_mm, pre.pixel_spacing_mm)
    c2_top = int(np.nonzero((lab == 2).reshape(lab.shape[0], -1).sum(axis=1) >= 3)[0][0])
    assert a.dens_tip is not None
    assert abs(a.dens_tip - c2_top) <= 2, (a.dens_tip, c2_top)


@pytest.mark.parametrize("seed", [777034, 95000041, 96000131])
def test_an_arch_touching_the_dens_still_marks_c2(seed):
    """Head-and-neck, neck and trauma phantoms whose C1 anterior arch touches the dens in the
    midline sagittal plane (one bone component at every threshold): no separate arch was in
    front of the column's top, so no dens was found, and the levels were not counted from it.
    On the true labels of 280 unseen phantom studies the dens was found on 197 before, 229
    with the touching arch recognised, none of them more than 2 planes off."""
    hu, lab = _demo_grid_study(seed)
    a = find_anchors(hu, lab, STEP, 1.25)
    c2_top = int(np.nonzero((lab == 2).any(axis=(1, 2)))[0][0])
    assert a.dens_tip is not None
    assert abs(a.dens_tip - c2_top) <= 1, (a.dens_tip, c2_top)


@pytest.mark.parametrize("seed", [96000194, 97200013])
def test_a_scan_starting_at_c3_shows_no_dens(seed):
    """The same scans cut to start at C3's top: a lower body's top can pass the touching-arch
    test (a thin run in front, a narrow gap, bone behind: as on these two), but the column
    below it is too short for C2 and C3–C7 (``FUSED_ARCH_MIN_COLUMN_MM``): no dens is found,
    so nothing is counted from a wrong one."""
    hu, lab = _demo_grid_study(seed)
    c3 = int(np.nonzero((lab == 3).any(axis=(1, 2)))[0][0])
    assert find_anchors(hu[c3:], lab[c3:], STEP, 1.25).dens_tip is None


def test_labels_scattered_on_the_skull_far_above_the_spine_do_not_move_the_levels(studies):
    """Right labels, plus "C7" scattered on the skull (a fifth of C7's pixels) with 30 mm of
    unlabelled planes between it and C1 — as stage 1 did on a trauma phantom (96000169): those
    planes are not the spine, so they neither stretch the count nor make C7 look spread over
    several vertebrae. Before, the count put C1 on the skull and half the labels moved."""
    for (cov, seed), (_st, hu, lab) in studies.items():
        if cov == "neck":
            continue
        z1 = int(np.nonzero(lab.any(axis=(1, 2)))[0][0])
        top = z1 - round(30.0 / STEP)
        assert top >= 8, (cov, seed)
        pred = lab.copy()
        _, yy, xx = np.nonzero(lab)
        cy, cx = int(np.median(yy)), int(np.median(xx))
        stray = np.zeros_like(lab, dtype=bool)
        stray[top - 8 : top + 1, cy - 60 : cy + 60, cx - 60 : cx + 60] = True
        stray &= hu > 300
        zz, sy, sx = np.nonzero(stray)
        keep = np.random.default_rng(seed).permutation(zz.size)[: int((lab == 7).sum()) // 4]
        assert keep.size > 0.2 * (lab == 7).sum(), (cov, seed)
        pred[zz[keep], sy[keep], sx[keep]] = 7
        # no dens found to clear the skull from (as on 96000169): the labels alone decide
        res = assign_levels(pred, STEP)
        assert res.relabelled_fraction < 0.05, (cov, seed, res.relabelled_fraction)
        same = (res.labels[lab > 0] == lab[lab > 0]).mean()
        assert same > 0.97, (cov, seed, same)
        # the strays themselves go with the cleanup (each level's largest part)
        assert clean_labels(pred, slice_step_mm=STEP).labels[: top + 1].max() == 0


def test_a_substantial_part_far_from_the_rest_stays_in_the_count():
    """Only a scatter is left out: on the real chest CT, stage 1's labels on the vertebrae at the
    top of the scan (a fifth of all its labels) lie 30 mm above labels scattered through the
    thorax; they stay for the checks to judge (indeterminate there) rather than being dropped
    for the larger scatter."""
    counts = np.zeros((100, 7))
    counts[0:13, 6] = 300  # 13 planes of "C7" at the top
    counts[40:100, :] = 40  # labels scattered lower down, more of them in all
    planes = np.nonzero(counts.sum(axis=1) >= 10)[0]
    assert _main_run(planes, counts, 2.0)[0] == 0
    counts[0:13, 6] = 10  # a scatter as far away: left out
    assert _main_run(np.nonzero(counts.sum(axis=1) >= 10)[0], counts, 2.0)[0] == 40


def _count_and_check(pred: np.ndarray, hu: np.ndarray, px: float = PX):
    """(clean labels, checks) of a predicted label map, as an analysis runs them."""
    clean = clean_labels(pred, slice_step_mm=STEP, hu=hu, pixel_mm=px)
    return clean, check_cleaned(clean, (STEP, px, px), hu)


def _demo_grid_study(seed: int, config: PhantomConfig | None = None):
    """(HU, true labels) of one phantom study on the demo model's grid (1.25 mm pixels)."""
    pre = PreprocessConfig(input_size=128, pixel_spacing_mm=1.25)
    st = generate_study(seed, config)
    prep = prepare_volume(st.to_volume(), pre)
    return prep.hu, to_grid(st.in_volume_order(st.labels), prep)


def _named_and_true_checks(named: np.ndarray, truth: np.ndarray, hu: np.ndarray):
    """(checks of labels named one level off, checks of the true labels) of one study on the
    demo model's grid."""
    return _count_and_check(named, hu, 1.25)[1], _count_and_check(truth, hu, 1.25)[1]


def test_a_count_the_ct_confirms_at_every_boundary_is_trusted_however_much_it_relabelled(studies):
    """The real failure counted again from the dens relabels most pixels. Where the dens, the
    first ribs (C7 just above them) and the top of each body from C3 to C7 agree with the
    count, the relabelled share no longer makes the study indeterminate (only C1 and C2, split
    plane by plane, are left to the reader), and every level lies at its true vertebra;
    elsewhere it still does. With the ribs cut off the scan the count is
    anchored at one end only and is not confirmed."""
    confirmed = 0
    for (cov, seed), (_st, hu, lab) in studies.items():
        pred = like_the_real_failure(lab, hu)
        clean, check = _count_and_check(pred, hu)
        assert clean.relabelled_fraction > 0.5, (cov, seed)
        relabel_reason = any("had to relabel" in r for r in check.study_reasons)
        if not clean.levels_confirmed:
            assert relabel_reason, (cov, seed)
            continue
        confirmed += 1
        assert check.study_reasons == (), (cov, seed)
        assert [check.status[f"C{k}"] for k in range(3, 8)] == ["assessed"] * 5, (cov, seed)
        assert any("agree with the levels as counted" in w for w in clean.warnings)
        for k in range(1, 8):
            if check.status[f"C{k}"] == "assessed":
                named = clean.labels[(lab == k) & (clean.labels > 0)]
                assert (named == k).mean() > 0.8, (cov, seed, k)
        ribs = assign_levels(pred, STEP, hu=hu, pixel_mm=PX).anchors.rib_top
        cut = assign_levels(pred[:ribs], STEP, hu=hu[:ribs], pixel_mm=PX)
        assert cut.anchors.rib_top is None and not cut.confirmed, (cov, seed)
    assert confirmed >= 1


def _c1_named_c2_failures() -> dict:
    """Phantom studies (the default mix) on which such labels had left levels assessed one
    level off: no dens found and no C1 (95000031), heavy relabelling that left C2 its body only
    (97100014), and a count the anchors confirmed with C2 so squeezed (97100062)."""
    out = {}
    for seed in (95000031, 97100014, 97100062):
        st = generate_study(seed)
        prep = prepare_volume(st.to_volume(), PRE)
        out[("default", seed)] = (st, prep.hu, to_grid(st.in_volume_order(st.labels), prep))
    return out


def test_c1_labelled_c2_leaves_no_level_assessed_under_another_name(studies):
    """C1 labelled C2 and each level below named one too high, nothing labelled above C1 (the
    true C7 lost, or merged into C7): the count from the dens then keeps or squeezes the wrong
    names, but a "C2" that is C1's ring, or C2 left without its dens, says so; and with C2
    labelled C1 (named one too low, the true C1 lost) a "C1" as narrow as a C2, or (the true
    C1 labelled C1 with it) a "C1" much larger than its "C2". No level is assessed with its
    vertebra mostly under another name."""
    for (cov, seed), (_st, hu, lab) in {**studies, **_c1_named_c2_failures()}.items():
        for shifted in (
            c1_named_c2(lab, "lost"),
            c1_named_c2(lab, "merged"),
            c2_named_c1(lab),
            c2_named_c1(lab, "merged"),
        ):
            clean, check = _count_and_check(shifted, hu)
            for k in range(1, 8):
                if check.status[f"C{k}"] == "assessed":
                    named = clean.labels[(lab == k) & (clean.labels > 0)]
                    assert (named == k).mean() >= 0.7, (cov, seed, k)


@pytest.mark.parametrize(
    ("seed", "sign"),
    [
        (95000008, "C1 holds 2.4 times the volume of C2"),
        (97100025, "The level assignment had to relabel 84% of the vertebra pixels"),
    ],
)
def test_c1_and_c2_labelled_c1_together_leave_no_level_assessed(seed, sign):
    """C1 and C2 labelled C1 together and each level below named one too low (the true C7 left
    unlabelled), on the demo model's grid (1.25 mm pixels). On phantom 95000008 no count splits
    them again, every size fits its wrong name, and C2–C6 were assessed each under its upper
    neighbour's name: a C1 much larger than its C2 says so. On 97100025 the count from the dens
    put C1 and C2 back but gave C2 the true C3 as well, and C3–C6 were assessed one level
    off (no C7 though the images go on below "C6" said so); with C2's typical height measured
    (22 mm, ``LEVEL_TYPICAL_MM``) the count left C2 24 mm, shorter than a whole C2 after a
    heavy recount, which said so. Since the recount keeps the arch of the vertebra above with
    it however the model named it, C2 keeps its spinous process (34 mm), the count relabels
    84 %, and the CT does not confirm it: more than a count may relabel. The true labels stay
    assessed."""
    hu, lab = _demo_grid_study(seed)
    off, true = _named_and_true_checks(c2_named_c1(lab, "merged"), lab, hu)
    assert any(r.startswith(sign) for r in off.study_reasons), off.study_reasons
    assert "assessed" not in off.status.values()
    assert true.study_reasons == () and set(true.status.values()) == {"assessed"}


@pytest.mark.parametrize(
    ("seed", "naming", "sign"),
    [
        (96000123, "skull base C1", "C1 holds 2.1 times the volume of C2"),
        (96000120, "C1 named C2", "C2 is a ring 59 mm wide around a hole of 544"),
        (98000076, "C2 named C1", "C1 is larger than a C1 can be"),
    ],
)
def test_a_count_one_level_off_on_a_neck_posed_askew_is_caught(seed, naming, sign):
    """The namings one level off on necks posed beyond the phantom's range (``ASKEW_POSE``):
    on 96000123 the skull base labelled C1 is cut by the top of the scan, and a cut C1 had been
    left out of the comparison with C2; on 96000120 C1's ring, turned and nodded, measures 59 mm
    across where the limit had been 60; on 98000076 (C2 labelled C1, the true C1 lost) only
    the height of the "C1", dens and body counted plane by plane (42 mm), tells it is a C2: held
    to its planes of at least a tenth of its largest it is 30 mm, a C1's, so C1 and C2 are
    measured on every plane.
    Every level below was assessed one level off."""
    hu, lab = _demo_grid_study(seed, PhantomConfig(**ASKEW_POSE))
    named = {
        "skull base C1": lambda: like_the_real_failure(lab, hu),
        "C1 named C2": lambda: c1_named_c2(lab, "merged"),
        "C2 named C1": lambda: c2_named_c1(lab),
    }[naming]()
    off, true = _named_and_true_checks(named, lab, hu)
    assert any(r.startswith(sign) for r in off.study_reasons), off.study_reasons
    assert "assessed" not in off.status.values()
    assert true.study_reasons == () and set(true.status.values()) == {"assessed"}


def test_a_count_from_the_dens_on_a_neck_posed_askew_puts_c3_to_c7_right():
    """97200035 posed askew, the skull base labelled C1 and every level below one too high: the
    count from the dens gave C2 the body of C3 too while C2's typical height was 30 mm, every
    boundary below on a body's top one body low, and the CT "confirmed" it. With C2's typical
    height measured on the true labels (20–24 mm, ``LEVEL_TYPICAL_MM``) the count puts C3–C7
    where they are: each assessed one holds at least 70 % of its vertebra under its own name,
    and C1 and C2, split plane by plane after a heavy recount, are left to the reader."""
    hu, lab = _demo_grid_study(97200035, PhantomConfig(**ASKEW_POSE))
    named = like_the_real_failure(lab, hu)
    clean, off = _count_and_check(named, hu, 1.25)
    assessed = [k for k in range(1, 8) if off.status[f"C{k}"] == "assessed"]
    assert assessed == [3, 4, 5, 6, 7], off.status
    for k in assessed:
        named_k = clean.labels[(lab == k) & (clean.labels > 0)]
        assert (named_k == k).mean() >= 0.7, k


@pytest.mark.parametrize(
    ("seed", "pose", "sign"),
    [
        (98000072, {}, "The level assignment relabelled 84% of the vertebra pixels and left C2 24"),
        (98000081, ASKEW_POSE, "times the mean volume of C4 and C5 (C7 is at most"),
    ],
)
def test_two_vertebrae_named_as_one_at_the_ends_are_caught(seed, pose, sign):
    """Held-out phantoms whose true labels, named one level off, left levels assessed under a
    neighbour's name: on 98000072 (C2 labelled C1 with C1) the count gave C2 back the dens and
    C3's body with it, C3–C5 one level low (C2 then held 2.1 times C3's volume; with C2's
    typical height measured, 22 mm, it is left 24 mm, shorter than a whole C2); on 98000081,
    posed askew and named as the real failure (skull base C1), "C7" held C6 and C7, C5 and C6
    one level high (C7 2.1 times the mean of C4 and C5; 2.3 once C4–C6 are split again at the
    endplates, and C2 then too large). The true labels stay assessed."""
    hu, lab = _demo_grid_study(seed, PhantomConfig(**pose))
    named = c2_named_c1(lab, "merged") if not pose else like_the_real_failure(lab, hu)
    off, true = _named_and_true_checks(named, lab, hu)
    assert any(sign in r for r in off.study_reasons), off.study_reasons
    assert "assessed" not in off.status.values()
    assert true.study_reasons == () and set(true.status.values()) == {"assessed"}


def test_after_a_heavy_recount_no_level_is_split_again_at_the_endplates():
    """Phantom 88000004 (fifth unseen set), its true labels named as the real head-and-neck CT
    failure (skull base C1, every level one too high), is recounted from the dens with 90 % of
    its pixels relabelled. Split again at the endplates as well, C3 was assessed with 69 % of its
    vertebra under its name; a heavy recount moves every boundary by a level, so the squeeze it
    leaves is not the model's, and the endplates are not used then: no level is assessed under
    another's name."""
    hu, lab = _demo_grid_study(88000004)
    clean, off = _count_and_check(like_the_real_failure(lab, hu), hu, 1.25)
    assert clean.relabelled_fraction > 0.8
    assessed = [k for k in range(1, 8) if off.status[f"C{k}"] == "assessed"]
    assert assessed and misnamed_levels(clean.labels, lab, assessed) == []
    assert not any("had been labelled" in w for w in clean.warnings)


def test_after_a_heavy_recount_no_level_below_one_the_wrong_size_is_assessed():
    """Phantom 87000024 (sixth unseen set), its true labels named one too high with nothing
    above C1 and the true C7 unlabelled, is recounted from the dens (confirmed by the CT): the
    count fits C1–C7 into the planes of the true C1–C6 and puts C1–C4 right; C6 and C7 lay on
    the true C5 and C6 and once passed every check of their own (C6 with 3 % of its vertebra
    under its name, below a C5 left 8 mm tall). Where the count may have gone wrong — a level
    too short for its name, or much smaller than its neighbours (C5 and C6 now) — the levels
    below are left to the reader."""
    hu, lab = _demo_grid_study(87000024)
    clean, off = _count_and_check(c1_named_c2(lab, "lost"), hu, 1.25)
    assert clean.relabelled_fraction > 0.7 and clean.levels_confirmed
    assert [off.status[f"C{k}"] for k in (5, 6, 7)] == ["indeterminate"] * 3
    assessed = [k for k in range(1, 8) if off.status[f"C{k}"] == "assessed"]
    assert misnamed_levels(clean.labels, lab, assessed) == []


def test_a_recount_keeps_the_arch_of_the_vertebra_above_with_it():
    """Phantom 85000093 (seventh unseen set), its true labels named one too low with C1 and C2
    labelled C1 together, is recounted from the dens (confirmed by the CT). A plane's smaller
    bone piece that the model labelled as the vertebra above (a spinous process or inferior
    articular process reaching down beside the next body) keeps that vertebra's level; the
    count compared it with the model's names as if they were right, so under a renaming by one
    C3's arch in C4's planes was renamed C4, and C3 was assessed with under 70 % of itself.
    Every level assessed now holds at least three quarters of its vertebra."""
    hu, lab = _demo_grid_study(85000093)
    clean, check = _count_and_check(c2_named_c1(lab, "merged"), hu, 1.25)
    assert clean.levels_confirmed and clean.relabelled_fraction > 0.7
    assessed = [k for k in range(1, 8) if check.status[f"C{k}"] == "assessed"]
    assert assessed == [3, 4, 5, 6, 7]
    assert misnamed_levels(clean.labels, lab, assessed, min_own=0.75) == []


def test_levels_counted_from_the_dens_with_skull_or_thorax_in_view(studies):
    near_new = near_old = within2 = total = 0
    for (cov, seed), (_st, hu, lab) in studies.items():
        truth = _tops(_plane_levels(lab))
        pred = like_the_real_failure(lab, hu)
        new = assign_levels(pred, STEP, hu=hu, pixel_mm=PX)
        old = assign_levels(pred, STEP)
        got, got_old = _tops(new.plane_level), _tops(old.plane_level)
        for k, t in truth.items():
            total += 1
            near_new += k in got and abs(got[k] - t) <= 1
            within2 += k in got and abs(got[k] - t) <= 2
            near_old += k in got_old and abs(got_old[k] - t) <= 1
        # nothing stays labelled on the skull base above C1's ring
        z1 = int(np.nonzero((lab == 1).any(axis=(1, 2)))[0][0])
        assert not new.labels[: max(0, z1 - 3)].any(), (cov, seed)
        assert new.relabelled_fraction > 0.5  # the big relabelling is reported
    assert near_new / total >= 0.6, (near_new, total)
    assert within2 / total >= 0.85, (within2, total)
    assert near_old / total <= 0.3, (near_old, total)


def test_right_labels_with_the_skull_in_view_stay_right(studies):
    for (cov, seed), (_st, hu, lab) in studies.items():
        res = assign_levels(lab, STEP, hu=hu, pixel_mm=PX)
        assert res.anchors is not None and res.anchors.dens_tip is not None
        assert res.relabelled_fraction < 0.12, (cov, seed, res.relabelled_fraction)
        truth, got = _tops(_plane_levels(lab)), _tops(res.plane_level)
        assert sum(abs(got[k] - t) <= 1 for k, t in truth.items() if k in got) >= 6


def test_without_a_dens_in_view_the_votes_decide_as_before():
    """A scan starting at C3 (no dens to find): the anchored count must not kick in."""
    _, hu, lab = _grid_study(2, "neck")
    c3 = int(np.nonzero((lab == 3).any(axis=(1, 2)))[0][0])
    cut_lab, cut_hu = lab[c3 + 1 :], hu[c3 + 1 :]
    res = assign_levels(cut_lab, STEP, hu=cut_hu, pixel_mm=PX)
    assert (res.labels == cut_lab).mean() > 0.99


def _dice(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return 2.0 * ((a == k) & (b == k)).sum() / max(1, (a == k).sum() + (b == k).sum())


def test_right_labels_with_stray_c1_low_in_the_neck_are_kept_voxel_by_voxel(studies):
    """The model labels every vertebra right but also calls a piece of bone far below "C1"
    (a shoulder, as the demo model does on the phantom): the levels are kept as predicted —
    C1's ring and C2's dens share planes, which a one-level-per-plane recount would destroy —
    and only the stray "C1" goes."""
    for (cov, seed), (_st, hu, lab) in studies.items():
        pred = lab.copy()
        z7 = np.nonzero((lab == 7).any(axis=(1, 2)))[0]
        _, yy, xx = np.nonzero(lab == 7)
        cy, cx = int(np.median(yy)), int(np.median(xx))
        stray = np.zeros_like(pred, dtype=bool)
        stray[z7[-4:], cy - 6 : cy + 6, cx + 25 : cx + 45] = True  # beside C7, "C1"
        pred[stray & (pred == 0)] = 1
        res = assign_levels(pred, STEP, hu=hu, pixel_mm=PX)
        assert not (res.labels[stray & (lab == 0)] == 1).any(), (cov, seed)
        for k in range(1, 8):
            if (lab == k).sum() > 200:
                assert _dice(res.labels, lab, k) > 0.97, (cov, seed, k)


# ------------------------------------------------------------------ the thorax: T1's first ribs


def _c7_median(labels: np.ndarray) -> float:
    c = (labels == 7).reshape(labels.shape[0], -1).sum(axis=1)
    return float(np.searchsorted(np.cumsum(c), c.sum() / 2.0))


def test_the_first_ribs_are_found_just_below_c7(studies):
    """Every study of the fixture shows T1 with its ribs: the thorax's top is found just below
    C7 (C7's median plane 0–24 mm above it), and not at all once the scan stops at C7."""
    lo, hi = C7_ABOVE_RIBS_MM
    for (cov, seed), (_st, hu, lab) in studies.items():
        a = find_anchors(hu, lab, STEP, PX)
        assert a.rib_top is not None, (cov, seed)
        above = (a.rib_top - _c7_median(lab)) * STEP
        assert lo <= above <= hi, (cov, seed, above)
        cut = int(_c7_median(lab))  # the scan ends in the middle of C7
        b = find_anchors(hu[:cut], lab[:cut], STEP, PX)
        assert b.rib_top is None, (cov, seed, b.rib_top)


def _one_level_high_from_c3(lab: np.ndarray, hu: np.ndarray):
    """A scan starting at C3's top (no dens to count from) whose labels are all one level too
    high: C3 labelled C2, …, C7 labelled C6, nothing labelled C7."""
    c3 = int(np.nonzero((lab == 3).any(axis=(1, 2)))[0][0])
    cut_lab, cut_hu = lab[c3:], hu[c3:]
    pred = cut_lab.copy()
    for k in range(3, 8):
        pred[cut_lab == k] = k - 1
    return cut_lab, cut_hu, pred


def test_without_a_dens_the_levels_are_counted_up_from_the_ribs(studies):
    near = near_votes = total = 0
    for (cov, seed), (_st, hu, lab) in studies.items():
        truth_lab, cut_hu, pred = _one_level_high_from_c3(lab, hu)
        new = assign_levels(pred, STEP, hu=cut_hu, pixel_mm=PX)
        votes = assign_levels(pred, STEP)
        assert new.anchors is not None and new.anchors.dens_tip is None, (cov, seed)
        assert new.anchors.rib_top is not None, (cov, seed)
        assert new.problems == (), (cov, seed, new.problems)
        truth = _tops(_plane_levels(truth_lab))
        got, got_votes = _tops(new.plane_level), _tops(votes.plane_level)
        for k in range(4, 8):  # C3's top is where the scan starts
            total += 1
            near += k in got and abs(got[k] - truth[k]) <= 1
            near_votes += k in got_votes and abs(got_votes[k] - truth[k]) <= 1
        assert _dice(new.labels, truth_lab, 7) > 0.8, (cov, seed)
    assert near / total >= 0.85, (near, total)
    assert near_votes / total <= 0.3, (near_votes, total)


def test_c7_found_on_t1_is_a_problem_for_the_plausibility_checks():
    """A C7 whose centre lies below the first ribs is reported in words, and the checks turn
    it into a study reason: no verdict."""
    lab = np.zeros((60, 32, 32), np.uint8)
    lab[10:20, 8:24, 8:24] = 6
    lab[20:40, 8:24, 8:24] = 7  # half its pixels by plane 29
    problems = _rib_problems(lab, rib_top=24, step_mm=2.0, min_voxels=10)
    assert len(problems) == 1 and "may be T1" in problems[0] and "10 mm below" in problems[0]
    assert _rib_problems(lab, rib_top=34, step_mm=2.0, min_voxels=10) == ()
    assert "above the first ribs" in _rib_problems(lab, rib_top=50, step_mm=2.0, min_voxels=10)[0]
    no_c7 = np.where(lab == 7, 0, lab).astype(np.uint8)
    assert "no C7" in _rib_problems(no_c7, rib_top=34, step_mm=2.0, min_voxels=10)[0]
    check = check_spine(lab, (2.0, 1.0, 1.0), level_problems=problems)
    assert problems[0] in check.study_reasons


def _taken_by(lab: np.ndarray, level: int, into: int, share: float = 0.6) -> np.ndarray:
    """``share`` of ``level``'s planes (three fifths by default), on the side of its neighbour
    ``into``, labelled ``into``: the demo model's commonest level error on phantom studies (its
    C3 running on into C4)."""
    planes = np.nonzero((lab == level).any(axis=(1, 2)))[0]
    n = round(len(planes) * share)
    taken = planes[:n] if into < level else planes[len(planes) - n :]
    out = lab.copy()
    part = out[taken]
    part[part == level] = into
    out[taken] = part
    return out


@pytest.mark.parametrize(
    ("key", "level", "into"),
    [
        (("head_neck", 1), 4, 3),
        (("head_neck", 5), 5, 6),
        (("trauma", 4), 6, 7),
        (("neck", 2), 5, 4),
    ],
)
def test_a_level_its_neighbour_took_part_of_is_split_again_at_the_bodies(studies, key, level, into):
    """The three levels are split again where the CT shows the vertebral bodies: the squeezed
    level gets its planes back, all three are assessed, and the result says what was done.
    Without the CT the labels stay as they are (the checks then leave the three to the
    reader). A boundary on an endplate's plane may lie one 2 mm plane off the body's top: with
    the endplates as candidates the four give Dice 0.93, 0.88, 0.90, 0.91; with the bodies'
    tops alone 0.93, 0.94, 0.96, 0.93."""
    _st, hu, lab = studies[key]
    taken = _taken_by(lab, level, into)
    assert _dice(taken, lab, level) < 0.7
    res = assign_levels(taken, STEP, hu=hu, pixel_mm=PX)
    assert _dice(res.labels, lab, level) > 0.85, (key, _dice(res.labels, lab, level))
    check = check_spine(res.labels, (STEP, PX, PX), hu)
    assert all(check.status[f"C{k}"] == "assessed" for k in (level - 1, level, level + 1))
    assert any(f"Part of C{level} had been labelled" in w for w in res.warnings)
    assert res.relabelled_fraction > 0.0
    without_ct = assign_levels(taken, STEP)
    assert _dice(without_ct.labels, lab, level) < 0.7


def test_a_split_again_is_never_a_confident_wrong_level(studies):
    """Every squeeze of C4–C6 from either side, on every study: the squeezed level is either
    given back its vertebra or left indeterminate by the checks, never assessed while most of
    it carries another name."""
    fixed = 0
    for key, (_st, hu, lab) in studies.items():
        for level in (4, 5, 6):
            for into in (level - 1, level + 1):
                res = assign_levels(_taken_by(lab, level, into), STEP, hu=hu, pixel_mm=PX)
                check = check_spine(res.labels, (STEP, PX, PX), hu)
                dice = _dice(res.labels, lab, level)
                if check.status[f"C{level}"] == "assessed":
                    assert dice > 0.85, (key, level, into, dice)
                    fixed += 1
    assert fixed >= 12, fixed  # most of the 24 are given back, not just left to the reader


@pytest.mark.parametrize(
    ("key", "level", "into", "share", "fault"),
    [
        (("head_neck", 1), 4, 3, 0.4, ("unequal", 3)),
        (("head_neck", 5), 5, 6, 0.35, ("unequal", 5)),
        (("trauma", 4), 4, 5, 0.4, ("unequal", 4)),
        (("neck", 2), 4, 5, 0.35, ("unequal", 4)),
        (("head_neck", 1), 7, 6, 0.45, ("c7_under", 7)),
    ],
)
def test_two_neighbours_one_took_part_of_the_other_are_split_again_at_the_bodies(
    studies, key, level, into, share, fault
):
    """A level that lost a third to nearly half of its planes to one neighbour is not
    squeezed between both, but the two break one of the checks' proportions (one of C3–C6
    under 65 % of the other, C7 under 80 % of C4 and C5): the two are split again where the
    CT shows the bodies, get their vertebrae back, are assessed, and the result says so.
    Without the CT the labels stay as they are."""
    _st, hu, lab = studies[key]
    taken = _taken_by(lab, level, into, share)
    faults = _proportion_faults(_level_counts(taken).sum(axis=0))
    assert fault in faults and not any(f[0] == "squeezed" for f in faults), faults
    before = check_spine(taken, (STEP, PX, PX), hu)
    assert before.status[f"C{level}"] != "assessed"
    res = assign_levels(taken, STEP, hu=hu, pixel_mm=PX)
    assert _dice(res.labels, lab, level) > 0.9, (key, _dice(res.labels, lab, level))
    check = check_spine(res.labels, (STEP, PX, PX), hu)
    assert check.status[f"C{level}"] == check.status[f"C{into}"] == "assessed", check.reasons
    pair = sorted((level, into))
    assert f"Part of C{pair[0]} or C{pair[1]} had been labelled as the other" in " ".join(
        res.warnings
    )
    assert _dice(assign_levels(taken, STEP).labels, lab, level) < 0.9


def test_two_neighbours_split_again_are_never_a_confident_wrong_level(studies):
    """Every level from C3 to C7 that lost a third or nearly half of its planes to either
    neighbour, on every study, where the two then break a proportion and nothing is squeezed:
    the level is either given back its vertebra or left to the reader, never assessed while
    much of it carries another name."""
    fixed = tried = 0
    for key, (_st, hu, lab) in studies.items():
        for level in range(3, 8):
            for into in {level - 1, min(level + 1, 7)} - {level}:
                for share in (0.35, 0.45):
                    taken = _taken_by(lab, level, into, share)
                    faults = _proportion_faults(_level_counts(taken).sum(axis=0))
                    if not faults or any(f[0] == "squeezed" for f in faults):
                        continue
                    tried += 1
                    res = assign_levels(taken, STEP, hu=hu, pixel_mm=PX)
                    check = check_spine(res.labels, (STEP, PX, PX), hu)
                    if check.status[f"C{level}"] == "assessed":
                        assert _dice(res.labels, lab, level) > 0.85, (key, level, into, share)
                        fixed += 1
    assert tried >= 10 and fixed >= tried * 2 // 3, (tried, fixed)


def test_on_a_neck_leaning_against_the_slices_two_neighbours_are_left_to_the_reader():
    """On a neck leaning 15° or more against the slices one plane cuts the body of one
    vertebra and the arch of the next: :func:`column_lean_deg` reads the lean from the labels
    (the phantom's upright necks within 8°), and two neighbours are then not split again
    plane by plane, so the checks leave them to the reader."""
    st, hu, lab = _grid_study(5, "neck", gantry_tilt_probability=1.0)  # leaning 19°
    tilt = float(st.acquisition.extras["gantry_tilt_deg"])
    assert abs(tilt) >= 15.0
    lean = column_lean_deg(lab, STEP, PX)
    assert np.sign(lean) == np.sign(tilt) and abs(lean) > PAIR_RESPLIT_MAX_LEAN_DEG, (tilt, lean)
    taken = _taken_by(lab, 7, 6, 0.4)
    assert ("c7_under", 7) in _proportion_faults(_level_counts(taken).sum(axis=0))
    res = assign_levels(taken, STEP, hu=hu, pixel_mm=PX)
    assert not any("had been labelled as the other" in w for w in res.warnings)
    assert check_spine(res.labels, (STEP, PX, PX), hu).status["C7"] != "assessed"


def test_upright_necks_lean_little(studies):
    """The phantom's necks without a lean against the slices (lordosis, flexion up to 5°)."""
    for key, (_st, _hu, lab) in studies.items():
        assert abs(column_lean_deg(lab, STEP, PX)) < 8.0, key


def test_without_a_dens_the_bodies_still_split_a_squeezed_level(studies):
    """A scan starting below C3's top finds no dens to count from; the tops of the bodies
    below still tell where the levels meet."""
    _st, hu, lab = studies[("neck", 2)]
    c3 = int(np.nonzero((lab == 3).any(axis=(1, 2)))[0][0])
    cut_lab, cut_hu = lab[c3 + 1 :], hu[c3 + 1 :]
    res = assign_levels(_taken_by(cut_lab, 5, 4), STEP, hu=cut_hu, pixel_mm=PX)
    assert res.anchors is not None and res.anchors.dens_tip is None
    assert res.anchors.body_tops
    assert _dice(res.labels, cut_lab, 5) > 0.9
