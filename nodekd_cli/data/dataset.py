"""The data set every loader returns: uint8 images (N, H, W, C) and integer labels, split into train and test."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list
    skipped: int = 0  # files of a folder data set that are no images (hidden ones, other suffixes), left out

    @property
    def image_shape(self):
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def num_classes(self):
        return len(self.classes)

    def channel_stats(self):
        """Per-channel mean and std of the training pixels in [0, 1]: the model's input normalization."""
        pixels = self.x_train.reshape(-1, self.x_train.shape[-1]).astype(np.float64) / 255.0
        return pixels.mean(axis=0).tolist(), pixels.std(axis=0).tolist()
