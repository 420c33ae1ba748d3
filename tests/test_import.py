"""Importing the real pretrained CIFAR-10 ResNets of akamaster/pytorch_resnet_cifar10."""

import json

import keras
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bench.reference import load_akamaster
from nodekd_cli import teachers
from nodekd_cli.app import app
from nodekd_cli.data import load_dataset
from nodekd_cli.errors import UserError
from tests.conftest import shared_file

RESNET20 = "weights/akamaster/resnet20-12fca82f.th"


def checkpoint_logits(path, depth, images):
    """Logits of the checkpoint in an independent plain-PyTorch ResNet, with its documented normalization."""
    model = load_akamaster(path, depth).eval()
    mean, std = torch.tensor(teachers.AKAMASTER_MEAN), torch.tensor(teachers.AKAMASTER_STD)
    x = (torch.tensor(images, dtype=torch.float32) / 255 - mean) / std
    with torch.no_grad():
        return model(x.permute(0, 3, 1, 2)).numpy()


def test_import_writes_a_run_whose_model_matches_the_checkpoint(cifar_folder, tmp_path):
    out = tmp_path / "resnet20"
    checkpoint = shared_file(RESNET20)
    result = CliRunner().invoke(
        app,
        [
            "teacher",
            "import",
            "resnet20",
            "--from",
            str(checkpoint),
            "--dataset",
            f"folder:{cifar_folder}",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    config, metrics = json.loads((out / "config.json").read_text()), json.loads((out / "metrics.json").read_text())
    assert config["kind"] == "teacher" and config["source"] == "import" and metrics["params"] == 269_722
    # The JPEG re-encodings cost the original model about 10 points (../shared/README.md): far above chance.
    assert metrics["test_accuracy"] > 0.75

    import models  # noqa: F401

    model = keras.saving.load_model(out / "model.keras")
    data = load_dataset(f"folder:{cifar_folder}")
    images = data.x_test[::20]  # 500 images, 50 per class
    ours = keras.ops.convert_to_numpy(model(images.astype(np.float32) / 255, training=False))
    reference = checkpoint_logits(checkpoint, 20, images)
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)
    np.testing.assert_array_equal(ours.argmax(1), reference.argmax(1))


@pytest.mark.parametrize("depth", [32, 44, 56])
def test_deeper_checkpoints_import_exactly(depth, cifar_test_images):
    from PIL import Image

    files = sorted(cifar_test_images.glob("*/00[0-4]?.jpg"))[::7]
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    data = load_dataset.__globals__["Dataset"]("t", images, np.zeros(1), images, np.zeros(1), list(range(10)))
    path = next(shared_file("weights/akamaster").glob(f"resnet{depth}-*.th"))
    model = teachers.import_akamaster(f"resnet{depth}", path, data)
    ours = keras.ops.convert_to_numpy(model(images.astype(np.float32) / 255, training=False))
    np.testing.assert_allclose(ours, checkpoint_logits(path, depth, images), atol=2e-3, rtol=1e-3)


def test_a_checkpoint_of_another_depth_is_refused(digits):
    data = load_dataset.__globals__["Dataset"](
        "t",
        np.zeros((1, 32, 32, 3), np.uint8),
        np.zeros(1),
        np.zeros((1, 32, 32, 3), np.uint8),
        np.zeros(1),
        list(range(10)),
    )
    with pytest.raises(UserError, match="resnet20 lacks|really a resnet32"):
        teachers.import_akamaster("resnet32", shared_file(RESNET20), data)
    with pytest.raises(UserError, match="3-channel, 10-class"):
        teachers.import_akamaster("resnet20", shared_file(RESNET20), digits)


def test_akamaster_checkpoints_download_by_name_with_their_hash_checked(tmp_path, monkeypatch):
    """`--from akamaster`: torch.hub's download into its cache, here served from a file:// folder."""
    from nodekd_cli import study

    source = shared_file(RESNET20).parent
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NODEKD_AKAMASTER_URL", source.as_uri())
    path = teachers.fetch_akamaster("resnet20", progress=False)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "resnet20-12fca82f.th"
    assert path.read_bytes() == shared_file(RESNET20).read_bytes()
    monkeypatch.setenv("NODEKD_AKAMASTER_URL", (tmp_path / "offline").as_uri())
    assert teachers.fetch_akamaster("resnet20", progress=False) == path  # cached: no second download
    # Offline (here: a folder without the file), the message says which file to fetch and where to put it.
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet32-d509ac18.th"
    with pytest.raises(UserError, match=f"Cannot download .*resnet32-d509ac18.th .* put it at {expected}"):
        teachers.fetch_akamaster("resnet32", progress=False)
    # A file whose SHA-256 does not start with its name's prefix is refused and not kept.
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "resnet32-d509ac18.th").write_bytes(shared_file(RESNET20).read_bytes())
    monkeypatch.setenv("NODEKD_AKAMASTER_URL", wrong.as_uri())
    with pytest.raises(UserError, match="is not akamaster's resnet32-d509ac18.th .*nothing was kept"):
        teachers.fetch_akamaster("resnet32", progress=False)
    assert not expected.exists()
    # The study imports CIFAR-10 teachers by name the same way.
    steps = study.expand(study.PRESETS["small"], root=tmp_path / "runs", teacher_checkpoints="akamaster")
    assert (steps[0].kind, steps[0].checkpoint) == ("import", path)
    result = CliRunner().invoke(app, ["teacher", "import", "resnet32", "--from", "akamaster", "--out", tmp_path / "r"])
    assert result.exit_code == 1 and "is not akamaster's" in result.output and not (tmp_path / "r").exists()
