"""A shipped ONNX file's weights back into Keras, to fine-tune the shipped model.

The model here has the layer patterns of the DenseNet121 U-Net that tf2onnx rewrites: a
convolution followed by BatchNorm (folded into the convolution), a pre-activation BatchNorm
(left as Mul + Add, with the Add's constant renamed), a convolution with a bias and a Dense
head. It is exported by the same function as the shipped model.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from model_training.deploy.onnx_export import export_onnx
from model_training.model.from_onnx import OnnxWeightsError, load_onnx_weights, unfold_batchnorm

SIZE, CH = 16, 3


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    image = keras.Input((SIZE, SIZE, CH), name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(image)
    x = layers.BatchNormalization(name="stem_bn")(x)  # after a convolution: folded
    x = layers.Activation("relu")(x)
    y = layers.BatchNormalization(name="pre_bn")(x)  # before ReLU + conv: Mul + Add
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(8, 1, use_bias=False, name="block_conv")(y)
    x = layers.Concatenate()([x, y])
    seg = layers.Conv2D(8, 3, padding="same", name="vertebrae_logits")(x)
    seg = layers.Activation("softmax", name="vertebrae")(seg)
    frac = layers.Conv2D(1, 1, name="fracture_map_logits")(x)
    frac = layers.Activation("sigmoid", name="fracture_map")(frac)
    c = layers.GlobalAveragePooling2D()(x)
    c = layers.Dense(7, name="fracture_cls_logits")(c)
    cls = layers.Activation("sigmoid", name="fracture_cls")(c)
    model = keras.Model(
        image, {"vertebrae": seg, "fracture_map": frac, "fracture_cls": cls}, name="m"
    )
    # moving statistics far from 0/1, so that folding them matters; biases not zero
    rng = np.random.default_rng(seed)
    for ly in model.layers:
        if isinstance(ly, (layers.Conv2D, layers.Dense)) and ly.use_bias:
            k, b = ly.get_weights()
            ly.set_weights([k, rng.normal(0, 0.3, b.shape)])
        if isinstance(ly, layers.BatchNormalization):
            c_ = ly.get_weights()[0].shape[0]
            ly.set_weights(
                [
                    rng.uniform(0.5, 2.0, c_),
                    rng.normal(0, 0.5, c_),
                    rng.normal(0.3, 0.5, c_),
                    rng.uniform(0.2, 3.0, c_),
                ]
            )
    return model


def _x(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.2, 1.0, (n, SIZE, SIZE, CH)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    original = _model(1)
    path = export_onnx(original, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return original, path


def _outputs(model: keras.Model, x: np.ndarray, training: bool = False) -> dict:
    return {k: np.asarray(v) for k, v in model({"image": x}, training=training).items()}


def test_the_onnx_weights_reproduce_the_model_in_keras(exported):
    original, path = exported
    fresh = _model(2)  # other random weights
    before = _outputs(fresh, _x())
    ref = _outputs(original, _x())
    assert max(np.abs(before[k] - ref[k]).max() for k in ref) > 1e-2
    assert load_onnx_weights(fresh, path) == 7  # 3 conv + 2 BN + 1 head conv + 1 dense
    got = _outputs(fresh, _x())
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=2e-5)


def test_unfolded_batchnorm_keeps_inference_and_makes_training_mode_agree(exported):
    _, path = exported
    model = _model(3)
    load_onnx_weights(model, path)
    # (a training-mode call also nudges the moving statistics: the reference comes after it)
    folded_train = _outputs(model, _x(8, seed=9), training=True)
    ref = _outputs(model, _x())
    batches = [(_x(8, seed=s),) for s in range(4)]
    assert unfold_batchnorm(model, batches) == 4
    after = _outputs(model, _x())
    for k in ref:
        np.testing.assert_allclose(after[k], ref[k], atol=2e-5)
    # training mode (batch statistics) now behaves like inference; folded, it did not
    inf = _outputs(model, _x(8, seed=9))
    train = _outputs(model, _x(8, seed=9), training=True)
    err_unfolded = np.abs(train["vertebrae"] - inf["vertebrae"]).mean()
    err_folded = np.abs(folded_train["vertebrae"] - inf["vertebrae"]).mean()
    assert err_unfolded < 0.5 * err_folded, (err_unfolded, err_folded)
    bn = model.get_layer("pre_bn").get_weights()
    assert np.abs(bn[2]).max() > 0.05  # real moving mean, not the folded 0


def test_a_model_that_does_not_fit_is_refused_with_the_layers_named(exported):
    _, path = exported
    image = keras.Input((SIZE, SIZE, CH), name="image")
    other = keras.Model(image, layers.Conv2D(4, 3, name="not_there")(image))
    with pytest.raises(OnnxWeightsError, match="not_there"):
        load_onnx_weights(other, path)


def test_training_can_start_from_a_bundle_onnx_file(exported):
    """``--init-weights model.onnx``: the fit loop's loader takes the weights and measures the
    BatchNorm statistics on the training batches it is given."""
    from model_training.model.fit import load_init_weights

    original, path = exported
    model = _model(4)
    load_init_weights(model, path, [(_x(8, seed=s),) for s in range(3)])
    np.testing.assert_allclose(
        _outputs(model, _x())["vertebrae"], _outputs(original, _x())["vertebrae"], atol=1e-4
    )
    assert np.abs(model.get_layer("pre_bn").get_weights()[2]).max() > 0.05
