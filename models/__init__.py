"""nodekd's Keras 3 networks and layers.

Importing this package selects Keras's torch backend (unless ``KERAS_BACKEND`` already names another one) and
registers every custom layer, so ``keras.saving.load_model`` can rebuild a saved nodekd model afterwards.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from models.layers import BatchNorm, OptionAShortcut, PixelNormalization
from models.resnet import TEACHERS, BasicBlock, build_teacher, cifar_resnet

__all__ = [
    "TEACHERS",
    "BasicBlock",
    "BatchNorm",
    "OptionAShortcut",
    "PixelNormalization",
    "build_teacher",
    "cifar_resnet",
]
