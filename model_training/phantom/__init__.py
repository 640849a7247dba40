"""Synthetic cervical-spine CT phantom with vertebra labels and fracture ground truth.

``generate_study(seed, config)`` makes one study in memory; ``write_rsna_dataset`` writes many
in the RSNA 2022 layout (DICOM series, NIfTI segmentations, CSVs). Not for diagnostic use.
"""

from .config import Confounders, FractureSpec, PhantomConfig
from .study import PhantomStudy, generate_study

__all__ = [
    "Confounders",
    "FractureSpec",
    "PhantomConfig",
    "PhantomStudy",
    "generate_study",
    "write_rsna_dataset",
]


def __getattr__(name: str):
    if name == "write_rsna_dataset":
        from .rsna import write_rsna_dataset

        return write_rsna_dataset
    raise AttributeError(name)
