"""`nodekd distill` (Algorithm 1) and `nodekd student train` (Neural ODEs without distillation)."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli import options
from nodekd_cli.commands._common import friendly_errors, train_in_folder

app = typer.Typer(help="Train Neural ODE students without distillation (the paper's baselines).", no_args_is_help=True)


STUDENT_OPTIONS = (
    options.STUDENT_BUDGET,
    options.DYNAMICS,
    options.PRECISION,
    options.SOLVER,
    options.AUGMENTATION,
    options.SEED_AND_OUT,
    options.EVALUATION,
    options.PLACE,
)


def _settings(given):
    """The arguments of `students.student_config` among the shared options, checked; `given` keeps the rest."""
    from nodekd_cli import students

    solver = options.solver(given)
    dynamics = students.dynamics_config(**options.take(given, options.DYNAMICS))
    budget = options.take(given, options.STUDENT_BUDGET, options.AUGMENTATION)
    settings = {"seed": given.pop("seed"), "solver": solver, "dynamics": dynamics, "precision": given.pop("precision")}
    return {**budget, **settings}


def _run(config, dataset_name, teacher=None, *, out, device, data_dir, manual_dir, wait, eval_every):
    """Trains the student of `config` (distilled from the Keras model `teacher`, when one is given), scoring the test
    split after every `eval_every`-th epoch and the last."""
    from nodekd_cli import students

    folder = Path(out) if out else students.default_folder(config)
    title = f"Neural ODE student, t1 = {config['t1']:g}, on {dataset_name}"

    def train(data, reporter):
        return students.train_run(
            folder, config, data, teacher, device=device, reporter=reporter, wait=wait, eval_every=eval_every
        )

    train_in_folder(folder, config, title, f"student in {folder}", (dataset_name, data_dir, manual_dir), train)


@friendly_errors
@options.taking(*STUDENT_OPTIONS)
def distill(
    teacher_run: Annotated[Path, typer.Option("--teacher", help="A finished teacher run folder, e.g. runs/resnet20.")],
    temperature: Annotated[float, typer.Option("--T", help="Temperature of the soft targets (the paper: 3, 10, 20).")],
    t1: options.T1 = 1.0,
    lam: Annotated[float, typer.Option("--lambda", help="Weight of the distillation term.")] = 0.9,
    soft_targets: Annotated[
        str, typer.Option(help="precomputed (teacher logits once, Algorithm 1) or online (teacher on each batch).")
    ] = "precomputed",
    optimizer: Annotated[str, typer.Option(help="auto (SGD for t1 <= 5, else Adam), sgd or adam.")] = "auto",
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Must be the teacher's (default).")] = None,
    **given,
):
    """Distill a teacher into a Neural ODE student (Algorithm 1)."""
    from nodekd_cli import backend

    device = backend.select(given.pop("device"))  # before anything imports Keras
    from nodekd_cli import students

    found, teacher = students.load_teacher(teacher_run, dataset)
    config = students.student_config(
        found.config["dataset"],
        t1=t1,
        teacher_run=teacher_run,
        teacher_model_name=found.config["model"],
        temperature=temperature,
        lam=lam,
        soft_targets=soft_targets,
        optimizer=optimizer,
        **_settings(given),
    )
    _run(config, found.config["dataset"], teacher, device=device, **given)


@app.command(epilog="Example: nodekd student train --dataset cifar10 --t1 100")
@friendly_errors
@options.taking(*STUDENT_OPTIONS)
def train(
    dataset: options.Dataset = "digits",
    t1: options.T1 = 1.0,
    optimizer: Annotated[
        str, typer.Option(help="auto (Adam, as the paper for every student without KD), sgd, adam.")
    ] = "auto",
    **given,
):
    """Train a Neural ODE student on cross-entropy alone (the paper's NODEs(t1) baselines)."""
    from nodekd_cli import backend

    device = backend.select(given.pop("device"))
    from nodekd_cli import students

    config = students.student_config(dataset, t1=t1, optimizer=optimizer, **_settings(given))
    _run(config, dataset, device=device, **given)
