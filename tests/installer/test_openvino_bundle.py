"""What the bundle keeps of OpenVINO: the core, the CPU plugin and the ONNX reader; not the
GPU/NPU plugins or other frameworks' readers. The lists are checked against the installed
OpenVINO wheel (a dev dependency), so a renamed library cannot silently slip in or out."""

from __future__ import annotations

from pathlib import Path

import bundle_data as bd
import openvino


def _wheel_libraries() -> set[str]:
    libs = Path(openvino.__file__).parent / "libs"
    return {
        p.name.split(".", 1)[0] for p in libs.iterdir() if ".so" in p.name or p.suffix == ".dll"
    }


def test_the_cpu_runtime_is_kept_and_the_rest_left_out():
    for kept in (
        "libopenvino.so.2641",
        "libopenvino_intel_cpu_plugin.so",
        "libopenvino_onnx_frontend.so.2641",
        "libopenvino_ir_frontend.so.2641",
        "libtbb.so.12",
        "onnxruntime_pybind11_state.so",
    ):
        assert bd.openvino_library_kept(kept), kept
    for dropped in ("libopenvino_intel_gpu_plugin.so", "libopenvino_tensorflow_frontend.so.2641"):
        assert not bd.openvino_library_kept(dropped), dropped


def test_the_lists_name_libraries_the_installed_openvino_has():
    have = _wheel_libraries()
    assert {"libopenvino", "libopenvino_intel_cpu_plugin", "libopenvino_onnx_frontend"} <= have
    stale = [n for n in bd.OPENVINO_DROPPED_LIBS if n not in have]
    assert stale == [], f"no longer in the OpenVINO wheel: {stale}"


def test_the_excluded_modules_are_not_ones_the_backend_imports():
    backend = Path(bd.__file__).parents[1] / "cspine_desktop/inference/backends/ov.py"
    text = backend.read_text(encoding="utf-8")
    assert "import openvino" in text
    assert not any(m in text for m in bd.OPENVINO_EXCLUDES)


def test_the_spec_collects_the_cpu_plugin_and_onnx_reader_of_the_installed_wheel():
    libs = Path(openvino.__file__).parent / "libs"
    shipped = {Path(src).name.split(".", 1)[0]: dest for src, dest in bd.openvino_binaries(libs)}
    # loaded at run time by name (not linked), with version suffixes such as .so.2641
    for needed in ("libopenvino", "libopenvino_intel_cpu_plugin", "libopenvino_onnx_frontend"):
        assert shipped.get(needed) == "openvino/libs", needed
    assert not set(shipped) & set(bd.OPENVINO_DROPPED_LIBS)
    assert bd.openvino_binaries(libs.parent / "no-such-folder") == []
