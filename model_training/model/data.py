"""The bridge from an RSNA-layout folder to the studies the model trains and is evaluated on.

Uses the datasets package (reader, per-study cache, patient-level split, tf.data pipeline);
this module only decides where the cache and the split file live for a run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cspine_desktop.errors import StudyNotFoundError
from cspine_desktop.imaging.preprocess import PreprocessConfig

log = logging.getLogger(__name__)


def load_studies(
    data_dir: str | Path,
    pcfg: PreprocessConfig,
    cache_dir: str | Path,
    workers: int = 2,
    max_studies: int | None = None,
) -> list[Any]:
    """Read ``data_dir`` (RSNA layout), prepare every study once into ``cache_dir`` and return
    the cached studies (``CachedStudy``), optionally only the first ``max_studies``."""
    from model_training.datasets import build_cache, read_rsna

    root = Path(data_dir)
    if not root.is_dir():
        raise StudyNotFoundError(f"training data folder {data_dir} does not exist")
    index = read_rsna(root)
    studies = list(index.studies)
    if max_studies is not None:
        studies = studies[:max_studies]
    if not studies:
        raise StudyNotFoundError(f"{data_dir} holds no readable study in the RSNA layout")

    def progress(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            log.info("prepared %d/%d studies", done, total)

    cached = build_cache(studies, pcfg, cache_dir, workers=workers, progress=progress)
    if not cached:
        raise StudyNotFoundError(f"no study in {data_dir} could be prepared (see the cache report)")
    return cached


def run_split(cached: list[Any], run_dir: Path, val_fraction: float, seed: int) -> Any:
    """The train/val split of this run: read from ``run_dir/split.json`` if it exists (so a
    resumed run and its evaluation use the same studies), otherwise made by patient and saved."""
    from model_training.datasets import load_split, save_split, split_studies

    path = run_dir / "split.json"
    if path.is_file():
        return load_split(path)
    split = split_studies(cached, test_fraction=0.0, val_fraction=val_fraction, seed=seed)
    save_split(split, path)
    log.info("split: %d train, %d validation studies", len(split.train), len(split.val))
    return split
