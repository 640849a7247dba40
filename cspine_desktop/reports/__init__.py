"""Exports of an analysis: DICOM SEG/SR, PDF report, key images, CSV, NIfTI."""
