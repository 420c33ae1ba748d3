"""The `nodekd` command: wires the command groups together, and gives every usage error one line."""

import os
import signal
import sys

import typer
from typer.core import TyperGroup

from nodekd_cli.commands import attack, data, report, reproduce, student, teacher

# The commands in the order of the work: data, teachers, students, attacks, the report, or all of it at once.
WORKFLOW = ("data", "teacher", "student", "distill", "attack", "report", "reproduce")


class OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a value of the wrong type) as one line on stderr and exit status 2, instead
    of Typer's usage text and error panel; every other exit status is the command's (see `nodekd_cli.errors`). Its
    commands are listed in the order of the work (`WORKFLOW`)."""

    def list_commands(self, ctx):
        found = super().list_commands(ctx)
        return [name for name in WORKFLOW if name in found] + [name for name in found if name not in WORKFLOW]

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:  # Typer's usage errors (its own copy of Click's)
            if type(error).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                from nodekd_cli import output

                message = " ".join(error.format_message().split()).rstrip(".")
                context = getattr(error, "ctx", None)
                if context is not None:
                    message += f" (see {context.command_path} --help)"
                output.error(message + ("" if message.endswith("?") else "."))
            sys.exit(getattr(error, "exit_code", 2))
        except typer.Abort:
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    name="nodekd",
    help="Neural ODEs improved by knowledge distillation: teachers, students, attacks, reports.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _versions(value: bool):
    if value:
        from nodekd_cli import runs

        found = runs.versions()
        for name in ("nodekd", *(name for name in found if name != "nodekd")):
            print(f"{name} {found[name] or 'not installed'}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_versions,
        is_eager=True,
        help="Print the versions of nodekd, Python, Keras, torch, torchdiffeq and NumPy, and exit.",
    ),
):
    """Neural ODEs improved by knowledge distillation: teachers, students, attacks, reports."""


app.add_typer(teacher.app, name="teacher")
app.add_typer(student.app, name="student")
app.command("distill", epilog="Example: nodekd distill --teacher runs/resnet20-digits --T 3 --t1 100")(student.distill)
app.add_typer(attack.app, name="attack")
app.add_typer(data.app, name="data")
app.command("report", epilog="Example: nodekd report --runs runs --format markdown > report.md")(report.report)
app.command("reproduce", epilog="Example: nodekd reproduce --preset small --seeds 5 --dry-run")(reproduce.reproduce)


def main():
    # SIGTERM (a scheduler ending the job, `kill`) stops a command as Ctrl-C does: it says what was kept, and exits.
    from nodekd_cli import interrupts

    signal.signal(signal.SIGTERM, interrupts.request)
    signal.signal(signal.SIGINT, interrupts.request)
    # A parent may have started this process with the signals blocked (the mask is inherited): accept them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        app()
    except SystemExit as stop:
        if stop.code != 130:
            raise
        # Interrupted, and the command has said what it kept: leave at once. An interruption can land inside a
        # library's import, and the interpreter's own shutdown then trips over the half-made module.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
