"""NIfTI masks land on the DICOM grid by their affines, whatever their stored axis order."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from rsna_fixture import RAS_TO_LPS, make_neck, nifti_dicom_order, nifti_transposed_flipped

from model_training.datasets.masks import MaskMismatchError, mask_on_volume


@pytest.fixture
def neck():
    return make_neck(seed=4, fractured_vertebra=2)


def _save(tmp_path, img, name="m.nii"):
    path = tmp_path / name
    nib.save(img, path)
    return path


def test_mask_in_dicom_order_and_transposed_flipped_give_the_same_labels(tmp_path, neck):
    vol = neck.volume()
    a = mask_on_volume(_save(tmp_path, nifti_dicom_order(neck.labels, neck.affine), "a.nii"), vol)
    b = mask_on_volume(
        _save(tmp_path, nifti_transposed_flipped(neck.labels, neck.affine), "b.nii"), vol
    )
    assert np.array_equal(a, neck.labels)
    assert np.array_equal(b, neck.labels)


def test_ignoring_the_header_would_have_flipped_the_mask(tmp_path, neck):
    """The transposed file's raw array is not the label map: the affine is what fixes it."""
    img = nifti_transposed_flipped(neck.labels, neck.affine)
    raw = np.asarray(img.dataobj)
    assert raw.shape != neck.labels.shape or not np.array_equal(raw, neck.labels)


def test_subvoxel_offset_takes_the_general_nearest_neighbour_path(tmp_path, neck):
    shifted = neck.affine.copy()
    shifted[:3, 3] += 0.3 * np.diag(neck.affine)[:3]  # 0.3 voxel: not an exact permutation
    img = nib.Nifti1Image(np.transpose(neck.labels, (2, 1, 0)).copy(), RAS_TO_LPS @ shifted)
    out = mask_on_volume(_save(tmp_path, img), neck.volume())
    assert np.array_equal(out, neck.labels)


def test_half_resolution_mask_is_resampled_by_nearest_neighbour(tmp_path, neck):
    coarse = neck.labels[::2, ::2, ::2]
    aff = neck.affine.copy()
    aff[:3, :3] *= 2
    # coarse voxel k is centred on fine voxel 2k + 0.5: fine voxel v → coarse v // 2, no ties
    aff[:3, 3] += 0.5 * np.diag(neck.affine)[:3]
    img = nib.Nifti1Image(np.transpose(coarse, (2, 1, 0)).copy(), RAS_TO_LPS @ aff)
    out = mask_on_volume(_save(tmp_path, img), neck.volume())
    expected = np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)
    assert np.array_equal(out, expected)


def test_thoracic_labels_become_background_and_fracture_masks_binarise(tmp_path, neck):
    labels = neck.labels.copy()
    labels[:3] = 9  # T2 below the neck in RSNA numbering
    vol = neck.volume()
    out = mask_on_volume(_save(tmp_path, nifti_dicom_order(labels, neck.affine)), vol)
    assert out[:3].max() == 0 and np.array_equal(out[3:], labels[3:])
    frac = mask_on_volume(
        _save(tmp_path, nifti_dicom_order(neck.fracture * 255, neck.affine), "f.nii.gz"),
        vol,
        binary=True,
    )
    assert np.array_equal(frac, neck.fracture)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda n: nifti_dicom_order(n.labels[: len(n.labels) // 2], n.affine), "covers"),
        (lambda n: nib.Nifti1Image(np.transpose(n.labels, (2, 1, 0)).copy(), np.eye(4)), "covers"),
        (lambda n: nifti_dicom_order(n.labels.astype(np.float32) + 0.5, n.affine), "non-integer"),
        (lambda n: nifti_dicom_order(n.labels.astype(np.int16) - 3, n.affine), "negative"),
    ],
    ids=["half-the-slices", "identity-affine", "non-integer", "negative"],
)
def test_masks_that_disagree_with_their_images_are_refused_in_words(tmp_path, neck, make, message):
    with pytest.raises(MaskMismatchError, match=message):
        mask_on_volume(_save(tmp_path, make(neck)), neck.volume())


def test_unreadable_mask_is_refused_in_words(tmp_path, neck):
    path = tmp_path / "bad.nii"
    path.write_bytes(b"not a nifti at all" * 10)
    with pytest.raises(MaskMismatchError, match="cannot be read"):
        mask_on_volume(path, neck.volume())


def test_exact_permutation_path_and_general_path_agree(neck):
    from model_training.datasets.masks import (
        _resample_exact,
        _resample_general,
        _signed_permutation,
    )

    img = nifti_transposed_flipped(neck.labels, neck.affine)
    data = np.asarray(img.dataobj)
    m = np.linalg.inv(RAS_TO_LPS @ img.affine) @ neck.affine
    perm = _signed_permutation(m)
    assert perm is not None
    exact, cov_a = _resample_exact(data, perm, neck.labels.shape)
    general, cov_b = _resample_general(data, m, neck.labels.shape)
    assert np.array_equal(exact, general) and cov_a == pytest.approx(cov_b) == 1.0
