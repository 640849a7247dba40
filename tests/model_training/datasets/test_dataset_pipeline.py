"""make_dataset: shapes, dtypes, bounded epochs, fresh draws per epoch, eval iterator."""

from __future__ import annotations

import numpy as np
from rsna_fixture import TINY_CFG

from cspine_desktop.imaging.preprocess import model_input
from model_training.datasets import iter_eval_studies, make_dataset, steps_per_epoch


def test_batches_have_the_model_contract_shapes_and_dtypes(cached_four):
    ds = make_dataset(
        cached_four, batch_size=4, slices_per_study=3, augment=True, oversample=0.3, seed=1
    )
    batches = list(ds)
    assert len(batches) == steps_per_epoch(cached_four, 4, 3) == 3
    x, y = batches[0]
    s, c = TINY_CFG.input_size, TINY_CFG.n_channels
    assert x.shape == (4, s, s, c) and x.dtype.name == "float32"
    assert set(y) == {"vertebrae", "fracture_map", "fracture_cls"}
    assert y["vertebrae"].shape == (4, s, s) and y["vertebrae"].dtype.name == "int32"
    assert y["fracture_map"].shape == (4, s, s, 1) and y["fracture_map"].dtype.name == "float32"
    assert y["fracture_cls"].shape == (4, 7) and y["fracture_cls"].dtype.name == "float32"
    xs = np.concatenate([b[0].numpy() for b in batches])
    assert xs.min() >= 0.0 and xs.max() <= 1.0
    labels = np.concatenate([b[1]["vertebrae"].numpy() for b in batches])
    assert set(np.unique(labels)) <= set(range(8)) and labels.max() > 0


def test_unaugmented_sample_equals_model_input_of_the_cached_study(cached_four):
    ds = make_dataset(
        cached_four[:1], batch_size=1, slices_per_study=4, augment=False, oversample=0.0, seed=3
    )
    prepared = cached_four[0].prepared(in_memory=True)
    full = model_input(prepared)
    labels = np.asarray(cached_four[0].labels())
    for x, y in ds:
        x = x.numpy()[0]
        match = [z for z in range(len(full)) if np.allclose(full[z], x, atol=1e-6)]
        assert match, "sample is not a model_input slice of its study"
        assert any(np.array_equal(labels[z], y["vertebrae"].numpy()[0]) for z in match)


def test_each_iteration_draws_a_new_epoch_deterministically(cached_four):
    def slices(ds):
        return [b[0].numpy() for b in ds]

    a = make_dataset(cached_four, 4, 4, augment=False, oversample=0.0, seed=7)
    b = make_dataset(cached_four, 4, 4, augment=False, oversample=0.0, seed=7)
    first_a, first_b = slices(a), slices(b)
    assert all(np.array_equal(p, q) for p, q in zip(first_a, first_b))
    second_a = slices(a)
    assert not all(np.array_equal(p, q) for p, q in zip(first_a, second_a))


def test_eval_iterator_yields_whole_studies_with_truth(cached_four):
    studies = list(iter_eval_studies(cached_four, uids={"1.1", "1.3"}))
    assert [s.study_uid for s in studies] == ["1.1", "1.3"]
    for s in studies:
        assert s.prepared.hu.dtype == np.float32
        assert s.labels.shape == s.prepared.hu.shape
        assert s.flags.shape == (s.prepared.n_slices, 7)
        assert s.patient_overall and any(s.fractured)
        assert model_input(s.prepared).shape[0] == s.prepared.n_slices


def test_resample_false_repeats_the_same_slices_every_epoch(cached_four):
    ds = make_dataset(cached_four, 4, 3, augment=False, oversample=0.0, seed=2, resample=False)
    first = [b[0].numpy() for b in ds]
    second = [b[0].numpy() for b in ds]
    assert all(np.array_equal(p, q) for p, q in zip(first, second))


def test_oversampled_epoch_holds_fracture_slices_in_the_requested_share(cached_four):
    ds = make_dataset(cached_four, 8, 20, augment=False, oversample=0.5, seed=4)
    flags = np.concatenate([y["fracture_cls"].numpy() for _, y in ds])
    assert len(flags) == 80
    assert (flags.max(axis=1) > 0).mean() >= 0.5


def test_augmented_batches_keep_bone_under_its_vertebra_labels(cached_four):
    """The fixture's vertebrae are 700 HU blocks (bone window ≈ 0.67) in 40 HU tissue
    (≈ 0.30): after augmentation, the labelled interiors must still be bright in x."""
    import cv2

    ds = make_dataset(cached_four, 8, 16, augment=True, oversample=0.0, seed=5)
    inside, outside = [], []
    centre = next(n for n, (w, o) in enumerate(TINY_CFG.channels) if w == "bone" and o == 0)
    for x, y in ds:
        for img, lab in zip(x.numpy()[..., centre], y["vertebrae"].numpy()):
            core = cv2.erode((lab > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            ring = (cv2.dilate((lab > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0) & (
                img > 0.1
            )
            inside.append(img[core])
            outside.append(img[ring])
    inside, outside = np.concatenate(inside), np.concatenate(outside)
    assert inside.size > 100
    assert (inside > 0.5).mean() > 0.9
    assert (outside > 0.5).mean() < 0.05


def test_fracture_cls_targets_score_only_the_vertebrae_the_slice_shows(cached_four):
    from model_training.datasets.targets import IGNORE, min_pixels

    ds = make_dataset(cached_four, 4, 6, augment=True, oversample=0.5, seed=5)
    min_px = min_pixels(TINY_CFG.pixel_spacing_mm)
    seen_ignored = seen_scored = 0
    for _x, y in ds:
        cls, labels = y["fracture_cls"].numpy(), y["vertebrae"].numpy()
        for target, lab in zip(cls, labels):
            counts = np.bincount(lab.ravel(), minlength=8)[1:8]
            shown = counts >= min_px
            assert np.all(target[~shown] == IGNORE)
            assert set(np.unique(target[shown])) <= {0.0, 1.0}
            seen_ignored += int((~shown).sum())
            seen_scored += int(shown.sum())
    assert seen_ignored and seen_scored


def test_cls_targets_by_hand():
    from model_training.datasets.targets import IGNORE, cls_targets

    lab = np.zeros((6, 6), np.uint8)
    lab[:2, :2] = 3  # 4 px of C3
    lab[4:, 4:] = 4  # 4 px of C4
    lab[0, 5] = 5  # 1 px of C5: below the minimum
    flags = np.array([0, 0, 1, 0, 1, 0, 0], bool)
    out = cls_targets(flags, lab, min_px=2)
    assert out.tolist() == [IGNORE, IGNORE, 1.0, 0.0, IGNORE, IGNORE, IGNORE]
