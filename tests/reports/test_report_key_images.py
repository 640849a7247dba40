"""Key images: the right slices, the physical aspect, overlays where the labels are, the
disclaimer in the margin, and the source pixels untouched."""

from __future__ import annotations

import cv2
import numpy as np
from report_fakes import COLS, N_SLICES, ROWS, SPACING, make_result

from cspine_desktop.imaging.windows import BONE, apply_window
from cspine_desktop.reports import key_images as ki
from cspine_desktop.vertebrae import by_name


def _read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_fractured_vertebrae_get_key_images_else_the_most_suspicious(nifti_outcome):
    assert ki.choose_key_vertebrae(nifti_outcome) == ["C2"]
    nifti_outcome.result = make_result("s", "s", probs={"C2": 0.05, "C3": 0.3, "C4": 0.2})
    assert ki.choose_key_vertebrae(nifti_outcome) == ["C3", "C4"]


def test_key_slice_is_the_peak_slice_else_the_heat_peak_inside_the_vertebra(nifti_outcome):
    assert ki.key_slice(nifti_outcome, "C2") == 1  # peak_slice of (0, 2)
    nifti_outcome.result = make_result("s", "s", peak=False)
    assert ki.key_slice(nifti_outcome, "C2") == 1  # heat only on slice 1
    nifti_outcome.heatmap = None
    assert ki.key_slice(nifti_outcome, "C4") == 5  # most voxels: first of the equal slices


def test_pngs_have_the_physical_aspect_and_a_margin(nifti_outcome, tmp_path):
    hu_before = nifti_outcome.volume.hu.copy()
    paths = ki.write_key_images(nifti_outcome, tmp_path, stem="study")
    assert set(paths) == {"key_image_C2", "key_image_sagittal"}
    assert paths["key_image_C2"].name == "study_key_C2.png"
    axial = _read_rgb(paths["key_image_C2"])
    sag = _read_rgb(paths["key_image_sagittal"])
    w = ki.KEY_IMAGE_WIDTH
    assert axial.shape == (
        round(w * ROWS * SPACING[1] / (COLS * SPACING[2])) + ki.MARGIN_HEIGHT,
        w,
        3,
    )
    assert sag.shape == (
        round(w * N_SLICES * SPACING[0] / (ROWS * SPACING[1])) + ki.MARGIN_HEIGHT,
        w,
        3,
    )
    np.testing.assert_array_equal(nifti_outcome.volume.hu, hu_before)  # source untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_axial_overlay_blends_the_vertebra_colour_and_the_heat_map(nifti_outcome):
    img = ki.render_axial(nifti_outcome, "C2", 1)
    px = ki.KEY_IMAGE_WIDTH / COLS  # panel pixels per source column (panel fills the width)
    py = px * SPACING[1] / SPACING[2]  # … and per source row (rows are 0.8 mm, columns 0.7)

    def at(row, col):  # panel pixel at the centre of source voxel (row, col)
        return img[int((row + 0.5) * py), int((col + 0.5) * px)].astype(float)

    grey = 255 * float(apply_window(np.array([700.0]), BONE)[0])
    c2 = np.array(by_name("C2").rgb, float)
    expected = (1 - ki.LABEL_ALPHA) * grey + ki.LABEL_ALPHA * c2
    np.testing.assert_allclose(at(14, 12), expected, atol=3)  # inside C2, no heat
    heat = at(13, 10)  # hottest voxel (0.95): pulled toward the heat scale's cyan
    assert heat[2] > expected[2] + 60 and heat[1] > expected[1] + 30 and heat[0] < expected[0]
    outside = at(2, 1)  # air, no label: plain bone-window grey
    np.testing.assert_allclose(
        outside, 255 * float(apply_window(np.array([-1000.0]), BONE)[0]), atol=1
    )
    margin = img[-ki.MARGIN_HEIGHT :]
    amber = (margin[..., 0] > 200) & (margin[..., 1] > 140) & (margin[..., 2] < 60)
    assert amber.sum() > 500  # the burned-in disclaimer


def test_sagittal_puts_the_head_up_whatever_the_slice_order(nifti_outcome, dicom_outcome):
    # nifti_outcome: slice 0 is the head; dicom_outcome (load_study): slice 0 is the feet.
    for outcome in (nifti_outcome, dicom_outcome):
        img = ki.render_sagittal(outcome)
        panel = img[: -ki.MARGIN_HEIGHT]
        c2, c4 = np.array(by_name("C2").rgb), np.array(by_name("C4").rgb)
        rows_c2 = np.nonzero((np.abs(panel.astype(int) - c2).sum(axis=2) < 10).any(axis=1))[0]
        rows_c4 = np.nonzero((np.abs(panel.astype(int) - c4).sum(axis=2) < 10).any(axis=1))[0]
        head_first = outcome is nifti_outcome
        assert rows_c2.size and rows_c4.size
        # C2 lies at low slice indices in both fixtures; it must be drawn above C4 only when
        # low slice indices are toward the head.
        assert (rows_c2.mean() < rows_c4.mean()) == head_first
