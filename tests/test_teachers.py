"""The teachers: parameter counts of He et al.'s CIFAR ResNets, forward passes, layers, serialization."""

import keras
import numpy as np
import pytest

import models

# Trainable parameters for 3 input channels and 10 classes (akamaster/pytorch_resnet_cifar10, REFERENCE.md).
PARAMS = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018, "resnet110": 1_727_962}


def trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_registry_holds_the_papers_teachers():
    assert sorted(models.TEACHERS) == sorted(PARAMS)


@pytest.mark.parametrize("name", sorted(models.TEACHERS))
def test_parameter_count(name):
    assert trainable(models.build_teacher(name)) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(models.TEACHERS))
def test_forward_pass(name):
    model = models.build_teacher(name, mean=[0.5] * 3, std=[0.25] * 3)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert logits.shape == (2, 10)
    assert np.isfinite(logits).all()


def test_parameter_count_follows_channels_and_classes():
    # Only the stem (3x3 kernels) and the head (64 x classes + classes) change.
    model = models.build_teacher("resnet20", input_shape=(8, 8, 1), num_classes=7)
    assert trainable(model) == PARAMS["resnet20"] - 16 * 9 * 2 - (64 + 1) * 3


def test_unknown_teacher_lists_the_valid_names():
    with pytest.raises(ValueError, match="resnet20, resnet32"):
        models.build_teacher("resnet18")


def test_channels_first_and_last_compute_the_same_function():
    first = models.build_teacher("resnet20", data_format="channels_first")
    last = models.build_teacher("resnet20", data_format="channels_last")
    last.set_weights(first.get_weights())
    x = np.random.default_rng(1).random((4, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(first(x, training=False)),
        keras.ops.convert_to_numpy(last(x, training=False)),
        atol=1e-4,
    )


def test_pixel_normalization_against_numpy():
    x = np.random.default_rng(6).random((2, 3, 3, 2), dtype=np.float32)
    y = keras.ops.convert_to_numpy(models.PixelNormalization([0.1, 0.2], [0.5, 2.0])(x))
    np.testing.assert_allclose(y, (x - [0.1, 0.2]) / [0.5, 2.0], rtol=1e-6)


def test_option_a_shortcut_against_numpy():
    x = np.random.default_rng(2).random((2, 6, 6, 4), dtype=np.float32)
    y = keras.ops.convert_to_numpy(models.OptionAShortcut(pad=2)(x))
    expected = np.zeros((2, 3, 3, 8), np.float32)
    expected[..., 2:6] = x[:, ::2, ::2, :]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("training", [False, True])
def test_fused_batch_norm_matches_keras_batch_normalization(training):
    x = np.random.default_rng(3).normal(2.0, 3.0, (8, 5, 4, 4)).astype(np.float32)
    fused = models.BatchNorm(axis=1, momentum=0.9, epsilon=1e-5)
    generic = keras.layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5)
    fused.build(x.shape)
    generic.build(x.shape)
    weights = [np.linspace(0.5, 1.5, 5), np.linspace(-1, 1, 5), np.linspace(0, 1, 5), np.linspace(1, 2, 5)]
    fused.set_weights([w.astype(np.float32) for w in weights])
    generic.set_weights([w.astype(np.float32) for w in weights])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fused(x, training=training)),
        keras.ops.convert_to_numpy(generic(x, training=training)),
        rtol=1e-4,
        atol=1e-4,
    )
    # The moving mean follows the same update; the moving variance uses the unbiased batch variance (PyTorch's).
    np.testing.assert_allclose(fused.moving_mean.numpy(), generic.moving_mean.numpy(), rtol=1e-5)
    if training:
        n = x.shape[0] * x.shape[2] * x.shape[3]
        batch_variance = x.transpose(1, 0, 2, 3).reshape(5, -1).var(axis=1)
        expected = 0.9 * weights[3] + 0.1 * batch_variance * n / (n - 1)
        np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-4)


def test_fused_group_norm_matches_keras_group_normalization():
    x = np.random.default_rng(7).normal(1.0, 2.0, (3, 8, 4, 4)).astype(np.float32)
    fused = models.GroupNorm(groups=2, axis=1, epsilon=1e-5)
    generic = keras.layers.GroupNormalization(groups=2, axis=1, epsilon=1e-5)
    for layer in (fused, generic):
        layer.build(x.shape)
        layer.set_weights([np.linspace(0.5, 1.5, 8, dtype=np.float32), np.linspace(-1, 1, 8, dtype=np.float32)])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fused(x)), keras.ops.convert_to_numpy(generic(x)), rtol=1e-4, atol=1e-4
    )


def test_saved_teacher_loads_with_equal_outputs(tmp_path):
    model = models.build_teacher("resnet20", input_shape=(8, 8, 1), mean=[0.3], std=[0.4])
    x = np.random.default_rng(5).random((3, 8, 8, 1), dtype=np.float32)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        atol=1e-6,
    )
