"""Data sets: uint8 images (N, H, W, C) and integer labels, whatever their source, and what nodekd knows of each.

`load_dataset(name)` takes a registered name (`DATASETS`) or `folder:PATH`. Each registered data set is one
`DataSetInfo` record: its loader, sizes, augmentation, default epochs and student budget, and the paper's budget;
adding a data set is a loader and one `register_dataset` call. Nothing here imports TensorFlow: CIFAR-10 and SVHN come
from a uint8 cache that is written once (see `nodekd_cli.data.tfds`).
"""

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nodekd_cli.data.dataset import Dataset  # noqa: F401  (the type every loader returns)
from nodekd_cli.errors import UserError


@dataclass(frozen=True)
class Augmentation:
    """Random crop after zero padding by `crop_padding` pixels, and a random horizontal flip."""

    crop_padding: int
    flip: bool


@dataclass(frozen=True)
class DataSetInfo:
    """What the rest of nodekd asks about a data set. `student` holds the student defaults that differ from the
    paper's (batch 128, 512 channels, 2 stride-2 convolutions, lr 0.001): `batch_size`, `channels`, `downsample` and
    `sgd_lr` (the rate of students trained with SGD)."""

    name: str
    load: Callable  # (data_dir=None, manual_dir=None) -> Dataset
    sizes: tuple  # (training images, test images, pixels per image), for the cost model and budgets
    augmentation: Augmentation
    teacher_epochs: int
    student_epochs: int
    paper_budget: int | None = None  # training images the paper's students saw (epochs x images), or None
    paper_results: str | None = None  # the key of the paper's tables this data set's runs are set beside
    student: dict = field(default_factory=dict)


def _load_digits(**_):
    from nodekd_cli.data import digits

    return digits.load()


def _load_cifar10(data_dir=None, manual_dir=None):
    from nodekd_cli.data import tfds

    return tfds.load("cifar10", data_dir=data_dir, manual_dir=manual_dir)


def _load_svhn(data_dir=None, manual_dir=None):
    from nodekd_cli.data import tfds

    return tfds.load("svhn", data_dir=data_dir, manual_dir=manual_dir)


def _load_folder(**_):
    raise TypeError("a folder data set is loaded by its path (`load_dataset`)")


DATASETS = {}
FOLDER_PREFIX = "folder:"


def register_dataset(info):
    """Adds `info` (a `DataSetInfo`) to `DATASETS`, replacing one of the same name."""
    DATASETS[info.name] = info
    return info


# The paper trains on CIFAR-10 and SVHN with random crops and flips: its students 200 epochs of CIFAR-10's 50,000
# images and 40 of SVHN's 73,257, its teachers 300 and 40. digits (scikit-learn's 8x8 images, not mirror-symmetric:
# a 1-pixel crop, no flip) runs the whole study on a laptop CPU: 32 channels, no downsampling, batch 32 (1,437 images
# make only 12 steps an epoch at 128) and SGD at 0.01 (0.001 took 120 steps to 16%; 0.01 reached 97.2% in 20 epochs).
for _info in (
    DataSetInfo(
        "digits",
        _load_digits,
        (1437, 360, 64),
        Augmentation(1, False),
        teacher_epochs=15,
        student_epochs=20,
        student={"batch_size": 32, "channels": 32, "downsample": 0, "sgd_lr": 1e-2},
    ),
    DataSetInfo(
        "cifar10",
        _load_cifar10,
        (50000, 10000, 1024),
        Augmentation(4, True),
        teacher_epochs=300,
        student_epochs=200,
        paper_budget=200 * 50000,
        paper_results="cifar10",
    ),
    DataSetInfo(
        "svhn",
        _load_svhn,
        (73257, 26032, 1024),
        Augmentation(4, True),
        teacher_epochs=40,
        student_epochs=40,
        paper_budget=40 * 73257,
        paper_results="svhn",
    ),
):
    register_dataset(_info)
# A folder of images (`folder:PATH`, class folders of PNG or JPEG files): set beside CIFAR-10, whose images it most
# often holds; its sizes are CIFAR-10's for the cost model until it is loaded.
FOLDER = DataSetInfo(
    "folder",
    _load_folder,
    (50000, 10000, 1024),
    Augmentation(4, True),
    teacher_epochs=300,
    student_epochs=200,
    paper_budget=200 * 50000,
    paper_results="cifar10",
)


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


def info(name):
    """The `DataSetInfo` of the data set `name` (a registered name or `folder:PATH`)."""
    family = check_name(name)
    return FOLDER if family == "folder" else DATASETS[family]


def default_augmentation(name):
    return info(name).augmentation


def load_dataset(name, *, data_dir=None, manual_dir=None):
    """Loads the data set `name`: a key of `DATASETS` or `folder:PATH`."""
    family = check_name(name)
    if family == "folder":
        from nodekd_cli.data import folder

        return folder.load(name[len(FOLDER_PREFIX) :], name=name)
    return DATASETS[name].load(data_dir=data_dir, manual_dir=manual_dir)


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
