"""Data sets: uint8 images (N, H, W, C) and integer labels, whatever their source.

`load_dataset(name)` takes a registered name (`DATASETS`) or `folder:PATH`. Nothing here imports TensorFlow:
CIFAR-10 and SVHN come from a uint8 cache that is written once (see `nodekd_cli.data.tfds`).
"""

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodekd_cli.data.dataset import Dataset  # noqa: F401  (the type every loader returns)
from nodekd_cli.errors import UserError


@dataclass(frozen=True)
class Augmentation:
    """Random crop after zero padding by `crop_padding` pixels, and a random horizontal flip."""

    crop_padding: int
    flip: bool


# (training images, test images, pixels per image) of the named data sets, for the cost model and budgets.
SIZES = {"digits": (1437, 360, 64), "cifar10": (50000, 10000, 1024), "svhn": (73257, 26032, 1024)}


def _load_digits(**_):
    from nodekd_cli.data import digits

    return digits.load()


def _load_cifar10(data_dir=None, manual_dir=None):
    from nodekd_cli.data import tfds

    return tfds.load("cifar10", data_dir=data_dir, manual_dir=manual_dir)


def _load_svhn(data_dir=None, manual_dir=None):
    from nodekd_cli.data import tfds

    return tfds.load("svhn", data_dir=data_dir, manual_dir=manual_dir)


DATASETS = {"digits": _load_digits, "cifar10": _load_cifar10, "svhn": _load_svhn}
FOLDER_PREFIX = "folder:"

# Per-data-set augmentation defaults. The paper uses random crops and flips on both CIFAR-10 and SVHN; digits are
# 8x8 and not mirror-symmetric, so they get a 1-pixel crop and no flip.
AUGMENTATION = {
    "digits": Augmentation(crop_padding=1, flip=False),
    "cifar10": Augmentation(crop_padding=4, flip=True),
    "svhn": Augmentation(crop_padding=4, flip=True),
    "folder": Augmentation(crop_padding=4, flip=True),
}


def slug(name):
    """The data set's name in folder names: `folder:PATH` becomes `folder-<last part of PATH>`."""
    if name.startswith(FOLDER_PREFIX):
        return "folder-" + Path(name[len(FOLDER_PREFIX) :]).name
    return name


def portable_names(names):
    """Each data set's name in reports, tables and figure file names, by its name as recorded in config.json: a
    registered name stays; `folder:PATH` becomes `folder:<last part of PATH>`, so that a report reads the same on
    every machine. Two folders are the same data set when their recorded paths are the same after normalisation;
    different paths that end in the same name are told apart, never merged, by the first 6 hex digits of the SHA-256
    of their normalised paths (`folder:cifar10-jpeg@3fa2c1`)."""
    paths = {n: os.path.normpath(n[len(FOLDER_PREFIX) :]) for n in names if n.startswith(FOLDER_PREFIX)}
    short = {n: FOLDER_PREFIX + Path(path).name for n, path in paths.items()}
    portable = {n: n for n in names if n not in paths}
    for name, path in paths.items():
        shared = {paths[other] for other in paths if short[other] == short[name]}
        digest = hashlib.sha256(path.encode()).hexdigest()[:6]
        portable[name] = short[name] if len(shared) == 1 else f"{short[name]}@{digest}"
    return portable


def dataset_names():
    return [*DATASETS, f"{FOLDER_PREFIX}PATH"]


def check_name(name):
    """Raises `UserError` unless `name` is a registered data set or `folder:PATH`; returns its family."""
    if name.startswith(FOLDER_PREFIX):
        if not name[len(FOLDER_PREFIX) :]:
            raise UserError("The data set 'folder:' needs a path, as in --dataset folder:/data/cifar10-jpeg.")
        return "folder"
    if name not in DATASETS:
        raise UserError(f"Unknown data set {name!r}; choose one of: {', '.join(dataset_names())}.")
    return name


def default_augmentation(name):
    return AUGMENTATION[check_name(name)]


def load_dataset(name, *, data_dir=None, manual_dir=None):
    """Loads the data set `name`: a key of `DATASETS` or `folder:PATH`."""
    family = check_name(name)
    if family == "folder":
        from nodekd_cli.data import folder

        return folder.load(name[len(FOLDER_PREFIX) :], name=name)
    return DATASETS[name](data_dir=data_dir, manual_dir=manual_dir)


def sample_indices(labels, n, seed):
    """Sorted indices of `n` of `labels`: each class gets its share of `n` (largest remainders first, ties to the
    smaller class label), its images drawn with `seed`. Every index when `n` is None or not below len(labels). A
    data set stored class by class (a folder data set) is thus attacked on all its classes, not the first few."""
    labels = np.asarray(labels)
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * n / len(labels)
    take = np.floor(share).astype(int)
    take[np.argsort(take - share, kind="stable")[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def train_subset(dataset, n, seed=0):
    """`dataset` with `n` of its training images, each class in proportion (`sample_indices`); all when `n` is None."""
    if n is None or n >= len(dataset.y_train):
        return dataset
    chosen = sample_indices(dataset.y_train, n, seed)
    return dataclasses.replace(dataset, x_train=dataset.x_train[chosen], y_train=dataset.y_train[chosen])
