"""Faults a user meets: two commands on one run folder, kills at any moment, broken run folders,
file-system errors, interruptions. Each ends in one sentence and the documented exit status, and nothing computed
is lost."""

import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

import models
from nodekd_cli import attacks, files, runs, students
from nodekd_cli.app import app

# A student that trains in about a second an epoch on the 2-core CPU: 256 digits, 4 steps of 64, 8 channels.
TINY = ["--dataset", "digits", "--train-images", "256", "--channels", "8", "--batch-size", "64", "--device", "cpu"]


def invoke(*args, columns=300):
    """(exit status, stderr lines, stdout) of a command run in this process, on a terminal `columns` wide."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr.splitlines(), result.stdout


def nodekd(*args, env=None, cwd=None):
    """A command in a fresh process, as a user starts it; its stderr is collected line by line as it comes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nodekd_cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300", **(env or {})},
        cwd=cwd,
    )
    process.lines = []
    reader = threading.Thread(target=lambda: process.lines.extend(process.stderr), daemon=True)
    reader.start()
    process.reader = reader
    return process


def finish(process, timeout=300):
    process.wait(timeout)
    process.reader.join(10)
    return process.returncode, process.lines


def wait_until(condition, process, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the command ended before {what}: {''.join(process.lines)}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def partial_files(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if ".partial" in p.name)


def history_without_times(folder):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in runs.read_history(Path(folder) / runs.HISTORY)]


@pytest.fixture(scope="module")
def finished_student(tmp_path_factory):
    """A finished tiny student run (1 epoch)."""
    folder = tmp_path_factory.mktemp("finished") / "node"
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))
    assert code == 0, lines
    return folder


def test_a_folder_its_holder_removes_while_a_waiter_takes_the_lock_is_made_again(tmp_path, monkeypatch):
    """The race a waiter meets: it finds the folder there, then the holder it waited for removes the empty folder it
    had made, before the waiter opens its lock file in it. The waiter makes the folder again and holds the lock."""
    from nodekd_cli import locks

    folder = tmp_path / "run" / "attacks"
    folder.mkdir(parents=True)
    made, removed = locks.make_folders, []

    def then_removed_by_the_holder(path):
        created = made(path)
        if Path(path) == folder and not removed:
            folder.rmdir()
            removed.append(True)
        return created

    monkeypatch.setattr(locks, "make_folders", then_removed_by_the_holder)
    with locks.lock(folder, name=".fgsm.lock"):
        assert removed and (folder / ".fgsm.lock").is_file()
    assert not (folder / ".fgsm.lock").exists()


# Item 1: two commands on one run folder.


def test_a_held_run_folder_is_refused_and_waited_for_with_wait(tmp_path, finished_student):
    folder = tmp_path / "run"
    with runs.lock(folder):
        code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))
        assert code == 1 and len(lines) == 1
        assert f"{folder} is being written by process {os.getpid()}" in lines[0] and "--wait" in lines[0]
        assert sorted(p.name for p in folder.iterdir()) == [runs.LOCK]  # nothing written beside the holder's lock
    assert not folder.exists()  # the holder made the folder and wrote nothing: it leaves nothing behind

    # --wait: the attack waits for the holder of attacks/.fgsm.lock, then runs.
    released = threading.Event()

    def hold():
        with runs.lock(finished_student / runs.ATTACKS_DIR, name=".fgsm.lock"):
            time.sleep(1.5)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    code, lines, stdout = invoke("attack", "fgsm", "--run", str(finished_student), "--eps-max", "1", "--wait")
    holder.join()
    assert code == 0, lines
    assert released.is_set() and f"Waiting for process {os.getpid()}" in stdout
    assert runs.read_json(finished_student / runs.ATTACKS_DIR / "fgsm.json")["eps"] == [0, 1]


def test_a_killed_holders_stale_lock_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from nodekd_cli import runs\n"
            f"with runs.lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(runs.RunLocked, match=f"process {holder.pid}"):
        with runs.lock(folder):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((folder / runs.LOCK).read_text())["pid"] == holder.pid  # the dead holder's lock file stays
    with runs.lock(folder):
        assert json.loads((folder / runs.LOCK).read_text())["pid"] == os.getpid()


# The fault-injection test: SIGKILL at moments drawn by a seeded generator.


def test_kills_at_random_moments_lose_nothing(tmp_path):
    """A real training command, killed with SIGKILL before its first epoch ends, mid-epoch, and inside each of its
    writes (NODEKD_TEST_WRITE_PAUSE stretches every write so that the kill lands inside it), at moments drawn by a
    seeded generator. Each rerun resumes; the last is started twice at once, as a resubmitted job beside the old one
    (item 1): one finishes the run, the other refuses in one line naming it or finds the run finished. The run ends
    with the history and weights of an uninterrupted run, and no partial file or lock. TensorFlow, which a training
    process must never import, is a stub here that records being imported."""
    rng = random.Random(14)
    stub = tmp_path / "stub"
    (stub / "tensorflow").mkdir(parents=True)
    (stub / "tensorflow" / "__init__.py").write_text(
        f"open({str(tmp_path / 'tensorflow-imported')!r}, 'w').close()\nraise ImportError('a stub')\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])}
    args = ["student", "train", *TINY, "--epochs", "3"]
    folder = tmp_path / "killed"

    def written(process, name):
        return lambda: any(f"writing {name}" in line for line in process.lines)

    def kill(process, moment):
        process.send_signal(signal.SIGKILL)
        code, _ = finish(process)
        assert code == -signal.SIGKILL, moment

    # Before the first epoch ends: once the run folder holds its config, well before the epoch's 4 steps end.
    process = nodekd(*args, "--out", str(folder), env=env)
    wait_until(lambda: (folder / runs.CONFIG).exists(), process, "the run folder")
    time.sleep(rng.uniform(0.0, 0.2))
    assert not (folder / runs.HISTORY).exists()
    kill(process, "before the first epoch ends")
    # The user's own files beside the run, hidden ones included: not one of their bytes may change.
    foreign = {".env": b"SECRET=1", "notes.txt": b"mine", "attacks/mine.json": b"{}"}
    for name, data in foreign.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)

    # Mid-epoch and inside the writes of an epoch, in a drawn order; then inside the final writes.
    middle = ["mid-epoch", "history.csv", "checkpoint.h5"]
    rng.shuffle(middle)
    for moment in [*middle, "model.keras", "metrics.json"]:
        pause = 0.01 if moment == "mid-epoch" else 0.5
        process = nodekd(*args, "--out", str(folder), env={**env, files.WRITE_PAUSE_ENV: str(pause)})
        if moment == "mid-epoch":
            wait_until(written(process, "checkpoint.h5"), process, "an epoch's end")
            time.sleep(rng.uniform(0.05, 0.3))
        else:
            wait_until(written(process, moment), process, f"the write of {moment}")
            time.sleep(rng.uniform(0.05, 0.4))
            assert any(name.startswith(f".{moment}") for name in partial_files(folder)), moment
        kill(process, moment)
        assert not runs.is_finished(folder)

    outcomes = [finish(process) for process in [nodekd(*args, "--out", str(folder), env=env) for _ in range(2)]]
    for code, lines in outcomes:
        assert code in (0, 1) and "Traceback" not in "".join(lines), lines
    for code, lines in outcomes:
        if code == 1:
            assert len(lines) == 1 and f"{folder} is being written by process" in lines[0] and "--wait" in lines[0]
    assert runs.is_finished(folder) and partial_files(folder) == [] and not (folder / runs.LOCK).exists()
    assert {name: (folder / name).read_bytes() for name in foreign} == foreign

    code, lines, _ = invoke(*args, "--out", str(tmp_path / "straight"))  # uninterrupted
    assert code == 0, lines
    expected, got = history_without_times(tmp_path / "straight"), history_without_times(folder)
    assert [row["epoch"] for row in got] == [1, 2, 3]
    for row, reference in zip(got, expected, strict=True):
        assert row.keys() == reference.keys()
        for key in row:
            assert row[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-6), key
    a = keras.saving.load_model(tmp_path / "straight" / runs.MODEL).get_weights()
    b = keras.saving.load_model(folder / runs.MODEL).get_weights()
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)
    assert not (tmp_path / "tensorflow-imported").exists(), "the training process imported TensorFlow"


# Item 2: a run resumed with the setting a failed epoch's advice names.


class _StopAfter:
    """A progress reporter that stops training with Ctrl-C once `epochs` epochs have completed."""

    def __init__(self, epochs):
        self.epochs = epochs

    def start(self, epochs, initial_epoch):
        pass

    def epoch_start(self, epoch, steps):
        if epoch > self.epochs:
            raise KeyboardInterrupt

    def batch_end(self, step, logs, lr):
        pass

    def epoch_end(self, row):
        pass


def test_a_resumed_run_records_a_changed_solver_limit_and_the_report_shows_it(tmp_path, digits):
    from nodekd_cli import report

    options = {"epochs": 2, "channels": 8, "batch_size": 64, "train_images": 256}
    config = students.student_config("digits", t1=1, **options)
    folder = tmp_path / "runs" / "node"
    with pytest.raises(KeyboardInterrupt):
        students.train_run(folder, config, digits, device="cpu", reporter=_StopAfter(1))
    changed = students.student_config("digits", t1=1, solver=models.Solver(max_num_steps=500), **options)
    students.train_run(folder, changed, digits, device="cpu")
    saved = runs.read_json(folder / runs.CONFIG)
    assert saved["solver"]["max_num_steps"] == 500
    assert saved["changes"] == [{"after_epoch": 1, "setting": "solver.max_num_steps", "from": None, "to": 500}]
    history = runs.read_history(folder / runs.HISTORY)
    assert [row.get("changes") for row in history] == ["", "solver.max_num_steps None -> 500"]
    built = report.build(tmp_path / "runs")
    (row,) = report.run_rows(built)
    assert row["resumed_with"] == "resumed after epoch 1 with solver.max_num_steps None -> 500"
    assert "resumed after epoch 1 with solver.max_num_steps None -> 500" in report.to_markdown(built)


# Item 3: broken run folders.


@pytest.fixture
def broken_and_good(tmp_path, finished_student):
    """runs/a: a finished run whose model.keras was cut short; runs/group/b: a good run two levels down."""
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(finished_student, root / "a", ignore=shutil.ignore_patterns(runs.ATTACKS_DIR))
    shutil.copytree(finished_student, root / "group" / "b", ignore=shutil.ignore_patterns(runs.ATTACKS_DIR))
    model = root / "a" / runs.MODEL
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    return root


def test_a_truncated_model_is_one_sentence_everywhere(broken_and_good):
    broken = broken_and_good / "a"
    teacher = broken_and_good / "teacher"  # a teacher run with the same damage
    teacher.mkdir()
    for name in (runs.MODEL, runs.METRICS):
        (teacher / name).write_bytes((broken / name).read_bytes())
    runs.write_json(teacher / runs.CONFIG, {**runs.read_json(broken / runs.CONFIG), "kind": "teacher"})
    for args, folder in (
        (["attack", "fgsm", "--run", str(broken), "--eps-max", "1"], broken),
        (["attack", "check", str(broken), "--n", "5"], broken),
        (["attack", "autoattack", "--run", str(broken), "--n", "5"], broken),
        (["teacher", "eval", str(teacher)], teacher),
        (["distill", "--teacher", str(teacher), "--T", "3", "--out", str(broken_and_good / "kd")], teacher),
    ):
        code, lines, _ = invoke(*args)
        assert code == 1 and lines == [
            f"Error: The model file {folder / runs.MODEL} is damaged or incomplete; remove {folder} and run its "
            f"command again."
        ], (args, lines)
    assert not (broken_and_good / "kd").exists()


def test_attacking_every_run_goes_past_a_broken_one_and_finds_runs_at_any_depth(broken_and_good):
    code, lines, stdout = invoke("attack", "fgsm", "--runs", str(broken_and_good), "--eps-max", "1")
    assert code == 1  # one run failed
    assert len(lines) == 1 and "damaged or incomplete" in lines[0]
    assert (broken_and_good / "group" / "b" / runs.ATTACKS_DIR / "fgsm.json").exists()
    assert not (broken_and_good / "a" / runs.ATTACKS_DIR).exists()


# Item 4: file-system errors.


@contextlib.contextmanager
def read_only(folder):
    """Makes `folder` unwritable, even for root (which ignores permission bits): chattr +i where it works."""
    folder.chmod(0o555)
    immutable = False
    try:
        probe = folder / ".probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:  # root: permission bits do not stop it
            probe.unlink()
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip(f"cannot make {folder} read-only here (root, and no chattr +i)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_file_system_errors_are_one_sentence_and_an_attack_checks_before_its_sweep(
    tmp_path, finished_student, monkeypatch
):
    (tmp_path / "a-file").write_text("x")
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "a-file"))
    assert code == 1 and lines == [f"Error: Cannot write {tmp_path / 'a-file'}: {runs.A_FILE}."]
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "a-file" / "run"))
    assert code == 1 and lines == [f"Error: Cannot write {tmp_path / 'a-file' / 'run'}: {runs.A_FILE}."]

    parent = tmp_path / "read-only"
    parent.mkdir()
    with read_only(parent):
        code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(parent / "run"))
    assert code == 1 and len(lines) == 1 and f"Cannot write {parent / 'run'}: " in lines[0]

    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep ran although its result could not be saved")

    monkeypatch.setattr(attacks, "sweep", no_sweep)
    results = finished_student / runs.ATTACKS_DIR
    if results.exists():
        results.rename(finished_student / "attacks-before")
    try:
        with read_only(finished_student):
            code, lines, _ = invoke("attack", "pgd", "--run", str(finished_student), "--eps-max", "2")
        assert code == 1 and len(lines) == 1 and f"Cannot write {results}: " in lines[0]
        results.write_text("a file where the attack results go")
        code, lines, _ = invoke("attack", "pgd", "--run", str(finished_student), "--eps-max", "2")
        assert code == 1 and lines == [f"Error: Cannot write {results}: {runs.A_FILE}."]
    finally:
        results.unlink(missing_ok=True)
        if (finished_student / "attacks-before").exists():
            (finished_student / "attacks-before").rename(results)

    # A report that cannot write its figures is still shown, with one line saying why (the CSV format, whose output
    # is the files, fails).
    report_root = finished_student.parent
    code, lines, out = invoke("report", "--runs", str(report_root), "--out", str(tmp_path / "a-file"))
    assert code == 0 and lines == [
        f"Cannot write {tmp_path / 'a-file'}: {runs.A_FILE}. The report is shown without its figures."
    ]
    assert "Table 1" in out
    code, lines, _ = invoke("report", "--runs", str(report_root), "--out", str(tmp_path / "a-file"), "--format", "csv")
    assert code == 1 and lines == [f"Error: Cannot write {tmp_path / 'a-file'}: {runs.A_FILE}."]
    unwritable = tmp_path / "unwritable"
    unwritable.mkdir()
    with read_only(unwritable):
        code, lines, _ = invoke("report", "--runs", str(report_root), "--out", str(unwritable), "--format", "csv")
    assert code == 1 and len(lines) == 1 and f"Cannot write {unwritable}" in lines[0]


# Item 8: interruptions, and what an attack records.


def test_sigterm_during_an_attack_says_what_was_kept_and_exits_130(finished_student):
    process = nodekd("attack", "pgd", "--run", str(finished_student), "--eps-max", "12", "--force")
    wait_until(lambda: (finished_student / runs.ATTACKS_DIR / ".pgd.lock").exists(), process, "the sweep")
    masks = [line for line in Path(f"/proc/{process.pid}/status").read_text().splitlines() if line.startswith("Sig")]
    process.send_signal(signal.SIGTERM)
    code, lines = finish(process)
    assert code == 130, (lines, masks)
    assert len(lines) == 1 and lines[0].startswith(f"Error: Interrupted during pgd on {finished_student}")
    assert not (finished_student / runs.ATTACKS_DIR / ".pgd.lock").exists()


@pytest.mark.parametrize("sweep", ["independent", "monotone"])
def test_an_interrupted_sweep_keeps_its_finished_eps_and_the_rerun_attacks_only_the_rest(
    finished_student, monkeypatch, sweep
):
    eps, attacked = [0, 1, 2, 3, 4], []
    pgd = attacks.ATTACKS["pgd"].method

    def recorded(model, x, y, e, steps, **kwargs):
        attacked.append((round(e * 255), len(x)))  # eps and images attacked (a monotone sweep: fewer as eps grows)
        return pgd(model, x, y, e, steps, **kwargs)

    def stop_at_3(e, left, seconds):
        if e == 3:
            raise KeyboardInterrupt

    monkeypatch.setitem(attacks.ATTACKS, "pgd", dataclasses.replace(attacks.ATTACKS["pgd"], method=recorded))
    sample = attacks.Sample(60)
    with pytest.raises(KeyboardInterrupt):
        attacks.attack_run(
            finished_student, "pgd", eps, sample=sample, sweep_mode=sweep, force=True, progress=stop_at_3
        )
    first = list(attacked)
    assert [e for e, _ in first] == [1, 2]
    attacked.clear()
    resumed, reused = attacks.attack_run(finished_student, "pgd", eps, sample=sample, sweep_mode=sweep)
    assert not reused and [e for e, _ in attacked] == [3, 4]  # eps 1 and 2 were kept, not attacked again
    rest = list(attacked)
    assert not list((finished_student / runs.ATTACKS_DIR).glob(".pgd.*"))
    attacked.clear()
    straight, _ = attacks.attack_run(finished_student, "pgd", eps, sample=sample, sweep_mode=sweep, force=True)
    assert attacked == first + rest and resumed["accuracy"] == straight["accuracy"]


def test_fgsm_records_its_step_and_a_sample_as_large_as_the_test_set_is_every_image(finished_student):
    code, lines, _ = invoke("attack", "fgsm", "--run", str(finished_student), "--eps-max", "1", "--n", "100000")
    assert code == 0, lines
    result = runs.read_json(finished_student / runs.ATTACKS_DIR / "fgsm.json")
    assert result["settings"]["step_size"] == "eps" and result["settings"]["steps_rule"] == "one step of size eps"
    assert result["settings"]["n"] is None and result["settings"]["sample"] == "all" and result["n"] == 360


# Every command times every wrong value: one line on stderr, the documented exit status (2: the command line parser's
# usage errors; 1: every other mistake), and nothing left behind. RUN is a finished student run, EMPTY an empty folder,
# FILE a regular file, TEXT a text file posing as a checkpoint.
BAD_INPUTS = [
    (["frobnicate"], 2, "No such command 'frobnicate'"),
    (["teacher", "train", "resnet18"], 2, "unknown teacher 'resnet18'; choose one of: resnet20, resnet32"),
    (["teacher", "train", "resnet20", "--nope"], 2, "No such option: --nope"),
    (["teacher", "train", "resnet20", "--epochs", "x"], 2, "Invalid value for '--epochs'"),
    (["teacher", "train", "resnet20", "--dataset", "mnist"], 1, "Unknown data set 'mnist'; choose one of"),
    (["teacher", "train", "resnet20", "--dataset", "folder:"], 1, "needs a path"),
    (["teacher", "train", "resnet20", "--dataset", "folder:nowhere"], 1, "nowhere does not exist"),
    (["teacher", "train", "resnet20", "--epochs", "0"], 1, "--epochs must be at least 1"),
    (["teacher", "train", "resnet20", "--batch-size", "0"], 1, "--batch-size must be at least 1"),
    (["teacher", "train", "resnet20", "--lr", "-1"], 1, "--lr must be positive"),
    (["teacher", "train", "resnet20", "--precision", "fp8"], 1, "Unknown precision 'fp8'"),
    (["teacher", "train", "resnet20", "--device", "tpu"], 1, "Unknown device 'tpu'"),
    (["teacher", "train", "resnet20", "--device", "cuda"], 1, "sees no CUDA GPU; use --device cpu"),
    (["teacher", "train", "resnet20", "--out", "FILE"], 1, "a file stands where a folder belongs"),
    (["teacher", "eval"], 2, "Missing argument 'run'"),
    (["teacher", "eval", "nowhere"], 1, "nowhere is not a nodekd run folder"),
    (["teacher", "eval", "RUN"], 1, "holds a student run, not a teacher run"),
    (["teacher", "import", "resnet20", "--from", "missing.th"], 1, "The checkpoint missing.th does not exist"),
    (["teacher", "import", "resnet20", "--from", "TEXT", "--dataset", "digits"], 1, "is not a PyTorch checkpoint"),
    (["teacher", "import", "resnet99", "--from", "TEXT"], 2, "unknown teacher 'resnet99'"),
    (["student", "train", "--t1", "0"], 1, "--t1 must lie in 0.001..10000"),
    (["student", "train", "--max-num-steps", "0"], 1, "--max-num-steps must be at least 1"),
    (["student", "train", "--max-num-steps", "-1"], 1, "--max-num-steps must be at least 1"),
    (["student", "train", "--method", "leapfrog"], 1, "Unknown ODE method 'leapfrog'"),
    (["student", "train", "--rtol", "0"], 1, "--rtol, --atol and --step-size must be positive"),
    (["student", "train", "--optimizer", "rmsprop"], 1, "Unknown optimizer 'rmsprop'"),
    (["student", "train", "--norm", "batch"], 1, "Unknown --norm 'batch'"),
    (["student", "train", "--precision", "float16"], 1, "Unknown precision 'float16'"),
    (["student", "train", "--train-images", "0"], 1, "--train-images must be at least 1"),
    (["student", "train", "--channels", "0"], 1, "--channels must be at least 1"),
    (["student", "train", "--downsample", "5"], 1, "--downsample 5 needs image sides divisible by 32"),
    (["distill", "--T", "3"], 2, "Missing option '--teacher'"),
    (["distill", "--teacher", "nowhere", "--T", "3"], 1, "The teacher folder nowhere does not exist"),
    (["distill", "--teacher", "RUN", "--T", "3"], 1, "holds a student run, not a teacher run"),
    (["distill", "--teacher", "EMPTY", "--T", "3"], 1, "EMPTY is not a nodekd run folder"),
    *(
        item
        for attack in ("pgd", "mifgsm", "fgsm")
        for item in (
            (["attack", attack, "--eps-max", "-1"], 1, "--eps-max must lie in 0..255"),
            (["attack", attack, "--eps-step", "0"], 1, "--eps-step, --n and --batch-size be at least 1"),
            (["attack", attack, "--n", "0"], 1, "--eps-step, --n and --batch-size be at least 1"),
            (["attack", attack, "--runs", "EMPTY"], 1, "No finished runs under EMPTY"),
            (["attack", attack, "--run", "nowhere"], 1, "nowhere is not a nodekd run folder"),
            (["attack", attack, "--run", "RUN", "--sweep", "sideways"], 1, "Unknown sweep 'sideways'"),
        )
    ),
    (["attack", "autoattack", "--run", "RUN", "--version", "plus"], 1, "Unknown AutoAttack version 'plus'"),
    (["attack", "autoattack", "--run", "RUN", "--eps", "0"], 1, "--eps must lie in 1..255"),
    (["attack", "autoattack", "--runs", "EMPTY"], 1, "No finished runs under EMPTY"),
    (["attack", "check", "nowhere"], 1, "nowhere is not a nodekd run folder"),
    (["attack", "check", "RUN", "--eps", "0"], 1, "--eps (or auto), --n and --queries must be at least 1"),
    (["attack", "check", "RUN", "--eps", "x"], 1, "--eps must be a whole number or auto"),
    (["attack", "check", "RUN", "--grad-method", "leapfrog"], 1, "Unknown ODE method 'leapfrog'"),
    (["attack", "check", "RUN", "--grad-step-size", "-1"], 1, "--grad-step-size must be positive."),
    (["data", "prepare", "mnist"], 1, "Unknown data set 'mnist'"),
    (["report", "--runs", "nowhere"], 1, "nowhere does not exist"),
    (["report", "--runs", "EMPTY"], 1, "No finished runs under EMPTY"),
    (["report", "--runs", "RUN", "--format", "pdf"], 1, "Unknown format 'pdf'"),
    (["reproduce", "--preset", "huge"], 1, "Unknown preset 'huge'"),
    (["reproduce", "--attacks", "cw"], 1, "Unknown attack 'cw'"),
    (["reproduce", "--seeds", "0"], 1, "--seeds must lie in 1..100"),
    (["reproduce", "--seeds", "1000000", "--dry-run"], 1, "--seeds must lie in 1..100"),
    (["reproduce", "--t1", "one"], 1, "--t1 takes comma-separated numbers"),
    (["reproduce", "--sweep", "sideways"], 1, "Unknown sweep 'sideways'"),
]


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


@pytest.mark.parametrize("args, code, message", BAD_INPUTS, ids=[" ".join(a) for a, _, _ in BAD_INPUTS])
def test_a_bad_input_is_one_line_and_its_exit_status_and_leaves_nothing_behind(
    tmp_path, monkeypatch, finished_student, args, code, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "FILE").write_text("a file")
    (tmp_path / "TEXT").write_text("not a checkpoint")
    names = {"RUN": str(finished_student)}
    before, run_before = _listing(tmp_path), _listing(finished_student)
    got, lines, _ = invoke(*(names.get(a, a) for a in args))
    assert (got, len(lines)) == (code, 1), lines
    assert lines[0].startswith("Error: ") and message in lines[0], lines
    assert _listing(tmp_path) == before and _listing(finished_student) == run_before


def test_a_stop_requested_inside_a_gc_callback_is_kept_for_the_next_step(monkeypatch):
    """A signal that lands in a garbage-collector callback (JAX registers one) must not raise there, where Python
    would print the exception and drop it; the next `check` between steps raises it."""
    import gc

    from nodekd_cli import interrupts

    monkeypatch.setattr(interrupts, "requested", False)
    interrupts.check()  # nothing requested: nothing raised
    raised = []

    def callback(phase, info):
        try:
            interrupts.request(signal.SIGTERM, sys._getframe())
        except KeyboardInterrupt:
            raised.append(phase)

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert raised == [] and interrupts.requested
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    with pytest.raises(KeyboardInterrupt):  # anywhere else, the handler raises at once
        interrupts.request(signal.SIGTERM, sys._getframe())


def test_a_stop_while_a_lock_is_taken_is_raised_once_it_is_held_and_the_lock_file_goes(tmp_path, monkeypatch):
    """The SIGTERM test's race, made certain: the signal lands while `runs.lock` takes the lock (in `os.fstat`, once
    the lock file is open) or notes its holder (in `socket.gethostname`)."""
    import socket

    from nodekd_cli import interrupts

    for module, name in ((os, "fstat"), (socket, "gethostname")):
        monkeypatch.setattr(interrupts, "requested", False)
        original, calls = getattr(module, name), []

        def signalled(*args, original=original, calls=calls):
            calls.append(args)
            if len(calls) == 1:  # one signal, at the first call
                interrupts.request(signal.SIGTERM, sys._getframe())
            return original(*args)

        entered = []
        with monkeypatch.context() as patched:
            patched.setattr(module, name, signalled)
            with pytest.raises(KeyboardInterrupt):
                with runs.lock(tmp_path / "run"):
                    entered.append(True)
        assert calls and entered == [], name
        assert not (tmp_path / "run").exists(), name  # the folder it made goes with the lock file
