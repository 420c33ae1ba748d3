"""Teacher training into run folders: accuracy, the run-folder contract, resume, the optimizer and schedule."""

import csv
import json

import h5py
import keras
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nodekd_cli import runs, students, teachers, train_step
from nodekd_cli.app import app
from nodekd_cli.errors import UserError


def test_resnet20_on_digits_reaches_90_percent_and_writes_its_run_folder(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["teacher", "train", "resnet20", "--dataset", "digits"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "resnet20"
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "teacher" and config["model"] == "resnet20" and config["dataset"] == "digits"
    assert config["lr"] == 0.1 and config["momentum"] == 0.9 and config["batch_size"] == 128
    assert config["versions"]["keras"] and config["versions"]["torch"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.90
    assert metrics["params"] == 269_722 - 16 * 9 * 2  # one input channel
    with open(folder / "history.csv") as file:
        history = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in history] == list(range(1, config["epochs"] + 1))
    assert not (folder / "checkpoint.h5").exists()
    # model.keras takes [0, 1] pixels, NHWC, and returns logits; its accuracy is the recorded one.
    import models  # noqa: F401

    model = keras.saving.load_model(folder / "model.keras")
    logits = keras.ops.convert_to_numpy(model(digits.x_test.astype(np.float32) / 255.0, training=False))
    assert np.mean(logits.argmax(1) == digits.y_test) == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    # Which test images it classifies right, image by image (for paired comparisons), as the loaded model says.
    assert metrics["test_correct"] == "".join("1" if right else "0" for right in logits.argmax(1) == digits.y_test)
    # Run again: the finished run is kept, not retrained.
    again = CliRunner().invoke(app, ["teacher", "train", "resnet20", "--dataset", "digits"])
    assert again.exit_code == 0 and "nothing to do" in again.output


class _Interrupt:
    """A progress reporter that stops training with Ctrl-C in the middle of `epoch`."""

    def __init__(self, epoch):
        self.stop_epoch, self.epoch = epoch, 0

    def start(self, epochs, initial_epoch):
        pass

    def epoch_start(self, epoch, steps):
        self.epoch = epoch

    def batch_end(self, step, logs, lr):
        if self.epoch == self.stop_epoch and step == 3:
            raise KeyboardInterrupt

    def epoch_end(self, row):
        pass


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, digits):
    config = teachers.teacher_config("resnet20", "digits", epochs=4, seed=3)
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    for folder in (straight, interrupted):
        assert runs.open_run(folder, config) == "new"
    expected = teachers.train(straight, config, digits)

    with pytest.raises(KeyboardInterrupt):
        teachers.train(interrupted, config, digits, reporter=_Interrupt(epoch=3))
    assert not runs.is_finished(interrupted)
    assert [row["epoch"] for row in runs.read_history(interrupted / runs.HISTORY)] == [1, 2]
    assert runs.open_run(interrupted, config) == "resume"
    resumed = teachers.train(interrupted, config, digits)

    history = runs.read_history(interrupted / runs.HISTORY)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    reference = runs.read_history(straight / runs.HISTORY)
    for row, ref in zip(history, reference):
        assert row["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-4)
    assert resumed["test_accuracy"] == pytest.approx(expected["test_accuracy"], abs=1e-6)
    a = keras.saving.load_model(straight / runs.MODEL).get_weights()
    b = keras.saving.load_model(interrupted / runs.MODEL).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)


def _completed(folder, epochs):
    with h5py.File(folder / runs.CHECKPOINT, "w") as file:
        file.attrs["epoch"] = epochs


def test_a_folder_with_another_configuration_is_refused(tmp_path):
    config = teachers.teacher_config("resnet20", "digits", epochs=2)
    runs.open_run(tmp_path / "run", config)
    _completed(tmp_path / "run", 1)
    other = teachers.teacher_config("resnet20", "digits", epochs=3)
    with pytest.raises(UserError, match=r"another configuration \(epochs 2 -> 3\).*--out"):
        runs.open_run(tmp_path / "run", other)
    (tmp_path / "run" / runs.METRICS).write_text('{"test_accuracy": 0.5}')  # finished: not even the lr may change
    with pytest.raises(UserError, match=r"a finished run of another configuration \(lr 0\.1 -> 0\.05\)"):
        runs.open_run(tmp_path / "run", teachers.teacher_config("resnet20", "digits", epochs=2, lr=0.05))


def test_an_unfinished_run_resumes_with_another_learning_rate_or_solver_limit(tmp_path):
    """the settings a failed epoch's advice names may change when the run resumes."""
    config = teachers.teacher_config("resnet20", "digits", epochs=2)
    runs.open_run(tmp_path / "run", config)
    _completed(tmp_path / "run", 1)
    lower = teachers.teacher_config("resnet20", "digits", epochs=2, lr=0.05)
    assert runs.open_run(tmp_path / "run", lower) == "resume"
    saved = runs.read_json(tmp_path / "run" / runs.CONFIG)
    assert saved["lr"] == 0.05
    assert saved["changes"] == [{"after_epoch": 1, "setting": "lr", "from": 0.1, "to": 0.05}]
    assert runs.changes_after(tmp_path / "run", 1) == "lr 0.1 -> 0.05"
    assert runs.open_run(tmp_path / "run", lower) == "resume"  # the same settings again: nothing more to record
    assert len(runs.read_json(tmp_path / "run" / runs.CONFIG)["changes"]) == 1


def test_a_run_made_before_a_setting_existed_is_the_same_run_with_its_old_value(tmp_path):
    """Students had no precision before they could compute in mixed_bfloat16: a config.json without one is float32's,
    the same run (not a conflict), and mixed_bfloat16's another."""
    config = students.student_config("digits", t1=1.0, epochs=2)
    assert config["precision"] == "float32"
    runs.open_run(tmp_path / "run", {k: v for k, v in config.items() if k != "precision"})
    (tmp_path / "run" / runs.METRICS).write_text('{"test_accuracy": 0.5}')
    assert runs.open_run(tmp_path / "run", config) == "finished"
    mixed = students.student_config("digits", t1=1.0, epochs=2, precision="mixed_bfloat16")
    with pytest.raises(UserError, match=r"another configuration \(precision 'float32' -> 'mixed_bfloat16'\)"):
        runs.open_run(tmp_path / "run", mixed)


def test_a_run_with_no_completed_epoch_starts_again_under_any_configuration(tmp_path):
    config = teachers.teacher_config("resnet20", "digits", epochs=2)
    runs.open_run(tmp_path / "run", config)
    (tmp_path / "run" / "soft_targets.npy").write_bytes(b"left by the failed attempt")
    other = teachers.teacher_config("resnet20", "digits", epochs=5)
    assert runs.open_run(tmp_path / "run", other) == "new"
    assert runs.read_json(tmp_path / "run" / runs.CONFIG)["epochs"] == 5
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [runs.CONFIG]


def test_step_schedule_is_the_papers():
    boundaries = train_step.step_boundaries(epochs=8, steps_per_epoch=10)
    assert boundaries == (40, 60)
    lr = {step: train_step.step_lr(step, 0.1, boundaries) for step in (0, 39, 40, 59, 60, 79)}
    assert lr == pytest.approx({0: 0.1, 39: 0.1, 40: 0.01, 59: 0.01, 60: 0.001, 79: 0.001})
    on_device = train_step.step_lr(torch.tensor(45), 0.1, boundaries)
    assert float(on_device) == pytest.approx(0.01)
    # The Keras schedule the students' optimizers take gives the same rates, and Keras's SGD applies them: a step
    # from w = 0 with gradient 1 moves w to -lr of that step.
    schedule = train_step.StepSchedule(0.1, epochs=8, steps_per_epoch=10)
    assert {step: float(schedule(step)) for step in lr} == pytest.approx(lr)
    weight = keras.Variable(np.zeros(1, np.float32))
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    moves = []
    for _ in range(80):
        weight.assign(np.zeros(1, np.float32))
        optimizer.apply([keras.ops.ones(1)], [weight])
        moves.append(-float(weight.numpy()[0]))
    assert {step: moves[step] for step in lr} == pytest.approx(lr, rel=1e-6)


def test_sgd_train_step_matches_torch_sgd_with_weight_decay():
    """Five steps of the teacher's train step on a linear classifier against torch.optim.SGD on the same one."""
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(5, 8, 6)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 3, (5, 8)))
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9))
    schedule = train_step.StepSchedule(0.1, epochs=8, steps_per_epoch=25)  # lr / 10 from step 100: 5 steps run here
    step = train_step.SGDTrainStep(model, model.optimizer, schedule=schedule, l2=0.01)
    reference = torch.nn.Linear(6, 3)
    kernel, bias = model.get_weights()
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(kernel.T))
        reference.bias.copy_(torch.tensor(bias))
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    losses = []
    for xb, yb in zip(x, y):
        logs = step((xb, yb))
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(reference(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel.T, reference.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, reference.bias.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 5
    # The logged loss is the running mean over the epoch's batches (of equal size here).
    assert float(logs["loss"]) == pytest.approx(np.mean(losses), rel=1e-5)
    step.reset_metrics()
    assert float(step((x[0], y[0]))["loss"]) == pytest.approx(
        torch.nn.functional.cross_entropy(reference(x[0]), y[0]).item(), rel=1e-4
    )


def test_a_finished_run_that_cannot_be_read_is_refused_not_taken_for_another_configuration(tmp_path):
    config = teachers.teacher_config("resnet20", "digits", epochs=2)
    runs.open_run(tmp_path / "run", config)
    (tmp_path / "run" / runs.METRICS).write_text('{"test_accuracy": 5.0}')
    with pytest.raises(UserError, match=r"cannot be read \(damaged: metrics.json: test_accuracy: .*remove the folder"):
        runs.open_run(tmp_path / "run", config)


def test_scoring_the_test_split_less_often_trains_the_same_student(tmp_path):
    # The same 3-epoch student scored after every epoch and after every 2nd (and the last): the evaluation touches no
    # weight and no random state, so the weights are the same; the unscored epoch's test columns are empty, and the
    # learning curve takes only the scored epochs.
    common = ["student", "train", "--dataset", "digits", "--epochs", "3", "--channels", "8", "--train-images", "200"]
    for name, extra in (("every", []), ("sparse", ["--eval-every", "2"])):
        result = CliRunner().invoke(app, [*common, *extra, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    every, sparse = (runs.read_history(tmp_path / name / runs.HISTORY) for name in ("every", "sparse"))
    assert [row["test_accuracy"] == "" for row in sparse] == [True, False, False]
    for row, ref in zip(sparse[1:], every[1:]):
        assert row["test_accuracy"] == ref["test_accuracy"] and row["train_loss"] == ref["train_loss"]
    a = keras.saving.load_model(tmp_path / "every" / runs.MODEL).get_weights()
    b = keras.saving.load_model(tmp_path / "sparse" / runs.MODEL).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    metrics = [runs.read_json(tmp_path / name / runs.METRICS) for name in ("every", "sparse")]
    assert metrics[0]["test_correct"] == metrics[1]["test_correct"]
    from nodekd_cli import report

    curve = report.learning_curves([runs.read_run(tmp_path / "sparse")], {}, tmp_path)
    assert [point["epoch"] for point in curve] == [2, 3]
    refused = CliRunner().invoke(app, [*common, "--eval-every", "0", "--out", str(tmp_path / "zero")])
    assert refused.exit_code == 2 and "--eval-every" in refused.output and not (tmp_path / "zero").exists()
