"""cspine-export without TensorFlow: int8 quantisation + the accuracy gate (pass and refuse),
and the formats this machine cannot build (TensorRT, TF-TRT) refused with the reason."""

from __future__ import annotations

import json

import pytest
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.inference import load_bundle
from cspine_desktop.inference.backends import ort
from model_training import export
from model_training.deploy import gate
from model_training.deploy import quantize as quantize_mod

PHANTOM = ["--phantom-matrix", "64", "--eval-studies", "4", "--calibration-studies", "2"]


@pytest.fixture
def onnx_bundle(tmp_path):
    """A bundle whose fp32 model is the threshold model (bone → C3): real, quantisable Dice."""
    return write_bundle(tmp_path / "bundle", {"model.onnx": threshold_onnx(dense_label=None)})


@pytest.fixture(scope="module")
def held_out():
    cfg = PreprocessConfig(input_size=64, pixel_spacing_mm=2.0, slice_step_mm=2.0)
    from model_training.phantom import PhantomConfig

    return gate.held_out_set(cfg, 4, PhantomConfig(matrix=64, fracture_prevalence=0.5))


def _engine(tmp_path, name, onnx_bytes):
    b = load_bundle(write_bundle(tmp_path / name, {"model.onnx": onnx_bytes}))
    return ort.open_engine(b, b.find("onnx"), device="cpu")


def test_held_out_set_has_both_classes(held_out):
    assert len(held_out) == 4
    assert sum(s.fractured for s in held_out) == 2


def test_gate_passes_an_identical_model_and_refuses_a_degraded_one(tmp_path, held_out):
    ref = _engine(tmp_path, "ref", threshold_onnx(dense_label=None))
    same = _engine(tmp_path, "same", threshold_onnx(dense_label=None))
    report = gate.compare(ref, same, held_out)
    assert report.passed and report.max_dice_drop == 0.0 and report.auc_drop == 0.0
    assert report.reference_dice[2] > 0.03  # all bone is called C3: it overlaps the true C3

    worse = _engine(tmp_path, "worse", threshold_onnx(dense_label=None, bone_level=0.62))
    refused = gate.compare(ref, worse, held_out)
    assert not refused.passed
    assert refused.max_dice_drop > gate.MAX_DICE_DROP
    assert refused.candidate_dice[2] < refused.reference_dice[2]


def test_tightened_tolerance_refuses_what_the_default_accepts(tmp_path, held_out):
    ref = _engine(tmp_path, "ref", threshold_onnx(dense_label=None))
    worse = _engine(tmp_path, "worse", threshold_onnx(dense_label=None, bone_level=0.62))
    loose = gate.compare(ref, worse, held_out, max_dice_drop=1.0)
    assert loose.passed and loose.max_dice_drop > 0
    strict = gate.compare(ref, worse, held_out, max_dice_drop=loose.max_dice_drop / 2)
    assert not strict.passed
    assert strict.max_dice_drop == loose.max_dice_drop  # same numbers, stricter judgement


def test_onnx_int8_export_passes_the_gate_and_updates_the_card(onnx_bundle, capsys):
    assert export.main([str(onnx_bundle), "--format", "onnx-int8", *PHANTOM]) == 0
    card = json.loads((onnx_bundle / "model_card.json").read_text())
    entry = card["files"]["model.int8.onnx"]
    assert entry["precision"] == "int8" and entry["accuracy_gate"]["passed"] is True
    assert entry["accuracy_gate"]["max_dice_drop"] <= 0.005
    bundle = load_bundle(onnx_bundle)
    int8 = bundle.find("onnx", "int8")
    bundle.verified_path(int8)  # the sha256 in the card is the file's
    import onnx

    ops = {n.op_type for n in onnx.load(str(bundle.file_path(int8))).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_a_degraded_int8_model_is_refused_and_nothing_changes(onnx_bundle, monkeypatch, capsys):
    def degraded(fp32_path, out_path, slices):
        out_path.write_bytes(threshold_onnx(dense_label=None, bone_level=0.62))
        return out_path

    monkeypatch.setattr(quantize_mod, "quantize_int8", degraded)
    card_before = (onnx_bundle / "model_card.json").read_bytes()
    assert export.main([str(onnx_bundle), "--format", "onnx-int8", *PHANTOM]) == export.EXIT_REFUSED
    assert "refused" in capsys.readouterr().err
    assert (onnx_bundle / "model_card.json").read_bytes() == card_before
    assert not (onnx_bundle / "model.int8.onnx").exists()
    assert not list(onnx_bundle.glob(".export-*"))


def test_tftrt_is_reported_unavailable_on_this_tensorflow(onnx_bundle, capsys):
    ok, why = export.tftrt_support()
    assert not ok and "2.18" in why
    assert export.main([str(onnx_bundle), "--format", "tftrt"]) == export.EXIT_INPUT
    err = capsys.readouterr().err
    assert "TF-TRT" in err and "--format tensorrt" in err


def test_tensorrt_without_tensorrt_exits_2_with_the_reason(onnx_bundle, monkeypatch, capsys):
    from cspine_desktop.inference.backends import trt

    monkeypatch.setattr(trt, "availability", lambda: (False, "TensorRT is not installed"))
    card_before = (onnx_bundle / "model_card.json").read_bytes()
    assert export.main([str(onnx_bundle), "--format", "tensorrt"]) == export.EXIT_INPUT
    assert "TensorRT is not installed" in capsys.readouterr().err
    assert (onnx_bundle / "model_card.json").read_bytes() == card_before


def test_a_folder_without_card_is_an_input_error(tmp_path, capsys):
    assert export.main([str(tmp_path), "--format", "onnx"]) == export.EXIT_INPUT
    assert "model_card.json" in capsys.readouterr().err


def test_a_drop_equal_to_the_allowance_passes_despite_binary_rounding():
    drop = 0.5775 - 0.5725  # two of 400 pairs; 0.005000000000000004 in binary
    assert drop > 0.005
    assert gate.within(drop, 0.005)
    assert not gate.within(0.0075, 0.005)
    assert not gate.within(0.005 + 1e-6, 0.005)


def _vertebra_planes(n_studies=60, seed=5):
    """Stage-2 gate planes without images: 7 vertebrae × 2 planes per study, a third fractured,
    and a reference whose plane scores separate them (AUC ≈ 0.8)."""
    from types import SimpleNamespace

    import numpy as np

    rng = np.random.default_rng(seed)
    study = np.repeat(np.arange(n_studies), 14)
    vertebra = np.tile(np.repeat(np.arange(1, 8), 2), n_studies)
    fractured = np.repeat(rng.random(n_studies * 7) < 1 / 3, 2)
    ref = 1 / (1 + np.exp(-(1.2 * fractured + rng.normal(0, 1, fractured.size))))
    planes = SimpleNamespace(
        x=np.zeros((fractured.size, 1)), y=fractured.astype(np.uint8), fractured=fractured,
        study=study, vertebra=vertebra,
    )  # fmt: skip
    return planes, ref


def test_classifier_gate_passes_a_faithful_copy_with_a_tight_bound():
    import numpy as np

    planes, ref = _vertebra_planes()
    same = ref + np.random.default_rng(0).normal(0, 1e-5, ref.size)
    r = gate.judge_classifier(planes, ref, same, top_k=2, seed=0, n_studies=60)
    assert r.passed and r.auc_drop <= 0.005 and r.drop_upper_95 <= 0.005
    assert r.reference_within_level_auc > 0.7 and r.reference_vertebra_auc > 0.7


def test_classifier_gate_refuses_scores_that_reorder_vertebrae_despite_a_small_point_drop():
    """The failure the 16-study gate let through: a noisy copy whose point drops happen to be
    small on the gate's studies. Among noisy copies (logit noise σ = 0.3) the first whose point
    drops all stay ≤ 0.005 is taken; the paired bootstrap still sees how far it reorders the
    vertebrae and refuses it."""
    import numpy as np

    planes, ref = _vertebra_planes(n_studies=16)
    logit = np.log(ref / (1 - ref))
    lucky = None
    for k in range(100):
        noise = np.random.default_rng(100 + k).normal(0, 0.3, ref.size)
        cand = 1 / (1 + np.exp(-(logit + noise)))
        point = gate.judge_classifier(planes, ref, cand, top_k=2, seed=0, n_studies=16, rounds=0)
        if point.passed:  # no bootstrap rounds: the point drops alone decide, as before
            lucky = cand
            break
    assert lucky is not None, "no noisy copy with small point drops: the premise changed"
    r = gate.judge_classifier(planes, ref, lucky, top_k=2, seed=0, n_studies=16)
    assert r.auc_drop <= 0.005
    assert r.drop_upper_95 > 0.02 and not r.passed
