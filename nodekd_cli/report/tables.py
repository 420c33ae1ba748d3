"""The paper's Tables 1-3 and Figure 1's series, filled from the runs and set beside the paper's numbers.

Runs are matched to cells by their `config.json`, never by folder names:
- Table 1: teachers by model and data set; NODEs(t1) are students without distillation (lambda 0) at t1 = 1, 100.
- Table 2: distilled students (lambda 0.9, the paper's) at t1 = 1, by data set, T and teacher model.
- Table 3: students without distillation under PGD (`attacks/pgd.json`), by data set and t1; clean accuracy is
  PGD's at eps 0 (the attacked images), or the run's test accuracy without it.
- Figure 1: accuracy against eps from `attacks/<attack>.json`, per data set and attack, one line per family
  (each ResNet teacher; NODEs(t1) with and without distillation, averaged over their runs).
Each empty cell carries the command that would fill it.
"""

import statistics
from dataclasses import dataclass, field

from nodekd_cli import runs as run_files
from nodekd_cli.attacks import ATTACKS, split_key
from nodekd_cli.report.collect import recorded as recorded_name
from nodekd_cli.report.collect import sweeps
from nodekd_cli.report.paper import (
    AUTOATTACK,
    TABLE1_T1,
    TABLE2_T1,
    TABLE3_EPS,
    family,
    in_paper_setup,
    paper_teachers,
    teacher_label,
)


@dataclass
class Cell:
    paper: float | None
    values: list = field(default_factory=list)
    folders: list = field(default_factory=list)
    command: str | None = None  # what would fill the cell while it is empty

    def add(self, value, folder):
        self.values.append(value)
        self.folders.append(str(folder))

    @property
    def value(self):
        return statistics.fmean(self.values) if self.values else None

    @property
    def difference(self):
        return None if self.value is None or self.paper is None else self.value - self.paper


@dataclass
class Table:
    key: str
    title: str
    row_fields: tuple  # names of the fields that label a row, e.g. ("dataset", "T")
    columns: list  # (key, label)
    rows: list  # tuples of row field values
    cells: dict  # (row, column key) -> Cell
    notes: list = field(default_factory=list)

    def cell_dicts(self):
        for row in self.rows:
            for column, _ in self.columns:
                cell = self.cells[row, column]
                yield {
                    **dict(zip(self.row_fields, row)),
                    "column": column,
                    "value": cell.value,
                    "runs": len(cell.values),
                    "paper": cell.paper,
                    "difference": cell.difference,
                    "folders": cell.folders,
                }


def _datasets(runs, *paper_tables):
    """The paper's data sets first, then every other data set with runs."""
    names = [d for table in paper_tables for d in table]
    names += sorted({r.config["dataset"] for r in runs})
    return list(dict.fromkeys(names))


def _rows_by(runs, paper_table, key):
    """Rows (data set, value of `key`): the paper's, then those of the runs; and the paper's value of a cell."""
    rows = []
    for dataset in _datasets(runs, paper_table):
        values = {float(v) for v in paper_table.get(dataset, {})}
        values |= {float(r.config[key]) for r in runs if r.config["dataset"] == dataset}
        rows += [(dataset, v) for v in sorted(values)]

    def paper_value(row, column):
        return paper_table.get(row[0], {}).get(f"{row[1]:g}", {}).get(column)

    return rows, paper_value


def _empty_cells(rows, columns, paper):
    return {(row, column): Cell(paper(row, column)) for row in rows for column, _ in columns}


def table1(runs, paper, root):
    columns = [(f"node_t1_{t1:g}", f"NODEs({t1:g})") for t1 in TABLE1_T1]
    columns += [(model, teacher_label(model)) for model in paper_teachers()]
    rows = [(d,) for d in _datasets(runs, paper["table1"])]
    cells = _empty_cells(rows, columns, lambda row, column: paper["table1"].get(row[0], {}).get(column))
    for run in runs:
        if run.config["kind"] == "teacher":
            column = run.config["model"]
        elif in_paper_setup(run) and not run.distilled and run.config["t1"] in TABLE1_T1:
            column = f"node_t1_{run.config['t1']:g}"
        else:
            continue
        if ((run.config["dataset"],), column) in cells:
            cells[(run.config["dataset"],), column].add(run.accuracy, run.folder)
    for (row, column), cell in cells.items():
        dataset = recorded_name(runs, row[0])
        if column.startswith("node_t1_"):
            t1 = column.removeprefix("node_t1_")
            folder = run_files.student_folder(dataset, float(t1), root=root)
            cell.command = f"nodekd student train --dataset {dataset} --t1 {t1} --out {folder}"
        else:
            folder = run_files.teacher_folder(column, dataset, root=root)
            cell.command = f"nodekd teacher train {column} --dataset {dataset} --out {folder}"
    return Table(
        "table1",
        "Table 1: clean test accuracy (%) without distillation for Neural ODEs",
        ("dataset",),
        columns,
        rows,
        cells,
        [n for n in paper["notes"] if n.startswith("Table 1")],
    )


def table2(runs, paper, root):
    columns = [(model, teacher_label(model)) for model in paper_teachers()]
    distilled = [r for r in runs if r.distilled and in_paper_setup(r) and r.config["t1"] == TABLE2_T1]
    rows, paper_value = _rows_by(distilled, paper["table2"], "T")
    cells = _empty_cells(rows, columns, paper_value)
    for run in distilled:
        key = ((run.config["dataset"], float(run.config["T"])), run.config["teacher_model"])
        if key in cells:
            cells[key].add(run.accuracy, run.folder)
    teacher_runs = {(r.config["model"], r.config["dataset"]): r.folder for r in runs if r.config["kind"] == "teacher"}
    for ((dataset, temperature), column), cell in cells.items():
        recorded = recorded_name(runs, dataset)
        student = run_files.student_folder(
            recorded, TABLE2_T1, teacher_model_name=column, temperature=temperature, root=root
        )
        teacher = teacher_runs.get((column, dataset))
        train = ""
        if teacher is None:
            teacher = run_files.teacher_folder(column, recorded, root=root)
            train = f"nodekd teacher train {column} --dataset {recorded} --out {teacher} && "
        cell.command = f"{train}nodekd distill --teacher {teacher} --T {temperature:g} --t1 1 --out {student}"
    return Table(
        "table2",
        "Table 2: clean test accuracy (%) of NODEs(1) distilled from each teacher",
        ("dataset", "T"),
        columns,
        rows,
        cells,
        [n for n in paper["notes"] if n.startswith("Table 2")],
    )


def table3(runs, paper, root):
    columns = [("clean", "clean")] + [(str(e), f"{e}/255") for e in TABLE3_EPS]
    baselines = [r for r in runs if r.config["kind"] == "student" and not r.distilled and in_paper_setup(r)]
    rows, paper_value = _rows_by(baselines, paper["table3"], "t1")
    cells = _empty_cells(rows, columns, paper_value)
    for run in baselines:
        row = (run.config["dataset"], float(run.config["t1"]))
        if (row, "clean") not in cells:
            continue
        pgd = sweeps(run).get("pgd", {"eps": [], "accuracy": []})
        # Clean accuracy over the images PGD attacked (its eps 0) when it has them, so the row compares like with like.
        clean = 100 * pgd["accuracy"][pgd["eps"].index(0)] if 0 in pgd["eps"] else run.accuracy
        cells[row, "clean"].add(clean, run.folder)
        for e, accuracy in zip(pgd["eps"], pgd["accuracy"]):
            if (row, str(e)) in cells:
                cells[row, str(e)].add(100 * accuracy, run.folder)
    for ((dataset, t1), column), cell in cells.items():
        recorded = recorded_name(runs, dataset)
        folder = run_files.student_folder(recorded, t1, root=root)
        train = f"nodekd student train --dataset {recorded} --t1 {t1:g} --out {folder}"
        trained = cells[(dataset, t1), "clean"].folders
        if column == "clean":
            cell.command = train
        elif trained:
            cell.command = f"nodekd attack pgd --run {trained[0]} --eps-max 20"
        else:
            cell.command = f"{train} && nodekd attack pgd --run {folder} --eps-max 20"
    notes = [n for n in paper["notes"] if n.startswith("Table 3")]
    monotone = [r for r in baselines if "pgd" not in sweeps(r) and "pgd (monotone)" in sweeps(r)]
    if monotone:
        notes.append(
            f"Table 3: {len(monotone)} of these runs have a monotone PGD sweep only, which Table 3 does not take (the "
            "paper attacks each eps on its own); nodekd attack pgd --run RUN --eps-max 20 adds the paper's beside it."
        )
    return Table(
        "table3",
        "Table 3: accuracy (%) of NODEs(t1) without distillation under PGD at eps",
        ("dataset", "t1"),
        columns,
        rows,
        cells,
        notes,
    )


def figure_series(runs):
    """Figure 1's lines: for each data set, attack and family, the mean accuracy (%) at the eps all its runs have."""
    groups = {}
    for run in runs:
        if not in_paper_setup(run):
            continue
        for attack, result in sweeps(run).items():
            if attack != AUTOATTACK:
                groups.setdefault((run.config["dataset"], attack, family(run)), []).append(result)
    series = []
    for (dataset, attack, line), results in sorted(
        groups.items(), key=lambda item: (item[0][0], attack_order(item[0][1]), item[0][1], item[0][2])
    ):
        eps = sorted(set.intersection(*(set(r["eps"]) for r in results)))
        accuracy = [statistics.fmean(100 * r["accuracy"][r["eps"].index(e)] for r in results) for e in eps]
        series.append(
            {
                "dataset": dataset,
                "attack": attack,
                "family": line,
                "eps": eps,
                "accuracy": accuracy,
                "runs": len(results),
            }
        )
    return series


def attack_order(name):
    """Sort key of a `result_key`: the registered attacks in their order (each one's monotone sweep after it), then
    others."""
    order = list(ATTACKS)
    attack, sweep = split_key(name)
    return (order.index(attack) if attack in order else len(order), bool(sweep))


def autoattack_points(runs):
    """Figure 1's AutoAttack markers: for each data set, family and eps, the mean worst-case accuracy (%) of its
    runs under AutoAttack."""
    groups = {}
    for run in runs:
        result = run.attacks.get(AUTOATTACK)
        if in_paper_setup(run) and result is not None:
            key = (run.config["dataset"], family(run), result["eps"][-1])
            groups.setdefault(key, []).append(100 * result["accuracy"][-1])
    return [
        {"dataset": d, "family": f, "eps": e, "accuracy": statistics.fmean(v), "runs": len(v)}
        for (d, f, e), v in sorted(groups.items())
    ]


def row_label(table, row):
    labels = []
    for name, value in zip(table.row_fields, row):
        labels.append(f"{value:g}" if isinstance(value, float) else str(value))
    return labels
