"""a table of hostile run folders, each tried on every command that reads one (`report`,
`teacher eval`, `attack`, `distill` from it or resuming in it, `reproduce`): one line, the right exit status, no file
outside the folder changed and nothing inside it lost."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.test_faults import TINY, invoke
from tests.test_links import VICTIM, _rewrite_model, _unfinished_student, victim


def _config(field, value):
    def change(folder):
        path = folder / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))

    return change


def _metrics(field, value):
    def change(folder):
        path = folder / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))

    return change


def _unknown_class(folder):
    def evil(config):
        config["module"], config["class_name"] = "evilpkg.layers", "Payload"
        config.pop("registered_name", None)

    _rewrite_model(folder / "model.keras", evil)


def _lambda_layer(folder):
    import keras

    inputs = keras.Input((8, 8, 1))
    (folder / "model.keras").unlink()
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(folder / "model.keras")


def _linked_lock(folder):
    (folder / ".lock").symlink_to(victim(folder.parent))


# name: (damage, what the one line says for a command that reads the teacher's model, for the report's skip line)
TEACHERS = {
    "dataset a number": (_config("dataset", 123), "dataset: input should be a valid string"),
    "seed a string": (_config("seed", "0"), "seed: input should be a valid integer"),
    "accuracy 5": (_metrics("test_accuracy", 5.0), "test_accuracy: input should be less"),
    "a class nodekd does not know": (_unknown_class, "names a class nodekd does not know"),
    "a Lambda layer": (_lambda_layer, "holds code, refused by Keras"),
}


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def hostile(tmp_path, attack_runs, request):
    """A copy of the fixture's teacher, damaged as `request.param` says, beside a file it must not write."""
    damage, words = TEACHERS[request.param]
    folder = tmp_path / "runs" / "teacher"
    shutil.copytree(attack_runs / "resnet20", folder)
    shutil.copytree(attack_runs / "node", folder.parent / "good")  # so that the report has a run to report
    damage(folder)
    outside = victim(tmp_path)
    before = _snapshot(folder)
    yield folder, words
    assert _snapshot(folder) == before  # nothing inside it lost or changed
    assert outside.read_text() == VICTIM


@pytest.mark.parametrize("hostile", TEACHERS, indirect=True)
def test_a_hostile_teacher_is_one_line_for_every_command_that_reads_it(tmp_path, hostile):
    folder, words = hostile
    model_damage = "class" in words or "code" in words
    code, lines, _ = invoke("teacher", "eval", str(folder), "--device", "cpu")
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], ("eval", lines)
    student = tmp_path / "student"
    code, lines, _ = invoke(
        "distill", "--teacher", str(folder), "--T", "3", *TINY, "--epochs", "1", "--out", str(student)
    )
    assert code == 1 and len(lines) == 1 and words in lines[0], ("distill", lines)
    assert not student.exists() or not any(student.iterdir())  # nothing trained from it
    code, lines, _ = invoke("attack", "pgd", "--run", str(folder), "--eps-max", "1", "--n", "8", "--device", "cpu")
    assert code == 1 and len(lines) == 1 and words in lines[0], ("attack", lines)
    code, lines, _ = invoke("report", "--runs", str(folder.parent), "--format", "csv", "--out", str(tmp_path / "r"))
    if model_damage:  # the report reads no weights: the run is listed as it is
        assert code == 0 and not lines, lines
    else:
        assert code == 0 and len(lines) == 1 and f"Skipped {folder}:" in lines[0] and words in lines[0], lines


def test_a_linked_lock_in_a_teacher_stops_no_reader_and_is_never_written(tmp_path, attack_runs):
    # Reading a teacher or attacking it takes no lock on the run itself (an attack locks attacks/.<attack>.lock, whose
    # links tests/test_links.py refuses): both go on, and nothing is written through the link.
    folder = tmp_path / "teacher"
    shutil.copytree(attack_runs / "resnet20", folder)
    _linked_lock(folder)
    target = (folder / ".lock").resolve()
    code, lines, _ = invoke("teacher", "eval", str(folder), "--device", "cpu")
    assert code == 0, lines
    code, lines, _ = invoke("attack", "pgd", "--run", str(folder), "--eps-max", "1", "--n", "8", "--device", "cpu")
    assert code == 0, lines
    assert target.read_text() == VICTIM and (folder / ".lock").is_symlink()


def _nan_checkpoint(folder):
    with h5py.File(folder / "checkpoint.h5", "r+") as file:
        data = file["model"]["0"]
        data[...] = np.full(data.shape, np.nan)


def _linked_history(folder):
    """history.csv a link to a file elsewhere that holds the run's history (which resuming would append to)."""
    outside = folder.parent / "elsewhere" / "history.csv"
    outside.parent.mkdir(exist_ok=True)
    shutil.move(folder / "history.csv", outside)
    (folder / "history.csv").symlink_to(outside)


RESUMES = {
    "a checkpoint holding NaN": (_nan_checkpoint, "holds NaN or infinite values"),
    "a short history": (lambda f: (f / "history.csv").write_text("epoch\n"), "does not hold the 1 epochs"),
    "a linked lock": (_linked_lock, "symbolic link"),
    "a linked history": (_linked_history, "symbolic link"),
}


@pytest.mark.parametrize("damage", RESUMES)
def test_a_hostile_unfinished_distillation_is_one_line_on_resume(tmp_path, digits, attack_runs, damage):
    change, words = RESUMES[damage]
    folder = tmp_path / "run"
    args = _unfinished_student(folder, digits, teacher=attack_runs / "resnet20")
    change(folder)
    outside = tmp_path / "elsewhere" / ("history.csv" if damage == "a linked history" else "precious.txt")
    kept = outside.read_bytes() if outside.exists() else None
    before = _snapshot(folder)
    code, lines, _ = invoke("distill", "--teacher", str(attack_runs / "resnet20"), "--T", "3", *args)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines
    assert _snapshot(folder) == before
    assert kept is None or outside.read_bytes() == kept


def test_reproduce_names_a_damaged_finished_run_and_keeps_it(tmp_path, attack_runs):
    # A study whose student folder holds a finished run with a damaged config: the plan says it cannot be read, the
    # study stops that step (and what needs it) with one line each, and leaves the folder as it was.
    from nodekd_cli import study

    plan = study.expand(study.PRESETS["quick"], root=str(tmp_path / "runs"), t1=[1.0], attacks=["pgd"], twins=False)
    step = next(s for s in plan if s.kind == "student" and s.config.get("teacher") is None)
    shutil.copytree(attack_runs / "node", step.folder)
    path = step.folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "t1": float("nan")}))
    before = _snapshot(step.folder)
    args = ("reproduce", "--runs", str(tmp_path / "runs"), "--t1", "1", "--attacks", "pgd", "--no-twins")
    # The plan's state cell names the folder, whose length is pytest's to choose: on a terminal too narrow for it, rich
    # wraps the message across lines (CI failed so on a path one character longer). 2,000 columns fit any tmp path.
    code, lines, stdout = invoke(*args, "--dry-run", columns=2000)
    assert code == 0 and "holds a run that cannot be read" in stdout, stdout
    assert "t1: input should be a finite number" in stdout
    assert _snapshot(step.folder) == before
    assert Path(step.folder).exists()


def test_the_solvers_advice_fits_the_failure():
    # the options and soft targets are finite before training starts, so a solver that fails on
    # weights gone NaN means a diverged training (lower --lr); on finite weights, stiff dynamics (tolerances, solver).
    import keras

    from models.ode import SolverError
    from nodekd_cli import training

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    error = SolverError("underflow in dt nan")
    reason, advice = training._solver_failure(error, model)
    assert reason == "underflow in dt nan" and advice.startswith("loosen --rtol/--atol")
    model.layers[0].kernel.assign(np.full((2, 1), np.nan, dtype="float32"))
    reason, advice = training._solver_failure(error, model)
    assert "the training diverged" in reason and advice == "lower --lr"
