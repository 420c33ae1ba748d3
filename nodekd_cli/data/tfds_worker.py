"""Child process that prepares a TFDS data set and writes it as uint8 arrays: `python -m ... NAME DATA_DIR OUT`.

Kept out of the training process because tensorflow-datasets imports TensorFlow to prepare and read data.
"""

import sys

import numpy as np

from nodekd_cli.data.tfds import TFDS_MISSING_TENSORFLOW


def main(name, data_dir, out):
    try:
        import tensorflow  # noqa: F401
        import tensorflow_datasets as tfds
    except ImportError:
        sys.exit(TFDS_MISSING_TENSORFLOW)
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    arrays = {}
    for split in ("train", "test"):
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        arrays[f"x_{split}"] = np.asarray(data[0], dtype=np.uint8)
        arrays[f"y_{split}"] = np.asarray(data[1], dtype=np.int64)
    with open(out, "wb") as file:
        np.savez(file, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:4])
