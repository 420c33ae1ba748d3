"""Run folders: the contract every nodekd command writes and every later command reads.

A run folder holds
- `config.json`: written before training starts; `kind`, model, data set, every hyperparameter, seed, versions;
- `checkpoint.h5`: the last completed epoch (weights, optimizer state), for resuming; removed when the run ends;
- `history.csv`: one row per completed epoch;
- `model.keras`: the finished model (`keras.saving.load_model` after `import models`);
- `metrics.json`: written last, so its presence means the run finished;
- `attacks/<attack>.json`, `attacks/check.json`: attack sweeps and robustness checks run later on the finished run.

Every write goes to a temporary file first and is moved into place with `os.replace`.
"""

import csv
import io
import json
import os
import platform
from pathlib import Path

from nodekd_cli.errors import UserError

CONFIG = "config.json"
CHECKPOINT = "checkpoint.h5"
HISTORY = "history.csv"
MODEL = "model.keras"
METRICS = "metrics.json"
ATTACKS_DIR = "attacks"
# Keys of config.json that describe where and with what a run was made, not what it is; they may differ on resume.
CIRCUMSTANCES = ("versions", "device", "cuda_graph")


def atomic_write_bytes(path, data):
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode())


def write_json(path, data):
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def save_array(path, array):
    """Saves a numpy array as a .npy file, atomically."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


def save_model(folder, model):
    """Saves `model` as the run's `model.keras`, atomically (Keras insists on the .keras suffix)."""
    temporary = Path(folder) / f".{MODEL}.partial.keras"
    model.save(temporary)
    os.replace(temporary, Path(folder) / MODEL)


def read_json(path):
    with open(path) as file:
        return json.load(file)


def write_history(path, rows):
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_history(path):
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(file)]


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def versions():
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("nodekd", "keras", "torch", "torchdiffeq", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def is_finished(folder):
    return (Path(folder) / METRICS).exists()


def _differences(old, new):
    keys = sorted((set(old) | set(new)) - set(CIRCUMSTANCES))
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def run_state(folder, config):
    """ "new", "resume" or "finished": what `folder` holds for `config`, without writing anything.

    A folder holding a run of another configuration, or something else than a run, is an error that suggests --out.
    """
    folder = Path(folder)
    config_path = folder / CONFIG
    if config_path.exists():
        try:
            existing = read_json(config_path)
        except (OSError, ValueError):
            raise UserError(f"{config_path} is unreadable; remove {folder} or pass --out DIR.") from None
        changes = _differences(existing, config)
        if changes:
            state = "a finished" if is_finished(folder) else "an unfinished"
            raise UserError(
                f"{folder} holds {state} run of another configuration ({'; '.join(changes[:3])}); "
                f"pass --out DIR to start a new run elsewhere."
            )
        return "finished" if is_finished(folder) else "resume"
    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"{folder} exists and is not a nodekd run folder; pass --out DIR.")
    return "new"


def open_run(folder, config):
    """Creates or reopens the run folder `folder` for `config` (see `run_state`); returns its state."""
    state = run_state(folder, config)
    if state == "new":
        Path(folder).mkdir(parents=True, exist_ok=True)
        write_json(Path(folder) / CONFIG, config)
    return state


def read_run(folder, kind=None):
    """Config and metrics of the finished run in `folder`; `UserError` if it is missing, unfinished or unreadable."""
    folder = Path(folder)
    if not (folder / CONFIG).exists():
        raise UserError(f"{folder} is not a nodekd run folder (no {CONFIG}).")
    if not is_finished(folder) or not (folder / MODEL).exists():
        raise UserError(f"The run in {folder} is unfinished; run its command again to finish it.")
    try:
        config, metrics = read_json(folder / CONFIG), read_json(folder / METRICS)
    except (OSError, ValueError) as error:
        raise UserError(f"The run in {folder} is unreadable ({error}).") from None
    if kind is not None and config.get("kind") != kind:
        raise UserError(f"{folder} holds a {config.get('kind')} run, not a {kind} run.")
    return config, metrics
