"""Every user mistake gets one clear sentence and a non-zero exit, never a traceback."""

import json
import os
import subprocess
import sys

import h5py
import pytest
from typer.testing import CliRunner

from nodekd_cli.app import app
from tests.conftest import shared_file


def invoke(*args):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    # A command that ends on its own exits through SystemExit; anything else escaped as a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# The mistakes every command can meet, each with its exit status and message: tests/test_faults.py, BAD_INPUTS.


def test_cifar10_without_data_or_tensorflow_says_how_to_get_it(in_tmp, monkeypatch, tfds_without_tensorflow):
    monkeypatch.delenv("NODEKD_MANUAL_DIR", raising=False)
    exit_code, text = invoke("teacher", "train", "resnet20", "--dataset", "cifar10", "--data-dir", str(in_tmp / "tfds"))
    assert exit_code == 1 and "needs TensorFlow" in text and "--manual-dir" in text


def test_manual_dir_without_the_archives(in_tmp):
    exit_code, text = invoke(
        "teacher", "train", "resnet20", "--dataset", "svhn", "--data-dir", "d", "--manual-dir", "."
    )
    assert exit_code == 1 and "lacks train_32x32.mat, test_32x32.mat" in text


def test_unfinished_and_conflicting_runs(in_tmp):
    folder = in_tmp / "runs" / "resnet20"
    folder.mkdir(parents=True)
    config = {"kind": "teacher", "model": "resnet20", "dataset": "digits", "lr": 0.5}
    (folder / "config.json").write_text(json.dumps(config))
    exit_code, text = invoke("teacher", "eval", str(folder))
    assert exit_code == 1 and "unfinished" in text
    with h5py.File(folder / "checkpoint.h5", "w") as file:  # one completed epoch: worth keeping
        file.attrs["epoch"] = 1
    exit_code, text = invoke("teacher", "train", "resnet20", "--epochs", "1")
    assert exit_code == 1 and "holds an unfinished run of another configuration" in text and "--out" in text
    (in_tmp / "junk").mkdir()
    (in_tmp / "junk" / "file.txt").write_text("x")
    exit_code, text = invoke("teacher", "train", "resnet20", "--out", "junk")
    assert exit_code == 1 and "not a nodekd run folder" in text


def test_unreadable_checkpoint_and_unfit_data_set(in_tmp, cifar_sample):
    (in_tmp / "bad.th").write_bytes(b"not a checkpoint")
    exit_code, text = invoke("teacher", "import", "resnet20", "--from", "bad.th", "--dataset", f"folder:{cifar_sample}")
    assert exit_code == 1 and "bad.th is not a PyTorch checkpoint holding a state_dict" in text
    # The file is read first: a text file is not "a CIFAR model" whatever the data set.
    exit_code, text = invoke("teacher", "import", "resnet20", "--from", "bad.th", "--dataset", "digits")
    assert exit_code == 1 and "bad.th is not a PyTorch checkpoint" in text and "weights_only" not in text
    checkpoint = shared_file("weights/akamaster/resnet20-12fca82f.th")
    exit_code, text = invoke("teacher", "import", "resnet20", "--from", str(checkpoint), "--dataset", "digits")
    assert exit_code == 1 and "3-channel, 10-class CIFAR model but digits has 1 channels" in text
    assert not (in_tmp / "runs").exists()


def test_eval_on_an_incompatible_data_set(in_tmp, cifar_sample):
    checkpoint = shared_file("weights/akamaster/resnet20-12fca82f.th")
    exit_code, _ = invoke(
        "teacher", "import", "resnet20", "--from", str(checkpoint), "--dataset", f"folder:{cifar_sample}"
    )
    assert exit_code == 0
    exit_code, text = invoke("teacher", "eval", "runs/resnet20", "--dataset", "digits")
    assert exit_code == 1 and "(8, 8, 1) images" in text
    exit_code, text = invoke("teacher", "eval", "runs/resnet20")
    assert exit_code == 0 and "resnet20" in text


def test_help_is_fast_because_nothing_heavy_is_imported():
    code = "import sys, nodekd_cli.app; print(sorted(m for m in ('keras', 'torch', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_lists_every_registered_teacher():
    import models

    _, text = invoke("teacher", "train", "--help")
    assert all(name in text for name in models.TEACHERS)


def test_data_prepare(in_tmp):
    exit_code, text = invoke("data", "prepare", "digits")
    assert exit_code == 0 and "1,437" in text and "8x8x1" in text
    exit_code, text = invoke("data", "prepare", "svhn", "--data-dir", "d", "--manual-dir", ".")
    assert exit_code == 1 and "lacks train_32x32.mat" in text


def test_a_data_error_leaves_no_run_folder_behind(in_tmp):
    exit_code, _ = invoke("teacher", "train", "resnet20", "--dataset", "folder:nowhere")
    assert exit_code == 1 and not (in_tmp / "runs" / "resnet20").exists()


def test_commands_in_fresh_processes(tmp_path):
    """As a user runs them: each command in its own process, Keras imported only after the device is chosen."""

    def nodekd(*args):
        command = [sys.executable, "-m", "nodekd_cli", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)

    train = nodekd("teacher", "train", "resnet20", "--dataset", "digits", "--epochs", "2", "--device", "cpu")
    assert train.returncode == 0, train.stderr
    evaluation = nodekd("teacher", "eval", "runs/resnet20", "--device", "cpu")
    assert evaluation.returncode == 0, evaluation.stderr
    assert "digits" in evaluation.stdout and "Traceback" not in evaluation.stdout + evaluation.stderr


def test_version_names_the_installed_packages():
    from importlib.metadata import version

    import torch

    code, output = invoke("--version")
    assert code == 0
    assert output.startswith(f"nodekd {version('nodekd')} python ")
    assert f"torch {torch.__version__}" in output and f"torchdiffeq {version('torchdiffeq')}" in output


def test_tests_without_the_shared_folder_skip_saying_what_is_missing(tmp_path):
    """On a clone without ../shared, the tests that need real images or checkpoints skip with one line each."""
    env = {**os.environ, "NODEKD_SHARED": str(tmp_path / "nowhere")}
    env.pop("NODEKD_REQUIRE_SHARED", None)
    test = "tests/test_import.py::test_import_writes_a_run_whose_model_matches_the_checkpoint"
    command = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", test]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout and "set NODEKD_SHARED to a folder that holds" in done.stdout
    # Where the shared data must be there (.ci/run sets NODEKD_REQUIRE_SHARED), the same test fails instead.
    required = subprocess.run(command, env={**env, "NODEKD_REQUIRE_SHARED": "1"}, capture_output=True, text=True)
    assert required.returncode == 1 and "1 error" in required.stdout  # failed in the fixture that needs the data
    assert "is missing: set NODEKD_SHARED" in required.stdout


def test_help_at_80_columns_groups_options_in_panels_and_cuts_nothing():
    result = CliRunner().invoke(app, ["distill", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = result.stdout
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    panels = [line.split("─")[1].strip() for line in text.splitlines() if line.startswith("╭─ ")]
    assert panels == ["Options", "Training", "Model", "Data", "Solver", "Output", "Where it runs"]
    assert "Example: nodekd distill --teacher" in text
    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout
    order = [name for name in ("data", "teacher", "student", "distill", "attack", "report", "reproduce")]
    positions = [listed.index(f"│ {name} ") for name in order]
    assert positions == sorted(positions)  # the commands in the order of the work
