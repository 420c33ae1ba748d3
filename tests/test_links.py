"""A run folder is untrusted input: no command writes through a symbolic link in it, whichever file
or folder the link stands for; each is refused in one sentence naming the link, with exit status 1, and the file the
link points to is left as it was."""

import json
import shutil

import pytest

from tests.test_faults import (
    TINY,
    finished_student,  # noqa: F401  (a module fixture: a finished tiny student)
    invoke,
)

VICTIM = "precious data\n"


def victim(tmp_path):
    """A file outside every run folder that a hostile link points to."""
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(VICTIM)
    return path


def refused(code, lines, link, target):
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(link) in lines[0], lines
    assert "symbolic link" in lines[0]
    assert target.read_text() == VICTIM  # nothing written through it


def test_a_linked_run_lock_is_refused_before_training(tmp_path):
    folder, target = tmp_path / "run", victim(tmp_path)
    folder.mkdir()
    (folder / ".lock").symlink_to(target)
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))
    refused(code, lines, folder / ".lock", target)
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # nothing made beside it


@pytest.mark.parametrize("link", ["attacks/.pgd.lock", "attacks/pgd.json", "attacks/.pgd.sweep-so-far", "attacks"])
def test_a_linked_attack_file_or_folder_is_refused(tmp_path, finished_student, link):  # noqa: F811
    run, target = tmp_path / "run", victim(tmp_path)
    shutil.copytree(finished_student, run)
    path = run / link
    if link == "attacks":
        target = tmp_path / "elsewhere" / "pgd.json"  # where a result would land through the linked folder
        target.write_text(VICTIM)
        path.symlink_to(target.parent, target_is_directory=True)
    else:
        path.parent.mkdir(exist_ok=True)
        path.symlink_to(target)
    code, lines, _ = invoke("attack", "pgd", "--run", str(run), "--eps-max", "1", "--n", "8")
    refused(code, lines, path, target)
    if link != "attacks":  # (through the linked folder, pgd.json is the file it must not touch)
        assert "pgd.json" not in [p.name for p in (run / "attacks").iterdir()] or link == "attacks/pgd.json"


def test_a_linked_report_folder_is_refused(tmp_path, finished_student):  # noqa: F811
    root, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    shutil.copytree(finished_student, root / "node")
    elsewhere.mkdir()
    (root / "report").symlink_to(elsewhere, target_is_directory=True)
    code, lines, _ = invoke("report", "--runs", str(root), "--format", "csv")
    assert code == 1 and len(lines) == 1 and str(root / "report") in lines[0], lines
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "args, option",
    [
        (["student", "train", *TINY, "--t1", "inf"], "--t1"),
        (["student", "train", *TINY, "--lr", "nan"], "--lr"),
        (["student", "train", *TINY, "--rtol", "nan"], "--rtol"),
        (["student", "train", *TINY, "--atol", "-inf"], "--atol"),
        (["student", "train", *TINY, "--step-size", "inf", "--method", "rk4"], "--step-size"),
        (["distill", "--teacher", "nowhere", "--T", "nan"], "--T"),
        (["distill", "--teacher", "nowhere", "--T", "3", "--lambda", "inf"], "--lambda"),
        (["teacher", "train", "resnet20", "--dataset", "digits", "--lr", "inf"], "--lr"),
        (["reproduce", "--epochs-scale", "nan", "--dry-run"], "--epochs-scale"),
    ],
)
def test_an_infinite_or_nan_number_is_refused_before_anything(tmp_path, monkeypatch, args, option):
    # Typer reads "inf" and "nan" as numbers; each is one line naming its option, exit status 1,
    # and nothing made (no runs folder).
    monkeypatch.chdir(tmp_path)
    code, lines, _ = invoke(*args)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {option} must be a finite number; got "), lines
    assert list(tmp_path.iterdir()) == []


def _rewrite_model(path, change):
    """Rewrites the config.json inside the Keras file at `path` with `change(config)`."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_model_naming_an_unknown_class_or_holding_code_is_one_sentence(tmp_path, finished_student):  # noqa: F811
    # Keras's "Could not locate class" and its safe mode's refusal of a Lambda layer, each one line.
    import keras

    unknown, code_run = tmp_path / "unknown", tmp_path / "code"
    shutil.copytree(finished_student, unknown)
    shutil.copytree(finished_student, code_run)

    def evil(config):
        config["module"], config["class_name"] = "evilpkg.layers", "Payload"
        config.pop("registered_name", None)

    _rewrite_model(unknown / "model.keras", evil)
    inputs = keras.Input((8, 8, 1))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    (code_run / "model.keras").unlink()
    lambda_model.save(code_run / "model.keras")
    for run, words in ((unknown, "names a class nodekd does not know"), (code_run, "holds code, refused by Keras")):
        code, lines, _ = invoke("attack", "pgd", "--run", str(run), "--eps-max", "1", "--n", "8")
        assert code == 1 and len(lines) == 1 and words in lines[0] and str(run / "model.keras") in lines[0], lines


def _unfinished_student(folder, digits, teacher=None):
    """A tiny student (2 epochs of 256 digits) stopped in its second epoch: one completed, a checkpoint to resume."""
    from nodekd_cli import students
    from tests.test_training import _Interrupt

    options = {"epochs": 2, "channels": 8, "batch_size": 64, "train_images": 256}
    if teacher is not None:
        options.update(teacher_run=teacher, teacher_model_name="resnet20", temperature=3.0)
    config = students.student_config("digits", t1=1, **options)
    found = None if teacher is None else students.load_teacher(teacher)[1]
    with pytest.raises(KeyboardInterrupt):
        students.train_run(folder, config, digits, found, device="cpu", reporter=_Interrupt(2))
    assert (folder / "checkpoint.h5").exists()
    resume = ["--dataset", "digits", "--epochs", "2", "--channels", "8", "--batch-size", "64", "--train-images", "256"]
    return resume + ["--device", "cpu", "--out", str(folder)]


def test_a_history_that_disagrees_with_its_checkpoint_is_refused_and_nothing_is_lost(tmp_path, digits):
    # a history emptied to its header would resume to a model whose metrics miscount its epochs.
    folder = tmp_path / "run"
    args = _unfinished_student(folder, digits)
    (folder / "history.csv").write_text((folder / "history.csv").read_text().splitlines()[0] + "\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, lines, _ = invoke("student", "train", *args)
    assert code == 1 and len(lines) == 1 and "does not hold the 1 epochs its checkpoint" in lines[0], lines
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("damage", ["truncated", "object array", "not finite"])
def test_damaged_soft_targets_are_made_again_from_the_teacher(tmp_path, digits, attack_runs, damage):
    # unreadable or non-finite soft targets are recomputed on resume, and the run finishes.
    import numpy as np

    folder = tmp_path / "run"
    args = _unfinished_student(folder, digits, teacher=attack_runs / "resnet20")
    path = folder / "soft_targets.npy"
    good = np.load(path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "object array":
        np.save(path, np.array([{"a": 1}] * len(good), dtype=object), allow_pickle=True)
    else:
        np.save(path, np.full_like(good, np.nan))
    code, lines, _ = invoke("distill", "--teacher", str(attack_runs / "resnet20"), "--T", "3", *args)
    assert code == 0, lines
    np.testing.assert_allclose(np.load(path), good, rtol=1e-5, atol=1e-5)  # the teacher's logits again
    assert json.loads((folder / "metrics.json").read_text())["epochs"] == 2


DAMAGES = {
    "dataset a number": ("config.json", lambda c: {**c, "dataset": 123}, "dataset: input should be a valid string"),
    "distilled without T": (
        "config.json",
        lambda c: {**c, "teacher": "/t", "teacher_model": "resnet20", "T": None},
        "needs teacher_model and T",
    ),
    "teacher_model a list": ("config.json", lambda c: {**c, "teacher_model": ["x"]}, "teacher_model"),
    "solver a string": ("config.json", lambda c: {**c, "solver": "dopri5"}, "solver: input should be"),
    "no solver": ("config.json", lambda c: {k: v for k, v in c.items() if k != "solver"}, "solver: field required"),
    "t1 NaN": ("config.json", lambda c: {**c, "t1": float("nan")}, "t1: input should be a finite number"),
    "accuracy 5": ("metrics.json", lambda m: {**m, "test_accuracy": 5.0}, "test_accuracy: input should be less"),
    "accuracy a string": ("metrics.json", lambda m: {**m, "test_accuracy": "0.5"}, "test_accuracy"),
    "outcomes miscounted": ("metrics.json", lambda m: {**m, "test_correct": "0101"}, "one outcome per test image"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_field_is_one_sentence_for_the_report_and_the_attack(tmp_path, finished_student, damage):  # noqa: F811
    # one schema, checked where a run is read; the report skips the folder in one line and goes on,
    # an attack on it stops in one line, and nothing in the folder changes.
    name, change, words = DAMAGES[damage]
    root = tmp_path / "runs"
    shutil.copytree(finished_student, root / "good")
    shutil.copytree(finished_student, root / "bad")
    path = root / "bad" / name
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    before = {p.name: p.read_bytes() for p in (root / "bad").iterdir()}
    code, lines, _ = invoke("report", "--runs", str(root), "--format", "csv")
    assert code == 0 and len(lines) == 1 and str(root / "bad") in lines[0] and words in lines[0], lines
    code, lines, _ = invoke("attack", "pgd", "--run", str(root / "bad"), "--eps-max", "1", "--n", "8")
    assert code == 1 and len(lines) == 1 and words in lines[0], lines
    assert {p.name: p.read_bytes() for p in (root / "bad").iterdir()} == before


def test_the_minor_faults_of_issue_27(tmp_path, monkeypatch):
    # --train-images above the set is refused (not recorded as if used); an --out path through "a/.." makes no "a";
    # a hidden folder among a folder data set's classes is not a class.
    import numpy as np
    from PIL import Image

    from nodekd_cli.data import load_dataset

    monkeypatch.chdir(tmp_path)
    code, lines, _ = invoke("student", "train", *TINY[2:], "--dataset", "digits", "--train-images", "100000")
    assert code == 1 and len(lines) == 1 and "more than the 1,437 training images of digits" in lines[0], lines
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "deep").mkdir()
    monkeypatch.chdir(tmp_path / "deep")
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "0", "--out", "a/../../b/../x y")
    assert (
        code == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["deep"] and not any((tmp_path / "deep").iterdir())
    )
    images = tmp_path / "images"
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (images / split / label).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(images / split / label / f"{i}.png")
    (images / "train" / ".ipynb_checkpoints").mkdir()
    found = load_dataset(f"folder:{images}")
    assert found.num_classes == 2 and len(found.y_train) == 6


def test_a_plain_pickle_import_is_one_line_and_a_log_keeps_each_epoch_line_whole(tmp_path):
    import collections
    import pickle
    import re

    from typer.testing import CliRunner

    from nodekd_cli.app import app

    checkpoint = tmp_path / "plain.pkl"
    checkpoint.write_bytes(pickle.dumps({"state_dict": collections.OrderedDict(), "x": collections.Counter("ab")}))
    code, lines, _ = invoke("teacher", "import", "resnet20", "--from", str(checkpoint), "--dataset", "digits")
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), lines
    # Output that is not a terminal, 80 columns: every epoch line whole, however long.
    result = CliRunner().invoke(
        app, ["student", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 1 and re.search(r"NFE [0-9.]+ \(test [0-9.]+\)\s+[0-9.]+s$", epochs[0]), epochs
