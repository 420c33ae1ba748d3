import importlib.util
import os
import tarfile
from pathlib import Path

import pytest

os.environ["KERAS_BACKEND"] = "torch"
os.environ["KERAS_TORCH_DEVICE"] = "cpu"

# Real CIFAR-10 images and akamaster's checkpoints: the folder named by NODEKD_SHARED, ../shared by default.
SHARED = Path(os.environ.get("NODEKD_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def shared_file(relative):
    """`relative` inside the shared folder; a test that needs a missing one is skipped, saying how to provide it."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is missing: set NODEKD_SHARED to a folder that holds {relative} (default ../shared)"
        if os.environ.get("NODEKD_REQUIRE_SHARED"):  # CI, where the shared data must be found and every test run
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def cifar_test_images(tmp_path_factory):
    """The real CIFAR-10 test images (image-folder layout), extracted once per session."""
    root = tmp_path_factory.mktemp("cifar10-jpeg")
    with tarfile.open(shared_file("data/cifar10-jpeg/test.tar.xz")) as archive:
        archive.extractall(root, filter="data")
    return root / "test"


@pytest.fixture(scope="session")
def cifar_folder(cifar_test_images, tmp_path_factory):
    """A folder data set whose train and test splits are both the real CIFAR-10 test images."""
    root = tmp_path_factory.mktemp("cifar10-folder")
    (root / "test").symlink_to(cifar_test_images, target_is_directory=True)
    (root / "train").symlink_to(cifar_test_images, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def cifar_sample(cifar_test_images, tmp_path_factory):
    """A folder data set of 20 real CIFAR-10 test images per class in each split: for tests of what a command says,
    not of accuracy (it loads in a fraction of a second)."""
    root = tmp_path_factory.mktemp("cifar10-sample")
    for split in ("train", "test"):
        for class_dir in sorted(cifar_test_images.iterdir()):
            (root / split / class_dir.name).mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:20]:
                (root / split / class_dir.name / image.name).symlink_to(image)
    return root


@pytest.fixture(scope="session")
def digits():
    from nodekd_cli.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def attack_runs(tmp_path_factory, digits):
    """A digits ResNet20 (3 epochs) and an 8-channel NODE student (1 epoch), finished runs to attack."""
    from nodekd_cli import runs, students, teachers

    root = tmp_path_factory.mktemp("runs")
    teacher_config = teachers.teacher_config("resnet20", "digits", epochs=3)
    runs.open_run(root / "resnet20", teacher_config)
    teachers.train(root / "resnet20", teacher_config, digits)
    student_config = students.student_config("digits", t1=1, epochs=1, channels=8, batch_size=64)
    runs.open_run(root / "node", student_config)
    students.train(root / "node", student_config, digits)
    return root


@pytest.fixture
def tfds_without_tensorflow():
    """Skips a test unless TFDS is installed without TensorFlow (with it, TFDS would try to download)."""
    pytest.importorskip("tensorflow_datasets")
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: TFDS would try to download")
