"""Training data: the RSNA 2022 layout → cached model-grid studies → tf.data batches.

Public API (everything else is internal)::

    index  = read_rsna(root, skip=KNOWN_BAD_STUDIES)        # RsnaIndex (+ index.report)
    cached = build_cache(index, PreprocessConfig(), cache_dir, workers=2)  # list[CachedStudy]
    split  = split_studies(cached, test_fraction=0.2, val_fraction=0.1, seed=0)
    save_split(split, "split.json"); split = load_split("split.json")
    train  = make_dataset(split.select(cached, "train"), batch_size=8, slices_per_study=16,
                          augment=True, oversample=0.3, seed=0)    # tf.data.Dataset
    for study in iter_eval_studies(split.select(cached, "test")):  # EvalStudy, whole volumes
        ...

* Reading (:mod:`.rsna`, :mod:`.masks`): DICOM through ``cspine_desktop.imaging.load_study``;
  NIfTI segmentations and fracture masks are placed on the DICOM grid by their affines.
* Samples (:mod:`.samples`, :mod:`.targets`): ``prepare_volume`` / ``to_grid`` of
  ``cspine_desktop.imaging.preprocess`` (the one preprocessing) → vertebra labels, fracture
  map (mask, or filled boxes), per-slice per-vertebra fracture flags.
* Cache (:mod:`.cache`): one folder per study under a key of the preprocessing config.
* Split (:mod:`.split`), augmentation (:mod:`.augment`), pipeline (:mod:`.pipeline`).
* Bad input never stops a read or an epoch: it is listed in a :class:`SkipReport` (written as
  ``report.json`` in the cache).

TensorFlow is imported only inside :func:`make_dataset`.
"""

from __future__ import annotations

from .augment import AugmentConfig, augment_slice
from .cache import CachedStudy, build_cache, cache_key, load_cache
from .masks import MaskMismatchError, mask_on_volume
from .pipeline import EvalStudy, epoch_samples, iter_eval_studies, make_dataset, steps_per_epoch
from .report import Skipped, SkipReport
from .rsna import KNOWN_BAD_STUDIES, Box, RsnaIndex, RsnaStudy, read_rsna
from .samples import Sample, build_sample
from .split import Split, load_split, save_split, split_studies
from .targets import TargetConfig, slice_flags

__all__ = [
    "KNOWN_BAD_STUDIES",
    "AugmentConfig",
    "Box",
    "CachedStudy",
    "EvalStudy",
    "MaskMismatchError",
    "RsnaIndex",
    "RsnaStudy",
    "Sample",
    "SkipReport",
    "Skipped",
    "Split",
    "TargetConfig",
    "augment_slice",
    "build_cache",
    "build_sample",
    "cache_key",
    "epoch_samples",
    "iter_eval_studies",
    "load_cache",
    "load_split",
    "make_dataset",
    "mask_on_volume",
    "read_rsna",
    "save_split",
    "slice_flags",
    "split_studies",
    "steps_per_epoch",
]
