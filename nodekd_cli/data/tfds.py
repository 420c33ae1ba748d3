"""CIFAR-10 and SVHN: prepared once into a compact uint8 cache, read from the cache from then on.

Where the cache comes from, in this order:

1. `<data_dir>/nodekd/<name>.npz`, written by an earlier use: read directly (no TensorFlow).
2. `manual_dir` (`--manual-dir`, `NODEKD_MANUAL_DIR`): a folder holding the original archive files, for machines
   without internet. nodekd converts them itself, without TensorFlow: `cifar-10-binary.tar.gz` for CIFAR-10,
   `train_32x32.mat` and `test_32x32.mat` for SVHN (the `extra` split is not used, as in the paper).
3. tensorflow-datasets (`cifar10`, `svhn_cropped`) in `data_dir`: downloads and prepares on first use, or reads a
   data set prepared there before. TFDS needs TensorFlow, so this runs in a child process: the training process
   never imports TensorFlow.

`data_dir` is `--data-dir`, else `TFDS_DATA_DIR`, else `~/tensorflow_datasets`, as in TFDS.
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from nodekd_cli.errors import UserError

TFDS_NAMES = {"cifar10": "cifar10", "svhn": "svhn_cropped"}
ARCHIVES = {"cifar10": ("cifar-10-binary.tar.gz",), "svhn": ("train_32x32.mat", "test_32x32.mat")}
CLASSES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "svhn": [str(d) for d in range(10)],
}
CACHE_FOLDER = "nodekd"
MANUAL_DIR_ENV = "NODEKD_MANUAL_DIR"


def default_data_dir():
    return Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def cache_path(name, data_dir=None):
    return Path(data_dir or default_data_dir()).expanduser() / CACHE_FOLDER / f"{name}.npz"


def load(name, *, data_dir=None, manual_dir=None):
    """The data set `name` ("cifar10" or "svhn") as a `Dataset`, preparing its cache when needed."""
    from nodekd_cli.data.dataset import Dataset

    path = cache_path(name, data_dir)
    if not path.exists():
        manual_dir = manual_dir or os.environ.get(MANUAL_DIR_ENV)
        if manual_dir:
            arrays = convert_archives(name, Path(manual_dir).expanduser())
        else:
            arrays = _prepare_with_tfds(name, Path(data_dir or default_data_dir()).expanduser())
        write_cache(path, arrays)
    with np.load(path) as cache:
        arrays = {key: cache[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    return Dataset(name, **arrays, classes=CLASSES[name])


def write_cache(path, arrays):
    from nodekd_cli import files

    path.parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(path) as temporary, open(temporary, "wb") as file:
        np.savez(file, **arrays)


def convert_archives(name, folder):
    """Converts the original archive files of `name` in `folder` into uint8 arrays."""
    missing = [f for f in ARCHIVES[name] if not (folder / f).is_file()]
    if missing:
        raise UserError(
            f"The folder {folder} lacks {', '.join(missing)}; put the original {name} files there (see docs/data.md)."
        )
    if name == "cifar10":
        return read_cifar10_binary(folder / "cifar-10-binary.tar.gz")
    x_train, y_train = read_svhn_mat(folder / "train_32x32.mat")
    x_test, y_test = read_svhn_mat(folder / "test_32x32.mat")
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _cifar_records(data):
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), records[:, 0].astype(np.int64)


def read_cifar10_binary(path):
    """Reads `cifar-10-binary.tar.gz`: records of 1 label byte and 3072 pixel bytes (R, G, B planes of 32x32)."""
    batches = {}
    try:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                base = Path(member.name).name
                if base.endswith(".bin") and ("data_batch" in base or "test_batch" in base):
                    batches[base] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UserError(f"Cannot read {path} ({error}); it should be the original cifar-10-binary.tar.gz.") from None
    train_names = [f"data_batch_{i}.bin" for i in range(1, 6)]
    if not all(n in batches for n in [*train_names, "test_batch.bin"]):
        raise UserError(f"{path} lacks CIFAR-10's data_batch_1..5.bin or test_batch.bin; use the original archive.")
    train = [_cifar_records(batches[n]) for n in train_names]
    x_test, y_test = _cifar_records(batches["test_batch.bin"])
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }


def read_svhn_mat(path):
    """Reads an SVHN cropped-digits `.mat` file: X is (32, 32, 3, N) uint8, y is (N, 1) with 10 for the digit 0."""
    from scipy.io import loadmat

    try:
        contents = loadmat(path)
        x, y = contents["X"], contents["y"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"Cannot read {path} ({error}); it should be an original SVHN *_32x32.mat file.") from None
    images = np.ascontiguousarray(np.asarray(x, dtype=np.uint8).transpose(3, 0, 1, 2))
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    labels[labels == 10] = 0
    return images, labels


def _prepare_with_tfds(name, data_dir):
    """Runs TFDS in a child process (it imports TensorFlow) and returns the arrays it wrote."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out = data_dir / CACHE_FOLDER / f"{name}.tfds.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "nodekd_cli.data.tfds_worker", TFDS_NAMES[name], str(data_dir), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        if result.returncode == TFDS_MISSING_TENSORFLOW:
            raise UserError(
                f"Preparing {name} through tensorflow-datasets needs TensorFlow: install it with "
                f"pip install 'nodekd[tfds]', or pass --manual-dir with the original files (see docs/data.md)."
            )
        raise UserError(
            f"Could not prepare {name} with tensorflow-datasets in {data_dir} ({reason}); without internet, put "
            f"{' and '.join(ARCHIVES[name])} in a folder and pass --manual-dir FOLDER (or set {MANUAL_DIR_ENV})."
        )
    try:
        with np.load(out) as arrays:
            return {key: arrays[key] for key in arrays.files}
    finally:
        out.unlink(missing_ok=True)


TFDS_MISSING_TENSORFLOW = 3
