"""The NIfTI label map lands at the same patient positions as the source voxels."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from cspine_desktop.reports.nifti import write_label_nifti


def test_labels_and_affine_round_trip(nifti_outcome, tmp_path):
    path = write_label_nifti(nifti_outcome, tmp_path / "labels.nii.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data.transpose(2, 1, 0), nifti_outcome.labels)
    assert set(np.unique(data)) == {0, 2, 3, 4}
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    vol = nifti_outcome.volume
    for x, y, z in [(0, 0, 0), (3, 5, 7), (19, 23, 9)]:
        ras = img.affine @ [x, y, z, 1]
        lps = vol.voxel_to_lps(x, y, z)
        np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-4)


def test_an_itk_reader_sees_the_same_lps_geometry(nifti_outcome, tmp_path):
    path = write_label_nifti(nifti_outcome, tmp_path / "labels.nii.gz")
    img = sitk.ReadImage(str(path))  # ITK converts NIfTI RAS to LPS
    vol = nifti_outcome.volume
    for idx in [(0, 0, 0), (3, 5, 7), (19, 23, 9)]:
        np.testing.assert_allclose(
            img.TransformIndexToPhysicalPoint(idx), vol.voxel_to_lps(*idx), atol=1e-3
        )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), nifti_outcome.labels)
