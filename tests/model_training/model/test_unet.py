"""The network builds from its config alone, with the named outputs and skip layers."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from model_training.model import (
    ModelConfig,
    TrainConfigError,
    build_model,
    encoder_layers,
    get_backbone,
    set_encoder_trainable,
)


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(ModelConfig(input_size=64, channels=4, encoder_weights=None))


def test_outputs_have_contract_names_and_shapes(tiny_model):
    x = np.random.default_rng(0).random((2, 64, 64, 4), dtype=np.float32)
    out = tiny_model(x, training=False)
    assert set(out) == {"vertebrae", "fracture_map", "fracture_cls"}
    assert tuple(out["vertebrae"].shape) == (2, 64, 64, 8)
    assert tuple(out["fracture_map"].shape) == (2, 64, 64, 1)
    assert tuple(out["fracture_cls"].shape) == (2, 7)
    v = np.asarray(out["vertebrae"])
    np.testing.assert_allclose(v.sum(-1), 1.0, atol=1e-4)  # softmax over 8 classes
    for name in ("fracture_map", "fracture_cls"):
        a = np.asarray(out[name])
        assert a.min() >= 0.0 and a.max() <= 1.0
    assert tiny_model.input.name == "image"


def test_skip_layers_are_found_by_name_at_halving_resolutions(tiny_model):
    bb = get_backbone("densenet121")
    sizes = [tiny_model.get_layer(n).output.shape[1] for n in (*bb.skips, bb.bottleneck)]
    assert sizes == [4, 8, 16, 32, 2]  # 64 px input: S/16, S/8, S/4, S/2 and S/32
    for stage in range(1, 6):
        assert tiny_model.get_layer(f"decoder_stage{stage}b_relu").output.shape[1] == 2 ** (
            stage + 1
        )


def test_adapter_only_when_channels_differ_from_three(tiny_model):
    assert tiny_model.get_layer("input_adapter").output.shape[-1] == 3
    rgb = build_model(ModelConfig(input_size=32, channels=3))
    assert "input_adapter" not in [ly.name for ly in rgb.layers]


def test_outputs_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        m = build_model(ModelConfig(input_size=32))
        out = m(np.zeros((1, 32, 32, 4), np.float32))
        assert {keras.backend.standardize_dtype(t.dtype) for t in out.values()} == {"float32"}
        assert m.get_layer("decoder_stage1a_conv").compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_freezing_touches_the_encoder_only(tiny_model):
    enc = encoder_layers(tiny_model)
    assert any(ly.name == "conv1_conv" for ly in enc)
    assert not any(ly.name.startswith(("decoder_", "input_adapter", "vertebrae")) for ly in enc)
    set_encoder_trainable(tiny_model, False)
    try:
        frozen = {w.path for ly in enc for w in ly.weights}
        trainable = {w.path for w in tiny_model.trainable_weights}
        assert not frozen & trainable
        assert any("decoder_stage1a_conv" in p for p in trainable)
    finally:
        set_encoder_trainable(tiny_model, True)


def test_imagenet_never_downloads_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache
    with caplog.at_level(logging.WARNING):
        m = build_model(ModelConfig(input_size=32, encoder_weights="imagenet"))
    assert m is not None
    assert "trains from scratch" in caplog.text
    assert not any(tmp_path.rglob("*.h5"))


def test_encoder_weights_from_a_local_file_are_loaded(tmp_path):
    donor = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "enc.weights.h5"
    donor.save_weights(str(path))
    m = build_model(ModelConfig(input_size=32, encoder_weights=str(path)))
    np.testing.assert_array_equal(
        m.get_layer("conv1_conv").get_weights()[0], donor.get_layer("conv1_conv").get_weights()[0]
    )


def test_missing_weights_file_and_bad_sizes_are_plain_errors(tmp_path):
    with pytest.raises(TrainConfigError, match="does not exist"):
        build_model(ModelConfig(input_size=32, encoder_weights=str(tmp_path / "nope.h5")))
    with pytest.raises(TrainConfigError, match="multiple of 32"):
        ModelConfig(input_size=100)


def test_init_weights_start_from_a_whole_earlier_model(tmp_path, tiny_model):
    from model_training.model.fit import load_init_weights

    path = tmp_path / "earlier.keras"
    tiny_model.save(str(path))
    fresh = build_model(ModelConfig(input_size=64, channels=4, encoder_weights=None))
    name = "fracture_cls_logits"
    assert not np.array_equal(
        fresh.get_layer(name).get_weights()[0], tiny_model.get_layer(name).get_weights()[0]
    )
    load_init_weights(fresh, path)
    # every weight, not a sample (Keras warns about "nested containers" it does not find here)
    assert len(fresh.weights) == len(tiny_model.weights)
    for a, b in zip(fresh.weights, tiny_model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    other = build_model(ModelConfig(input_size=64, channels=3, encoder_weights=None))
    with pytest.raises(TrainConfigError, match="do not fit"):
        load_init_weights(other, path)
