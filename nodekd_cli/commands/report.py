"""`nodekd report`: the paper's tables and Figure 1 from the run folders, beside the paper's numbers."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli import output
from nodekd_cli.commands._common import friendly_errors
from nodekd_cli.errors import UserError

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
    chosen = out
    out = out or runs_dir / "report"

    def unwritable(error):
        advice = "" if chosen else "; pass --out DIR to write them elsewhere"
        output.warning(f"{error} The report is shown without its figures{advice}.")

    result = reports.build_with_figures(
        runs_dir, out, on_skipped=output.skipped, on_unwritable=None if format == "csv" else unwritable
    )
    if format == "rich":
        output.report(result)
    elif format == "markdown":
        output.plain(reports.to_markdown(result))
    elif format == "json":
        output.plain(reports.to_json(result))
    else:
        written = reports.write_csv(result, out)
        output.info("Wrote " + ", ".join(str(p) for p in written + result.figures + result.curve_figures))
