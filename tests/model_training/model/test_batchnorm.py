"""Precise BatchNorm statistics make inference-mode outputs match training-mode outputs."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from model_training.model.batchnorm import recalibrate_batchnorm


def _tiny_bn_model() -> keras.Model:
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(3, 1)(x)
    out = keras.layers.BatchNormalization(name="bn2")(x)
    return keras.Model(inp, out)


def test_recalibration_replaces_stale_statistics_with_the_data_average():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 8, 8, 2)) * 3.0 + 5.0).astype(np.float32)
    model = _tiny_bn_model()
    # stale statistics, as after weights moved faster than the moving averages
    for ly in model.layers:
        if isinstance(ly, keras.layers.BatchNormalization):
            ly.moving_mean.assign(np.full(ly.moving_mean.shape, 40.0, np.float32))
            ly.moving_variance.assign(np.full(ly.moving_variance.shape, 0.01, np.float32))
    before = np.abs(np.asarray(model(x, training=False))).mean()
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(64))).batch(16)
    assert recalibrate_batchnorm(model, ds, steps=4) == 4
    after_inf = np.asarray(model(x, training=False))
    after_train = np.asarray(model(x, training=True))
    # normalised outputs: near zero mean, unit variance, close to the batch-statistics output
    assert before > 10 * np.abs(after_inf).mean()
    np.testing.assert_allclose(after_inf.mean(axis=(0, 1, 2)), 0.0, atol=0.1)
    np.testing.assert_allclose(after_inf, after_train, atol=0.25)
    # the layer's own momentum is restored
    assert model.get_layer("bn2").momentum == 0.99


def test_no_batchnorm_or_no_steps_is_a_no_op():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), np.float32), np.zeros(4))).batch(2)
    assert recalibrate_batchnorm(model, ds, steps=5) == 0
    assert recalibrate_batchnorm(_tiny_bn_model(), ds, steps=0) == 0


def test_recalibration_takes_batches_from_a_plain_generator():
    """No tf.data needed: the same loop trains on Keras' JAX and PyTorch backends."""
    rng = np.random.default_rng(1)
    model = _tiny_bn_model()

    def batches():
        while True:  # endless, like a repeated training pipeline
            yield (rng.normal(size=(8, 8, 8, 2)) * 2.0 + 3.0).astype(np.float32), None

    assert recalibrate_batchnorm(model, batches(), steps=3) == 3
    assert float(np.abs(np.asarray(model.get_layer("bn2").moving_mean)).max()) > 0
