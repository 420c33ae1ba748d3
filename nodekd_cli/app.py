"""The `nodekd` command: wires the command groups together."""

import typer

from nodekd_cli.commands import attack, data, report, reproduce, student, teacher

app = typer.Typer(
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
        False, "--version", callback=_versions, is_eager=True, help="Print the versions of nodekd, Python, Keras, "
        "torch, torchdiffeq and NumPy, and exit."
    ),
):
    """Neural ODEs improved by knowledge distillation: teachers, students, attacks, reports."""


app.add_typer(teacher.app, name="teacher")
app.add_typer(student.app, name="student")
app.command("distill")(student.distill)
app.add_typer(attack.app, name="attack")
app.add_typer(data.app, name="data")
app.command("report")(report.report)
app.command("reproduce")(reproduce.reproduce)


def main():
    app()
