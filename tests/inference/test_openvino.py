"""OpenVINO beside ONNX Runtime: same outputs within the accuracy gate, chosen by measurement
only where the gate let the pair through, bf16 only where the CPU has it, a compiled-model
cache, and the app unchanged without OpenVINO.

OpenVINO is a declared dev dependency (``pip install -e '.[dev]'``): these tests import it and
fail, not skip, where it is missing.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import openvino  # noqa: F401 - a dev dependency: fail loudly when it is missing
import pytest
from factories.model_bundle import classifier_onnx, threshold_onnx, write_bundle
from gate_records import record_gate

from cspine_desktop.imaging.preprocess import PreprocessConfig, model_input, prepare_volume
from cspine_desktop.inference import gates, load_bundle, open_engine, select
from cspine_desktop.inference.backends import ort, ov
from cspine_desktop.inference.bench import synthetic_study
from cspine_desktop.inference.engine import CLASSIFIER_OUTPUTS
from cspine_desktop.inference.timings import TIMINGS_FILE
from model_training import export
from model_training.deploy import gate

PHANTOM = ["--phantom-matrix", "64", "--eval-studies", "4"]
STAGE2 = {"stage2": {"crops": {"size": 32}, "top_k": 2, "calibration": {"a": 1.0, "b": 0.0}}}


@pytest.fixture
def fp32_bundle(tmp_path):
    """One fp32 threshold model (bone → C3): a real Dice against the phantom's C3."""
    return write_bundle(tmp_path / "fp32", {"model.onnx": threshold_onnx(dense_label=None)})


@pytest.fixture
def two_stage(tmp_path):
    """fp32 stage 1 + an fp32 stage-2 classifier."""
    folder = write_bundle(
        tmp_path / "two",
        {"model.onnx": threshold_onnx(), "classifier.onnx": classifier_onnx()},
        card=STAGE2,
    )
    card = json.loads((folder / "model_card.json").read_text())
    card["files"]["classifier.onnx"]["stage"] = 2
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def held_out():
    from model_training.phantom import PhantomConfig

    cfg = PreprocessConfig(input_size=64, pixel_spacing_mm=2.0, slice_step_mm=2.0)
    return gate.held_out_set(cfg, 4, PhantomConfig(matrix=64, fracture_prevalence=0.5))


def _model_batch(bundle, n=4):
    cfg = PreprocessConfig.from_dict(bundle.card["preprocessing"])
    prepared = prepare_volume(synthetic_study(n_slices=40, size=96), cfg)
    planes = list(range(len(prepared.hu)))[:: max(1, len(prepared.hu) // n)][:n]
    return model_input(prepared, planes)


def _fake_timings(monkeypatch, ms: dict[str, float]):
    """measure_ms_per_slice returns the configured time of the engine's backend name."""
    monkeypatch.setattr(select, "measure_ms_per_slice", lambda e, batch=2: ms[e.name])


class Degraded:
    """A real OpenVINO engine whose outputs are perturbed: the segmentation calls C3 bone C4
    half the time and the fracture scores are noise, as a broken precision path would."""

    def __init__(self, engine):
        self._e = engine
        self.input_shape = engine.input_shape
        self._rng = np.random.default_rng(1)

    def predict(self, batch):
        out = self._e.predict(batch)
        v = out["vertebrae"].copy()
        flip = self._rng.random(v.shape[:3]) < 0.5
        v[flip, 3], v[flip, 4] = out["vertebrae"][flip, 4], out["vertebrae"][flip, 3]
        out["vertebrae"] = v
        out["fracture_cls"] = self._rng.random(out["fracture_cls"].shape).astype(np.float32)
        return out

    def close(self):
        self._e.close()


# --------------------------------------------------------------------------- outputs and gate
def test_openvino_fp32_matches_onnx_runtime_fp32_within_the_gate(fp32_bundle, held_out):
    bundle = load_bundle(fp32_bundle)
    f = bundle.find("onnx", "fp32")
    reference = ort.open_engine(bundle, f, device="cpu")
    candidate = ov.open_engine(bundle, f)
    assert candidate.label == "openvino-cpu-fp32"
    x = _model_batch(bundle)
    a, b = reference.predict(x), candidate.predict(x)
    assert set(b) == set(a)  # same contract, fracture_cam included
    for k in a:
        assert b[k].shape == a[k].shape and b[k].dtype == np.float32
        assert np.abs(b[k] - a[k]).max() < 1e-4, k
    report = gate.compare(reference, candidate, held_out)
    assert report.passed
    assert report.max_dice_drop <= gate.MAX_DICE_DROP and report.auc_drop <= gate.MAX_AUC_DROP
    assert report.reference_dice[2] > 0.03  # a real Dice was compared, not two empty masks


def test_openvino_serves_the_stage2_classifier_like_onnx_runtime(two_stage):
    bundle = load_bundle(two_stage)
    f = bundle.classifier_files[0]
    kw = {"input_shape": bundle.classifier_input_shape, "outputs": CLASSIFIER_OUTPUTS}
    a = ort.open_engine(bundle, f, device="cpu", **kw)
    b = ov.open_engine(bundle, f, **kw)
    x = np.random.default_rng(0).random((5, 32, 32, 4), dtype=np.float32)
    pa, pb = a.predict(x), b.predict(x)
    assert set(pb) == set(CLASSIFIER_OUTPUTS)
    for k in CLASSIFIER_OUTPUTS:
        assert np.abs(pa[k] - pb[k]).max() < 1e-5


def test_classifier_gate_passes_the_same_model_and_refuses_a_perturbed_one(two_stage):
    bundle = load_bundle(two_stage)
    f = bundle.classifier_files[0]
    kw = {"input_shape": bundle.classifier_input_shape, "outputs": CLASSIFIER_OUTPUTS}
    rng = np.random.default_rng(3)
    n = 120
    fractured = np.repeat(rng.random(n // 6) < 0.5, 6)
    x = rng.random((n, 32, 32, 4), dtype=np.float32) * 0.5
    x[fractured] += 0.3  # the stand-in's probability is the image mean: it separates classes
    planes = SimpleNamespace(
        x=x,
        y=fractured.astype(np.uint8),
        fractured=fractured,
        study=np.repeat(np.arange(n // 6), 6),
        vertebra=np.ones(n, np.int64),
    )
    reference = ort.open_engine(bundle, f, device="cpu", **kw)
    same = ov.open_engine(bundle, f, **kw)
    ok = gate.compare_classifier(reference, same, planes, top_k=2, seed=0, n_studies=20)
    assert ok.passed and ok.auc_drop <= 0.005 and ok.reference_vertebra_auc > 0.9

    class Noisy:
        def predict(self, batch):
            out = same.predict(batch)
            out["fracture"] = np.random.default_rng(len(batch)).random(out["fracture"].shape)
            return out

    bad = gate.compare_classifier(reference, Noisy(), planes, top_k=2, seed=0, n_studies=20)
    assert not bad.passed and bad.auc_drop > 0.005


def test_the_gate_records_every_openvino_pair_and_auto_picks_one_that_passed(
    monkeypatch, fp32_bundle, tmp_path
):
    assert export.main([str(fp32_bundle), "--format", "openvino", *PHANTOM]) == 0
    entry = json.loads((fp32_bundle / "model_card.json").read_text())["files"]["model.onnx"]
    rec = entry["runtime_gates"]["openvino-fp32"]
    assert rec["passed"] is True and rec["runtime"] == "openvino"
    assert rec["max_dice_drop"] <= 0.005 and rec["reference"].startswith("onnx-fp32 model.onnx")
    assert ("openvino-bf16" in entry["runtime_gates"]) == ov.has_bf16()
    _fake_timings(monkeypatch, {"onnx": 50.0, "openvino": 10.0})
    engine = open_engine(load_bundle(fp32_bundle), "auto", tmp_path / "cache")
    assert engine.name == "openvino" and engine.warnings == ()


def test_the_gate_refuses_a_degraded_pair_and_auto_never_picks_it(
    monkeypatch, fp32_bundle, tmp_path, capsys, caplog
):
    real_open = ov.open_engine
    monkeypatch.setattr(ov, "open_engine", lambda *a, **k: Degraded(real_open(*a, **k)))
    code = export.main([str(fp32_bundle), "--format", "openvino", *PHANTOM])
    assert code == export.EXIT_REFUSED
    assert "openvino-fp32" in capsys.readouterr().err
    entry = json.loads((fp32_bundle / "model_card.json").read_text())["files"]["model.onnx"]
    rec = entry["runtime_gates"]["openvino-fp32"]
    assert rec["passed"] is False and rec["max_dice_drop"] > 0.005  # the card says so
    monkeypatch.setattr(ov, "open_engine", real_open)

    bundle = load_bundle(fp32_bundle)
    assert gates.verdict(bundle.find("onnx"), "openvino-fp32") == gates.FAILED
    _fake_timings(monkeypatch, {"onnx": 50.0, "openvino": 1.0})  # fastest, yet refused
    opened = []
    monkeypatch.setattr(ov, "open_engine", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    assert open_engine(bundle, "auto", tmp_path / "cache").name == "onnx"
    with caplog.at_level(logging.WARNING):
        asked = open_engine(bundle, "openvino", tmp_path / "cache")
    assert asked.name == "onnx" and opened == []  # never opened, also when asked for by name
    assert len(asked.warnings) == 1 and "failed the model's accuracy gate" in asked.warnings[0]


# --------------------------------------------------------------------------- selection
def test_auto_leaves_out_openvino_pairs_the_gate_has_not_judged(monkeypatch, bundle, cache_dir):
    _fake_timings(monkeypatch, {"onnx": 50.0, "openvino": 1.0})
    found = select.candidates(bundle, "auto", cache_dir)
    assert {c.key: c.gate for c in found if c.backend == "openvino"}["openvino-fp32"] == "unjudged"
    assert open_engine(bundle, "auto", cache_dir).name == "onnx"
    asked = open_engine(bundle, "openvino", cache_dir)  # by name: runs, and says it
    assert asked.name == "openvino"
    assert any("not been judged" in w for w in asked.warnings)


def test_both_stages_run_on_openvino_when_it_passed_and_measures_fastest(
    monkeypatch, two_stage, cache_dir
):
    for name in ("model.onnx", "classifier.onnx"):
        record_gate(two_stage, name, "openvino-fp32", passed=True)
    _fake_timings(monkeypatch, {"onnx": 50.0, "openvino": 10.0})
    engine = open_engine(load_bundle(two_stage), "auto", cache_dir)
    assert engine.label == "openvino-cpu-fp32"
    assert engine.classifier.label == "openvino-cpu-fp32"
    out = engine.classifier.predict(np.zeros((2, 32, 32, 4), np.float32))
    assert out["fracture"].shape == (2, 1)
    timings = json.loads((cache_dir / TIMINGS_FILE).read_text())
    assert sum(k.endswith(":openvino-fp32") for k in timings) == 2  # one per stage's file

    _fake_timings(monkeypatch, {"onnx": 10.0, "openvino": 50.0})  # a new machine: ONNX wins
    engine = open_engine(load_bundle(two_stage), "auto", cache_dir / "other")
    assert engine.name == "onnx" and engine.classifier.name == "onnx"


def test_without_openvino_auto_uses_onnx_runtime_and_a_request_falls_back_once(
    monkeypatch, bundle, cache_dir, caplog
):
    monkeypatch.setattr(ov, "is_available", lambda: False)
    assert all(c.backend != "openvino" for c in select.candidates(bundle, "auto", cache_dir))
    assert open_engine(bundle, "auto", cache_dir).name == "onnx"
    with caplog.at_level(logging.WARNING):
        first = open_engine(bundle, "openvino", cache_dir)
        second = open_engine(bundle, "openvino", cache_dir)
    assert first.name == second.name == "onnx"
    assert len(first.warnings) == 1 and "OpenVINO is not installed" in first.warnings[0]
    assert len([r for r in caplog.records if "OpenVINO cannot run" in r.getMessage()]) == 1


def test_the_app_runs_when_openvino_cannot_be_imported(bundle_dir):
    code = (
        "import sys\n"
        "sys.modules['openvino'] = None  # import openvino now raises ImportError\n"
        "from cspine_desktop.inference import load_bundle, open_engine\n"
        "import numpy as np\n"
        f"e = open_engine(load_bundle({str(bundle_dir)!r}), 'auto', None)\n"
        "e.predict(np.zeros((1, 64, 64, 4), np.float32))\n"
        "print(e.label)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "onnx-cpu-fp32"


# --------------------------------------------------------------------------- bf16
def test_the_cpu_plugin_reports_its_capabilities():
    ov.cpu_capabilities.cache_clear()
    assert "FP32" in ov.cpu_capabilities()


def test_bf16_is_offered_and_hinted_only_where_the_cpu_reports_it(monkeypatch, bundle, caplog):
    f = bundle.find("onnx", "fp32")
    monkeypatch.setattr(ov, "cpu_capabilities", lambda: frozenset({"FP32", "INT8", "BF16"}))
    assert ov.precisions_for(f) == ("fp32", "bf16")
    keys = {c.key for c in select.candidates(bundle, "auto", None)}
    assert {"openvino-fp32", "openvino-bf16"} <= keys
    bf16 = ov.open_engine(bundle, f, precision="bf16")
    assert bf16.precision == "bf16" and bf16.config["INFERENCE_PRECISION_HINT"] == "bf16"
    assert bf16.label == "openvino-cpu-bf16" and bf16.warnings == ()
    fp32 = ov.open_engine(bundle, f)
    assert fp32.config["INFERENCE_PRECISION_HINT"] == "f32"  # explicit: not the AMX default

    monkeypatch.setattr(ov, "cpu_capabilities", lambda: frozenset({"FP32", "INT8"}))
    assert ov.precisions_for(f) == ("fp32",)
    assert "openvino-bf16" not in {c.key for c in select.candidates(bundle, "auto", None)}
    with caplog.at_level(logging.WARNING):
        fallback = ov.open_engine(bundle, f, precision="bf16")
    assert fallback.precision == "fp32" and fallback.config["INFERENCE_PRECISION_HINT"] == "f32"
    assert len(fallback.warnings) == 1 and "no bf16" in fallback.warnings[0]


def test_an_int8_file_runs_int8_only(tmp_path):
    b = load_bundle(write_bundle(tmp_path / "i8", {"model.int8.onnx": threshold_onnx()}))
    f = b.find("onnx", "int8")
    assert ov.precisions_for(f) == ("int8",)
    assert ov.open_engine(b, f).label == "openvino-cpu-int8"
    with pytest.raises(ValueError, match="cannot run fp32"):
        ov.open_engine(b, f, precision="fp32")


# --------------------------------------------------------------------------- compiled cache
def test_the_compiled_model_is_cached_per_file_machine_and_precision(bundle, cache_dir, caplog):
    f = bundle.find("onnx", "fp32")
    x = _model_batch(bundle, 2)
    first = ov.open_engine(bundle, f, cache_dir=cache_dir)
    assert first.built_cache and not first.from_cache
    blob = ov.blob_path(cache_dir, f, "fp32")
    assert (
        blob.is_file() and blob.name.startswith(f.sha256[:16]) and blob.name.endswith("-fp32.blob")
    )
    assert ov.blob_path(cache_dir, f, "bf16") != blob
    again = ov.open_engine(bundle, f, cache_dir=cache_dir)
    assert again.from_cache and not again.built_cache
    a, b = first.predict(x), again.predict(x)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert again.supports_cam and again.class_activation(x, 2).shape == (2, 8, 8)

    blob.write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING):
        rebuilt = ov.open_engine(bundle, f, cache_dir=cache_dir)
    assert rebuilt.built_cache and "damaged" in caplog.text
    assert np.array_equal(rebuilt.predict(x)["vertebrae"], a["vertebrae"])


def test_auto_times_openvino_by_its_cached_load_not_its_first_compile(
    monkeypatch, fp32_bundle, cache_dir
):
    record_gate(fp32_bundle, "model.onnx", "openvino-fp32", passed=True)
    opened = []
    real_open = ov.open_engine
    monkeypatch.setattr(ov, "open_engine", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    open_engine(load_bundle(fp32_bundle), "auto", cache_dir)
    assert len(opened) == 2  # compiled + cached, then re-opened from the cache to time that
    assert ov.blob_path(cache_dir, load_bundle(fp32_bundle).find("onnx"), "fp32").is_file()


def test_candidates_take_a_thread_count_for_both_runtimes(bundle):
    found = select.onnx_candidates(bundle, bundle.files, ("onnx", "openvino"), None, threads=1)
    engines = {c.key: c.open() for c in found}
    assert engines["openvino-fp32"].config["INFERENCE_NUM_THREADS"] == 1
    assert engines["onnx-fp32"]._session.get_session_options().intra_op_num_threads == 1


def test_a_stage_without_an_fp32_reference_is_left_unjudged_not_the_whole_bundle(tmp_path, capsys):
    folder = write_bundle(
        tmp_path / "i8clf",
        {
            "model.onnx": threshold_onnx(dense_label=None),
            "classifier.int8.onnx": classifier_onnx(),
        },
        card=STAGE2,
    )
    card = json.loads((folder / "model_card.json").read_text())
    card["files"]["classifier.int8.onnx"]["stage"] = 2
    (folder / "model_card.json").write_text(json.dumps(card))
    assert export.main([str(folder), "--format", "openvino", *PHANTOM]) == 0
    files = json.loads((folder / "model_card.json").read_text())["files"]
    assert files["model.onnx"]["runtime_gates"]["openvino-fp32"]["passed"] is True
    assert "runtime_gates" not in files["classifier.int8.onnx"]  # no reference: not judged
    assert "No fp32 ONNX file to judge against for stage 2" in capsys.readouterr().out
