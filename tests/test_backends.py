"""The teachers are Keras 3 multi-backend: every one, built under JAX, gives the logits of its torch twin.

The ODE student stays torch-only: its layer calls torchdiffeq, a PyTorch library (docs/models.md)."""

import os
import subprocess
import sys

import numpy as np

import models

MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]

UNDER_JAX = """
import sys
import numpy as np
import keras
import models

assert keras.backend.backend() == "jax", keras.backend.backend()
given = np.load(sys.argv[1])
logits = {}
for name in models.TEACHERS:
    model = models.build_teacher(name, mean=%r, std=%r)
    model.set_weights([given[f"{name}/{i}"] for i in range(int(given[f"{name}/count"]))])
    logits[name] = np.asarray(model(given["x"], training=False))
np.savez(sys.argv[2], **logits)
""" % (MEAN, STD)


def test_every_teacher_gives_the_same_logits_under_jax_as_under_torch(tmp_path):
    import keras

    assert keras.backend.backend() == "torch"
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3), dtype=np.float32)
    arrays, expected = {"x": x}, {}
    for name in models.TEACHERS:
        model = models.build_teacher(name, mean=MEAN, std=STD)  # channels-first under torch
        weights = []
        for variable in model.weights:
            value = keras.ops.convert_to_numpy(variable.value)
            if "variance" in variable.path:  # BatchNorm statistics away from their initial 0 and 1
                value = rng.uniform(0.5, 1.5, value.shape)
            elif variable.trainable or "mean" in variable.path:
                value = value + rng.normal(0.0, 0.05, value.shape)
            weights.append(value.astype(np.float32))
        model.set_weights(weights)
        expected[name] = keras.ops.convert_to_numpy(model(x, training=False))
        arrays |= {f"{name}/{i}": w for i, w in enumerate(weights)} | {f"{name}/count": len(weights)}
    np.savez(tmp_path / "given.npz", **arrays)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-c", UNDER_JAX, str(tmp_path / "given.npz"), str(tmp_path / "jax.npz")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = np.load(tmp_path / "jax.npz")
    for name in models.TEACHERS:
        assert expected[name].std() > 0.1  # logits that differ between images and classes
        np.testing.assert_allclose(found[name], expected[name], atol=1e-4, rtol=1e-4, err_msg=name)
