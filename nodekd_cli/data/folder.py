"""Image-folder data sets: PATH/{train,test}/<class>/*.png|jpg, labels from class folders sorted by name."""

from pathlib import Path

import numpy as np

from nodekd_cli.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
LAYOUT = "PATH/train/<class>/*.png|jpg and PATH/test/<class>/*.png|jpg"


def _class_dirs(split_dir):
    """The class folders of a split; hidden ones (`.ipynb_checkpoints`, `.DS_Store` folders) are not classes."""
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_split(split_dir, classes):
    from PIL import Image, UnidentifiedImageError

    files, labels = [], []
    for label, name in enumerate(classes):
        class_files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not class_files and split_dir.name == "train":
            raise UserError(
                f"The class folder {split_dir / name} holds no .png or .jpg images; every class needs training "
                f"images (remove the folder from train/ and test/ to drop the class)."
            )
        files += class_files
        labels += [label] * len(class_files)
    if not files:
        raise UserError(f"The folder {split_dir} holds no .png or .jpg images; expected {LAYOUT}.")
    images, mode, size = [], None, None
    for path in files:
        try:
            with Image.open(path) as image:
                if mode is None:
                    mode = "L" if image.mode in ("L", "1", "I", "I;16") else "RGB"
                    size = image.size
                image = image.convert(mode)
                if image.size != size:
                    raise UserError(
                        f"Image {path} is {image.size[0]}x{image.size[1]} but the first one is "
                        f"{size[0]}x{size[1]}; every image of a folder data set must have the same size."
                    )
                images.append(np.asarray(image, dtype=np.uint8))
        except (OSError, UnidentifiedImageError, SyntaxError) as error:
            raise UserError(f"Cannot read image {path} ({error}); remove or replace it.") from None
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]
    return x, np.asarray(labels, dtype=np.int64)


def load(path, name=None):
    from nodekd_cli.data.dataset import Dataset

    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"The data folder {root} does not exist; expected {LAYOUT}.")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise UserError(f"The data folder {root} has no '{split}' folder; expected {LAYOUT}.")
    splits = {}
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
        splits[split] = _read_split(split_dir, classes)
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(f"Train and test images of {root} differ in size or channels; they must match.")
    return Dataset(name or f"folder:{root}", x_train, y_train, x_test, y_test, classes=classes)
