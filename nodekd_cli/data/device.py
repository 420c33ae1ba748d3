"""The training split on the training device as one uint8 tensor; batches are index draws, augmented there.

No per-sample Python: a batch is one gather, one pad, one batched crop (a gather with per-image offsets) and one
batched flip, all on the device. Every epoch draws its order and augmentation from a generator seeded by
(seed, epoch), so a resumed run sees the batches an uninterrupted one would have seen.
"""

import math

import keras
import torch
import torch.nn.functional as F


def to_device(array, device):
    return torch.as_tensor(array).to(device)


def pixels(x_uint8):
    """uint8 images (any device) to float32 pixels in [0, 1]."""
    return x_uint8.to(torch.float32).div_(255.0)


def augment(x, crop_padding, flip, generator):
    """Random crop after zero padding and random horizontal flip of a batch (N, H, W, C)."""
    n, h, w, _ = x.shape
    if crop_padding > 0:
        p = crop_padding
        padded = F.pad(x, (0, 0, p, p, p, p))
        offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=x.device)
        rows = offsets[0, :, None] + torch.arange(h, device=x.device)
        cols = offsets[1, :, None] + torch.arange(w, device=x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded[batch, rows[:, :, None], cols[:, None, :]]
    if flip:
        mirror = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(2), x)
    return x


def epoch_generator(seed, epoch, device):
    generator = torch.Generator(device=device)
    generator.manual_seed(seed * 100_003 + epoch)
    return generator


class TrainBatches(keras.utils.PyDataset):
    """Shuffled, augmented training batches of (pixels in [0, 1], labels) for `keras.Model.fit`.

    `set_epoch(e)` (called by the training callback when epoch e begins) fixes the order and augmentation. With
    `extra` (per-example values, e.g. a teacher's precomputed logits), a batch is ((pixels, extra), labels).
    """

    def __init__(self, x, y, batch_size, *, seed, crop_padding, flip, extra=None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.extra = x, y, extra
        self.batch_size = batch_size
        self.seed, self.crop_padding, self.flip = seed, crop_padding, flip
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.generator = epoch_generator(self.seed, epoch, self.x.device)
        self.order = torch.randperm(len(self.x), generator=self.generator, device=self.x.device)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        indices = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x = augment(pixels(self.x[indices]), self.crop_padding, self.flip, self.generator)
        if self.extra is not None:
            return (x, self.extra[indices]), self.y[indices]
        return x, self.y[indices]
