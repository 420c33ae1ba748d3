"""Run folders: the contract every nodekd command writes and every later command reads.

A run folder holds
- `config.json`: written before training starts; `kind`, model, data set, every hyperparameter, seed, versions;
- `checkpoint.h5`: the last completed epoch (weights, optimizer state), for resuming; removed when the run ends;
- `history.csv`: one row per completed epoch;
- `model.keras`: the finished model (`keras.saving.load_model` after `import models`);
- `metrics.json`: written last, so its presence means the run finished; its `test_correct` says which test images
  the finished model classifies right (`correct_bits`), for comparisons paired image by image;
- `attacks/<attack>.json`, `attacks/check.json`: attack sweeps and robustness checks run later on the finished run.

Every write goes to a temporary file first and is moved into place with `os.replace` (`nodekd_cli.files`). A
command holds an exclusive lock (`lock`) on a run folder while it writes it, and on `attacks/` while it writes an
attack result there.
"""

import contextlib
import csv
import io
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

from nodekd_cli import files, fingerprints
from nodekd_cli.data import slug
from nodekd_cli.errors import A_FILE, RunConflict, UserError, file_error  # noqa: F401  (the run folder's errors)
from nodekd_cli.locks import LOCK, RunLocked, lock, make_folders, writable_folder  # noqa: F401  (its lock)

CONFIG = "config.json"
CHECKPOINT = "checkpoint.h5"
HISTORY = "history.csv"
MODEL = "model.keras"
METRICS = "metrics.json"
ATTACKS_DIR = "attacks"
CHECK_FILE = "check.json"
# Keys of config.json that describe where and with what a run was made, not what it is; they may differ on resume.
CIRCUMSTANCES = ("versions", "device", "cuda_graph", "changes")
# Settings that the advice of a failed epoch names (the solver's limits and tolerances, the learning rate): an
# unfinished run may resume from its checkpoint with other values of them; config.json and history.csv record when.
ADJUSTABLE = ("lr", "solver.method", "solver.rtol", "solver.atol", "solver.step_size", "solver.max_num_steps")
# Settings added after runs were made without them, with the value those runs had: a run's config.json that lacks
# one compares as if it recorded it (students computed in float32 before they had a precision).
ADDED_SETTINGS = {"precision": "float32"}
# Every file a training run writes at the top of its folder: a new run that starts again deletes these and nothing
# else (a folder may hold a user's own files beside them).
WRITTEN = (CONFIG, CHECKPOINT, HISTORY, MODEL, METRICS, "soft_targets.npy")
RUNS = Path("runs")  # where the commands put run folders unless told otherwise


def correct_bits(mask):
    """A boolean per image (right or wrong) as a string of '1' and '0', image by image: how metrics.json and the attack
    results record which images a model classifies right, readable by any tool."""
    return "".join("1" if right else "0" for right in mask)


def read_bits(text):
    """The booleans of `correct_bits`, as a list; None for anything else (a run made before it recorded them)."""
    if not isinstance(text, str) or not text or set(text) - {"0", "1"}:
        return None
    return [c == "1" for c in text]


def atomic_write_bytes(path, data):
    files.write_bytes(path, data)


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
    with files.replacing(Path(folder) / MODEL, suffix=".keras") as temporary:
        model.save(temporary)


def load_model(folder):
    """The Keras model of the finished run in `folder`, loaded in Keras's safe mode; a `UserError` in one sentence for
    any failure of the loader (a model file is untrusted input): one that holds code (a Lambda layer, refused by safe
    mode), one that names a class nodekd does not register, or one damaged or incomplete."""
    import re

    import keras

    import models  # noqa: F401  (registers nodekd's layers for load_model)

    path = Path(folder) / MODEL
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001  (whatever a crafted or broken file makes Keras raise)
        text = str(error)
        if "safe_mode" in text:
            reason = "holds code, refused by Keras's safe mode; load only model files you trust"
        elif "Could not locate" in text:
            named = re.search(r"Could not locate \w+ '([^']+)'", text)
            reason = "names a class nodekd does not know" + (f" ({named.group(1)})" if named else "")
            reason += "; it was not made by nodekd"
        else:
            reason = f"is damaged or incomplete; remove {folder} and run its command again"
        raise UserError(f"The model file {path} {reason}.") from None


def read_json(path):
    with open(path) as file:
        return json.load(file)


def write_history(path, rows):
    buffer = io.StringIO()
    if rows:
        columns = list(dict.fromkeys(key for row in rows for key in row))  # `changes` appears on a resumed epoch
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
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


def circumstances(device):
    """Where and with what a run is made (config.json's CIRCUMSTANCES, bar cuda_graph and changes)."""
    return {"versions": versions(), "device": device}


def is_finished(folder):
    return (Path(folder) / METRICS).exists()


def _flat(config, prefix=""):
    """A config with nested settings as dotted keys: {"solver": {"rtol": 1e-3}} -> {"solver.rtol": 1e-3}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "versions":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _differences(old, new):
    """{setting: (old value, new value)} for every setting of a run that differs, circumstances aside. The teacher's
    fingerprint is `run_state`'s to judge: a config without one (planned before the teacher was trained, or made
    before fingerprints existed) neither matches nor contradicts it."""
    old, new = _flat({**ADDED_SETTINGS, **old}), _flat({**ADDED_SETTINGS, **new})
    keys = sorted((set(old) | set(new)) - set(CIRCUMSTANCES) - set(fingerprints.RECORDED))
    return {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}


def _describe(changes):
    return "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:3])


def completed_epochs(folder):
    """Epochs completed by the unfinished run in `folder`: those its checkpoint holds (0 without one)."""
    import h5py

    path = Path(folder) / CHECKPOINT
    if not path.exists():
        return 0
    try:
        with h5py.File(path, "r") as file:
            return int(file.attrs["epoch"])
    except (OSError, KeyError, ValueError):
        return 0


def _run_files(folder):
    """The visible files of a folder (hidden ones are locks and partial writes)."""
    return [p for p in Path(folder).iterdir() if not p.name.startswith(".")] if Path(folder).is_dir() else []


def _check_ours(path, config):
    """A `RunConflict` unless `config` (read from `path`) is a nodekd teacher's or student's config: a folder is taken
    over only when it holds a nodekd run (a model folder of another tool has a config.json too)."""
    from nodekd_cli import schema

    try:
        schema.check_config(config, path.name)
    except ValueError as error:
        fact = f"{path} is not a nodekd run's config ({error})"
        raise RunConflict(path.parent, fact, "nodekd takes no folder it did not make; pass --out DIR") from None


def run_state(folder, config):
    """ "new", "resume" or "finished": what `folder` holds for `config`, without writing anything.

    An unfinished run may resume with other values of the ADJUSTABLE settings; an unfinished run with no completed
    epoch holds nothing worth keeping, and any configuration starts afresh there. A folder holding a run of another
    configuration, or something else than a run, is an error that suggests --out.
    """
    folder = Path(folder)
    config_path = folder / CONFIG
    if folder.exists() and not folder.is_dir():
        raise UserError(f"Cannot write {folder}: {A_FILE}.")
    if config_path.exists():
        try:
            existing = read_json(config_path)
        except (OSError, ValueError):
            raise RunConflict(folder, f"{config_path} is unreadable", "remove the folder, or pass --out DIR") from None
        teacher = config.get("teacher")
        model = Path(teacher) / MODEL if teacher else None
        if isinstance(existing, dict) and fingerprints.teacher_changed(existing, config, model):
            fact = f"{folder} holds a student of the teacher {existing.get('teacher')} as it was: the teacher has changed since"
            raise RunConflict(folder, fact, "remove the folder to distill again, or pass --out DIR")
        if is_finished(folder):
            try:
                read_run(folder)  # a finished run is kept only when it can be read (`schema`)
            except NotARun as error:
                fact = f"{folder} holds a run that cannot be read ({error.reason})"
                raise RunConflict(folder, fact, "remove the folder, or pass --out DIR") from None
        else:
            _check_ours(config_path, existing)
        changes = _differences(existing, config)
        if not changes:
            return "finished" if is_finished(folder) else "resume"
        if not is_finished(folder):
            if completed_epochs(folder) == 0:
                return "new"
            if set(changes) <= set(ADJUSTABLE):
                return "resume"
        state = "a finished" if is_finished(folder) else "an unfinished"
        raise RunConflict(folder, f"{folder} holds {state} run of another configuration ({_describe(changes)})")
    if _run_files(folder):
        raise RunConflict(folder, f"{folder} exists and is not a nodekd run folder")
    return "new"


def open_run(folder, config):
    """Creates or reopens the run folder `folder` for `config` (see `run_state`); returns its state.

    A new run clears what an earlier attempt with no completed epoch left there. An unfinished run resumed with
    other ADJUSTABLE settings takes them: config.json holds the new values and, under `changes`, each change and
    the epochs completed before it.
    """
    folder = Path(folder)
    state = run_state(folder, config)
    if state == "new":
        folder.mkdir(parents=True, exist_ok=True)
        for name in WRITTEN:  # what an earlier attempt of nodekd's wrote; the user's own files stay
            path = folder / name
            if path.is_file() and not path.is_symlink():
                path.unlink()
        write_json(folder / CONFIG, config)
    elif state == "resume":
        existing = read_json(folder / CONFIG)
        changes = _differences(existing, config)
        if changes:
            epoch = completed_epochs(folder)
            logged = existing.get("changes", []) + [
                {"after_epoch": epoch, "setting": key, "from": old, "to": new} for key, (old, new) in changes.items()
            ]
            write_json(
                folder / CONFIG,
                {**existing, **{k: v for k, v in config.items() if k not in CIRCUMSTANCES}, "changes": logged},
            )
    return state


def changes_after(folder, epoch):
    """The settings changed when the run in `folder` resumed after `epoch` completed epochs, as one line."""
    try:
        logged = read_json(Path(folder) / CONFIG).get("changes", [])
    except (OSError, ValueError, AttributeError):
        return ""
    return "; ".join(f"{c['setting']} {c['from']} -> {c['to']}" for c in logged if c.get("after_epoch") == epoch)


def _seeded(folder, seed):
    return folder if seed == 0 else folder.with_name(f"{folder.name}-seed{seed}")


def teacher_folder(model, dataset=None, *, root=RUNS, seed=0):
    """Where a teacher's run goes: <root>/<model> by default (`nodekd teacher train`), <root>/<model>-<data set> with a
    data set (a study's, which may hold several); -seed<N> follows for a seed other than 0."""
    return _seeded(Path(root) / (model if dataset is None else f"{model}-{slug(dataset)}"), seed)


def student_folder(dataset, t1, *, teacher_model_name=None, temperature=None, other_optimizer=None, root=RUNS, seed=0):
    """Where a student's run goes: <root>/kd-<teacher model>-<data set>-T<T>-t1_<t1> when distilled, else
    <root>/node-<data set>-t1_<t1>; -<optimizer> follows for an optimizer other than the paper's for that student
    (`students.other_optimizer`), and -seed<N> for a seed other than 0."""
    name = f"node-{slug(dataset)}-t1_{t1:g}"
    if teacher_model_name is not None:
        name = f"kd-{teacher_model_name}-{slug(dataset)}-T{temperature:g}-t1_{t1:g}"
    return _seeded(Path(root) / (name + (f"-{other_optimizer}" if other_optimizer else "")), seed)


def find_runs(root, exclude=()):
    """Every folder under `root`, at any depth, that holds a run's config.json (attack results aside), sorted."""
    root = Path(root)
    found = (p.parent for p in root.rglob(CONFIG) if ATTACKS_DIR not in p.parent.relative_to(root).parts)
    return sorted(folder for folder in found if not is_within(folder, exclude))


def is_within(path, folders):
    """Whether `path` is one of `folders` or lies inside one."""
    path = Path(path).resolve()
    return any(path == f or f in path.parents for f in (Path(f).resolve() for f in folders))


def finished_runs(root):
    """Every finished run folder under `root`, at any depth (see `find_runs`)."""
    return [folder for folder in find_runs(root) if is_finished(folder)]


@contextlib.contextmanager
def writing(folder, config, *, wait=None):
    """Locks the run folder `folder`, opens it for `config` (`open_run`) and yields its state.

    A command that fails before its run completes an epoch leaves no folder of its own behind: there was nothing
    worth keeping in it.
    """
    folder = Path(folder)
    with lock(folder, wait=wait):
        for stale in folder.glob(".*.partial*"):  # left by a command killed inside a write; nobody else writes now
            stale.unlink()
        state = open_run(folder, config)
        try:
            yield state
        except BaseException:
            if state == "new" and completed_epochs(folder) == 0 and not is_finished(folder):
                for name in WRITTEN:  # what this run wrote; the user's own files beside it stay
                    path = folder / name
                    if path.is_file() and not path.is_symlink():
                        path.unlink()
            raise


@dataclass
class Run:
    """A finished run: its folder, config.json and metrics.json, and the attack and check results made on it
    (`read_results`)."""

    folder: Path
    config: dict
    metrics: dict
    attacks: dict = field(default_factory=dict)  # attack name -> attacks/<attack>.json
    check: dict | None = None  # attacks/check.json

    @property
    def kind(self):
        return self.config["kind"]

    @property
    def distilled(self):
        return self.config.get("teacher") is not None

    @property
    def accuracy(self):
        """Test accuracy in %."""
        return 100 * self.metrics["test_accuracy"]

    def read_results(self):
        """Reads the attack and check results in `attacks/`; returns the (path, reason) of those it cannot read."""
        unreadable = []
        from nodekd_cli import schema

        for path in sorted((self.folder / ATTACKS_DIR).glob("*.json")):
            try:
                result = read_json(path)
                if path.name == CHECK_FILE:
                    schema.check(schema.CheckResult, result, path.name)
                    self.check = result
                else:
                    schema.check(schema.AttackResult, result, path.name)
                    self.attacks[path.stem] = result
            except OSError:
                unreadable.append((path, "unreadable attack result"))
            except ValueError as error:  # not JSON, or not an attack result (`schema`)
                reason = str(error) if path.name in str(error) else "not JSON"
                unreadable.append((path, f"unreadable attack result ({reason})"))
        return unreadable


class NotARun(UserError):
    """A folder without a finished run that can be read: `reason` says why in a few words (the report lists the
    folders it skips with theirs); the message says it to a user."""

    def __init__(self, folder, reason, message):
        self.folder, self.reason = Path(folder), reason
        super().__init__(message)


def read_run(folder, kind=None):
    """The finished run in `folder`, a `Run` (its attack results are read by `Run.read_results`): `NotARun` if there is
    none, or none that can be read; a `UserError` if it is not of `kind` ("teacher" or "student")."""
    folder = Path(folder)
    path = folder / CONFIG
    if not path.exists():
        reason = f"not a nodekd run folder (no {CONFIG})"
        raise NotARun(folder, reason, f"{folder} is {reason}.")
    from nodekd_cli import schema

    try:
        config = read_json(path)
    except (OSError, ValueError):
        message = f"{path} is unreadable; remove {folder} and run its command again."
        raise NotARun(folder, f"{CONFIG} is unreadable", message) from None
    if not isinstance(config, dict) or config.get("kind") not in ("teacher", "student") or "dataset" not in config:
        reason = f"{CONFIG} is not a nodekd run configuration"
        raise NotARun(folder, reason, f"{folder}: {reason}.")
    try:
        schema.check_config(config)
    except ValueError as error:
        raise NotARun(folder, f"damaged: {error}", f"{folder} holds a damaged run ({error}).") from None
    if not is_finished(folder):
        advice = "run its command again to finish it"
        raise NotARun(folder, f"unfinished (no {METRICS}); {advice}", f"The run in {folder} is unfinished; {advice}.")
    try:
        metrics = read_json(folder / METRICS)
    except (OSError, ValueError):
        message = f"{folder / METRICS} is unreadable; remove {folder} and run its command again."
        raise NotARun(folder, f"{METRICS} is unreadable", message) from None
    try:
        schema.check(schema.Metrics, metrics, METRICS)
    except ValueError as error:
        raise NotARun(folder, f"damaged: {error}", f"{folder} holds a damaged run ({error}).") from None
    if kind is not None and config["kind"] != kind:
        raise UserError(f"{folder} holds a {config['kind']} run, not a {kind} run.")
    return Run(folder, config, metrics)
