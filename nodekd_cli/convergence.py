"""Half-budget twins, and a run's budget beside the paper's.

A step schedule divides the learning rate by 100 for the last quarter of the epochs, so every learning curve is flat
at its end: a rule read off one run's last epochs cannot tell a finished student from one cut short. nodekd compares
a student with its *half-budget twin*: the same run (every setting and the seed the same) trained for half the
epochs, with the same schedule shape. This module finds the twins (by their configs, never by folder names, so a
budget search that doubles the epochs makes each budget's runs the twins of the next one's) and each student's gain
over its twin. Whether a comparison of two methods has stopped moving is judged over seeds from these gains, in one
place: `nodekd_cli.report.stats.learning`. `nodekd reproduce --twins` plans the twins (docs/commands.md).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from nodekd_cli import data
from nodekd_cli import runs as run_files

# Settings a twin may differ in besides its epochs: where and with what it ran, and its teacher's folder (the
# teacher's model and temperature stay in `teacher_model` and `T`).
IGNORED = (*run_files.CIRCUMSTANCES, "epochs", "teacher")


def twin_epochs(epochs):
    """The epochs of the half-budget twin of a run of `epochs` (at least 1)."""
    return max(1, int(epochs) // 2)


def twin_config(config):
    """The config of the half-budget twin of a student of `config`."""
    return {**config, "epochs": twin_epochs(config["epochs"])}


def _key(config):
    """What a run and its twin share: the config without `IGNORED`."""
    return json.dumps({k: v for k, v in config.items() if k not in IGNORED}, sort_keys=True, default=str)


@dataclass
class Status:
    """A student's convergence: `gain` in points from its twin (`twin`, a folder) to itself; `twin_of` the run it is
    the half-budget twin of, when it is one."""

    gain: float | None = None
    twin: Path | None = None
    twin_of: Path | None = None

    def text(self):
        """ "+0.41 points from its half-budget twin" or "no half-budget twin"."""
        if self.gain is None:
            return "no half-budget twin"
        return f"{self.gain:+.2f} points from its half-budget twin"


def statuses(runs):
    """A `Status` for every student among `runs` (`runs.Run`), by folder."""
    groups = {}
    for run in runs:
        if run.kind == "student" and isinstance(run.config.get("epochs"), int):
            groups.setdefault(_key(run.config), {}).setdefault(run.config["epochs"], run)
    found = {}
    for by_epochs in groups.values():
        for epochs, run in by_epochs.items():
            found[run.folder] = Status()
        for epochs, run in by_epochs.items():
            twin = by_epochs.get(twin_epochs(epochs))
            if twin is None or twin is run:
                continue
            found[run.folder].gain = run.accuracy - twin.accuracy
            found[run.folder].twin = twin.folder
            found[twin.folder].twin_of = run.folder
    return found


def images_seen(config):
    """Training images a run of `config` saw (epochs x the images of an epoch), or None when unknown (a folder data
    set trained on all its images)."""
    family = data.check_name(config["dataset"])
    per_epoch = config.get("train_images") or (None if family == "folder" else data.info(family).sizes[0])
    epochs = config.get("epochs")
    return None if per_epoch is None or not isinstance(epochs, int) else epochs * per_epoch


def paper_fraction(config):
    """The share of the paper's student budget (images seen, `data.DataSetInfo.paper_budget`) a run of `config` had,
    or None."""
    seen, paper = images_seen(config), data.info(config["dataset"]).paper_budget
    return None if seen is None or paper is None else seen / paper


def budget_text(config):
    """ "10 epochs of 10,000 images, 1.0% of the paper's" (or without the share where the paper has none)."""
    per_epoch = config.get("train_images")
    text = f"{config.get('epochs')} epochs" + (f" of {per_epoch:,} images" if per_epoch else "")
    fraction = paper_fraction(config)
    return text if fraction is None else f"{text}, {100 * fraction:.2g}% of the paper's"
