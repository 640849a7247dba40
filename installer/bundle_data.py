"""What goes into the one-folder bundle: asset files, left-out modules, extra package metadata.

``installer/cspine.spec`` imports this module, and ``tests/installer`` checks it against the
run-time resource lookup (:mod:`cspine_desktop.inference.resources`), so the list of files the
app opens and the list of files the bundle carries cannot drift apart.

Assets are copied with their layout under ``assets/``: the frozen app finds them at
``sys._MEIPASS/assets/...``, exactly where ``resources.assets_dir()`` looks. Everything under
``assets/`` is shipped, except: in a model folder with a ``model_card.json``, only the card and
the files it lists (the app opens nothing else there, and only listed files are checked against
a sha256), and of those not the ones only TensorFlow can run (the CPU bundle has no
TensorFlow); editor/VCS litter nowhere.
"""

from __future__ import annotations

import json
from pathlib import Path

ASSETS = "assets"  # folder name inside the bundle (and in the source checkout)
CARD_NAME = "model_card.json"  # same name as cspine_desktop.inference.bundle.CARD_NAME

# model formats the CPU bundle cannot run (they need TensorFlow): left out of the bundle
TF_ONLY_FORMATS = frozenset({"keras", "savedmodel", "h5"})
# file names never shipped
_JUNK_NAMES = frozenset({".gitkeep", ".DS_Store", "Thumbs.db", "desktop.ini"})
_JUNK_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".git"})

# Modules the frozen app must not contain. The app never imports them at run time (the Keras
# backend imports TensorFlow lazily and reports "not installed" without it), but PyInstaller
# follows lazy imports too, so they are excluded by name.
EXCLUDES: tuple[str, ...] = (
    # training stack (the CPU runtime is ONNX Runtime)
    "tensorflow",
    "tensorflow_cpu",
    "tensorflow_io_gcs_filesystem",
    "tensorboard",
    "tensorboard_data_server",
    "keras",
    "tf_keras",
    "tf2onnx",
    "onnx",
    "onnxconverter_common",
    "ml_dtypes",
    "h5py",
    "jax",
    "jaxlib",
    "torch",
    "model_training",
    # tools used only for development and tests
    "matplotlib",
    "pytest",
    "_pytest",
    "hypothesis",
    "pytestqt",
    "SimpleITK",
    "pydicom_data",
    "data_store",
    "IPython",
    "jedi",
    "tkinter",
    "_tkinter",
    "pandas",
    "scipy",
    "sympy",
    "setuptools",
    "pkg_resources",
    "jsonschema",
)

# GPU runtimes: excluded from the CPU variant, collected by the GPU variant
GPU_MODULES: tuple[str, ...] = ("tensorrt", "tensorrt_libs", "tensorrt_bindings", "cuda")

# OpenVINO ships beside ONNX Runtime (the backend picks whichever measures faster and passed
# the accuracy gate). The app runs ONNX files on OpenVINO's CPU plugin only, so of its wheel the
# bundle keeps the core, the CPU plugin, the ONNX and IR readers and the scheduling plugins;
# the GPU/NPU plugins (and the GPU kernel cache), the readers of other frameworks' formats and
# the model-conversion tools never run here and are left out (about 80 MB of the wheel's 180).
OPENVINO_PACKAGE = "openvino"
OPENVINO_EXCLUDES: tuple[str, ...] = (
    "openvino.tools",
    "openvino.torch",
    "openvino.frontend.pytorch",
    "openvino.frontend.tensorflow",
    "openvino.frontend.paddle",
    "openvino.frontend.jax",
    "openvino_telemetry",
)
OPENVINO_DROPPED_LIBS: tuple[str, ...] = (
    "libopenvino_c",  # the C API; the app uses the Python one
    "libopenvino_intel_gpu_plugin",
    "libopenvino_intel_npu_plugin",
    "libopenvino_pytorch_frontend",
    "libopenvino_tensorflow_frontend",
    "libopenvino_tensorflow_lite_frontend",
    "libopenvino_paddle_frontend",
    "libopenvino_jax_frontend",
    "libopenvino_gguf_frontend",
)


def openvino_binaries(libs_dir: Path) -> list[tuple[str, str]]:
    """OpenVINO's libraries to ship, as PyInstaller ``binaries`` (source, ``openvino/libs``):
    every shared library in the wheel's ``libs`` folder but the left-out ones. Listed by name,
    because OpenVINO loads its plugins and model readers at run time (no import or link leads
    PyInstaller to them) and they carry version suffixes (``libopenvino_onnx_frontend.so.2641``)
    that a ``*.so`` pattern misses."""
    libs = Path(libs_dir)
    if not libs.is_dir():
        return []
    return [
        (str(p), f"{OPENVINO_PACKAGE}/libs")
        for p in sorted(libs.iterdir())
        if p.is_file()
        and (".so" in p.name or p.suffix in (".dll", ".dylib"))
        and openvino_library_kept(p.name)
    ]


def openvino_library_kept(file_name: str) -> bool:
    """False for an OpenVINO library the bundle leaves out (see :data:`OPENVINO_DROPPED_LIBS`),
    e.g. ``libopenvino_intel_gpu_plugin.so``; True for every other file."""
    return file_name.split(".", 1)[0] not in OPENVINO_DROPPED_LIBS


# Distributions whose metadata the app reads at run time (importlib.metadata): pylibjpeg finds
# its decoders through entry points, and pydicom checks the plugin versions.
COPY_METADATA: tuple[str, ...] = (
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "python-gdcm",
    "pyjpegls",
    "pydicom",
    "highdicom",
    "onnxruntime",
    "openvino",
    "numpy",
)

# Imported only by name at run time (pydicom's plugin checks, pylibjpeg's entry points)
HIDDEN_IMPORTS: tuple[str, ...] = ("libjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm")

# Data files of packages without a PyInstaller hook: (package, glob relative to the package)
PACKAGE_DATA: tuple[tuple[str, str], ...] = (
    ("_gdcm", "XML/**"),  # DICOM dictionaries of GDCM
    ("highdicom", "**/*"),  # SOP class / IOD maps and ICC profile read when writing SEG and SR
)


def is_shipped_file(path: Path) -> bool:
    """False for editor/VCS litter and byte-code caches."""
    if path.name in _JUNK_NAMES or path.name.endswith((".pyc", "~", ".swp", ".tmp")):
        return False
    return not any(part in _JUNK_DIRS for part in path.parts)


def _card_files(model_dir: Path) -> dict[str, str] | None:
    """{listed file: format} of a model folder's card, or None if it has no readable card."""
    try:
        card = json.loads((model_dir / CARD_NAME).read_text(encoding="utf-8"))
        files = card["files"]
        return {str(n): str(e.get("format", "")).lower() for n, e in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no card, or one the app will refuse itself: ship the folder as it is


def _model_file_shipped(model_dir: Path, rel: Path, listed: dict[str, str]) -> bool:
    """Inside a model folder with a card: the card, and listed files the CPU runtime can run
    (a listed folder, e.g. a SavedModel, with everything inside it)."""
    if rel.as_posix() == CARD_NAME:
        return True
    for name, fmt in listed.items():
        if rel.as_posix() == name or Path(name) in rel.parents:
            return fmt not in TF_ONLY_FORMATS
    return False


def asset_files(assets_root: Path) -> list[tuple[Path, str]]:
    """Every asset file to ship: (source file, destination path relative to the bundle root).

    Destinations keep the layout: ``assets/models/cspine-demo/model.onnx`` etc.
    """
    root = Path(assets_root)
    if not root.is_dir():
        return []
    cards: dict[Path, dict[str, str]] = {}
    models = root / "models"
    if models.is_dir():
        for model_dir in sorted(p for p in models.iterdir() if p.is_dir()):
            listed = _card_files(model_dir)
            if listed is not None:
                cards[model_dir] = listed
    out: list[tuple[Path, str]] = []
    for src in sorted(root.rglob("*")):
        rel = src.relative_to(root)
        if not src.is_file() or not is_shipped_file(rel):
            continue
        model_dir = next((d for d in cards if d in src.parents), None)
        if model_dir is not None and not _model_file_shipped(
            model_dir, src.relative_to(model_dir), cards[model_dir]
        ):
            continue
        out.append((src, (Path(ASSETS) / rel).as_posix()))
    return out


def pyinstaller_datas(assets_root: Path) -> list[tuple[str, str]]:
    """``asset_files`` in the form PyInstaller's ``datas`` wants: (source, destination folder)."""
    return [(str(src), str(Path(dest).parent.as_posix())) for src, dest in asset_files(assets_root)]


def bundle_paths(assets_root: Path) -> set[str]:
    """Destination paths (posix, relative to the bundle root) of every shipped asset file."""
    return {dest for _, dest in asset_files(assets_root)}
