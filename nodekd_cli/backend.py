"""Selects Keras's torch backend and the device, before Keras is imported anywhere."""

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
        from keras.src.backend.torch.core import get_device

        if str(get_device()) != device and not str(get_device()).startswith(device):
            raise UserError(f"Keras already runs on {get_device()} in this process; it cannot move to {device}.")
    else:
        os.environ["KERAS_TORCH_DEVICE"] = device
    return device
