"""Fresh phantom studies for the benchmarks that compare label maps study by study."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def phantom_studies(seed0: int, n: int) -> Iterator[tuple[Any, Any, np.ndarray]]:
    """(study, its volume, its true labels in the volume's order) for seeds ``seed0`` …
    ``seed0 + n − 1``, the phantom's default mix."""
    from model_training.phantom import generate_study

    for seed in range(seed0, seed0 + n):
        study = generate_study(seed)
        yield study, study.to_volume(), study.in_volume_order(study.labels)
