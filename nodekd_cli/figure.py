"""Figure 1: accuracy against eps, one PNG per data set with one panel per attack, one line per model family; and the
learning curves: test accuracy against training images seen, one PNG per data set, one line per student.

Drawn with matplotlib's object API on the Agg canvas: no display, no pyplot state. Each PNG carries a JSON
description of its panels and lines (title, label, colour) in its "Description" text chunk, for tools and tests.
"""

import json
import os
import tempfile
from pathlib import Path

from nodekd_cli import files
from nodekd_cli.attacks import title as attack_title

# Fixed colours per family, so that a family looks the same in every panel and every report.
FAMILY_COLORS = {
    "NODEs(1)": "#1f77b4",
    "NODEs(1) + KD": "#ff7f0e",
    "NODEs(100)": "#2ca02c",
    "NODEs(100) + KD": "#d62728",
    "NODEs(500)": "#9467bd",
    "NODEs(500) + KD": "#8c564b",
}
TEACHER_COLORS = ("#000000", "#7f7f7f", "#bcbd22", "#17becf", "#e377c2")
OTHER_COLORS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")


def family_colors(families):
    """A colour for every family: the paper's NODE families fixed, teachers in greys, the rest in turn."""
    colors, teachers, others = {}, iter(TEACHER_COLORS), iter(OTHER_COLORS)
    for family in families:
        if family in FAMILY_COLORS:
            colors[family] = FAMILY_COLORS[family]
        elif _is_teacher(family):
            colors[family] = next(teachers, "#000000")
        else:
            colors[family] = next(others, "#444444")
    return colors


def _matplotlib_config():
    """Gives matplotlib a writable config folder when the home folder is not writable (a cluster's read-only home),
    instead of a warning on every command that draws."""
    if "MPLCONFIGDIR" not in os.environ and not os.access(Path.home(), os.W_OK):
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="nodekd-matplotlib-")


def write_figure1(series, out, markers=()):
    """Writes figure1-<data set>.png into `out` for every data set with attack results; returns their paths.
    `markers` (AutoAttack's worst case of a family at one eps) are drawn as stars in every panel of their data set."""
    _matplotlib_config()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    datasets = list(dict.fromkeys(s["dataset"] for s in series))
    colors = family_colors(sorted({s["family"] for s in [*series, *markers]}, key=_family_order))
    written = []
    for dataset in datasets:
        lines = [s for s in series if s["dataset"] == dataset]
        attacks = list(dict.fromkeys(s["attack"] for s in lines))
        figure = Figure(figsize=(5.5 * len(attacks), 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, len(attacks), squeeze=False)[0]
        panels = []
        for ax, attack in zip(axes, attacks):
            title = f"{attack_title(attack)} on {dataset}"
            panel = {"title": title, "attack": attack, "lines": []}
            for line in sorted((s for s in lines if s["attack"] == attack), key=lambda s: _family_order(s["family"])):
                label = line["family"] + (f" ({line['runs']} runs)" if line["runs"] > 1 else "")
                color = colors[line["family"]]
                style = "--" if _is_teacher(line["family"]) else "-"
                ax.plot(line["eps"], line["accuracy"], style, marker="o", markersize=3, color=color, label=label)
                panel["lines"].append({"family": line["family"], "label": label, "color": color})
            panel["markers"] = []
            for point in (p for p in markers if p["dataset"] == dataset):
                label = f"{point['family']}, AutoAttack at {point['eps']}/255"
                color = colors[point["family"]]
                ax.plot([point["eps"]], [point["accuracy"]], "*", markersize=11, color=color, label=label)
                marker = {"family": point["family"], "label": label, "color": color, "eps": point["eps"]}
                panel["markers"].append(marker)
            ax.set_title(title)
            ax.set_xlabel("eps (/255)")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
            panels.append(panel)
        path = out / f"figure1-{_file_name(dataset)}.png"
        out.mkdir(parents=True, exist_ok=True)
        description = json.dumps({"figure": "Figure 1", "dataset": dataset, "panels": panels})
        with files.replacing(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=100, metadata={"Title": f"Figure 1: {dataset}", "Description": description})
        written.append(path)
    return written


def write_learning_curves(points, out, paper=()):
    """Writes learning-curves-<data set>.png into `out` for every data set with student histories (`points`, from
    `report.learning_curves`); returns their paths. Each student is a line in its family's colour, solid when
    distilled and dashed when trained alone; a half-budget twin is thin and faint; the legend names each family once,
    then the line styles. `paper` (the paper's final accuracies at its budget, `report.paper_finals`) are drawn as
    diamonds in their family's colour."""
    _matplotlib_config()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    out = Path(out)
    points = [p for p in points if p["images_seen"] is not None]
    datasets = list(dict.fromkeys(p["dataset"] for p in points))
    families = {p["family"] for p in points} | {_base_family(p["family"]) for p in paper}
    colors = family_colors(sorted(families, key=_family_order))
    written = []
    for dataset in datasets:
        mine = [p for p in points if p["dataset"] == dataset]
        figure = Figure(figsize=(9.5, 4.8), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.subplots()
        lines = []
        for run in sorted(dict.fromkeys(p["run"] for p in mine)):
            curve = sorted((p for p in mine if p["run"] == run), key=lambda p: p["epoch"])
            first = curve[0]
            color = colors[first["family"]]
            style = "-" if first["distilled"] else "--"
            label = f"{first['family']}: {run}" + (" (half-budget twin)" if first["twin"] else "")
            width, alpha = (0.8, 0.45) if first["twin"] else (1.6, 1.0)
            x, y = [p["images_seen"] for p in curve], [p["test_accuracy"] for p in curve]
            ax.plot(x, y, style, marker="o", markersize=2.5, linewidth=width, alpha=alpha, color=color)
            lines.append({"run": run, "family": first["family"], "label": label, "color": color, "twin": first["twin"]})
        # One legend entry a family (a budget search draws a dozen runs of each), then a key to the line styles.
        for family in sorted({line["family"] for line in lines}, key=_family_order):
            ax.plot([], [], "-", linewidth=4, color=colors[family], label=family)
        for style, width, alpha, label in (("-", 1.6, 1.0, "distilled"), ("--", 1.6, 1.0, "trained alone")) + (
            (("-", 0.8, 0.45, "half-budget twin (thin, faint)"),) if any(line["twin"] for line in lines) else ()
        ):
            ax.plot([], [], style, linewidth=width, alpha=alpha, color="0.3", label=label)
        marks = []
        for point in (p for p in paper if p["dataset"] == dataset):
            color = colors[_base_family(point["family"])]
            label = f"paper: {point['family']}"
            ax.plot([point["images_seen"]], [point["accuracy"]], "D", markersize=7, color=color, label=label)
            marks.append({"family": point["family"], "label": label, "color": color, "accuracy": point["accuracy"]})
        title = f"Learning curves on {dataset}"
        ax.set_title(title)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # powers of ten only: the minor labels overlap
        ax.set_xlabel("training images seen")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
        path = out / f"learning-curves-{_file_name(dataset)}.png"
        out.mkdir(parents=True, exist_ok=True)
        description = json.dumps({"figure": "learning curves", "dataset": dataset, "lines": lines, "paper": marks})
        with files.replacing(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=100, metadata={"Title": title, "Description": description})
        written.append(path)
    return written


def _base_family(label):
    """ "NODEs(1) + KD (ResNet20, T = 3)" -> "NODEs(1) + KD": the family whose colour a paper mark takes."""
    return label.split(" (")[0] if "+ KD" in label else label


def _is_teacher(family):
    """Whether a Figure 1 family is a teacher: every family but the Neural ODE students ("NODEs(t1)...")."""
    return not family.startswith("NODEs(")


def _family_order(family):
    """Teachers first (by the number in their name: a ResNet's depth), then NODEs by t1, each without then with
    distillation."""
    if _is_teacher(family):
        return (0, int("".join(c for c in family if c.isdigit()) or 0), family)
    try:
        t1 = float(family.split("(")[1].split(")")[0])
    except (IndexError, ValueError):
        return (2, 0, family)
    return (1, t1, "KD" in family)


def _file_name(dataset):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset)
