"""Imaging: any CT study in, a trustworthy volume out (no Qt, Flask or TensorFlow here)."""

from .loader import list_series, load_study, source_datasets
from .volume import SeriesInfo, Volume

__all__ = [
    "SeriesInfo",
    "Volume",
    "list_series",
    "load_study",
    "source_datasets",
]
