"""Folders and disks nodekd does not own: it takes over a folder only when it holds a nodekd run, deletes only the
files it wrote, and meets a full disk with one sentence naming the file, exit status 1, and the last good state kept."""

import errno
import json
import os
import subprocess
import sys

import pytest

from nodekd_cli import files, runs
from tests.test_faults import TINY, invoke


def _listing(folder):
    """Every file under `folder` with its bytes (hidden ones too)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "command", [["student", "train", *TINY], ["teacher", "train", "resnet20", "--dataset", "digits"]]
)
def test_a_folder_whose_config_is_not_nodekds_is_refused_and_left_as_it_was(tmp_path, command):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 768}')  # a Hugging Face model folder, say
    (folder / "README.md").write_text("notes")
    (folder / ".env").write_text("SECRET=1")
    before = _listing(folder)
    code, lines, _ = invoke(*command, "--epochs", "1", "--out", str(folder))
    assert (code, len(lines)) == (1, 1), lines
    assert str(folder / "config.json") in lines[0] and "not a nodekd run's config" in lines[0]
    assert _listing(folder) == before
    (folder / "config.json").write_text("[1, 2]")  # not even an object
    code, lines, _ = invoke(*command, "--epochs", "1", "--out", str(folder))
    assert (code, len(lines)) == (1, 1) and "not a nodekd run's config" in lines[0]


def test_a_new_run_that_starts_again_deletes_only_the_files_nodekd_wrote(tmp_path):
    # A nodekd run interrupted before its first epoch left its config and a history; the user put notes beside them.
    folder = tmp_path / "run"
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))
    assert code == 0, lines
    (folder / "metrics.json").unlink()
    (folder / "model.keras").unlink()
    (folder / "notes.txt").write_text("mine")
    (folder / ".env").write_text("SECRET=1")
    (folder / "attacks").mkdir(exist_ok=True)
    (folder / "attacks" / "mine.txt").write_text("mine too")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "lr": 0.5}))  # another configuration, no epoch done
    foreign = {name: (folder / name).read_bytes() for name in ("notes.txt", ".env", "attacks/mine.txt")}
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))
    assert code == 0, lines
    assert {name: (folder / name).read_bytes() for name in foreign} == foreign
    assert json.loads((folder / "config.json").read_text())["lr"] != 0.5  # its own file was rewritten
    # A new run that fails before its first epoch ends cleans up after itself: its own files, not the user's.
    from nodekd_cli import training
    from nodekd_cli.errors import UserError

    def fails(*args, **kwargs):
        raise UserError("the first epoch failed")

    config = json.loads((folder / "config.json").read_text())
    (folder / "metrics.json").unlink()
    (folder / "model.keras").unlink()
    (folder / "config.json").write_text(json.dumps({**config, "lr": 0.5}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "fit_run", fails)
        code, lines, _ = invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))
    assert (code, lines) == (1, ["Error: the first epoch failed"])
    assert {name: (folder / name).read_bytes() for name in foreign} == foreign
    assert not (folder / "config.json").exists()  # its own, removed: the folder is the user's again


def test_a_full_disk_while_a_checkpoint_is_written_is_one_sentence_and_the_last_checkpoint_stays(tmp_path, monkeypatch):
    # The second checkpoint of a run meets a full disk halfway through its write.
    folder = tmp_path / "full"
    calls = {"n": 0}

    def full_on_second(path, data):
        if path.name == runs.CHECKPOINT:
            calls["n"] += 1
            if calls["n"] == 2:
                with real_replacing(path) as temporary:
                    temporary.write_bytes(data[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(path, data)

    real_replacing, real_write_bytes = files.replacing, files.write_bytes
    monkeypatch.setattr(files, "write_bytes", full_on_second)
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "3", "--out", str(folder))
    assert (code, len(lines)) == (1, 1), lines
    assert str(folder / runs.CHECKPOINT) in lines[0] and "no space left" in lines[0] and "iB free" in lines[0]
    assert runs.completed_epochs(folder) == 1  # the first checkpoint, whole
    assert not [p for p in folder.iterdir() if ".partial" in p.name]
    monkeypatch.undo()
    code, lines, _ = invoke("student", "train", *TINY, "--epochs", "3", "--out", str(folder))
    assert code == 0 and runs.completed_epochs(folder) == 0 and (folder / runs.METRICS).is_file()  # resumed, finished


def test_a_real_full_disk_is_one_sentence_and_exit_status_1(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip("mounting a small tmpfs is not allowed here; the injected full disk above stands in for it")
    try:
        (mount / "filler").write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))  # 64 KiB left: no checkpoint fits
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        done = subprocess.run(
            [sys.executable, "-m", "nodekd_cli", "student", "train", *TINY, "--epochs", "2", "--out", str(mount / "r")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 1 and len(errors) == 1, done.stderr[-2000:]
        assert "no space left" in errors[0] and str(mount / "r") in errors[0]
        # A new run that failed before its first epoch leaves nothing behind (nodekd made the folder, and removes it).
        assert not (mount / "r").exists() or not [p for p in (mount / "r").iterdir() if ".partial" in p.name]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_report_that_cannot_write_its_figures_still_shows_and_says_where_to_write(tmp_path, monkeypatch):
    from nodekd_cli import runs as run_files
    from nodekd_cli.errors import UserError
    from tests.test_report import student, write_run

    write_run(tmp_path / "runs" / "a", student("digits", 1), 0.9)

    def read_only(folder):
        raise UserError(f"Cannot write {folder}: read-only file system.")

    monkeypatch.setattr(run_files, "writable_folder", read_only)
    code, lines, out = invoke("report", "--runs", str(tmp_path / "runs"), "--format", "markdown")
    assert code == 0 and "### Table 1" in out  # the report itself
    assert len(lines) == 1 and "read-only file system" in lines[0] and "pass --out DIR" in lines[0]


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    from tests.test_report import student, write_run

    for name in "abcdefgh":
        write_run(tmp_path / "runs" / name, student("digits", 1, seed="abcdefgh".index(name)), 0.9)
    process = subprocess.Popen(
        [sys.executable, "-m", "nodekd_cli", "report", "--runs", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.readline()
    process.stdout.close()  # `| head -1`
    assert process.wait(timeout=120) == 0 and process.stderr.read() == b""


def test_out_of_range_numbers_are_one_line_each():
    for args, message in (
        (["student", "train", "--seed", "-1"], "--seed"),
        (["student", "train", "--seed", str(2**64)], "--seed"),
        (["student", "train", "--crop-padding", "-1"], "--crop-padding must lie in 0..64"),
        (["student", "train", "--crop-padding", "1000"], "--crop-padding must lie in 0..64"),
        (["student", "train", "--channels", "100000"], "--channels must be at most 4,096"),
        (["student", "train", "--t1", "1e-300"], "--t1 must lie in 0.001..10000"),
        (["attack", "pgd", "--eps-max", "100000"], "--eps-max must lie in 0..255"),
        (["attack", "check", "RUN", "--eps", "1000"], "--eps must lie in 1..255"),
    ):
        code, lines, _ = invoke(*args)
        assert code in (1, 2) and len(lines) == 1 and message in lines[0], (args, lines)


@pytest.mark.parametrize(
    "damage",
    [
        {"accuracy": {"0": 5.0}, "correct": {"0": "1" * 20}},  # an accuracy of 500%
        {"accuracy": {"x": 0.5}, "correct": {"x": "1" * 20}},  # an eps that is no number
        {"accuracy": {"0": 0.5}, "correct": {"0": "10"}},  # outcomes for 2 images of 20
    ],
)
def test_a_damaged_partial_sweep_is_discarded_in_one_line_and_the_sweep_redone(tmp_path, damage):
    from nodekd_cli import attacks

    folder = tmp_path / "run"
    assert invoke("student", "train", *TINY, "--epochs", "1", "--out", str(folder))[0] == 0
    config = runs.read_run(folder).config
    settings = attacks.result_settings(config, "pgd", [0, 4], attacks.Sample(20).of(config["dataset"]))
    partial = folder / "attacks" / ".pgd.sweep-so-far"
    partial.parent.mkdir(exist_ok=True)
    partial.write_text(json.dumps({"settings": settings, **damage}))
    code, _, out = invoke("attack", "pgd", "--run", str(folder), "--eps-max", "4", "--eps-step", "4", "--n", "20")
    assert code == 0 and "Traceback" not in out
    assert ".pgd.sweep-so-far: damaged; discarded" in " ".join(out.split())
    result = json.loads((folder / "attacks" / "pgd.json").read_text())
    assert result["eps"] == [0, 4] and all(0 <= a <= 1 for a in result["accuracy"]) and not partial.exists()
