"""`nodekd reproduce`: the paper's whole study in one command, resumable, on one machine or a Ray cluster."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli import options, output
from nodekd_cli.commands._common import friendly_errors
from nodekd_cli.errors import UserError


def _names(text):
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _numbers(text, option):
    try:
        return None if text is None else [float(part) for part in _names(text)]
    except ValueError:
        raise UserError(f"{option} takes comma-separated numbers, e.g. {option} 1,100; got {text!r}.") from None


@friendly_errors
def reproduce(
    preset: Annotated[
        str,
        typer.Option(
            help="quick (digits, minutes on a CPU), small (CIFAR-10, about three hours on a CPU with an imported teacher) or paper (CIFAR-10 and "
            "SVHN)."
        ),
    ] = "quick",
    datasets: Annotated[str | None, typer.Option(help="Only these data sets (comma-separated).")] = None,
    teachers: Annotated[str | None, typer.Option(help="Only these teachers, e.g. resnet20,resnet56.")] = None,
    temperatures: Annotated[str | None, typer.Option(help="Only these T, e.g. 3,10.")] = None,
    t1: Annotated[str | None, typer.Option("--t1", help="Only these time horizons, e.g. 1,100.")] = None,
    attacks: Annotated[str | None, typer.Option(help="Only these attacks, e.g. pgd.")] = None,
    eps_max: Annotated[int | None, typer.Option("--eps-max", help="Largest eps of the sweeps, in 1/255.")] = None,
    epochs_scale: Annotated[
        float, typer.Option("--epochs-scale", help="Fraction of the preset's epochs (a cheaper, approximate study).")
    ] = 1.0,
    seeds: Annotated[
        int | None,
        typer.Option(
            help="Train every student arm with seeds 0..N-1 (default the preset's: quick 1, small and paper 3); a "
            "claim about a method needs 3 an arm."
        ),
    ] = None,
    attack_images: Annotated[
        int | None,
        typer.Option("--attack-images", help="Attack N test images, a class-stratified sample (default the preset's)."),
    ] = None,
    teacher_checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--teacher-checkpoints",
            help="Import teachers instead of training them: DIR/<data set>/<model>*.th (cifar10 also DIR/<model>*.th), "
            "or akamaster: download akamaster's CIFAR-10 checkpoints by name.",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="The students': float32, or mixed_bfloat16 (their dynamics' convolutions in bfloat16, the solver in "
            "float32). Teachers train in float32."
        ),
    ] = "float32",
    sweep: Annotated[
        str,
        typer.Option(
            help="independent (the paper's: every eps on its own) or monotone (each eps attacks only the images no "
            'smaller eps broke, about 0.3 of the cost; docs/research-notes.md, "Monotone sweeps").'
        ),
    ] = "independent",
    twins: Annotated[
        bool | None,
        typer.Option(
            "--twins/--no-twins",
            help="Also train every student at half its epochs (its half-budget twin), so that the report can tell "
            "which students have finished learning (default: on in quick and small, off in paper).",
            show_default=False,
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs", help="Where the run folders go.")] = Path("runs"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the steps, which are done, and their cost.")] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Run independent steps in parallel on a local Ray with N CPUs.")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Submit the steps to this Ray cluster (e.g. auto).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="CPU threads per run (default: every core; with Ray, the task's one CPU). CPU results are "
            "bit-identical across runs only at equal thread counts.",
        ),
    ] = None,
    device: options.Device = "auto",
    data_dir: options.DataDir = None,
    manual_dir: options.ManualDir = None,
):
    """The whole study: teachers, students, attacks, checks, then the report; finished steps are skipped."""
    from nodekd_cli import backend
    from nodekd_cli.teachers import AKAMASTER  # imports no Keras: the backend is still to choose

    distributed = workers is not None or ray_address is not None
    if (workers is not None and workers < 1) or (threads is not None and threads < 1):
        raise UserError("--workers and --threads must be at least 1.")
    by_name = str(teacher_checkpoints) == AKAMASTER
    if teacher_checkpoints is not None and not by_name and not teacher_checkpoints.is_dir():
        raise UserError(f"--teacher-checkpoints {teacher_checkpoints} is not a folder.")
    # The driver of a Ray study computes nothing: its Keras stays on the CPU; tasks pick their own device.
    # A dry run computes nothing either: it estimates for --device even without that device here.
    local_device = backend.select("cpu" if distributed or dry_run else device)
    from nodekd_cli import costs, study

    if threads is not None and not distributed:
        import torch

        torch.set_num_threads(threads)
    if distributed and not dry_run and not study.ray_available():
        raise UserError("--workers and --ray-address need Ray; install it with: pip install 'nodekd[cluster]'.")
    if distributed:  # tasks may run on other nodes, in other working folders
        data_dir, manual_dir = (None if p is None else p.resolve() for p in (data_dir, manual_dir))
    chosen = study.preset(preset)
    steps = study.expand(
        chosen,
        root=runs_dir.resolve() if distributed else runs_dir,
        datasets=_names(datasets),
        teacher_models=_names(teachers),
        temperatures=_numbers(temperatures, "--temperatures"),
        t1=_numbers(t1, "--t1"),
        attacks=_names(attacks),
        twins=twins,
        eps_max=eps_max,
        epochs_scale=epochs_scale,
        seeds=seeds,
        attack_images=-1 if attack_images is None else attack_images,
        teacher_checkpoints=teacher_checkpoints,
        precision=precision,
        sweep=sweep,
    )
    states = {step.name: study.state(step) for step in steps}
    if dry_run:
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        prices = costs.estimates(steps, device)
        output.study_plan(f"Study {preset}: {chosen.description}", steps, states, prices, device)
        return
    todo = sum(state != "done" for state in states.values())
    output.info(f"Study {preset}: {len(steps)} steps, {len(steps) - todo} done, {todo} to run under {runs_dir}.")
    outcomes = _run(steps, workers, ray_address, device, local_device, threads, data_dir, manual_dir)
    output.study_summary(outcomes)
    _report(runs_dir)
    if any(outcome.status in ("failed", "blocked") for outcome in outcomes):
        raise typer.Exit(1)


def _run(steps, workers, ray_address, device, local_device, threads, data_dir, manual_dir):
    """Runs the study's steps, on Ray when `workers` or `ray_address` say so, with progress; their outcomes."""
    from nodekd_cli import study

    distributed = workers is not None or ray_address is not None
    progress = output.StudyProgress(steps)
    try:
        with progress:
            if distributed:
                outcomes = study.run_on_ray(
                    steps,
                    workers=workers,
                    address=ray_address,
                    device=device,
                    threads=threads,
                    on_start=progress.start,
                    on_end=progress.end,
                    data_dir=data_dir,
                    manual_dir=manual_dir,
                )
            else:
                outcomes = study.run_sequential(
                    steps,
                    on_start=progress.start,
                    on_end=progress.end,
                    reporter_for=progress.reporter,
                    progress_for=progress.attack_progress,
                    device=local_device,
                    data_dir=data_dir,
                    manual_dir=manual_dir,
                )
    except KeyboardInterrupt:
        output.error("Interrupted; run the same command again to resume the study where it stopped.")
        raise typer.Exit(130) from None
    return outcomes


def _report(runs_dir):
    from nodekd_cli import report

    try:
        output.report(report.build_with_figures(runs_dir, runs_dir / "report", on_skipped=output.skipped))
    except UserError as error:
        output.error(str(error))
