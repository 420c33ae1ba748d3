"""Options shared by several commands, defined once."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli.data import dataset_names
from nodekd_cli.data.tfds import MANUAL_DIR_ENV


def _check_teacher(name):
    # Imported on use: the registry lives in `models`, which imports Keras and torch (slow for `--help`).
    from nodekd_cli.teachers import teacher_names

    if name is not None and name not in teacher_names():
        raise typer.BadParameter(f"unknown teacher {name!r}; choose one of: {', '.join(teacher_names())}.")
    return name


TeacherName = Annotated[
    str,
    typer.Argument(callback=_check_teacher, help="The teacher: resnet20, resnet32, resnet44, resnet56 or resnet110."),
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
Seed = Annotated[int, typer.Option("--seed", help="Seed of initialization, batch order and augmentation.")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default: runs/<model>).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Batch size (default: 128).")]
Epochs = Annotated[
    int | None,
    typer.Option("--epochs", help="Epochs (default: the paper's for the data set: cifar10 300, svhn 40; digits 15)."),
]

Wait = Annotated[
    bool,
    typer.Option(
        "--wait", help="If another command is writing the same run folder, wait for it to end instead of stopping."
    ),
]


# The Neural ODE student and its solver.
T1 = Annotated[float, typer.Option("--t1", help="End of the time horizon [0, t1] (the paper: 1, 100, 500).")]
Channels = Annotated[
    int | None, typer.Option("--channels", help="Channels of the ODE function (default: 512; digits 32).")
]
Downsample = Annotated[
    int | None,
    typer.Option("--downsample", help="Stride-2 convolutions in the stem (default: 2, i.e. 1/4 resolution; digits 0)."),
]
TrainImages = Annotated[
    int | None,
    typer.Option(
        "--train-images",
        help="Train on this many training images, each class in proportion, drawn with --seed (default: all).",
    ),
]
StudentLr = Annotated[
    float | None, typer.Option("--lr", help="Initial learning rate (default: 0.001; digits with SGD 0.01).")
]
StudentEpochs = Annotated[
    int | None,
    typer.Option("--epochs", help="Epochs (default: the paper's: cifar10 200, svhn 40; digits 20)."),
]
StudentBatchSize = Annotated[int | None, typer.Option("--batch-size", help="Batch size (default: 128; digits 32).")]
TimeInput = Annotated[
    str | None,
    typer.Option("--time-input", help="Time input of the dynamics: none (default), raw (t, odenet), scaled (t / t1)."),
]
Norm = Annotated[
    str | None,
    typer.Option("--norm", help="GroupNorm in the dynamics: pre (default, odenet's), or post (after each conv)."),
]
Init = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="Last GroupNorm's scale at the start: horizon (default, 1 / t1), he (1, odenet) or identity (0: f = 0).",
    ),
]
Method = Annotated[str, typer.Option("--method", help="torchdiffeq solver, e.g. dopri5, rk4, euler.")]
Rtol = Annotated[float, typer.Option("--rtol", help="Relative tolerance of adaptive solvers.")]
Atol = Annotated[float, typer.Option("--atol", help="Absolute tolerance of adaptive solvers.")]
StepSize = Annotated[float | None, typer.Option("--step-size", help="Step of fixed-grid solvers (default: t1).")]
MaxNumSteps = Annotated[int | None, typer.Option("--max-num-steps", help="Most steps of an adaptive solver.")]
Adjoint = Annotated[bool, typer.Option("--adjoint/--no-adjoint", help="Backpropagate with the adjoint method.")]
CropPadding = Annotated[
    int | None,
    typer.Option("--crop-padding", help="Random-crop padding in pixels (default: cifar10/svhn 4, digits 1)."),
]
Flip = Annotated[
    bool | None, typer.Option("--flip/--no-flip", help="Random horizontal flips (default: on; digits off).")
]

# Which finished runs an attack command takes, and which of their test images.
Runs = Annotated[
    list[Path] | None, typer.Option("--run", help="A run folder (repeatable; default: every finished run).")
]
RunsDir = Annotated[Path, typer.Option("--runs", help="Where to look for runs without --run.")]
SampleN = Annotated[
    int | None,
    typer.Option("--n", help="Attack n test images, a class-stratified sample seeded by --seed (default all)."),
]
