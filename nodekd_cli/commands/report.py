"""`nodekd report`: the paper's tables and Figure 1 from the run folders, beside the paper's numbers."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli import output
from nodekd_cli.errors import UserError, friendly_errors

FORMATS = ("rich", "markdown", "json", "csv")


@friendly_errors
def report(
    runs_dir: Annotated[
        Path, typer.Option("--runs", help="Folder holding the run folders (searched at any depth).")
    ] = Path("runs"),
    format: Annotated[
        str, typer.Option("--format", help="rich (terminal), markdown, json (stdout) or csv (files in --out).")
    ] = "rich",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where the figures and CSV files go (default: RUNS/report).")
    ] = None,
):
    """Tables 1-3 and Figure 1 of the paper filled from the runs, each cell beside the paper's value."""
    from nodekd_cli import report as reports

    if format not in FORMATS:
        raise UserError(f"Unknown format {format!r}; choose one of: {', '.join(FORMATS)}.")
    out = out or runs_dir / "report"
    result = build_report(runs_dir, out)
    if format == "rich":
        output.report(result)
    elif format == "markdown":
        output.plain(reports.to_markdown(result))
    elif format == "json":
        output.plain(reports.to_json(result))
    else:
        written = reports.write_csv(result, out)
        output.info("Wrote " + ", ".join(str(p) for p in written + result.figures))


def build_report(runs_dir, out):
    """The report over `runs_dir`, its figures written into `out` (skipped folders named on stderr); a `UserError`
    when there is nothing to show."""
    from nodekd_cli import figure
    from nodekd_cli import report as reports

    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir} does not exist; run a study first, e.g. nodekd reproduce --preset quick.")
    result = reports.build(runs_dir, exclude=[out, runs_dir / "report"])  # reports are not runs
    for path, reason in result.skipped:
        output.warning(f"Skipped {path}: {reason}.")
    if not result.runs:
        raise UserError(
            f"No finished runs under {runs_dir}; run nodekd reproduce --preset quick (the whole study on digits) "
            f"or nodekd teacher train resnet20 first."
        )
    from nodekd_cli import runs

    runs.writable_folder(out)
    result.figures = figure.write_figure1(result.series, out, result.markers)
    return result
