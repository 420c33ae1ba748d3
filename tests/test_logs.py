"""Logs that pipe: a command whose output goes to a file or a pipe writes every line whole, whatever the terminal's
width, and its tables one row a line, so that grep finds a claim or an epoch on one line."""

import os
import subprocess
import sys

from tests.test_report import study  # noqa: F401  (a fixture: a small study's run folders)


def run_piped(*args, cwd=None):
    """`nodekd ARGS` with stdout and stderr into pipes and no COLUMNS, as in a cluster job's log."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "nodekd_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


def test_a_report_into_a_pipe_keeps_every_claim_and_comparison_on_one_line(study):  # noqa: F811
    code, lines = run_piped("report", "--runs", study)
    assert code == 0
    claims = [line for line in lines if "digits" in line and "Knowledge distillation raises accuracy" in line]
    assert len(claims) == 1 and "undecided" in claims[0]  # data set, claim and verdict: one row, one line
    sentences = [line for line in lines if line.startswith(("  digits, ", "  svhn, "))]
    assert sentences and all(line.rstrip().endswith(".") for line in sentences)  # no sentence broken mid-field
    assert max(len(line) for line in lines) > 120  # wider than any terminal default: nothing was wrapped


def test_training_into_a_pipe_writes_a_whole_line_per_epoch(tmp_path):
    code, lines = run_piped(
        "student",
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--channels",
        "4",
        "--batch-size",
        "256",
        "--out",
        tmp_path / "run",
    )
    assert code == 0
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2 and all(line.rstrip().endswith("s") and "NFE" in line for line in epochs)
    assert any(line.startswith("│ run folder") and str(tmp_path / "run") in line for line in lines)
