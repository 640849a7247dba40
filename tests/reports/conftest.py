"""Fixtures for the export tests: an outcome on a real (tiny) DICOM series, and one on NIfTI."""

from __future__ import annotations

import pytest
from factories.dicom_series import write_ct_series
from report_fakes import (
    COLS,
    N_SLICES,
    ROWS,
    SPACING,
    head_first_affine,
    make_hu,
    make_labels_and_heat,
    make_result,
)

from cspine_desktop.analysis.pipeline import AnalysisOutcome
from cspine_desktop.imaging import load_study
from cspine_desktop.imaging.volume import Volume


@pytest.fixture
def ct_series(tmp_path):
    """A synthetic CT series on disk (shuffled file names, reversed instance numbers)."""
    return write_ct_series(
        tmp_path / "ct", n_slices=N_SLICES, rows=ROWS, cols=COLS, spacing=SPACING
    )


@pytest.fixture
def dicom_outcome(ct_series) -> AnalysisOutcome:
    """An outcome whose volume ``load_study`` read from ``ct_series``."""
    volume = load_study(ct_series.folder)
    labels, heat = make_labels_and_heat(volume.hu.shape)
    result = make_result(volume.meta["StudyInstanceUID"], volume.meta["SeriesInstanceUID"])
    return AnalysisOutcome(result, volume, labels, heat)


@pytest.fixture
def nifti_outcome() -> AnalysisOutcome:
    """An outcome whose volume came from a NIfTI file: no DICOM instances to refer to."""
    labels, heat = make_labels_and_heat()
    meta = {"source_kind": "nifti", "PatientID": "", "Modality": "CT"}
    volume = Volume(hu=make_hu(), affine=head_first_affine(), spacing=SPACING, meta=meta)
    return AnalysisOutcome(make_result("nifti-study", "nifti-series"), volume, labels, heat)
