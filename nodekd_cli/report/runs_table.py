"""The run table, one row per run, and the learning curves, one point per run and scored epoch."""

from pathlib import Path

from nodekd_cli import checks, convergence, fingerprints, students
from nodekd_cli import runs as run_files
from nodekd_cli.report.collect import relative, sweeps
from nodekd_cli.report.paper import PAPER_PRECISION, family, in_paper_setup


def run_name(report, folder):
    """A run folder relative to the report's --runs (the folder itself when it lies elsewhere)."""
    return relative(report.root, folder)


def resumed_with(config):
    """The settings a run took when it resumed (`runs.open_run`), as "resumed after epoch 3 with lr 0.1 -> 0.01"."""
    by_epoch = {}
    for change in config.get("changes") or []:
        by_epoch.setdefault(change["after_epoch"], []).append(f"{change['setting']} {change['from']} -> {change['to']}")
    return "; ".join(f"resumed after epoch {epoch} with {', '.join(found)}" for epoch, found in by_epoch.items())


def convergence_text(report, run):
    """A student's learning in the run table: "+X points from its half-budget twin", "no half-budget twin", or for a
    half-budget twin, whose twin it is; None for a teacher. (The report judges comparisons, not single runs, from
    these gains: `stats.learning`.)"""
    status = report.convergence.get(run.folder)
    if status is None:
        return None
    if status.twin_of is not None:
        own = "" if status.gain is None else f"; itself {status.text()}"
        return f"half-budget twin of {run_name(report, status.twin_of)}{own}"
    return status.text()


def run_rows(report):
    """One row per run: what it is, how it did, and which attacks and checks it has."""
    rows = []
    for run in report.runs:
        config, metrics = run.config, run.metrics
        solver = config.get("solver") or {}
        teacher = config["kind"] == "teacher"
        precision = students.precision_of(config)
        dynamics = None if teacher else students.dynamics_label(students.dynamics_of(config))
        if dynamics is not None and precision != PAPER_PRECISION:
            dynamics += f", {precision}"
        rows.append(
            {
                "folder": str(run.folder),
                "kind": config["kind"],
                "model": config.get("model"),
                "dataset": config["dataset"],
                "teacher": config.get("teacher_model"),
                "t1": config.get("t1"),
                "T": config.get("T"),
                "lambda": config.get("lambda"),
                "optimizer": None if teacher else config.get("optimizer"),
                "dynamics": dynamics,
                "precision": precision,
                "solver": solver.get("method"),
                "rtol": solver.get("rtol"),
                "atol": solver.get("atol"),
                "seed": config.get("seed"),
                "params": metrics.get("params"),
                "accuracy": run.accuracy,
                "nfe": metrics.get("test_nfe"),
                "train_seconds": metrics.get("train_seconds"),
                "epochs": config.get("epochs"),
                "images_seen": None if teacher else convergence.images_seen(config),
                "paper_budget": None if teacher else convergence.paper_fraction(config),
                "convergence": convergence_text(report, run),
                "resumed_with": resumed_with(config) or None,
                "attacks": {
                    name: {"eps": r["eps"], "n": r.get("n"), "accuracy": r["accuracy"]}
                    for name, r in sorted(sweeps(run).items())
                },
                "check": check_word(run.check),
                "teacher_check": teacher_word(report, run),
                "in_paper_setup": in_paper_setup(run),
            }
        )
    return rows


def learning_curves(runs, status, root):
    """Every student's test accuracy (%) after each epoch against the training images seen by then, from its
    history.csv: one point per run and scored epoch, with its family (distilled or not), whether it is a half-budget
    twin, and its gain over its own twin (points; None without one)."""
    points = []
    for run in runs:
        if run.kind != "student":
            continue
        seen = convergence.images_seen(run.config)
        per_epoch = None if seen is None else seen // run.config["epochs"]
        found = status.get(run.folder, convergence.Status())
        for row in run_files.read_history(Path(run.folder) / run_files.HISTORY):
            if not isinstance(row.get("epoch"), int) or not isinstance(row.get("test_accuracy"), (int, float)):
                continue
            points.append(
                {
                    "dataset": run.config["dataset"],
                    "run": relative(root, run.folder),
                    "family": family(run),
                    "distilled": run.distilled,
                    "twin": found.twin_of is not None,
                    "gain_from_twin": found.gain,
                    "epoch": row["epoch"],
                    "images_seen": None if per_epoch is None else row["epoch"] * per_epoch,
                    "test_accuracy": 100 * row["test_accuracy"],
                }
            )
    return points


def teacher_word(report, run):
    """Whether a distilled student's teacher is still the one it learned from: "same", "changed since" (its
    fingerprint, `fingerprints.recorded`, names another model than the teacher run holds now) or "unknown" (no
    fingerprint, or no teacher run to compare with); None for a run that is no distilled student."""
    if not run.distilled:
        return None
    recorded = fingerprints.recorded(run.config)
    teacher = Path(run.config["teacher"])
    teacher = teacher if teacher.is_absolute() else Path(report.root) / teacher
    found = next((r for r in report.runs if Path(r.folder).resolve() == teacher.resolve()), None)
    if recorded is None:
        return "unknown"
    current = fingerprints.current(recorded[0], teacher / run_files.MODEL, found.metrics if found else None)
    if current is None:
        return "unknown"
    return "same" if recorded[1] == current else "changed since"


def check_word(check):
    """A run's masking checks in a word: None (not checked), "possible masking", "not informative", "reference too
    weak" (APGD-CE far stronger than the paper's PGD: no sign of masking) or "passed"."""
    if check is None:
        return None
    if checks.failed(check, "masking"):
        return "possible masking"
    if not checks.informative(check):
        return "not informative"
    return "reference too weak" if checks.failed(check, "reference") else "passed"
