"""Every nodekd layer, checked the same way: config round trip, and save/load in a model with equal outputs."""

import keras
import numpy as np
import pytest

import models

LAYERS = [
    (lambda: models.OptionAShortcut(pad=4), (2, 8, 8, 8)),
    (lambda: models.PixelNormalization([0.1, 0.2], [0.5, 2.0]), (2, 3, 3, 2)),
    (lambda: models.GroupNorm(groups=2, axis=1), (2, 4, 3, 3)),
    (lambda: models.BatchNorm(axis=1, momentum=0.9, epsilon=1e-5), (2, 3, 4, 4)),
    (lambda: models.BasicBlock(32, stride=2, data_format="channels_first"), (2, 16, 8, 8)),
    (lambda: models.ConvODEFunc(8, num_layers=2), (2, 8, 4, 4)),
    (lambda: models.ConvODEFunc(8, time_input="scaled", horizon=100.0, norm="post", init="horizon"), (2, 8, 4, 4)),
    (lambda: models.ConvODEFunc(8, num_layers=3, time_input="none", init="identity"), (2, 8, 4, 4)),
    (lambda: models.ConvODEFunc(8, time_input="none", memory_format="channels_last"), (2, 8, 4, 4)),
    (lambda: models.ODEBlock(models.ConvODEFunc(8), t1=3.0, method="rk4", step_size=0.5, adjoint=True), (2, 8, 4, 4)),
]


@pytest.mark.parametrize("make, shape", LAYERS, ids=lambda v: type(v()).__name__ if callable(v) else "")
def test_config_round_trip_and_save_load(make, shape, tmp_path):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    layer = make()
    y = keras.ops.convert_to_numpy(layer(x))

    clone = layer.__class__.from_config(layer.get_config())
    clone.build(shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), y, atol=1e-5)
    assert clone.get_config() == layer.get_config()

    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), y, atol=1e-5)
