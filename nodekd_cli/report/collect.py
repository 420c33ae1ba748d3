"""The runs a report reads: finished run folders under a root, their data sets named portably, their attack
results by what they measure, and which of them fill the paper's tables."""

from pathlib import Path

from nodekd_cli import convergence, students
from nodekd_cli import runs as run_files
from nodekd_cli.attacks import result_key


def collect(root, exclude=()):
    """The finished runs under `root` (any depth) and the (path, reason) of everything skipped."""
    root = Path(root)
    found, skipped = [], []
    folders = run_files.find_runs(root, exclude)
    for folder in folders:
        try:
            run = run_files.read_run(folder)
        except run_files.NotARun as error:
            skipped.append((folder, error.reason))
            continue
        found.append(run)
        skipped.extend(run.read_results())
    found = _portable_datasets(found)
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if not run_files.is_within(child, exclude) and not any(f == child or child in f.parents for f in folders):
            skipped.append((child, f"not a nodekd run folder (no {run_files.CONFIG})"))
    return found, skipped


def _portable_datasets(runs):
    """The runs with each data set named as reports show it (`data.portable_names`: a folder data set by its
    folder's name, never by its machine's path); the name as recorded stays in `config["dataset_path"]` for the
    commands the report suggests. New `Run` records: the ones read are left as they are."""
    from dataclasses import replace

    from nodekd_cli import data

    names = data.portable_names({r.config["dataset"] for r in runs})
    portable = []
    for run in runs:
        recorded_name = run.config["dataset"]
        config = {**run.config, "dataset": names[recorded_name], "dataset_path": recorded_name}
        portable.append(replace(run, config=config))
    return portable


def recorded(runs, dataset):
    """The data set `dataset` (a portable name) as its runs recorded it, for a command that must find it again."""
    return next((r.config["dataset_path"] for r in runs if r.config["dataset"] == dataset), dataset)


def sweeps(run):
    """The run's attack results by what they measure (`attacks.result_key`): a monotone sweep apart from the paper's
    independent one, so that Table 3 takes the paper's and no mean or comparison mixes the two."""
    return {result_key(name, result): result for name, result in run.attacks.items()}


def relative(root, folder):
    """`folder` relative to `root`, or `folder` itself when it lies elsewhere."""
    try:
        return str(Path(folder).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(folder)


def most_trained(runs):
    """The runs that fill the paper's tables, and how many are left out: of the runs of one table cell (a teacher
    model, or a student's t1, T, teacher, optimizer and precision, on one data set), those of the budget with the most
    training images seen (then the most channels), so that no cell averages a 64-channel student with a 32-channel
    one, or 10 epochs with 40; the seeds of that budget are averaged."""

    def budget(run):
        width = run.config.get("channels")
        return convergence.images_seen(run.config) or 0, width if isinstance(width, int) else 0

    cells = {}
    for run in runs:
        c = run.config
        cell = (c["dataset"], c["kind"], c.get("model"), c.get("t1"), c.get("T"), c.get("teacher_model"))
        if run.kind == "student":
            cell += (students.other_optimizer(c), students.precision_of(c))
        cells.setdefault(cell, []).append(run)
    kept = []
    for group in cells.values():
        best = max(budget(r) for r in group)
        kept += [r for r in group if budget(r) == best]
    kept = {id(r) for r in kept}
    return [r for r in runs if id(r) in kept], len(runs) - len(kept)
