"""Data sets and the device-side batch pipeline."""

import gzip
import io
import tarfile

import numpy as np
import pytest
import torch
from scipy.io import savemat

from nodekd_cli.data import Dataset, load_dataset, tfds
from nodekd_cli.data.device import TrainBatches, augment
from nodekd_cli.errors import UserError

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_digits_is_a_fixed_stratified_split_of_the_real_digits(digits):
    from sklearn.datasets import load_digits

    assert digits.x_train.shape == (1437, 8, 8, 1) and digits.x_test.shape == (360, 8, 8, 1)
    assert digits.x_train.dtype == np.uint8 and digits.x_train.max() == 255
    assert np.bincount(digits.y_test).min() >= 35  # every digit is in the test split
    # Every image is one of scikit-learn's, scaled from 0..16 to 0..255.
    originals = {img.tobytes() for img in np.rint(load_digits().images * 255 / 16).astype(np.uint8)}
    assert all(img[..., 0].tobytes() in originals for img in digits.x_test)
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.y_test, digits.y_test)


def test_folder_loader_on_real_cifar10_images(cifar_folder):
    data = load_dataset(f"folder:{cifar_folder}")
    assert data.classes == CIFAR_CLASSES
    assert data.x_test.shape == (10_000, 32, 32, 3) and data.x_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(data.y_test), [1000] * 10)
    # Labels follow the sorted class folders: the first cat image has label 3.
    from PIL import Image

    first_cat = np.asarray(Image.open(min((cifar_folder / "test" / "cat").iterdir())).convert("RGB"))
    np.testing.assert_array_equal(data.x_test[data.y_test == 3][0], first_cat)


def _write_png(path, value, size=(4, 4)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)


def test_folder_of_grayscale_png(tmp_path):
    for split in ("train", "test"):
        _write_png(tmp_path / split / "b" / "0.png", 200)
        _write_png(tmp_path / split / "a" / "0.png", 10)
    data = load_dataset(f"folder:{tmp_path}")
    assert data.classes == ["a", "b"] and data.x_train.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(data.x_train[:, 0, 0, 0], [10, 200])


def _images(root, counts):
    """A folder data set with counts[class] 4x4 images in train/ and one per class in test/."""
    from PIL import Image

    for name, count in counts.items():
        for split, n in (("train", count), ("test", 1)):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (4, 4), (i, 0, 0)).save(root / split / name / f"{i}.png")


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: (root / "train").mkdir(parents=True), "no 'test' folder"),
        (
            lambda root: [(root / s / c).mkdir(parents=True) for s in ("train", "test") for c in ("cat", "dog")],
            "no .png or .jpg",
        ),
        # one class, or a class without training images, is refused, not trained on.
        (lambda root: _images(root, {"cat": 2}), r"one class folder \(cat\); a classifier needs at least two"),
        (lambda root: _images(root, {"cat": 2, "dog": 0}), "dog holds no .png or .jpg images; every class needs"),
    ],
)
def test_folder_errors(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(UserError, match=message):
        load_dataset(f"folder:{root}")


def test_unreadable_image_is_named(tmp_path):
    for split in ("train", "test"):
        _write_png(tmp_path / split / "a" / "0.png", 1)
        _write_png(tmp_path / split / "b" / "0.png", 2)
    (tmp_path / "test" / "a" / "1.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="1.png"):
        load_dataset(f"folder:{tmp_path}")


def test_unknown_data_set_lists_the_valid_ones():
    with pytest.raises(UserError, match="digits, cifar10, svhn, folder:PATH"):
        load_dataset("mnist")


def test_svhn_mat_conversion(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("test", 3)):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        digits = np.array([1, 10, 3, 10, 9][:n])  # SVHN writes the digit 0 as 10
        # The original layout: X is (32, 32, 3, N), y is (N, 1) in doubles.
        savemat(
            tmp_path / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": digits[:, None].astype(float)}
        )
        x, y = tfds.read_svhn_mat(tmp_path / f"{split}_32x32.mat")
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, np.where(digits == 10, 0, digits))
    data = tfds.load("svhn", data_dir=tmp_path / "tfds", manual_dir=tmp_path)
    assert data.x_train.shape == (5, 32, 32, 3) and list(data.y_test) == [1, 0, 3]
    assert tfds.cache_path("svhn", tmp_path / "tfds").exists()
    # The cache is read from then on, without the archives.
    for f in tmp_path.glob("*.mat"):
        f.unlink()
    assert list(tfds.load("svhn", data_dir=tmp_path / "tfds").y_train) == [1, 0, 3, 0, 9]


def test_cifar10_binary_conversion(tmp_path):
    rng = np.random.default_rng(1)
    expected = {}
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as archive:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
            labels = rng.integers(0, 10, 2, dtype=np.uint8)
            # Each record: the label byte, then the red, green and blue planes.
            records = np.concatenate([labels[:, None], images.transpose(0, 3, 1, 2).reshape(2, -1)], axis=1)
            payload = records.astype(np.uint8).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
            expected[name] = (images, labels)
    arrays = tfds.convert_archives("cifar10", tmp_path)
    np.testing.assert_array_equal(arrays["x_test"], expected["test_batch.bin"][0])
    np.testing.assert_array_equal(arrays["y_train"][2:4], expected["data_batch_2.bin"][1])
    assert arrays["x_train"].shape == (10, 32, 32, 3)


def test_missing_archives_say_what_to_put_where(tmp_path):
    with pytest.raises(UserError, match="lacks train_32x32.mat, test_32x32.mat"):
        tfds.load("svhn", data_dir=tmp_path, manual_dir=tmp_path)
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(gzip.compress(b"junk"))
    with pytest.raises(UserError, match="original cifar-10-binary.tar.gz"):
        tfds.load("cifar10", data_dir=tmp_path, manual_dir=tmp_path)


def test_without_tensorflow_or_archives_the_error_says_what_to_do(tmp_path, monkeypatch, tfds_without_tensorflow):
    monkeypatch.delenv(tfds.MANUAL_DIR_ENV, raising=False)
    with pytest.raises(UserError, match="needs TensorFlow.*--manual-dir"):
        tfds.load("cifar10", data_dir=tmp_path)


def test_augment_crops_are_shifts_with_zero_fill_and_flips_mirror():
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 5, 5, 1) + 1
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        out = augment(x, crop_padding=2, flip=True, generator=generator)
        for image, source in zip(out, x):
            padded = torch.nn.functional.pad(source, (0, 0, 2, 2, 2, 2))
            candidates = [
                window
                for dy in range(5)
                for dx in range(5)
                for window in (padded[dy : dy + 5, dx : dx + 5], padded[dy : dy + 5, dx : dx + 5].flip(1))
            ]
            assert any(torch.equal(image, c) for c in candidates)


def test_batches_cover_the_split_once_per_epoch_and_repeat_per_seed():
    x = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1).expand(10, 2, 2, 1).contiguous()
    y = torch.arange(10)
    batches = TrainBatches(x, y, 4, seed=7, crop_padding=0, flip=False)
    assert len(batches) == 3
    batches.set_epoch(3)
    first = [batches[i] for i in range(len(batches))]
    seen = torch.cat([b[1] for b in first])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in first:  # images stay with their labels, scaled to [0, 1]
        np.testing.assert_allclose(xb[:, 0, 0, 0].numpy(), yb.numpy() / 255.0, rtol=1e-6)
    batches.set_epoch(4)
    other = torch.cat([batches[i][1] for i in range(len(batches))])
    batches.set_epoch(3)
    assert torch.equal(torch.cat([batches[i][1] for i in range(len(batches))]), seen)
    assert not torch.equal(other, seen)


def test_channel_stats():
    x = np.zeros((2, 1, 1, 2), np.uint8)
    x[0, ..., 0], x[1, ..., 0] = 0, 255
    data = Dataset("t", x, np.zeros(2, np.int64), x, np.zeros(2, np.int64), ["a"])
    mean, std = data.channel_stats()
    np.testing.assert_allclose(mean, [0.5, 0.0])
    np.testing.assert_allclose(std, [0.5, 0.0])


def test_a_training_subset_takes_every_class_in_proportion(digits):
    from nodekd_cli.data import sample_indices, train_subset

    subset = train_subset(digits, 100, seed=0)
    chosen = sample_indices(digits.y_train, 100, 0)
    assert np.array_equal(subset.x_train, digits.x_train[chosen])
    assert np.array_equal(subset.y_train, digits.y_train[chosen])
    assert np.bincount(subset.y_train, minlength=10).tolist() == [10] * 10  # digits' classes hold about 144 each
    assert np.array_equal(train_subset(digits, 100, seed=0).y_train, subset.y_train)
    assert not np.array_equal(train_subset(digits, 100, seed=1).x_train, subset.x_train)
    assert subset.x_test is digits.x_test and train_subset(digits, None) is digits


def test_16_bit_grayscale_is_scaled_to_8_bits_not_clipped(tmp_path):
    from PIL import Image

    ramp = np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369  # 0 .. 65535 in 16 steps
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.fromarray(ramp).save(tmp_path / split / name / "0.png")
    assert Image.open(tmp_path / "train" / "a" / "0.png").mode.startswith("I;16")
    data = load_dataset(f"folder:{tmp_path}")
    np.testing.assert_array_equal(data.x_train[0, :, :, 0], (ramp >> 8).astype(np.uint8))  # its high byte
    assert (data.x_train == 255).mean() < 0.1  # clipping made 15 of 16 pixels 255


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    from PIL import Image

    _images(tmp_path, {"a": 1, "b": 1})
    Image.new("L", (12000, 12000)).save(tmp_path / "train" / "a" / "big.png")  # a few hundred kilobytes on disk

    def decoded(*args, **kwargs):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(Image.Image, "convert", decoded)
    with pytest.raises(UserError, match=r"big.png is 12000x12000, more than the 16,777,216 pixels"):
        load_dataset(f"folder:{tmp_path}")


def test_hidden_and_non_image_files_are_skipped_and_counted(tmp_path):
    _images(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "train" / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS's metadata twin
    (tmp_path / "train" / "b" / "notes.txt").write_text("not an image")
    data = load_dataset(f"folder:{tmp_path}")
    assert len(data.y_train) == 4 and data.skipped == 2


def test_a_grayscale_image_among_color_ones_makes_the_data_set_color(tmp_path):
    # The first image (sorted) is grayscale, the rest are color: the data set is read in color, never "train and test
    # differ".
    _images(tmp_path, {"a": 2, "b": 2})
    _write_png(tmp_path / "train" / "a" / "0.png", 77)
    data = load_dataset(f"folder:{tmp_path}")
    assert data.x_train.shape[1:] == (4, 4, 3) and data.x_test.shape[1:] == (4, 4, 3)
    np.testing.assert_array_equal(data.x_train[0, 0, 0], [77, 77, 77])
