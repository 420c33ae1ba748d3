"""One place to add each thing: a teacher architecture and a data set registered here, in the test alone, go through
`teacher train`, `distill`, the report and `reproduce --dry-run` with nothing else changed."""

import json

import keras
import numpy as np
import pytest
from keras import layers
from typer.testing import CliRunner

import models
from nodekd_cli import data
from nodekd_cli.app import app


def toy_teacher(input_shape, num_classes, mean=None, std=None, dtype=None):
    """A teacher that is no ResNet: one convolution, pooling and the logits."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", dtype=dtype)(inputs)
    x = layers.GlobalAveragePooling2D(dtype=dtype)(x)
    return keras.Model(inputs, layers.Dense(num_classes, dtype="float32")(x), name="toynet")


def load_tiny(**_):
    """A data set that is not one of nodekd's: 300 of the digits' training images and 100 of their test images."""
    digits = data.load_dataset("digits")
    return data.Dataset(
        "tiny", digits.x_train[:300], digits.y_train[:300], digits.x_test[:100], digits.y_test[:100], digits.classes
    )


@pytest.fixture
def registered(monkeypatch):
    toy = models.TeacherArchitecture("toynet", toy_teacher, "ToyNet", relative_cost=0.05, lr=0.05)
    monkeypatch.setitem(models.TEACHERS, toy.name, toy)
    tiny = data.DataSetInfo(
        "tiny",
        load_tiny,
        (300, 100, 64),
        data.Augmentation(1, False),
        teacher_epochs=2,
        student_epochs=2,
        student={"batch_size": 50, "channels": 8, "downsample": 0, "sgd_lr": 0.05},
    )
    monkeypatch.setitem(data.DATASETS, tiny.name, tiny)


def invoke(*args):
    result = CliRunner().invoke(app, [*map(str, args)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result


def test_a_registered_teacher_and_data_set_run_through_every_command(tmp_path, registered):
    teacher, student = tmp_path / "runs" / "toynet", tmp_path / "runs" / "kd"
    invoke("teacher", "train", "toynet", "--dataset", "tiny", "--out", teacher)
    config = json.loads((teacher / "config.json").read_text())
    assert (config["model"], config["dataset"], config["epochs"], config["lr"]) == ("toynet", "tiny", 2, 0.05)
    invoke("distill", "--teacher", teacher, "--T", "3", "--out", student)
    config = json.loads((student / "config.json").read_text())
    assert (config["teacher_model"], config["epochs"], config["batch_size"], config["channels"]) == ("toynet", 2, 50, 8)
    assert config["lr"] == 0.05  # the data set's SGD rate (distillation at t1 = 1 takes SGD)
    invoke("student", "train", "--dataset", "tiny", "--out", tmp_path / "runs" / "alone")
    document = json.loads(invoke("report", "--runs", tmp_path / "runs", "--format", "json").stdout)
    assert {row["model"] for row in document["runs"]} == {"toynet", "node"}
    pairs = {(c["pair"], c["first"]["label"], c["second"]["label"]) for c in document["comparisons"]}
    assert pairs == {("kd (paper)", "NODEs(1) + KD (ToyNet, T = 3)", "NODEs(1)"), ("teacher", "ToyNet", "NODEs(1)")}
    plan = invoke(
        "reproduce",
        "--preset",
        "quick",
        "--datasets",
        "tiny",
        "--teachers",
        "toynet",
        "--runs",
        tmp_path / "plan",
        "--dry-run",
    )
    text = " ".join(plan.output.replace("│", " ").split())
    assert "train toynet on tiny, 2 epochs" in text and "kd-toynet-tiny-T3-t1_1" in text
    assert "steps done" in text and not (tmp_path / "plan").exists()


def test_the_help_names_a_registered_data_sets_defaults(registered):
    # Help texts are made when the options are declared: a data set registered before then is in them.
    from nodekd_cli import options

    assert "tiny 2" in options._by_dataset("student_epochs") and "tiny 50" in options._other_students("batch_size")
    assert np.isclose(data.info("tiny").student["sgd_lr"], 0.05)
