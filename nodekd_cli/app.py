"""The `nodekd` command: wires the command groups together."""

import typer

from nodekd_cli.commands import attack, data, report, reproduce, student, teacher

app = typer.Typer(
    name="nodekd",
    help="Neural ODEs improved by knowledge distillation: teachers, students, attacks, reports.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(teacher.app, name="teacher")
app.add_typer(student.app, name="student")
app.command("distill")(student.distill)
app.add_typer(attack.app, name="attack")
app.add_typer(data.app, name="data")
app.command("report")(report.report)
app.command("reproduce")(reproduce.reproduce)


def main():
    app()
