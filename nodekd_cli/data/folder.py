"""Image-folder data sets: PATH/{train,test}/<class>/*.png|jpg, labels from class folders sorted by name."""

import warnings
from pathlib import Path

import numpy as np

from nodekd_cli.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
LAYOUT = "PATH/train/<class>/*.png|jpg and PATH/test/<class>/*.png|jpg"


def _class_dirs(split_dir):
    """The class folders of a split; hidden ones (`.ipynb_checkpoints`, `.DS_Store` folders) are not classes."""
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


GRAY = ("L", "1", "I;16", "I;16B", "I;16L", "I")
SIXTEEN_BITS = ("I;16", "I;16B", "I;16L")
# Pixels an image of a folder data set may have. A classifier's images are small; a larger file is refused before
# it is decoded (a decompression bomb: a few kilobytes that decode to gigabytes).
MAX_PIXELS = 4096 * 4096


def _split_files(split_dir, classes):
    """(image files, labels, files skipped) of a split: hidden files (macOS's ._* AppleDouble, .DS_Store) and files
    that are not .png or .jpg images are skipped and counted."""
    files, labels, skipped = [], [], 0
    for label, name in enumerate(classes):
        found = sorted((split_dir / name).iterdir())
        class_files = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
        skipped += len(found) - len(class_files)
        if not class_files and split_dir.name == "train":
            raise UserError(
                f"The class folder {split_dir / name} holds no .png or .jpg images; every class needs training "
                f"images (remove the folder from train/ and test/ to drop the class)."
            )
        files += class_files
        labels += [label] * len(class_files)
    if not files:
        raise UserError(f"The folder {split_dir} holds no .png or .jpg images; expected {LAYOUT}.")
    return files, labels, skipped


def _headers(files):
    """(mode, size) of every image, read from its header alone; an image too large to decode safely, or of a size
    unlike the first one's, is refused in one sentence before any is decoded."""
    from PIL import Image, UnidentifiedImageError

    found, size = [], None
    for path in files:
        try:
            with warnings.catch_warnings():  # our own limit below, before any decoding
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    mode, shape = image.mode, image.size
        except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as error:
            raise UserError(f"Cannot read image {path} ({error}); remove or replace it.") from None
        if shape[0] * shape[1] > MAX_PIXELS:
            raise UserError(
                f"Image {path} is {shape[0]}x{shape[1]}, more than the {MAX_PIXELS:,} pixels nodekd decodes; a folder "
                f"data set holds small images of one size (CIFAR-10's are 32x32)."
            )
        size = size or shape
        if shape != size:
            raise UserError(
                f"Image {path} is {shape[0]}x{shape[1]} but the first one is {size[0]}x{size[1]}; every image of a "
                f"folder data set must have the same size."
            )
        found.append(mode)
    return found


def _decode(path, mode):
    """The image at `path` as uint8 pixels in `mode` ("L" or "RGB"): a 16-bit grayscale image scaled to 8 bits (its
    high byte), never clipped."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in SIXTEEN_BITS or image.mode == "I":
                wide = np.asarray(image).astype(np.int64)
                if image.mode == "I" and (wide.min() < 0 or wide.max() > 65535):
                    raise UserError(f"Image {path} has 32-bit pixels; nodekd reads 8- and 16-bit images.")
                gray = (wide >> 8).astype(np.uint8) if image.mode in SIXTEEN_BITS or wide.max() > 255 else wide
                gray = gray.astype(np.uint8)
                return gray if mode == "L" else np.repeat(gray[..., None], 3, axis=-1)
            return np.asarray(image.convert(mode), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise UserError(f"Cannot read image {path} ({error}); remove or replace it.") from None


def _read(splits):
    """{split: (x, y)} of the splits' (files, labels): every image in one mode, grayscale only when all are."""
    modes = {split: _headers(files) for split, (files, _) in splits.items()}
    mode = "L" if all(m in GRAY for found in modes.values() for m in found) else "RGB"
    read = {}
    for split, (files, labels) in splits.items():
        x = np.stack([_decode(path, mode) for path in files])
        read[split] = (x[..., None] if x.ndim == 3 else x, np.asarray(labels, dtype=np.int64))
    return read


def load(path, name=None):
    from nodekd_cli.data.dataset import Dataset

    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"The data folder {root} does not exist; expected {LAYOUT}.")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise UserError(f"The data folder {root} has no '{split}' folder; expected {LAYOUT}.")
    splits, skipped = {}, 0
    classes = None
    for split in ("train", "test"):
        split_dir = root / split
        split_classes = [p.name for p in _class_dirs(split_dir)]
        if not split_classes:
            raise UserError(f"The folder {split_dir} has no class folders; expected {LAYOUT}.")
        if classes is None:
            classes = split_classes
            if len(classes) < 2:
                raise UserError(
                    f"The folder {split_dir} has one class folder ({classes[0]}); a classifier needs at least two."
                )
        elif split_classes != classes:
            raise UserError(
                f"The class folders of {root}/train and {root}/test differ; both need the same class names."
            )
        files, labels, left_out = _split_files(split_dir, classes)
        splits[split], skipped = (files, labels), skipped + left_out
    read = _read(splits)
    (x_train, y_train), (x_test, y_test) = read["train"], read["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(
            f"Train images of {root} are {x_train.shape[2]}x{x_train.shape[1]}, test images "
            f"{x_test.shape[2]}x{x_test.shape[1]}; they must be the same size."
        )
    return Dataset(name or f"folder:{root}", x_train, y_train, x_test, y_test, classes=classes, skipped=skipped)
