"""Options shared by several commands, defined once, and the groups of them that several commands take together."""

import copy
import inspect
import os
import typing
from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli.data import dataset_names
from nodekd_cli.data.tfds import MANUAL_DIR_ENV


def _by_dataset(attribute):
    """A default of every registered data set (`data.DataSetInfo`) for help texts: "cifar10 200, svhn 40, ..."."""
    from nodekd_cli import data

    def value(info):
        found = info
        for part in attribute.split("."):
            found = getattr(found, part)
        return {True: "on", False: "off"}.get(found, found) if isinstance(found, bool) else found

    return ", ".join(f"{name} {value(info)}" for name, info in data.DATASETS.items())


def _other_students(key, suffix=""):
    """ "; digits 32": the registered data sets whose student default `key` is not the paper's."""
    from nodekd_cli import data

    found = [f"{name}{suffix} {info.student[key]:g}" for name, info in data.DATASETS.items() if key in info.student]
    return "; " + ", ".join(found) if found else ""


def _check_teacher(name):
    # Imported on use: the registry lives in `models`, which imports Keras and torch (slow for `--help`).
    from nodekd_cli.teachers import teacher_names

    if name is not None and name not in teacher_names():
        raise typer.BadParameter(f"unknown teacher {name!r}; choose one of: {', '.join(teacher_names())}.")
    return name


TeacherName = Annotated[
    str,
    typer.Argument(
        callback=_check_teacher,
        help="The teacher architecture: the paper's resnet20, resnet32, resnet44, resnet56, resnet110, or one "
        "registered with models.register_teacher.",
    ),
]
Dataset = Annotated[
    str, typer.Option("--dataset", "-d", help=f"Data set: {', '.join(dataset_names())}.", show_default=True)
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="TFDS_DATA_DIR",
        help="TFDS data directory, also holding nodekd's uint8 cache (default: ~/tensorflow_datasets).",
    ),
]
ManualDir = Annotated[
    Path | None,
    typer.Option(
        "--manual-dir",
        envvar=MANUAL_DIR_ENV,
        help="Folder with the original archives (cifar-10-binary.tar.gz; train_32x32.mat, test_32x32.mat) "
        "for machines without internet.",
    ),
]
MAX_SEED = 2**32 - 1  # NumPy's and torch's generators take seeds up to this
Seed = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        max=MAX_SEED,
        help="Seed of initialization, batch order, augmentation and the sample of --train-images: a seed gives every "
        "arm of a comparison the same.",
    ),
]
AttackSeed = Annotated[
    int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the test-image sample and the random starts.")
]


def _normal_path(value):
    """A path with its "a/.." parts resolved as text, so that making it makes no folder on the way ("a")."""
    return None if value is None else Path(os.path.normpath(value))


Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Run folder (default: a name under runs/ made of the settings, as runs/resnet20-digits, "
        "runs/node-digits-t1_1 or runs/kd-resnet20-digits-T3-t1_1).",
        callback=_normal_path,
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Batch size (default: 128).")]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="float32, or mixed_bfloat16: a teacher computes in bfloat16, a student its dynamics' convolutions (the "
        "solver stays float32).",
    ),
]
Epochs = Annotated[
    int | None,
    typer.Option("--epochs", help=f"Epochs (default: the data set's: {_by_dataset('teacher_epochs')})."),
]

# The Neural ODE student's time horizon.
T1 = Annotated[float, typer.Option("--t1", help="End of the time horizon [0, t1] (the paper: 1, 100, 500).")]


def _waiting(asked):
    # The library waits for a held run folder when given a function to call first (`runs.lock`): this one says so.
    from nodekd_cli.commands._common import waiting

    return waiting if asked else None


def option(kind, default, *names, **settings):
    """An option of a group: (its annotated type, its default); `names` and `settings` go to `typer.Option`."""
    return Annotated[kind, typer.Option(*names, **settings)], default


def optional(kind, flag, help):
    """An option of a group that defaults to None (then the command chooses)."""
    return option(kind | None, None, flag, help=help)


def _in_panel(kind, panel):
    """`kind` (an Annotated type with a typer.Option) shown in the help's panel `panel`; the option of `kind` itself
    is left as it is (another group may show it elsewhere)."""
    if panel is None or typing.get_origin(kind) is not Annotated:
        return kind
    base, *metadata = typing.get_args(kind)
    placed = []
    for info in metadata:
        if isinstance(info, typer.models.OptionInfo):
            info = copy.copy(info)
            info.rich_help_panel = panel
        placed.append(info)
    return Annotated[(base, *placed)]


def group(panel=None, **options):
    """Options that several commands take together, shown in the help's `panel`: name=option(...)."""
    return tuple(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=_in_panel(kind, panel), default=default)
        for name, (kind, default) in options.items()
    )


def taking(*groups):
    """Adds the options of `groups` to a command, after its own; the command receives them in `**given` (Typer reads
    a command's options from its signature)."""

    def decorate(command):
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        command.__signature__ = signature.replace(parameters=[*own, *(p for g in groups for p in g)])
        return command

    return decorate


def take(given, *groups):
    """The values of the options of `groups`, removed from `given`."""
    return {p.name: given.pop(p.name) for g in groups for p in g}


def sample(given):
    """The `attacks.Sample` of --n, --seed, --data-dir and --manual-dir in `given` (removed from it)."""
    from nodekd_cli.attacks import Sample

    return Sample(*(given.pop(name) for name in ("n", "seed", "data_dir", "manual_dir")))


def solver(given, flags=None):
    """The `models.Solver` of the solver options in `given` (removed from it); a `UserError` names the options at
    fault by `flags` (setting -> option; default: --method, --rtol, ...)."""
    import models
    from nodekd_cli.errors import UserError

    try:
        return models.Solver.take(given)
    except models.InvalidSolver as error:
        flags = flags or {p.name: "--" + p.name.replace("_", "-") for p in SOLVER}
        raise UserError(error.describe(flags.get) + ".") from None


# Where a command computes, finds its data, and whether it waits for a run folder another command is writing.
PLACE = group(
    "Where it runs",
    device=(Device, "auto"),
    data_dir=(DataDir, None),
    manual_dir=(ManualDir, None),
    wait=option(
        bool,
        False,
        "--wait",
        callback=_waiting,
        help="If another command is writing the same run folder, wait for it to end instead of stopping.",
    ),
)
AUGMENTATION = group(
    "Data",
    crop_padding=option(
        int | None,
        None,
        "--crop-padding",
        help=f"Random-crop padding in pixels (default: the data set's: {_by_dataset('augmentation.crop_padding')}).",
    ),
    flip=option(
        bool | None,
        None,
        "--flip/--no-flip",
        help=f"Random horizontal flips (default: {_by_dataset('augmentation.flip')}).",
    ),
)
# The Neural ODE student: its training budget, its dynamics, its solver.
STUDENT_BUDGET = (
    group(
        "Training",
        epochs=optional(int, "--epochs", f"Epochs (default: the data set's: {_by_dataset('student_epochs')})."),
        batch_size=optional(int, "--batch-size", f"Batch size (default: 128{_other_students('batch_size')})."),
        lr=optional(float, "--lr", f"Initial learning rate (default: 0.001{_other_students('sgd_lr', ' with SGD')})."),
    )
    + group(
        "Model",
        channels=optional(
            int, "--channels", f"Channels of the ODE function (default: 512{_other_students('channels')})."
        ),
        downsample=optional(
            int, "--downsample", f"Stride-2 convolutions in the stem (default: 2{_other_students('downsample')})."
        ),
    )
    + group(
        "Data",
        train_images=optional(int, "--train-images", "Train on N images, a class-stratified sample seeded by --seed."),
    )
)
# How often a training scores the test split (the learning curve's points); the training itself is the same.
EVALUATION = group(
    "Training",
    eval_every=option(
        int,
        1,
        "--eval-every",
        min=1,
        help="Score the test split after every N-th epoch and after the last (default: every epoch); the training is "
        "the same, history.csv's test columns are empty in between. On a small --train-images, scoring 10,000 test "
        "images takes longer than the epoch.",
    ),
)
DYNAMICS = group(
    "Model",
    time_input=optional(str, "--time-input", "Time input of the dynamics: none (default), raw (t), scaled (t / t1)."),
    norm=optional(str, "--norm", "GroupNorm in the dynamics: pre (default, odenet's), or post (after each conv)."),
    init=optional(str, "--init", "Last GroupNorm's scale: horizon (default, 1 / t1), he (1, odenet) or identity (0)."),
)
PRECISION = group("Training", precision=(Precision, "float32"))
SOLVER = group(
    "Solver",
    method=option(str, "dopri5", "--method", help="torchdiffeq solver, e.g. dopri5, rk4, euler."),
    rtol=option(float, 1e-3, "--rtol", help="Relative tolerance of adaptive solvers."),
    atol=option(float, 1e-3, "--atol", help="Absolute tolerance of adaptive solvers."),
    step_size=option(float | None, None, "--step-size", help="Step of fixed-grid solvers (default: t1)."),
    max_num_steps=option(int | None, None, "--max-num-steps", help="Most steps of an adaptive solver."),
    adjoint=option(bool, False, "--adjoint/--no-adjoint", help="Backpropagate with the adjoint method."),
)
SEED_AND_OUT = group("Training", seed=(Seed, 0)) + group("Output", out=(Out, None))
# The runs an attack command takes, which of their test images, and whether it recomputes saved results.
AttackBatchSize = Annotated[int, typer.Option("--batch-size", help="Images per attack batch.")]
ATTACKED = group(
    "Runs and images",
    run=option(list[Path] | None, None, "--run", help="A run folder (repeatable; default: every finished run)."),
    runs_dir=option(Path, Path("runs"), "--runs", help="Where to look for runs without --run."),
    n=option(
        int | None, None, "--n", help="Attack n test images, a class-stratified sample seeded by --seed (default all)."
    ),
    batch_size=(AttackBatchSize, 256),
    seed=(AttackSeed, 0),
    force=option(bool, False, "--force", help="Recompute results that already exist."),
)


def whole_number(value, flag):
    """`value` (a command-line string) as an int, or a `UserError` naming `flag`."""
    from nodekd_cli.errors import UserError

    try:
        return int(value)
    except ValueError:
        raise UserError(f"{flag} must be a whole number or auto; got {value!r}.") from None
