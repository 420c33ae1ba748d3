"""`nodekd report`: the paper's Tables 1-3 and Figure 1 filled from run folders beside the paper's numbers, what the
runs show pair by pair, and the verdicts on the paper's claims.

The package, one room per question:
- `paper`: the paper's numbers, labels, and what counts as its setup;
- `collect`: the runs read from folders, and which fill the tables;
- `tables`: Tables 1-3 and Figure 1's series;
- `arms`: which runs make an arm, and which arms face each other;
- `stats`: intervals, tests, Holm's correction, power, the half- to full-budget rule;
- `comparisons`: each pair on each measure, as `records.Comparison`;
- `claims`: the claims as a registry, and their verdicts;
- `runs_table`: the run table and the learning curves;
- `text` and `render`: the words and numbers, and Markdown, JSON and CSV.
A student that is another's half-budget twin (`nodekd_cli.convergence`) fills no cell and is in no comparison: it
judges, over seeds, whether the comparisons its twin is in have stopped moving.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

from nodekd_cli import convergence, files
from nodekd_cli import runs as run_files
from nodekd_cli.errors import UserError
from nodekd_cli.report.claims import CLAIMS, claims
from nodekd_cli.report.collect import collect, most_trained, sweeps
from nodekd_cli.report.comparisons import comparisons
from nodekd_cli.report.paper import in_paper_setup, paper_finals, paper_results
from nodekd_cli.report.render import to_json, to_markdown, write_csv
from nodekd_cli.report.runs_table import learning_curves, run_rows
from nodekd_cli.report.tables import autoattack_points, figure_series, table1, table2, table3

__all__ = [
    "CLAIMS",
    "Report",
    "build",
    "build_with_figures",
    "collect",
    "in_paper_setup",
    "run_rows",
    "sweeps",
    "to_json",
    "to_markdown",
    "write_csv",
]


@dataclass(frozen=True)
class Report:
    root: Path
    runs: list
    skipped: list  # (path, reason)
    tables: list
    series: list  # Figure 1 lines: dataset, attack, family, eps, accuracy, runs
    missing: list  # commands that would fill the empty cells
    paper_source: str
    comparisons: list = field(default_factory=list)  # `records.Comparison`
    claims: list = field(default_factory=list)  # `records.Claim`
    markers: list = field(default_factory=list)  # Figure 1's AutoAttack points
    convergence: dict = field(default_factory=dict)  # student folder -> `convergence.Status`
    curves: list = field(default_factory=list)  # learning-curve points
    figures: list = field(default_factory=list)  # written PNG files (`nodekd_cli.figure`)
    curve_figures: list = field(default_factory=list)


def _missing(tables, runs):
    """The commands that would fill the empty cells: per cell, or the whole preset for a data set without runs."""
    with_runs = {r.config["dataset"] for r in runs}
    missing, whole = [], []
    for table in tables:
        for (row, _), cell in table.cells.items():
            if cell.values:
                continue
            if row[0] not in with_runs:
                whole.append(f"nodekd reproduce --preset paper --datasets {row[0]}")
            else:
                missing.append(cell.command)
    return list(dict.fromkeys(missing + whole))


def _as_counted(compared, judged):
    """The comparisons with each counted one as its claim judged it (its power at the claim's Holm alpha)."""
    counted = {c.comparison.key: c.comparison for claim in judged for c in claim.counted}
    return [counted.get(c.key, c) for c in compared]


def build(root, exclude=()):
    """The report over the runs under `root`: the paper's tables, Figure 1, comparisons and claims from the runs that
    are no other run's half-budget twin; the run table and the learning curves from all."""
    root = Path(root)
    everything, skipped = collect(root, exclude)
    status = convergence.statuses(everything)
    runs = [r for r in everything if r.folder not in status or status[r.folder].twin_of is None]
    paper = paper_results()
    in_tables, left_out = most_trained(runs)
    tables = [table1(in_tables, paper, root), table2(in_tables, paper, root), table3(in_tables, paper, root)]
    if left_out:
        tables[0].notes.append(
            f"Tables 1-3 and Figure 1: a cell (a line) averages the runs (seeds) of one budget, width and training "
            f"set: the most trained of its runs (training images seen, then channels); {left_out} other run(s) are in "
            f"the comparisons and the run table only."
        )
    compared = comparisons(runs, status, everything)
    judged = claims(runs, compared, root=root)
    return Report(
        root,
        everything,
        skipped,
        tables,
        figure_series(in_tables),
        _missing(tables, runs),
        paper["source"],
        comparisons=_as_counted(compared, judged),
        claims=judged,
        markers=autoattack_points(in_tables),
        convergence=status,
        curves=learning_curves(everything, status, root),
    )


def build_with_figures(runs_dir, out, on_skipped=None, on_unwritable=None):
    """The report over `runs_dir` (the folder `out` and runs_dir/report excluded: reports are not runs), with
    Figure 1 and the learning curves written into `out`; `on_skipped(path, reason)` hears of each folder skipped. A
    `UserError` when there is nothing to show. When `out` cannot be written and `on_unwritable(error)` is given, it
    hears why and the report comes without its figures (it is still shown)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir} does not exist; run a study first, e.g. nodekd reproduce --preset quick.")
    result = build(runs_dir, exclude=[out, runs_dir / "report"])
    for path, reason in result.skipped:
        if on_skipped:
            on_skipped(path, reason)
    if not result.runs:
        raise UserError(
            f"No finished runs under {runs_dir}; run nodekd reproduce --preset quick (the whole study on digits) "
            f"or nodekd teacher train resnet20 first."
        )
    try:
        return with_figures(result, out)
    except UserError as error:
        if on_unwritable is None:
            raise
        on_unwritable(error)
        return result


def with_figures(result, out):
    """`result` with Figure 1 and the learning curves written into `out`; a `UserError` when `out` cannot be."""
    from nodekd_cli import figure

    files.refuse_link(out)  # a report folder inside a shared runs folder may be a link out of it
    run_files.writable_folder(out)
    figures = figure.write_figure1(result.series, out, result.markers)
    curve_figures = figure.write_learning_curves(result.curves, out, paper_finals(result.runs))
    return replace(result, figures=figures, curve_figures=curve_figures)
