"""Per-study cache of prepared volumes and targets, so epochs never re-read DICOM.

Layout (``key`` = hash of the preprocessing config, the target config and the cache format,
so changing any of them starts a fresh cache)::

    cache_dir/<key>/config.json            what the key stands for
    cache_dir/<key>/report.json            what was left out and why (SkipReport)
    cache_dir/<key>/studies/<StudyUID>/
        hu.npy        int16 [Zg, S, S]  model-grid HU (rounded)
        labels.npy    uint8 [Zg, S, S]  0 bg, 1–7 = C1–C7   (absent: study has no segmentation)
        fracture.npy  uint8 [Zg, S, S]  1 = fractured bone (from a mask or boxes; absent: unknown)
        flags.npy     bool  [Zg, 7]     slice shows a fractured C_k
        meta.json     truths, patient, grid geometry, source signature (written last)

``.npy`` files are memory-mapped at training time, so drawing a slice reads only its planes.
Disk use is ≈ 4 bytes per grid voxel: ≈ 26 MB for a 100 × 256 × 256 grid (RSNA's 2,019
studies ≈ 50 GB), a fraction of the DICOM it replaces.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.imaging.preprocess import PreparedVolume, PreprocessConfig

from .report import Skipped, SkipReport
from .rsna import RsnaIndex, RsnaStudy, dicom_files
from .targets import TargetConfig

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def cache_key(cfg: PreprocessConfig, targets: TargetConfig | None = None) -> str:
    """12-hex key of (cache format, preprocessing, targets)."""
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "preprocessing": cfg.to_dict(),
            "targets": (targets or TargetConfig()).to_dict(),
        },
        sort_keys=True,
    ).encode()
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()[:12]


@dataclass
class CachedStudy:
    """One prepared study on disk (see module docstring) with its study-level truth."""

    study_uid: str
    patient_id: str
    path: Path
    n_slices: int
    fractured: tuple[bool, ...]  # C1 … C7
    patient_overall: bool
    has_labels: bool
    has_location: bool
    n_positive_slices: int = 0
    fractures: list[dict[str, Any]] = field(default_factory=list)

    # ---- arrays (memory-mapped)
    def _npy(self, name: str) -> np.ndarray | None:
        p = self.path / f"{name}.npy"
        return np.load(p, mmap_mode="r") if p.is_file() else None

    def hu(self) -> np.ndarray:
        # hu.npy is written for every cached study; a damaged cache yields None here, which
        # _why_unusable checks for
        return self._npy("hu")  # type: ignore[return-value]

    def labels(self) -> np.ndarray | None:
        return self._npy("labels")

    def fracture(self) -> np.ndarray | None:
        return self._npy("fracture")

    def flags(self) -> np.ndarray:
        return np.asarray(self._npy("flags"))

    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text(encoding="utf-8"))

    def prepared(self, in_memory: bool = False) -> PreparedVolume:
        """The cached :class:`PreparedVolume`; ``hu`` is the int16 memory map unless
        ``in_memory`` (then float32, as ``prepare_volume`` returns it)."""
        m = self.meta()
        g = m["geometry"]
        hu = self.hu()
        return PreparedVolume(
            hu=np.asarray(hu, dtype=np.float32) if in_memory else hu,
            affine=np.array(g["affine"]),
            grid_to_voxel=np.array(g["grid_to_voxel"]),
            source_shape=tuple(g["source_shape"]),
            source_z=np.array(g["source_z"]),
            cfg=PreprocessConfig.from_dict(m["preprocessing"]),
            _axes=tuple(g["axes"]),
        )

    @classmethod
    def from_meta(cls, path: Path) -> CachedStudy:
        m = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        return cls(path=path, **{k: m[k] for k in _RECORD_FIELDS}, fractured=tuple(m["fractured"]))


_RECORD_FIELDS = (
    "study_uid",
    "patient_id",
    "n_slices",
    "patient_overall",
    "has_labels",
    "has_location",
    "n_positive_slices",
    "fractures",
)


# --------------------------------------------------------------------------- writing
def source_signature(study: RsnaStudy) -> str:
    """Hash of what the cached arrays were made from: file sizes/mtimes and the truths."""

    def stat(p: Path | None) -> list[int] | None:
        if p is None:
            return None
        s = p.stat()
        return [s.st_size, s.st_mtime_ns]

    files = dicom_files(study.image_dir)
    stats = [[s.st_size, s.st_mtime_ns] for s in (f.stat() for f in files)]
    blob = json.dumps(
        {
            "files": [len(files), sum(s[0] for s in stats), max((s[1] for s in stats), default=0)],
            "segmentation": stat(study.segmentation),
            "fracture_mask": stat(study.fracture_mask),
            "fractured": list(study.fractured),
            "boxes": [asdict(b) for b in study.boxes],
            "fractures": study.fractures,
            "patient_id": study.patient_id,
        },
        sort_keys=True,
        default=str,
    ).encode()
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()


def write_study(
    out_dir: Path,
    study: RsnaStudy,
    prepared: PreparedVolume,
    labels: np.ndarray | None,
    fracture: np.ndarray | None,
    flags: np.ndarray,
    signature: str = "",
) -> CachedStudy:
    """Write one prepared study atomically (a temp folder renamed into place)."""
    final = out_dir / study.study_uid
    tmp = out_dir / f".{study.study_uid}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hu = np.clip(np.rint(prepared.hu), -32768, 32767).astype(np.int16)
    np.save(tmp / "hu.npy", hu)
    if labels is not None:
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.uint8))
    if fracture is not None:
        np.save(tmp / "fracture.npy", (np.asarray(fracture) != 0).astype(np.uint8))
    np.save(tmp / "flags.npy", np.asarray(flags, dtype=bool))
    record = CachedStudy(
        study_uid=study.study_uid,
        patient_id=study.patient_id,
        path=final,
        n_slices=int(hu.shape[0]),
        fractured=tuple(bool(f) for f in study.fractured),
        patient_overall=bool(study.patient_overall),
        has_labels=labels is not None,
        has_location=fracture is not None,
        n_positive_slices=int(np.any(flags, axis=1).sum()),
        fractures=list(study.fractures),
    )
    meta = {k: getattr(record, k) for k in _RECORD_FIELDS}
    meta.update(
        fractured=list(record.fractured),
        preprocessing=prepared.cfg.to_dict(),
        geometry={
            "affine": np.asarray(prepared.affine).tolist(),
            "grid_to_voxel": np.asarray(prepared.grid_to_voxel).tolist(),
            "source_shape": [int(v) for v in prepared.source_shape],
            "source_z": np.asarray(prepared.source_z, dtype=float).tolist(),
            "axes": [int(a) for a in prepared._axes],
        },
        source_signature=signature,
    )
    (tmp / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return record


def _cached_if_fresh(out_dir: Path, study: RsnaStudy, signature: str) -> CachedStudy | None:
    meta = out_dir / study.study_uid / "meta.json"
    try:
        if json.loads(meta.read_text(encoding="utf-8")).get("source_signature") == signature:
            return CachedStudy.from_meta(meta.parent)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def _build_one(
    study: RsnaStudy, cfg: PreprocessConfig, targets: TargetConfig, out_dir: Path
) -> tuple[CachedStudy | None, list[Skipped]]:
    """Cache one study (in a worker process). Never raises: failures become report items."""
    from .samples import prepare_study  # imported here so workers import only what they need

    report = SkipReport()
    try:
        signature = source_signature(study)
        cached = _cached_if_fresh(out_dir, study, signature)
        if cached is not None:
            return cached, []
        sample = prepare_study(study, cfg, targets, report)
        if sample is None:
            return None, report.items
        rec = write_study(
            out_dir, study, sample.prepared, sample.labels, sample.fracture, sample.flags, signature
        )
        return rec, report.items
    except Exception as exc:  # one bad study must not end the build
        log.exception("caching %s failed", study.study_uid)
        report.add(
            study.study_uid,
            "cache",
            f"could not be prepared ({type(exc).__name__}: {exc})",
            study.image_dir,
        )
        return None, report.items


def build_cache(
    index: RsnaIndex | Sequence[RsnaStudy],
    cfg: PreprocessConfig,
    cache_dir: str | os.PathLike[str],
    workers: int = 2,
    *,
    targets: TargetConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CachedStudy]:
    """Prepare every study once (``workers`` processes) and return the cached records, in
    index order. Studies already cached with the same key and unchanged sources are reused.
    The combined report (reader + builder) is written to ``cache_dir/<key>/report.json``.
    """
    targets = targets or TargetConfig()
    studies = list(index.studies if isinstance(index, RsnaIndex) else index)
    report = SkipReport()
    if isinstance(index, RsnaIndex):
        report.extend(index.report)
    root = Path(cache_dir) / cache_key(cfg, targets)
    out_dir = root / "studies"
    out_dir.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(
        json.dumps(
            {"format": CACHE_FORMAT, "preprocessing": cfg.to_dict(), "targets": targets.to_dict()},
            indent=2,
        ),
        encoding="utf-8",
    )

    outcomes: dict[str, tuple[CachedStudy | None, list[Skipped]]] = {}

    def record(study: RsnaStudy, outcome: tuple[CachedStudy | None, list[Skipped]]) -> None:
        outcomes[study.study_uid] = outcome
        if progress:
            progress(len(outcomes), len(studies))

    if workers <= 1 or len(studies) <= 1:
        for s in studies:
            record(s, _build_one(s, cfg, targets, out_dir))
    else:
        # spawn, not fork: the caller may already hold TensorFlow's threads
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_build_one, s, cfg, targets, out_dir): s for s in studies}
            for fut in as_completed(futures):
                s = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # a worker that died (out of memory, killed)
                    why = f"worker failed ({type(exc).__name__}: {exc})"
                    outcome = (None, [Skipped(s.study_uid, "cache", why, str(s.image_dir))])
                record(s, outcome)
    results: dict[str, CachedStudy] = {}
    for s in studies:  # report in index order, whatever order the workers finished in
        rec, items = outcomes[s.study_uid]
        report.extend(items)
        if rec is not None:
            results[s.study_uid] = rec
    report.write(root / "report.json")
    log.info(
        "cache %s: %d of %d studies ready; %s", root, len(results), len(studies), report.summary()
    )
    return [results[s.study_uid] for s in studies if s.study_uid in results]


def load_cache(
    cache_dir: str | os.PathLike[str], cfg: PreprocessConfig, targets: TargetConfig | None = None
) -> list[CachedStudy]:
    """The studies already cached under ``cache_dir`` for this config (sorted by UID)."""
    out_dir = Path(cache_dir) / cache_key(cfg, targets) / "studies"
    if not out_dir.is_dir():
        return []
    return [
        CachedStudy.from_meta(p)
        for p in sorted(out_dir.iterdir())
        if (p / "meta.json").is_file() and not p.name.startswith(".")
    ]
