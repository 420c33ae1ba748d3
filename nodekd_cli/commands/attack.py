"""`nodekd attack NAME`: a robustness sweep over eps, on one run or every finished run, for each attack of the
registry (`nodekd_cli.attacks.ATTACKS`: pgd, mifgsm, fgsm, apgd); `nodekd attack autoattack`: AutoAttack at one eps;
`nodekd attack check`: the masking checks."""

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from nodekd_cli import options, output
from nodekd_cli.commands._common import friendly_errors
from nodekd_cli.errors import UserError


class AttackCommands(TyperGroup):
    """The `attack` group: its own commands, and a sweep command for each attack of the registry, made when the group
    is used (the registry lives beside the attacks, which import torch: `nodekd --help` need not)."""

    def list_commands(self, ctx):
        sweeps = self._add_sweeps()
        return [*sweeps, *(name for name in super().list_commands(ctx) if name not in sweeps)]

    def get_command(self, ctx, name):
        self._add_sweeps()
        return super().get_command(ctx, name)

    def _add_sweeps(self):
        from nodekd_cli.attacks import ATTACKS

        missing = [attack for name, attack in ATTACKS.items() if name not in self.commands]
        if missing:
            sweeps = typer.Typer()
            sweeps.callback()(lambda: None)  # a group even when a single command is missing
            for attack in missing:
                example = f"Example: nodekd attack {attack.name} --eps-max 20 --eps-step 4 --n 1000 --run RUN"
                sweeps.command(attack.name, epilog=example)(_sweep_command(attack))
            self.commands.update(typer.main.get_command(sweeps).commands)
        return list(ATTACKS)


app = typer.Typer(
    cls=AttackCommands, help="White-box attacks over eps = 0 .. eps-max (in 1/255).", no_args_is_help=True
)


def _sweep_command(attack):
    """The command of `attack` (an `attacks.Attack`)."""

    @friendly_errors
    @options.taking(options.ATTACKED, options.PLACE)
    def command(
        eps_max: Annotated[int, typer.Option("--eps-max", help="Largest eps, in 1/255.")] = 20,
        eps_step: Annotated[int, typer.Option("--eps-step", help="Spacing of the eps values, in 1/255.")] = 1,
        sweep: Annotated[
            str, typer.Option(help="independent (the paper's: every eps on its own) or monotone (cheaper).")
        ] = "independent",
        **given,
    ):
        from nodekd_cli import backend

        backend.select(given.pop("device"))
        from nodekd_cli import attacks

        n, batch_size = given["n"], given["batch_size"]
        if not 0 <= eps_max <= 255 or eps_step < 1 or (n is not None and n < 1) or batch_size < 1:
            raise UserError("--eps-max must lie in 0..255, and --eps-step, --n and --batch-size be at least 1.")
        eps_values = list(range(0, eps_max + 1, eps_step))
        chosen, runs_dir, sample = given.pop("run"), given.pop("runs_dir"), options.sample(given)

        def attack_one(folder, status):
            def progress(e, left, seconds):
                status.update(f"{attack.name} on {folder}: eps {e}/255, {left} images left, {seconds:.0f} s")

            result, reused = attacks.attack_run(
                folder,
                attack.name,
                eps_values,
                sample=sample,
                sweep_mode=sweep,
                progress=progress,
                say=output.info,
                **given,
            )
            return lambda: output.attack_table(folder, attack.description, result, reused)

        each_run(chosen, runs_dir, attack.name, attack_one)

    command.__doc__ = (
        f"{attack.description} sweep; results in RUN/attacks/{attack.name}.json ({attack.name}.monotone.json for "
        "--sweep monotone)."
    )
    return command


def each_run(chosen, runs_dir, title, attack_one):
    """Runs `attack_one(folder, status)` on each chosen run (default: every finished run under `runs_dir`) and shows
    what it returns; a run that fails is reported in one line and the others go on (then the exit status is 1)."""
    from nodekd_cli import runs

    folders = chosen or runs.finished_runs(runs_dir)
    if not folders:
        raise UserError(f"No finished runs under {runs_dir}; train one first, e.g. nodekd teacher train resnet20.")
    failed = 0
    for folder in folders:
        try:
            with output.console.status(f"{title} on {folder}...") as status:
                show = attack_one(folder, status)
        except UserError as error:
            output.error(str(error))
            failed += 1
            continue
        except KeyboardInterrupt:
            output.error(
                f"Interrupted during {title} on {folder}; finished results are saved, and the same command computes "
                f"the rest."
            )
            raise typer.Exit(130) from None
        show()
    if failed:
        raise typer.Exit(1)


@app.command(epilog="Example: nodekd attack autoattack --eps 8 --n 200 --run runs/node-digits-t1_1")
@friendly_errors
@options.taking(options.ATTACKED, options.PLACE)
def autoattack(
    eps: Annotated[int, typer.Option("--eps", help="eps, in 1/255.")] = 8,
    version: Annotated[str, typer.Option(help="standard (APGD-CE, APGD-T, FAB-T, Square) or rand.")] = "standard",
    steps: Annotated[int, typer.Option(help="Iterations of APGD and FAB (the original AutoAttack: 100).")] = 100,
    queries: Annotated[int, typer.Option(help="Queries of Square (the original AutoAttack: 5000).")] = 5000,
    **given,
):
    """AutoAttack (Croce and Hein 2020) through torchattacks at one eps; results in RUN/attacks/autoattack.json."""
    from nodekd_cli import backend

    backend.select(given.pop("device"))
    from nodekd_cli.autoattack import Settings, autoattack_run

    chosen, runs_dir, sample = given.pop("run"), given.pop("runs_dir"), options.sample(given)
    settings = Settings(eps, version, steps, queries)

    def attack_one(folder, status):
        def progress(name):
            status.update(f"AutoAttack on {folder}: {name}")

        result, reused = autoattack_run(folder, settings, sample=sample, progress=progress, **given)
        return lambda: output.autoattack_table(folder, result, reused)

    each_run(chosen, runs_dir, "AutoAttack", attack_one)


@app.command(
    epilog="Example: nodekd attack check runs/node-digits-t1_1 (after nodekd attack pgd, whose sweep it reads)"
)
@friendly_errors
@options.taking(options.PLACE)
def check(
    run: Annotated[Path, typer.Argument(help="A finished run folder.")],
    eps: Annotated[
        str,
        typer.Option(
            "--eps",
            help="eps of the comparisons, in 1/255, or auto: where the reference PGD leaves nearest 50% (within "
            "20-80%) of the images right, from the run's PGD sweep or scanned from 1/255.",
        ),
    ] = "auto",
    n: Annotated[int, typer.Option("--n", help="Test images: a sample stratified by class, seeded by --seed.")] = 200,
    transfer_from: Annotated[
        Path | None, typer.Option("--transfer-from", help="Source run of the transfer attack (default: the teacher).")
    ] = None,
    grad_method: Annotated[str, typer.Option(help="Fixed-step solver for the gradients of Neural ODEs.")] = "rk4",
    grad_step_size: Annotated[float | None, typer.Option(help="Its step (default: t1 / 10).")] = None,
    queries: Annotated[int, typer.Option(help="Queries of the gradient-free attack.")] = 300,
    batch_size: options.AttackBatchSize = 256,
    seed: options.AttackSeed = 0,
    **given,
):
    """Check that a run's measured robustness is real; flag possible gradient masking."""
    from nodekd_cli import backend

    backend.select(given.pop("device"))
    from nodekd_cli import checks

    chosen_eps = None if eps == "auto" else options.whole_number(eps, "--eps")
    if chosen_eps is not None and chosen_eps > 255:
        raise UserError(f"--eps must lie in 1..255 (it is in 1/255); got {chosen_eps}.")
    if (chosen_eps is not None and chosen_eps < 1) or n < 1 or queries < 1:
        raise UserError("--eps (or auto), --n and --queries must be at least 1.")
    flags = {"method": "--grad-method", "step_size": "--grad-step-size"}
    grad_solver = options.solver({"method": grad_method, "step_size": grad_step_size}, flags)
    with output.console.status(f"Checking {run}...") as status:
        result = checks.check_run(
            run,
            eps=chosen_eps,
            sample=options.sample({"n": n, "seed": seed, **given}),
            batch_size=batch_size,
            transfer_from=transfer_from,
            grad_solver=grad_solver,
            queries=queries,
            progress=lambda name: status.update(f"Checking {run}: {name}"),
            wait=given["wait"],
        )
    output.check_table(run, result)
