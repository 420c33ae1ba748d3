"""`nodekd distill` (Algorithm 1) and `nodekd student train` (Neural ODEs without distillation)."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli import options, output
from nodekd_cli.commands._common import (
    friendly_errors,
    load_data,
    show_if_finished,
    train_with_progress,
    waiting,
)

app = typer.Typer(help="Train Neural ODE students without distillation (the paper's baselines).", no_args_is_help=True)


def _run(config, out, device, dataset_name, data_dir, manual_dir, wait, teacher_model=None):
    from nodekd_cli import students

    folder = Path(out) if out else students.default_folder(config)
    title = f"Neural ODE student, t1 = {config['t1']:g}, on {dataset_name}"
    if show_if_finished(folder, config, title):
        return
    data = load_data(dataset_name, data_dir, manual_dir)
    metrics = train_with_progress(
        folder,
        f"student in {folder}",
        lambda reporter: students.train_run(
            folder, config, data, teacher_model, device=device, reporter=reporter, wait=wait, on_wait=waiting
        ),
    )
    output.run_summary(title, folder, config, metrics)


@friendly_errors
def distill(
    teacher: Annotated[Path, typer.Option("--teacher", help="A finished teacher run folder, e.g. runs/resnet20.")],
    temperature: Annotated[float, typer.Option("--T", help="Temperature of the soft targets (the paper: 3, 10, 20).")],
    t1: options.T1 = 1.0,
    lam: Annotated[float, typer.Option("--lambda", help="Weight of the distillation term.")] = 0.9,
    soft_targets: Annotated[
        str, typer.Option(help="precomputed (teacher logits once, Algorithm 1) or online (teacher on each batch).")
    ] = "precomputed",
    optimizer: Annotated[str, typer.Option(help="auto (SGD for t1 <= 5, else Adam), sgd or adam.")] = "auto",
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Must be the teacher's (default).")] = None,
    epochs: options.StudentEpochs = None,
    batch_size: options.StudentBatchSize = None,
    lr: options.StudentLr = None,
    channels: options.Channels = None,
    downsample: options.Downsample = None,
    train_images: options.TrainImages = None,
    time_input: options.TimeInput = None,
    norm: options.Norm = None,
    init: options.Init = None,
    method: options.Method = "dopri5",
    rtol: options.Rtol = 1e-3,
    atol: options.Atol = 1e-3,
    step_size: options.StepSize = None,
    max_num_steps: options.MaxNumSteps = None,
    adjoint: options.Adjoint = False,
    crop_padding: options.CropPadding = None,
    flip: options.Flip = None,
    seed: options.Seed = 0,
    out: options.Out = None,
    device: options.Device = "auto",
    data_dir: options.DataDir = None,
    manual_dir: options.ManualDir = None,
    wait: options.Wait = False,
):
    """Distill a teacher into a Neural ODE student (Algorithm 1)."""
    from nodekd_cli import backend

    device = backend.select(device)  # before anything imports Keras
    from nodekd_cli import students

    teacher_config, teacher_model = students.load_teacher(teacher, dataset)
    config = students.student_config(
        teacher_config["dataset"],
        t1=t1,
        teacher=(teacher, teacher_config),
        temperature=temperature,
        lam=lam,
        soft_targets=soft_targets,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        channels=channels,
        downsample=downsample,
        train_images=train_images,
        seed=seed,
        crop_padding=crop_padding,
        flip=flip,
        solver=students.solver_config(method, rtol, atol, step_size, max_num_steps, adjoint),
        dynamics=students.dynamics_config(time_input, norm, init),
    )
    _run(config, out, device, teacher_config["dataset"], data_dir, manual_dir, wait, teacher_model)


@app.command()
@friendly_errors
def train(
    dataset: options.Dataset = "digits",
    t1: options.T1 = 1.0,
    optimizer: Annotated[
        str, typer.Option(help="auto (Adam, as the paper for every student without KD), sgd, adam.")
    ] = "auto",
    epochs: options.StudentEpochs = None,
    batch_size: options.StudentBatchSize = None,
    lr: options.StudentLr = None,
    channels: options.Channels = None,
    downsample: options.Downsample = None,
    train_images: options.TrainImages = None,
    time_input: options.TimeInput = None,
    norm: options.Norm = None,
    init: options.Init = None,
    method: options.Method = "dopri5",
    rtol: options.Rtol = 1e-3,
    atol: options.Atol = 1e-3,
    step_size: options.StepSize = None,
    max_num_steps: options.MaxNumSteps = None,
    adjoint: options.Adjoint = False,
    crop_padding: options.CropPadding = None,
    flip: options.Flip = None,
    seed: options.Seed = 0,
    out: options.Out = None,
    device: options.Device = "auto",
    data_dir: options.DataDir = None,
    manual_dir: options.ManualDir = None,
    wait: options.Wait = False,
):
    """Train a Neural ODE student on cross-entropy alone (the paper's NODEs(t1) baselines)."""
    from nodekd_cli import backend

    device = backend.select(device)
    from nodekd_cli import students

    config = students.student_config(
        dataset,
        t1=t1,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        channels=channels,
        downsample=downsample,
        train_images=train_images,
        seed=seed,
        crop_padding=crop_padding,
        flip=flip,
        solver=students.solver_config(method, rtol, atol, step_size, max_num_steps, adjoint),
        dynamics=students.dynamics_config(time_input, norm, init),
    )
    _run(config, out, device, dataset, data_dir, manual_dir, wait)
