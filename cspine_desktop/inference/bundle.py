"""Model bundles: model file(s) plus ``model_card.json``, checked before anything runs.

A bundle directory holds the card and the files it lists under ``"files"``
(``{"model.onnx": {"format": "onnx", "precision": "fp32", "sha256": "…"}, …}``). The app
refuses a bundle whose card is missing or malformed, and a file whose sha256 differs from the
card (:class:`~cspine_desktop.errors.ModelBundleError`). A file is a regular file or, for a
TensorFlow SavedModel, a folder (its digest covers every file's relative path and bytes).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelBundleError
from ..vertebrae import NAMES

CARD_NAME = "model_card.json"
THRESHOLD_KEYS = (*NAMES, "patient_overall")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    """One entry of the card's ``files``: ``name`` is relative to the bundle folder."""

    name: str
    format: str  # "onnx", "keras", "savedmodel", "tensorrt"
    precision: str  # "fp32", "int8", "fp16", "bf16"
    sha256: str
    extra: Mapping[str, Any]


@dataclass(frozen=True)
class ModelBundle:
    """A loaded card and where its files are. ``card`` is the parsed JSON as-is."""

    path: Path
    card: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.card["name"])

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(self.card["thresholds"][k]) for k in THRESHOLD_KEYS}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(S, S, C) of one model input slice, from the card's preprocessing."""
        pre = self.card["preprocessing"]
        size = int(pre["input_size"])
        return (size, size, len(pre["channels"]))

    @property
    def files(self) -> tuple[ModelFile, ...]:
        """The stage-1 (segmentation) model files."""
        return tuple(f for f in self._all_files() if int(f.extra.get("stage", 1)) == 1)

    @property
    def classifier_files(self) -> tuple[ModelFile, ...]:
        """The stage-2 (per-vertebra fracture classifier) model files, if the bundle has one."""
        return tuple(f for f in self._all_files() if int(f.extra.get("stage", 1)) == 2)

    @property
    def classifier_input_shape(self) -> tuple[int, int, int] | None:
        """(S, S, C) of one stage-2 crop plane, from the card's ``stage2.crops``."""
        stage2 = self.card.get("stage2")
        if not isinstance(stage2, Mapping):
            return None
        size = int(stage2.get("crops", {}).get("size", 128))
        return (size, size, 4)

    def _all_files(self) -> tuple[ModelFile, ...]:
        out = []
        for name, entry in self.card["files"].items():
            extra = {k: v for k, v in entry.items() if k not in ("format", "precision", "sha256")}
            out.append(
                ModelFile(
                    name, entry["format"], entry.get("precision", "fp32"), entry["sha256"], extra
                )
            )
        return tuple(out)

    def find(self, fmt: str, precision: str | None = None) -> ModelFile | None:
        """The first listed file of this format (and precision), or None."""
        for f in self.files:
            if f.format == fmt and (precision is None or f.precision == precision):
                return f
        return None

    def file_path(self, f: ModelFile) -> Path:
        return self.path / f.name

    def verified_path(self, f: ModelFile) -> Path:
        """Path of ``f`` after checking its sha256 against the card (ModelBundleError if not)."""
        path = self.file_path(f)
        if not path.exists():
            raise ModelBundleError(
                f"Model bundle {self.path} lists {f.name} but the file is missing."
            )
        digest = sha256_of(path)
        if digest != f.sha256:
            raise ModelBundleError(
                f"Model file {f.name} in {self.path} does not match its model card "
                "(sha256 differs): the file was changed or damaged. Reinstall the model."
            )
        return path


def load_bundle(path: str | Path) -> ModelBundle:
    """Read and check the card in ``path`` (ModelBundleError with a plain message if unusable).

    Only the card is checked here; file digests are checked when a backend opens a file
    (:meth:`ModelBundle.verified_path`), so an unused large file costs nothing.
    """
    folder = Path(path).expanduser()
    card_path = folder / CARD_NAME
    if not folder.is_dir():
        raise ModelBundleError(f"Model folder {folder} does not exist.")
    if not card_path.is_file():
        raise ModelBundleError(
            f"Model folder {folder} has no {CARD_NAME}; a model without its card is refused."
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelBundleError(f"Model card {card_path} is unreadable: {exc}.") from None
    problems = _card_problems(card)
    if problems:
        raise ModelBundleError(f"Model card {card_path} is incomplete: {'; '.join(problems)}.")
    return ModelBundle(folder, card)


def _card_problems(card: Any) -> list[str]:
    if not isinstance(card, dict):
        return ["it is not a JSON object"]
    problems = [f"no '{k}'" for k in ("name", "version", "preprocessing") if k not in card]
    pre = card.get("preprocessing")
    if isinstance(pre, dict) and not {"input_size", "channels"} <= set(pre):
        problems.append("preprocessing lacks input_size or channels")
    thresholds = card.get("thresholds")
    if not isinstance(thresholds, dict):
        problems.append("no 'thresholds'")
    else:
        missing = [k for k in THRESHOLD_KEYS if not isinstance(thresholds.get(k), (int, float))]
        if missing:
            problems.append(f"thresholds lack {', '.join(missing)}")
    files = card.get("files")
    if not isinstance(files, dict) or not files:
        problems.append("no model files listed under 'files'")
    else:
        for name, entry in files.items():
            if not isinstance(entry, dict) or not {"format", "sha256"} <= set(entry):
                problems.append(f"file entry '{name}' lacks format or sha256")
            elif Path(name).is_absolute() or ".." in Path(name).parts:
                problems.append(f"file entry '{name}' points outside the bundle")
    return problems


# --------------------------------------------------------------------------- digests
_digest_cache: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, or of a folder (sorted relative paths + bytes of every file).

    Cached per (path, size, mtime) for the life of the process.
    """
    p = Path(path)
    stat = p.stat()
    key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    if p.is_file():
        with _digest_lock:
            if key in _digest_cache:
                return _digest_cache[key]
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f.relative_to(p).as_posix().encode() + b"\0")
            _update_from_file(h, f)
        return h.hexdigest()
    _update_from_file(h, p)
    digest = h.hexdigest()
    with _digest_lock:
        _digest_cache[key] = digest
    return digest


def _update_from_file(h: Any, path: Path) -> None:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
