"""Reusable test-data factories (synthetic DICOM series and friends)."""
