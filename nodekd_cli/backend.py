"""Selects Keras's torch backend and the device, before Keras is imported anywhere; the one place that reaches
into Keras's internals (`keras.src`), for what its public API does not offer: the torch device Keras computes on,
and keeping TensorFlow out of the process."""

import os

DEVICES = ("auto", "cpu", "cuda", "mps")


def select(device="auto"):
    """Points Keras at the torch backend on `device` and returns the device used ("cpu", "cuda", ...).

    Call it before anything imports Keras: Keras fixes its device when it is imported.
    """
    import sys

    from nodekd_cli.errors import UserError

    if device not in DEVICES and not device.startswith("cuda:"):
        raise UserError(f"Unknown device {device!r}; choose one of: {', '.join(DEVICES)} or cuda:N.")
    os.environ["KERAS_BACKEND"] = "torch"
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} was asked for but PyTorch sees no CUDA GPU; use --device cpu.")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps was asked for but PyTorch sees no Apple GPU; use --device cpu.")
    if "keras" in sys.modules:
        current = str(keras_device())
        if current != device and not current.startswith(device):
            raise UserError(f"Keras already runs on {current} in this process; it cannot move to {device}.")
    else:
        os.environ["KERAS_TORCH_DEVICE"] = device
    _keep_tensorflow_out()
    return device


def _keep_tensorflow_out():
    """Keras imports TensorFlow, when it is installed (the `tfds` extra), the first time it asks whether TensorFlow
    is there: to seed it, to serialize its shapes. nodekd never needs it in the process that trains or attacks (TFDS
    runs in a child process), where it costs seconds and prints its logs; unless something imported it already,
    Keras is told it is absent."""
    import sys

    if "tensorflow" not in sys.modules:
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False


def keras_device():
    """The torch device Keras places its tensors on (Keras 3 keeps it in its torch backend, not in its API)."""
    from keras.src.backend.torch.core import get_device

    return get_device()
