"""The checks behind ``cspine self-test``: each one returns a :class:`Check` (never raises).

They exercise what an installed copy needs at run time: the model files against their card's
sha256, the image decoders (DICOM plugins found through package metadata), Qt offscreen, the
inference engine and the whole analysis of the bundled demo study, and the exports. They run
inside :func:`~cspine_desktop.cli.network_guard.guarded_network`, which records (and refuses)
every connection or name lookup that leaves the machine.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserFacingError

# model formats only TensorFlow runs (not shipped in the CPU bundle)
TF_FORMATS = frozenset({"keras", "savedmodel", "h5"})
# encodings the study loader promises to read (pydicom.uid names)
DECODER_SYNTAXES = (
    "JPEGBaseline8Bit",
    "JPEGExtended12Bit",
    "JPEGLossless",
    "JPEGLosslessSV1",
    "JPEGLSLossless",
    "JPEGLSNearLossless",
    "JPEG2000Lossless",
    "JPEG2000",
    "RLELossless",
)
# encoded and decoded again through every installed decoder plugin
ROUND_TRIP_SYNTAXES = ("RLELossless", "JPEG2000Lossless", "JPEGLSLossless")
TRAINING_MODULES = ("tensorflow", "keras")


@dataclass
class Check:
    """Outcome of one check: ``ok`` False fails the self-test; ``seconds`` is its wall time."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


def timed(name: str, fn: Callable[[], tuple[bool, str, dict[str, Any]]]) -> Check:
    """Run ``fn`` → (ok, detail, data); an exception becomes a failed check with its message."""
    t0 = time.perf_counter()
    try:
        ok, detail, data = fn()
    except UserFacingError as exc:
        ok, detail, data = False, str(exc), {}
    except Exception as exc:  # a self-test reports every failure, it never crashes
        ok, detail, data = False, f"{type(exc).__name__}: {exc}", {}
    return Check(name, ok, detail, round(time.perf_counter() - t0, 3), data)


# --------------------------------------------------------------------------- runtime
def check_runtime() -> Check:
    def run() -> tuple[bool, str, dict[str, Any]]:
        import onnxruntime as ort

        from .. import __version__

        frozen = bool(getattr(sys, "frozen", False) and getattr(sys, "_MEIPASS", None))
        data = {
            "cspine": __version__,
            "python": sys.version.split()[0],
            "frozen": frozen,
            "onnxruntime": ort.__version__,
            "providers": list(ort.get_available_providers()),
        }
        where = "installed bundle" if frozen else "source checkout"
        return (
            True,
            f"cspine {__version__} ({where}), Python {data['python']}, onnxruntime "
            f"{ort.__version__} [{', '.join(data['providers'])}]",
            data,
        )

    return timed("runtime", run)


def check_model(model_dir: Path) -> tuple[Check, Any]:
    """Load the card and verify every file this installation can run. Returns (check, bundle)."""
    from ..inference import load_bundle
    from ..inference.backends import keras_tf

    holder: dict[str, Any] = {}

    def run() -> tuple[bool, str, dict[str, Any]]:
        bundle = load_bundle(model_dir)
        holder["bundle"] = bundle
        keras_ok = keras_tf.is_available()
        verified: list[dict[str, Any]] = []
        skipped: list[str] = []
        for f in bundle.files:
            if f.format in TF_FORMATS and not keras_ok and not bundle.file_path(f).exists():
                skipped.append(f"{f.name} (needs TensorFlow; not shipped)")
                continue
            path = bundle.verified_path(f)  # ModelBundleError on a sha256 mismatch
            size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")))
            verified.append({"file": f.name, "sha256": f.sha256, "bytes": size})
        if not any(v["file"].endswith(".onnx") for v in verified) and not keras_ok:
            return False, "no ONNX model file in the bundle: nothing here can run it", {}
        names = ", ".join(f"{v['file']} ({v['bytes'] / 2**20:.1f} MB)" for v in verified)
        detail = f"{bundle.name} {bundle.version}: sha256 ok for {names}"
        if skipped:
            detail += "; left out: " + ", ".join(skipped)
        return True, detail, {"name": bundle.name, "version": bundle.version, "files": verified}

    check = timed("model", run)
    return check, holder.get("bundle")


def check_decoders() -> Check:
    def run() -> tuple[bool, str, dict[str, Any]]:
        import numpy as np
        from pydicom import uid as uids
        from pydicom.pixels import get_decoder

        missing, plugins = [], {}
        for name in DECODER_SYNTAXES:
            decoder = get_decoder(getattr(uids, name))
            plugins[name] = list(decoder.available_plugins)
            if not decoder.is_available:
                missing.append(name)
        # 48×40: large enough for the JPEG 2000 encoder's default number of resolutions
        arr = (np.arange(48 * 40, dtype=np.int16).reshape(48, 40) * 7 - 1024).astype(np.int16)
        failed = []
        for name in ROUND_TRIP_SYNTAXES:
            for plugin in plugins.get(name, []):
                if not np.array_equal(_round_trip(arr, getattr(uids, name), plugin), arr):
                    failed.append(f"{name} via {plugin}")
        n_trips = sum(len(plugins.get(n, [])) for n in ROUND_TRIP_SYNTAXES)
        if missing or failed:
            problems = [f"no decoder for {', '.join(missing)}"] if missing else []
            problems += [f"wrong pixels from {', '.join(failed)}"] if failed else []
            return False, "; ".join(problems), {"plugins": plugins}
        return (
            True,
            f"{len(DECODER_SYNTAXES)} encodings readable; {n_trips} encode/decode round trips "
            "exact",
            {"plugins": plugins},
        )

    return timed("decoders", run)


def _round_trip(arr: Any, syntax: Any, plugin: str) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import pixel_array
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = arr.tobytes()
    ds.compress(syntax, arr)
    return pixel_array(ds, decoding_plugin=plugin)


def check_qt() -> Check:
    """Qt starts headless (offscreen platform) and the workstation's modules import."""

    def run() -> tuple[bool, str, dict[str, Any]]:
        saved = os.environ.get("QT_QPA_PLATFORM")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        try:
            from PySide6 import __version__ as pyside_version
            from PySide6.QtWidgets import QApplication, QLabel

            from ..gui import main_window  # noqa: F401 - the whole GUI import tree

            # the application is held (in _app) while the widget draws
            _app = QApplication.instance() or QApplication(["cspine-self-test"])
            label = QLabel("cspine")
            label.resize(120, 40)
            pixmap = label.grab()
            ok = not pixmap.isNull() and pixmap.width() > 0
            platform = QApplication.platformName()
            label.deleteLater()
        finally:
            if saved is None:
                os.environ.pop("QT_QPA_PLATFORM", None)
            else:
                os.environ["QT_QPA_PLATFORM"] = saved
        detail = f"PySide6 {pyside_version} on the '{platform}' platform; workstation modules load"
        return ok, detail if ok else "Qt could not draw a widget offscreen", {}

    return timed("qt", run)


# --------------------------------------------------------------------------- analysis
def check_engine(bundle: Any, backend: str, cache_dir: Path) -> tuple[Check, Any]:
    from ..inference import open_engine

    holder: dict[str, Any] = {}

    def run() -> tuple[bool, str, dict[str, Any]]:
        engine = open_engine(bundle, backend, cache_dir)
        holder["engine"] = engine
        notes = f"; {'; '.join(engine.warnings)}" if engine.warnings else ""
        return (
            True,
            f"{engine.label} on {engine.device} ({engine.model_file}){notes}",
            {"label": engine.label},
        )

    check = timed("engine", run)
    return check, holder.get("engine")


def check_demo_study(study: Path, engine: Any, bundle: Any) -> tuple[Check, Any]:
    from ..analysis.pipeline import analyze
    from ..imaging import load_study

    holder: dict[str, Any] = {}

    def run() -> tuple[bool, str, dict[str, Any]]:
        t0 = time.perf_counter()
        volume = load_study(study)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        outcome = analyze(volume, engine, bundle.card)
        analyse_s = time.perf_counter() - t0
        holder["outcome"] = outcome
        problems = result_problems(outcome.result)
        data: dict[str, Any] = {"read_s": round(read_s, 3), "analyse_s": round(analyse_s, 3)}
        data["shape"] = list(volume.hu.shape)
        if problems:
            return False, "implausible result: " + "; ".join(problems), data
        return (
            True,
            f"{study.name}: {volume.hu.shape[0]} slices of {volume.hu.shape[2]}×"
            f"{volume.hu.shape[1]}, read in {read_s:.2f} s, analysed in {analyse_s:.2f} s",
            data,
        )

    check = timed("demo study", run)
    return check, holder.get("outcome")


def result_problems(result: Any) -> list[str]:
    """What is wrong with a result's shape and numbers (empty when it is plausible)."""
    problems = []
    names = [v.name for v in result.vertebrae]
    if names != [f"C{i}" for i in range(1, 8)]:
        problems.append(f"vertebrae are {names}, not C1–C7")
    probs = [v.probability for v in result.vertebrae if v.present]
    probs.append(result.patient_overall.probability)
    if any(p is None or not math.isfinite(p) or not 0.0 <= p <= 1.0 for p in probs):
        problems.append("a probability is not a number in [0, 1]")
    if not any(v.present for v in result.vertebrae):
        problems.append("no vertebra found in the demo study")
    return problems


def check_exports(outcome: Any, out_dir: Path) -> Check:
    def run() -> tuple[bool, str, dict[str, Any]]:
        from ..reports import export_all

        chatty = logging.getLogger("highdicom")  # one INFO line per copied DICOM module
        level = chatty.level
        chatty.setLevel(max(level, logging.WARNING))
        try:
            written = export_all(outcome, out_dir)
        finally:
            chatty.setLevel(level)
        files = sorted(p.name for p in written.values())
        return True, f"{len(files)} files ({', '.join(sorted(written))})", {"files": files}

    return timed("exports", run)


def check_telemetry() -> Check:
    """ONNX Runtime's native telemetry is off (it would store a device id and try to send usage
    events to a Microsoft collector; cspine_desktop turns it off before onnxruntime loads), and
    OpenVINO's Python telemetry (a client id under ~/intel and Google Analytics events on
    ``import openvino``) cannot load: cspine_desktop blocks its package."""

    def run() -> tuple[bool, str, dict[str, Any]]:
        value = os.environ.get("ORT_DISABLE_TELEMETRY")
        if value != "1":
            return False, f"ONNX Runtime telemetry is on (ORT_DISABLE_TELEMETRY={value!r})", {}
        if sys.modules.get("openvino_telemetry") is not None:
            return False, "OpenVINO telemetry is loaded (openvino_telemetry was imported)", {}
        return True, "ONNX Runtime and OpenVINO telemetry off", {}

    return timed("telemetry", run)


def loaded_training_modules() -> frozenset[str]:
    """The training frameworks already imported in this process."""
    return frozenset(m for m in TRAINING_MODULES if m in sys.modules)


def check_isolation(engine_label: str | None, before: frozenset[str] = frozenset()) -> Check:
    """The ONNX path never loads the training frameworks (they are not in the bundle).

    ``before``: modules already loaded when the self-test started (never the case in the
    installed app; possible when it runs inside a process that used TensorFlow) — only what
    the self-test itself loaded counts.
    """

    def run() -> tuple[bool, str, dict[str, Any]]:
        loaded = [m for m in TRAINING_MODULES if m in sys.modules and m not in before]
        if engine_label and engine_label.startswith("keras"):
            return True, "Keras backend in use: TensorFlow loaded on purpose", {}
        if loaded:
            return False, f"{', '.join(loaded)} loaded although the ONNX engine ran", {}
        return True, "TensorFlow and Keras not loaded", {}

    return timed("isolation", run)
