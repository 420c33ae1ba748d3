"""The report as documents: Markdown for papers, one JSON document and CSV files for other tools. Keys users read
are listed in docs/commands.md ("nodekd report")."""

import csv
import io
import json
from pathlib import Path

from nodekd_cli import runs as run_files
from nodekd_cli.report import stats
from nodekd_cli.report.paper import AUTOATTACK
from nodekd_cli.report.runs_table import run_name, run_rows
from nodekd_cli.report.tables import row_label
from nodekd_cli.report.text import CLAIMS_NOTE, comparison_text, maybe, number, signed


def holm_values(report):
    """{(data set, pair, measure, first, second): Holm-adjusted p} of the comparisons a claim counts."""
    return {c.comparison.key: c.holm_p for claim in report.claims for c in claim.counted}


def comparison_dict(c, holm_p=None):
    """A comparison as JSON: the arms, the difference and its interval, and how it was judged."""
    e = c.estimate
    finished = {stats.FINISHED: True, stats.LEARNING: False}.get(c.learning.state)
    return {
        "dataset": c.dataset,
        "pair": c.pair,
        "measure": c.measure,
        "attack": c.attack,
        "eps": list(c.eps),
        "primary": c.primary,
        "first": c.first.as_dict(),
        "second": c.second.as_dict(),
        "difference": c.difference,
        "interval": None if e is None else [e.low, e.high],
        "paired": e is not None and e.method != stats.UNPAIRED_IMAGES,
        "method": None if e is None else e.method,
        "seeds": None if e is None else e.seeds,
        "df": None if e is None or e.df == float("inf") else e.df,
        "seed_variance": None if e is None else e.seed_variance,
        "image_variance": None if e is None else e.image_variance,
        "p_value": None if e is None else e.p_value,
        "exact_test": None if e is None else e.exact_test,
        "holm_p": holm_p,
        "verdict": c.verdict,
        "same_budget": c.same_budget,
        "finished": finished,
        "learning": {
            "state": c.learning.state,
            "changes": list(c.learning.changes),
            "low": c.learning.low,
            "high": c.learning.high,
            "margin": c.learning.margin,
        },
        "power": None
        if c.power is None
        else {
            "seeds": c.power.seeds,
            "cap": c.power.cap,
            "images_factor": c.power.images_factor,
            "sd_upper": c.power.sd_upper,
            "alpha": c.power.alpha,
            "text": c.power.text,
        },
        "text": comparison_text(c),
    }


def to_markdown(report):
    """The tables as Markdown: each cell "this project (runs) / the paper (difference)"."""
    legend = "Each cell: this project's value (number of runs when more than one) / the paper's (difference)."
    lines = [f"{legend} Paper: {report.paper_source}.", ""]
    for table in report.tables:
        lines += [f"### {table.title}", ""]
        header = list(table.row_fields) + [label for _, label in table.columns]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for row in table.rows:
            cells = []
            for column, _ in table.columns:
                cell = table.cells[row, column]
                count = f" ({len(cell.values)} runs)" if len(cell.values) > 1 else ""
                cells.append(f"{number(cell.value)}{count} / {number(cell.paper)}{signed(cell.difference)}")
            lines.append("| " + " | ".join(row_label(table, row) + cells) + " |")
        lines += [""] + [f"- {note}" for note in table.notes] + ([""] if table.notes else [])
    if report.comparisons:
        lines += ["### What the runs show", ""] + [f"- {comparison_text(c)}" for c in report.comparisons] + [""]
    lines += ["### Figure 1: accuracy against eps", ""]
    lines += [f"![{Path(f).stem}]({f})" for f in report.figures] or ["No attack results yet."]
    if report.curve_figures:
        lines += ["", "### Learning curves: test accuracy against training images seen", ""]
        lines += [f"![{Path(f).stem}]({f})" for f in report.curve_figures]
    header = ("run", "kind", "data set", "t1", "T", "lambda", "optimizer", "dynamics", "solver", "params")
    header += ("accuracy", "NFE", "training", "learning", "attacks", "check")
    lines += ["", "### Runs", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in run_rows(report):
        seconds = "-" if row["train_seconds"] is None else f"{row['train_seconds']:.0f} s"
        seconds += f" ({row['resumed_with']})" if row["resumed_with"] else ""
        attacks = ", ".join(
            f"AutoAttack {r['eps'][-1]}/255: {100 * r['accuracy'][-1]:.2f}%" if name == AUTOATTACK else name
            for name, r in row["attacks"].items()
        )
        kind = row["model"] if row["kind"] == "teacher" else "student"
        kind += " (teacher changed since)" if row.get("teacher_check") == "changed since" else ""
        lines.append(
            f"| {run_name(report, row['folder'])} | {kind} | "
            f"{row['dataset']} | {maybe(row['t1'])} | {maybe(row['T'])} | {maybe(row['lambda'])} | "
            f"{row['optimizer'] or '-'} | {row['dynamics'] or '-'} | {row['solver'] or '-'} | "
            f"{maybe(row['params'])} | {row['accuracy']:.2f} | {number(row['nfe'], 1)} | {seconds} | "
            f"{row['convergence'] or '-'} | {attacks or '-'} | {row['check'] or '-'} |"
        )
    if report.missing:
        lines += ["", "### Commands that fill the empty cells", "", "```"] + report.missing + ["```"]
    if report.claims:
        lines += ["", "### The paper's claims", "", "| data set | claim | verdict | students | budget | evidence |"]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        lines += [
            f"| {c.dataset} | {c.statement} | {c.verdict} | {c.convergence} | {c.budget or '-'} | {c.summary} |"
            for c in report.claims
        ]
        lines += ["", CLAIMS_NOTE, ""]
        for c in report.claims:
            lines += [f"- {c.dataset}, {c.statement.lower()}: **{c.verdict}**"]
            lines += [f"  - {e}" for e in c.evidence]
    return "\n".join(lines) + "\n"


def to_json(report):
    """One document with every table cell by cell (this project's value or null, beside the paper's)."""
    holm = holm_values(report)
    document = {
        "runs_dir": str(report.root),
        "paper_source": report.paper_source,
        "tables": {
            table.key: {
                "title": table.title,
                "row_fields": list(table.row_fields),
                "columns": [{"key": key, "label": label} for key, label in table.columns],
                "cells": list(table.cell_dicts()),
                "notes": table.notes,
            }
            for table in report.tables
        },
        "comparisons": [comparison_dict(c, holm.get(c.key)) for c in report.comparisons],
        "claims": [c.as_dict() for c in report.claims],
        "figure1": {"files": [str(f) for f in report.figures], "series": report.series, "markers": report.markers},
        "learning_curves": {"files": [str(f) for f in report.curve_figures], "points": report.curves},
        "convergence_margin": stats.MARGIN,
        "min_seeds": stats.MIN_SEEDS,
        "runs": run_rows(report),
        "skipped": [{"path": str(path), "reason": reason} for path, reason in report.skipped],
        "missing": report.missing,
    }
    return json.dumps(document, indent=2)


def write_csv(report, out):
    """One CSV per table (a row per cell), the run table and Figure 1's points, into `out`; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def write(name, rows, fields):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        run_files.atomic_write_text(out / name, buffer.getvalue())
        written.append(out / name)

    for table in report.tables:
        rows = [{**c, "folders": ";".join(c["folders"])} for c in table.cell_dicts()]
        write(
            f"{table.key}.csv", rows, [*table.row_fields, "column", "value", "runs", "paper", "difference", "folders"]
        )
    runs = [{**r, "attacks": ";".join(r["attacks"])} for r in run_rows(report)]
    curve_fields = ["dataset", "run", "family", "distilled", "twin", "gain_from_twin", "epoch", "images_seen"]
    write("learning_curves.csv", report.curves, curve_fields + ["test_accuracy"])
    write("runs.csv", runs, list(runs[0]) if runs else ["folder"])
    points = [
        {**{k: s[k] for k in ("dataset", "attack", "family", "runs")}, "eps": e, "accuracy": a}
        for s in report.series
        for e, a in zip(s["eps"], s["accuracy"])
    ]
    write("figure1.csv", points, ["dataset", "attack", "family", "runs", "eps", "accuracy"])
    compared = []
    holm = holm_values(report)
    for c in report.comparisons:
        found = comparison_dict(c, holm.get(c.key))
        row = {k: v for k, v in found.items() if not isinstance(v, (dict, list))}
        for side in ("first", "second"):
            row.update({side: c.__getattribute__(side).label, f"{side}_value": found[side]["value"]})
            row.update({f"{side}_n": found[side]["n"], f"{side}_runs": len(found[side]["runs"])})
        row["low"], row["high"] = found["interval"] or (None, None)
        row["learning"] = c.learning.state
        row["power_seeds"] = None if c.power is None else c.power.seeds
        compared.append(row)
    fields = ["dataset", "pair", "measure", "primary", "first", "first_value", "first_n", "first_runs", "second"]
    fields += ["second_value", "second_n", "second_runs", "difference", "low", "high", "paired", "method", "seeds"]
    fields += ["df", "seed_variance", "image_variance", "p_value", "exact_test", "holm_p", "verdict", "same_budget"]
    fields += ["finished", "learning", "power_seeds", "text"]
    write("comparisons.csv", compared, fields)
    claimed = [{**c.as_dict(), "evidence": " | ".join(c.evidence)} for c in report.claims]
    fields = ["dataset", "claim", "statement", "verdict", "convergence", "budget", "summary", "evidence"]
    write("claims.csv", claimed, fields)
    return written
