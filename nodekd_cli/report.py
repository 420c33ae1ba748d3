"""The paper's Tables 1-3 and Figure 1, filled from run folders and set beside the paper's own numbers.

Runs are matched to cells by their `config.json`, never by folder names:
- Table 1: teachers by model and data set; NODEs(t1) are students without distillation (lambda 0) at t1 = 1, 100.
- Table 2: distilled students (lambda 0.9, the paper's) at t1 = 1, by data set, T and teacher model.
- Table 3: students without distillation under PGD (`attacks/pgd.json`), by data set and t1; clean accuracy is
  PGD's at eps 0 (the attacked images), or the run's test accuracy without it.
- Figure 1: accuracy against eps from `attacks/<attack>.json`, per data set and attack, one line per family
  (each ResNet teacher; NODEs(t1) with and without distillation, averaged over their runs).
- Learning curves: test accuracy against training images seen, from every student's `history.csv`.
A student that is another's half-budget twin (`nodekd_cli.convergence`) only judges whether that one has finished
learning: it fills no cell and takes part in no comparison. A claim whose evidence rests on a student still learning
is "undecided (still learning)"; comparisons are paired image by image where the runs recorded their images'
outcomes (`nodekd_cli.intervals`).
Students fill the paper's cells only when built with nodekd's default dynamics, solved with the paper's dopri5 and
trained with lambda 0 or 0.9; every run appears in the run table. Several runs in one cell (seeds) give their mean
and their count.

The module computes; `nodekd_cli.output` renders to the terminal, and `to_markdown`, `to_json`, `write_csv` here
turn a report into text for papers and scripts.
"""

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from nodekd_cli import convergence, files, intervals, students
from nodekd_cli import runs as run_files
from nodekd_cli.attacks import ATTACKS, result_key, split_key
from nodekd_cli.attacks import title as attack_title
from nodekd_cli.errors import UserError

PAPER_TEACHERS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
PAPER_SOLVER = "dopri5"
PAPER_LAMBDA = 0.9
PAPER_PRECISION = "float32"
TABLE1_T1 = (1.0, 100.0)
TABLE2_T1 = 1.0
TABLE3_EPS = (8, 12, 16, 20)
AUTOATTACK = "autoattack"  # attacks/autoattack.json: one eps, a marker in Figure 1 rather than a line
BUDGET_KEYS = ("epochs", "batch_size", "channels", "downsample", "train_images")
OPTIMIZER_TITLES = {"sgd": "SGD", "adam": "Adam"}
# The paper's four claims (docs/results.md, "The paper's claims on real CIFAR-10"): key, statement.
CLAIMS = (
    ("kd_accuracy", "Knowledge distillation raises accuracy"),
    ("kd_robustness", "Knowledge distillation raises robustness"),
    ("t1_robustness", "Robustness grows with the time horizon t1"),
    ("no_masking", "The robustness is not gradient masking"),
)
Z95 = intervals.Z95
STILL_LEARNING = "undecided (still learning)"


def paper_results():
    """The paper's numbers (REFERENCE.md), shipped with the package as `paper_results.json`."""
    return json.loads(resources.files("nodekd_cli").joinpath("paper_results.json").read_text())


def comparable(run):
    """Teachers always; students of nodekd's default dynamics, solved with dopri5 and trained with lambda 0 or the
    paper's 0.9, with any optimizer: the runs that "What the runs show" compares."""
    if run.kind == "teacher":
        return True
    solver = run.config.get("solver") or {}
    return (
        solver.get("method") == PAPER_SOLVER
        and run.config.get("lambda") in (0.0, PAPER_LAMBDA)
        and students.dynamics_of(run.config) == students.DEFAULT_DYNAMICS
    )


def in_paper_setup(run):
    """The comparable runs trained with the paper's optimizer for their kind, students in float32 as the paper's: those
    that fill the paper's tables and Figure 1. (A teacher trained in mixed precision is saved in float32.)"""
    in_float32 = run.kind == "teacher" or students.precision_of(run.config) == PAPER_PRECISION
    return comparable(run) and students.other_optimizer(run.config) is None and in_float32


def family(run):
    """The run's line in Figure 1."""
    if run.kind == "teacher":
        return teacher_label(run.config["model"])
    return f"NODEs({run.config['t1']:g})" + (" + KD" if run.distilled else "")


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


@dataclass
class Report:
    root: Path
    runs: list
    skipped: list  # (path, reason)
    tables: list
    series: list  # Figure 1 lines: dataset, attack, family, eps, accuracy, runs
    missing: list  # commands that would fill the empty cells
    paper_source: str
    figures: list = field(default_factory=list)  # written PNG files (see nodekd_cli.figure)
    comparisons: list = field(default_factory=list)  # see `comparisons`
    claims: list = field(default_factory=list)  # see `claims`
    markers: list = field(default_factory=list)  # Figure 1's AutoAttack points, see `autoattack_points`
    convergence: dict = field(default_factory=dict)  # student folder -> `convergence.Status`
    curves: list = field(default_factory=list)  # learning-curve points, see `learning_curves`
    curve_figures: list = field(default_factory=list)  # written PNG files of the learning curves


def teacher_label(model):
    return "ResNet" + model.removeprefix("resnet")


def sweeps(run):
    """The run's attack results by what they measure (`attacks.result_key`): a monotone sweep apart from the paper's
    independent one, so that Table 3 takes the paper's and no mean or comparison mixes the two."""
    return {result_key(name, result): result for name, result in run.attacks.items()}


def collect(root, exclude=()):
    """The finished runs under `root` (any depth) and the (path, reason) of everything skipped."""
    root = Path(root)
    found, skipped = [], []
    folders = run_files.find_runs(root, exclude)
    for folder in folders:
        try:
            run = run_files.read_run(folder)
        except run_files.NotARun as error:
            skipped.append((folder, error.reason))
            continue
        found.append(run)
        skipped.extend(run.read_results())
    _portable_datasets(found)
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if not run_files.is_within(child, exclude) and not any(f == child or child in f.parents for f in folders):
            skipped.append((child, f"not a nodekd run folder (no {run_files.CONFIG})"))
    return found, skipped


def _portable_datasets(runs):
    """Names each run's data set as reports show it (`data.portable_names`: a folder data set by its folder's name,
    never by its machine's path); the name as recorded stays in `config["dataset_path"]` for the commands the report
    suggests."""
    from nodekd_cli import data

    names = data.portable_names({r.config["dataset"] for r in runs})
    for run in runs:
        recorded = run.config["dataset"]
        run.config = {**run.config, "dataset": names[recorded], "dataset_path": recorded}


def _recorded(runs, dataset):
    """The data set `dataset` (a portable name) as its runs recorded it, for a command that must find it again."""
    return next((r.config["dataset_path"] for r in runs if r.config["dataset"] == dataset), dataset)


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
    columns += [(model, teacher_label(model)) for model in PAPER_TEACHERS]
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
        dataset = _recorded(runs, row[0])
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
    columns = [(model, teacher_label(model)) for model in PAPER_TEACHERS]
    distilled = [r for r in runs if r.distilled and in_paper_setup(r) and r.config["t1"] == TABLE2_T1]
    rows, paper_value = _rows_by(distilled, paper["table2"], "T")
    cells = _empty_cells(rows, columns, paper_value)
    for run in distilled:
        key = ((run.config["dataset"], float(run.config["T"])), run.config["teacher_model"])
        if key in cells:
            cells[key].add(run.accuracy, run.folder)
    teacher_runs = {(r.config["model"], r.config["dataset"]): r.folder for r in runs if r.config["kind"] == "teacher"}
    for ((dataset, temperature), column), cell in cells.items():
        recorded = _recorded(runs, dataset)
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
        recorded = _recorded(runs, dataset)
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
        groups.items(), key=lambda item: (item[0][0], _attack_order(item[0][1]), item[0][1], item[0][2])
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


def _attack_order(name):
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


def _side(label, group, value_of, n_of, scores_of=None, status=None):
    """One side of a comparison: the mean over a group of runs (seeds), the test images behind it when all the runs
    used the same number, and the runs' values (one per seed). With `scores_of(run)` ((which images, per-image scores)
    or None), the mean per-image scores when every run has them on the same images, for a paired comparison. With
    `status` (`convergence.statuses`), whether the runs have finished learning and their budget."""
    sizes = {n_of(r) for r in group}
    values = [value_of(r) for r in group]
    side = {
        "label": label,
        "value": statistics.fmean(values),
        "n": sizes.pop() if len(sizes) == 1 else None,
        "values": values,
        # A teacher's seed draws no student's training images, so it pairs with no student's seed: None.
        "seeds": [r.config.get("seed") if r.kind == "student" else None for r in group],
        "runs": [str(r.folder) for r in group],
        "images": None,
        "scores": None,
    }
    scored = [scores_of(r) for r in group] if scores_of else [None]
    if all(found is not None for found in scored) and len({images for images, _ in scored}) == 1:
        side["images"] = scored[0][0]
        side["scores"] = [statistics.fmean(column) for column in zip(*(scores for _, scores in scored))]
    if status is not None and group[0].kind == "student":
        found = [status.get(r.folder, convergence.Status()) for r in group]
        states = {s.state for s in found}
        side["convergence"] = next(
            (state for state in (convergence.LEARNING, convergence.UNCHECKED) if state in states), convergence.FINISHED
        )
        side["gains"] = [s.gain for s in found]
        side["budget"] = convergence.budget_text(group[0].config)
        side["paper_fraction"] = convergence.paper_fraction(group[0].config)
    return side


def _clean_scores(run):
    """(which images, per-image scores) of a run on its test set, from metrics.json's `test_correct`; or None."""
    bits = run_files.read_bits(run.metrics.get("test_correct"))
    if bits is None or len(bits) != run.metrics.get("test_images"):
        return None
    return ("test", len(bits)), [float(b) for b in bits]


def _attack_scores(run, attack, eps):
    """(which images, per-image scores) of a run under `attack` (a `result_key`): each image's accuracy averaged over
    `eps`, from the result's `correct`; or None when it has not recorded them."""
    result = sweeps(run)[attack]
    correct = result.get("correct")
    if not isinstance(correct, list) or len(correct) != len(result["eps"]):
        return None
    rows = [run_files.read_bits(correct[result["eps"].index(e)]) for e in eps]
    if any(row is None or len(row) != result.get("n") for row in rows):
        return None
    images = tuple(result["images"]) if isinstance(result.get("images"), list) else None
    return (attack, images, result.get("n")), [statistics.fmean(column) for column in zip(*rows)]


def _budget(first, second):
    """What the two groups' training budgets share, and where they differ (epochs, batch, width, stem, training
    images, optimizer)."""
    a, b = first[0].config, second[0].config
    if a["kind"] == "teacher" or b["kind"] == "teacher":
        return {"same": None, "text": "a teacher against a student: budgets of different models"}
    differ = [f"{k.replace('_', ' ')} {a.get(k)} vs {b.get(k)}" for k in BUDGET_KEYS if a.get(k) != b.get(k)]
    if differ:
        text = "budgets differ: " + ", ".join(differ)
    else:
        text = f"same budget ({a.get('epochs')} epochs at batch {a.get('batch_size')}, {a.get('channels')} channels)"
    if (a.get("optimizer"), a.get("lr")) != (b.get("optimizer"), b.get("lr")):
        text += f"; optimizer {a.get('optimizer')} (lr {a.get('lr')}) vs {b.get('optimizer')} (lr {b.get('lr')})"
    return {"same": not differ, "text": text}


def _seed_variance(side):
    """The variance between a side's runs' values over their number when there are several (seeds), else 0."""
    return statistics.variance(side["values"]) / len(side["values"]) if len(side["values"]) > 1 else 0.0


def _seed_variance_of_difference(first, second):
    """The seeds' share of the variance of a paired comparison's difference. When both sides ran the same seeds (two
    or more), a seed gave both arms the same training images (the stratified sample it draws) and initial weights, so
    what it changes is shared: the share is the variance between the per-seed differences over their number. Else
    each side's spread is added (`_seed_variance`), as for independent samples."""
    seeds = first["seeds"]
    matched = None not in seeds and len(set(seeds)) == len(seeds) and sorted(seeds) == sorted(second["seeds"])
    if len(seeds) > 1 and matched:
        other = dict(zip(second["seeds"], second["values"]))
        differences = [value - other[seed] for seed, value in zip(seeds, first["values"])]
        return statistics.variance(differences) / len(differences)
    return _seed_variance(first) + _seed_variance(second)


def _variance(side):
    """Variance (in points squared) of a side's mean: the binomial variance over its n test images, plus the variance
    between its runs' values over their number when there are several (seeds)."""
    p = side["value"] / 100
    return 1e4 * p * (1 - p) / side["n"] + _seed_variance(side)


def _paired(first, second):
    """Whether two sides have per-image scores on the same images."""
    return first["scores"] is not None and first["images"] == second["images"]


def _finished(first, second):
    """True when both sides' students finished learning, False when one is still learning, None when not checked (or
    a side is a teacher, which nodekd does not judge)."""
    states = {side.get("convergence") for side in (first, second)}
    if convergence.LEARNING in states:
        return False
    return True if states <= {convergence.FINISHED, None} and convergence.FINISHED in states else None


def _convergence_text(first, second):
    """What the comparison's text says of its students' learning and budgets."""
    students = [side for side in (first, second) if side.get("convergence")]
    if not students:
        return ""
    learning = [
        f"{side['label']} still learning ({max(g for g in side['gains'] if g is not None):+.2f} points from half to "
        f"full budget)"
        for side in students
        if side["convergence"] == convergence.LEARNING
    ]
    if learning:
        state = "; ".join(learning)
    elif all(side["convergence"] == convergence.FINISHED for side in students):
        state = "both arms finished" if len(students) == 2 else "the student finished"
    else:
        state = "convergence not checked (no half-budget twin)"
    budgets = list(dict.fromkeys(side["budget"] for side in students))
    return f"; {state}; {' vs '.join(budgets)}"


def _compare(dataset, pair, measure, first, second, budget):
    """`first` against `second` (sides from `_side`): the difference in points, its 95% interval and two-sided
    p-value (normal approximation; paired image by image when both sides have per-image scores on the same images,
    `intervals.paired_variance`, else as two independent samples of test images, `_variance`; with several seeds,
    their spread is added: seed by seed when both sides are paired students that ran the same seeds,
    `_seed_variance_of_difference`)."""
    difference = first["value"] - second["value"]
    half = variance = None
    paired = _paired(first, second)
    if paired:
        variance = intervals.paired_variance(first["scores"], second["scores"])
        variance += _seed_variance_of_difference(first, second)
    elif first["n"] and second["n"]:
        variance = _variance(first) + _variance(second)
    if variance is not None:
        half = Z95 * math.sqrt(variance)
    if half is None:
        verdict = "higher" if difference > 0 else "lower" if difference < 0 else "equal"
    elif abs(difference) <= half:
        verdict = "within noise"
    else:
        verdict = "higher" if difference > 0 else "lower"
    interval = ""
    if half is not None:
        kind = "paired" if paired else "unpaired"
        interval = f", {kind} 95% interval {difference - half:+.2f} to {difference + half:+.2f}"
    return {
        "dataset": dataset,
        "pair": pair,
        "measure": measure,
        "first": {k: v for k, v in first.items() if k != "scores"},
        "second": {k: v for k, v in second.items() if k != "scores"},
        "difference": difference,
        "interval": None if half is None else [difference - half, difference + half],
        "paired": paired,
        "p_value": None if variance is None else intervals.p_value(difference, variance),
        "verdict": verdict,
        "same_budget": budget["same"],
        "finished": _finished(first, second),
        "text": f"{dataset}, {measure}: {first['label']} {first['value']:.2f}% vs {second['label']} "
        f"{second['value']:.2f}%, {difference:+.2f} points ({verdict}{interval}); {budget['text']}"
        f"{_convergence_text(first, second)}.",
    }


def _robustness(run, attack, eps):
    """Mean accuracy (%) of `run` under `attack` (a `result_key`) over `eps`, which its sweep must hold."""
    result = sweeps(run)[attack]
    return 100 * statistics.fmean(result["accuracy"][result["eps"].index(e)] for e in eps)


def student_label(t1, teacher_model_name=None, temperature=None, optimizer=None, precision=PAPER_PRECISION):
    """NODEs(1), NODEs(1) + KD (ResNet20, T = 3), and with an optimizer other than the paper's: NODEs(1), SGD or
    NODEs(1) + KD (ResNet20, T = 3, Adam); in another precision than float32: NODEs(1), mixed_bfloat16."""
    other = OPTIMIZER_TITLES.get(optimizer, optimizer)
    computed = "" if precision == PAPER_PRECISION else f", {precision}"
    if teacher_model_name is None:
        return f"NODEs({t1:g})" + (f", {other}" if optimizer else "") + computed
    extra = f", {other}" if optimizer else ""
    return f"NODEs({t1:g}) + KD ({teacher_label(teacher_model_name)}, T = {temperature:g}{extra}{computed})"


def _at_common_budget(first, second, status, by_folder):
    """The two groups of students at the larger budget both have: when one group trained for more epochs, its
    half-budget twins (and theirs, halving again) stand in for it at the other's epochs, so that a budget search's
    arms are compared like for like; the groups as they are when no chain of twins reaches that budget."""

    def epochs(group):
        found = {r.config.get("epochs") for r in group}
        return next(iter(found)) if len(found) == 1 else None

    def down(group, target):
        while epochs(group) != target:
            twins = [by_folder.get(status.get(r.folder, convergence.Status()).twin) for r in group]
            if epochs(group) is None or epochs(group) < target or any(t is None for t in twins):
                return None
            group = twins
        return group

    a, b = epochs(first), epochs(second)
    if a is None or b is None or a == b:
        return first, second
    if a > b:
        return down(first, b) or first, second
    return first, down(second, a) or second


def comparisons(runs, status=None, everything=None):
    """What the runs show, pair by pair, per data set: distillation against the same student trained alone (clean
    accuracy, and robustness as the mean accuracy over the attacked eps > 0 both have), each teacher against the
    students trained alone, and each longer horizon against t1 = 1. Comparable runs only (`comparable`): a
    distilled student trained with Adam at t1 = 1 is compared with the NODEs(1) trained alone, with Adam too. Seeds
    are averaged; students of different precisions are never averaged or paired. Each comparison's `pair` says which:
    "kd", "teacher" or "horizon". With `status` (`convergence.statuses`), each side says whether its students have
    finished learning, and the comparison whether both have (`finished`). Two students trained for different epochs
    are compared at the smaller budget through the other's half-budget twins among `everything` (all runs, twins
    included) when it has them (`_at_common_budget`)."""
    status = status or {}
    by_folder = {r.folder: r for r in everything or runs}
    found = []
    for dataset in sorted({r.config["dataset"] for r in runs}):
        mine = [r for r in runs if r.config["dataset"] == dataset and comparable(r)]
        alone, distilled, teacher_runs = {}, {}, {}
        for run in mine:
            other_optimizer = students.other_optimizer(run.config)
            # Students are grouped (as seeds) and paired only within one precision, one width and one training-set
            # size: a student twice as wide is another model, one trained on a tenth of the images another budget,
            # not another seed.
            width, images = run.config.get("channels"), run.config.get("train_images")
            kind = (
                students.precision_of(run.config),
                width if isinstance(width, int) else 0,
                images if isinstance(images, int) else 0,
            )
            if run.config["kind"] == "teacher":
                teacher_runs.setdefault(run.config["model"], []).append(run)
            elif run.distilled:
                key = (kind, run.config["t1"], run.config["teacher_model"], run.config["T"], other_optimizer or "")
                distilled.setdefault(key, []).append(run)
            elif other_optimizer is None:
                alone.setdefault((kind, run.config["t1"]), []).append(run)
        # An arm's runs at different epochs that are not each other's twins (4 and 16, say) are not seeds of one
        # budget: the arm is its runs at its largest budget (`_at_common_budget` may then take their twins).
        for groups in (alone, distilled):
            for key, group in groups.items():
                longest = max(r.config.get("epochs") or 0 for r in group)
                groups[key] = [r for r in group if (r.config.get("epochs") or 0) == longest]
        kinds = {kind for kind, _ in alone} | {key[0] for key in distilled}
        widths, sizes = {kind[1] for kind in kinds}, {kind[2] for kind in kinds}

        def label(kind, t1, *args):
            """A student's label, with its width and its number of training images when the data set's students
            differ in them."""
            precision, width, images = kind
            text = student_label(t1, *args, precision=precision)
            tags = [f"{width} channels"] if len(widths) > 1 else []
            tags += [f"{images:,} images" if images else "all images"] if len(sizes) > 1 else []
            return f"{text} [{', '.join(tags)}]" if tags else text

        pairs = []  # (kind of pair, first label, first runs, second label, second runs)
        for (kind, t1, model, temperature, optimizer), group in sorted(distilled.items()):
            if (kind, t1) in alone:
                first = label(kind, t1, model, temperature, optimizer or None)
                pairs.append(("kd", first, group, label(kind, t1), alone[kind, t1]))
        for model, group in sorted(teacher_runs.items()):
            for (kind, t1), students_alone in sorted(alone.items()):
                pairs.append(("teacher", teacher_label(model), group, label(kind, t1), students_alone))
        for kind, t1 in sorted(alone):
            if t1 > 1.0 and (kind, 1.0) in alone:
                pairs.append(("horizon", label(kind, t1), alone[kind, t1], label(kind, 1.0), alone[kind, 1.0]))
        for pair, first_label, first, second_label, second in pairs:
            if pair != "teacher":
                first, second = _at_common_budget(first, second, status, by_folder)
            budget = _budget(first, second)
            clean = [
                _side(label, group, lambda r: r.accuracy, lambda r: r.metrics.get("test_images"), _clean_scores, status)
                for label, group in ((first_label, first), (second_label, second))
            ]
            found.append(_compare(dataset, pair, "clean accuracy", *clean, budget))
            if pair == "teacher":
                continue
            measured = {name for r in first + second for name in sweeps(r) if split_key(name)[0] in ATTACKS}
            for attack in sorted(measured, key=lambda name: (_attack_order(name), name)):
                both = [r for r in first + second if attack in sweeps(r)]
                if len(both) < len(first) + len(second):
                    continue
                eps = sorted(set.intersection(*(set(sweeps(r)[attack]["eps"]) for r in both)) - {0})
                if not eps:
                    continue
                sides = [
                    _side(
                        label,
                        group,
                        lambda r: _robustness(r, attack, eps),
                        lambda r: sweeps(r)[attack].get("n"),
                        lambda r: _attack_scores(r, attack, eps),
                        status,
                    )
                    for label, group in ((first_label, first), (second_label, second))
                ]
                measure = f"{attack_title(attack)} accuracy, mean over eps {', '.join(map(str, eps))}"
                found.append(_compare(dataset, pair, measure, *sides, budget))
    return found


def _verdict(evidence):
    """"undecided (still learning)" when a comparison rests on a student still learning; else supported when some
    comparison favours the claim and none goes against it, each counted only when it holds after Holm's correction
    over the claim's comparisons (`intervals.holm`, family-wise error 5%); contradicted the other way round; undecided
    when none holds, or they disagree. Comparisons without an interval (runs that did not record their number of test
    images) do not count. Each comparison gets its Holm-adjusted p-value (`holm_p`)."""
    if any(e.get("finished") is False for e in evidence):
        return STILL_LEARNING
    decided = [e for e in evidence if e["interval"] is not None]  # without test-image counts, no interval to judge by
    for e, adjusted in zip(decided, intervals.holm([e["p_value"] for e in decided])):
        e["holm_p"] = adjusted
    held = [e for e in decided if e["holm_p"] <= intervals.ALPHA]
    favour = sum(e["difference"] > 0 for e in held)
    against = sum(e["difference"] < 0 for e in held)
    if favour and not against:
        return "supported"
    if against and not favour:
        return "contradicted"
    return "undecided"


def _claim_convergence(states):
    """A claim's word on its students' learning, from their states (`convergence.Status.state`)."""
    if not states:
        return "-"
    if convergence.LEARNING in states:
        return "some still learning"
    return "all finished" if states == {convergence.FINISHED} else "not checked (no half-budget twins)"


def _budget_range(sides):
    """The students' budgets as shares of the paper's: "1% of the paper's" or "0.5-1% of the paper's"; "" if none."""
    shares = sorted({side["paper_fraction"] for side in sides if side.get("paper_fraction") is not None})
    if not shares:
        return ""
    low, high = (f"{100 * share:.2g}" for share in (shares[0], shares[-1]))
    return f"{low}% of the paper's" if low == high else f"{low}-{high}% of the paper's"


def claims(runs, compared, status=None, *, root):
    """The paper's four claims (`CLAIMS`), each with the verdict the runs give per data set, computed from the
    comparisons (`comparisons`) and the masking checks, and the evidence behind it:
    - distillation raises accuracy: the clean accuracy of each distilled student against the same student alone;
    - distillation raises robustness: their accuracies under each attack, averaged over eps > 0;
    - robustness grows with t1: each NODEs(t1 > 1) trained alone against NODEs(1), under each attack;
    - not gradient masking: `nodekd attack check` on the students; supported when every checked student passes.
    A claim without evidence on a data set is undecided; one that rests on a student still learning (by `status`,
    `convergence.statuses`) is "undecided (still learning)", whatever its comparisons say. A checked student is named
    as in the run table: its folder relative to `root` (the runs' folder)."""
    status = status or {}
    found = []
    for dataset in sorted({r.config["dataset"] for r in runs}):
        mine = [c for c in compared if c["dataset"] == dataset]
        select = {
            "kd_accuracy": lambda c: c["pair"] == "kd" and c["measure"] == "clean accuracy",
            "kd_robustness": lambda c: c["pair"] == "kd" and c["measure"] != "clean accuracy",
            "t1_robustness": lambda c: c["pair"] == "horizon" and c["measure"] != "clean accuracy",
        }
        for key, statement in CLAIMS:
            if key == "no_masking":
                checked = [
                    r
                    for r in runs
                    if r.config["dataset"] == dataset and comparable(r) and r.config["kind"] == "student" and r.check
                ]
                flagged = [r for r in checked if r.check["masking"]]
                verdict = "undecided" if not checked else "contradicted" if flagged else "supported"
                states = {status.get(r.folder, convergence.Status()).state for r in checked}
                if convergence.LEARNING in states:
                    verdict = STILL_LEARNING
                budget = _budget_range([{"paper_fraction": convergence.paper_fraction(r.config)} for r in checked])
                evidence = [
                    f"{_relative(root, r.folder)}: possible masking ({', '.join(_failed_checks(r.check))})"
                    if r.check["masking"]
                    else f"{_relative(root, r.folder)}: every check passed"
                    for r in checked
                ]
                counts = f"{len(checked) - len(flagged)} of {len(checked)} checked students pass"
            else:
                chosen = [c for c in mine if select[key](c)]
                verdict = _verdict(chosen)
                evidence = [
                    c["text"] + ("" if c.get("holm_p") is None else f" Holm-adjusted p = {c['holm_p']:.3g}.")
                    for c in chosen
                ]
                sides = [c[side] for c in chosen for side in ("first", "second")]
                states = {side["convergence"] for side in sides if side.get("convergence")}
                budget = _budget_range(sides)
                tally = {v: sum(c["verdict"] == v for c in chosen) for v in ("higher", "lower", "within noise")}
                counts = ", ".join(f"{n} {v}" for v, n in tally.items() if n) or "no comparison"
            found.append(
                {
                    "dataset": dataset,
                    "claim": key,
                    "statement": statement,
                    "verdict": verdict,
                    "summary": counts if evidence else "no runs to judge it by",
                    "convergence": _claim_convergence(states) if evidence else "-",
                    "budget": budget,
                    "evidence": evidence,
                }
            )
    return found


def _failed_checks(check):
    return [c["check"] for c in check["checks"] if c.get("passed") is False] or ["see check.json"]


def run_name(report, folder):
    """A run folder relative to the report's --runs (the folder itself when it lies elsewhere)."""
    return _relative(report.root, folder)


def resumed_with(config):
    """The settings a run took when it resumed (`runs.open_run`), as "resumed after epoch 3 with lr 0.1 -> 0.01"."""
    by_epoch = {}
    for change in config.get("changes") or []:
        by_epoch.setdefault(change["after_epoch"], []).append(f"{change['setting']} {change['from']} -> {change['to']}")
    return "; ".join(f"resumed after epoch {epoch} with {', '.join(found)}" for epoch, found in by_epoch.items())


def convergence_text(report, run):
    """A student's word in the run table: "finished (...)", "still learning (+X points from half to full budget)",
    "not checked (...)", or for a half-budget twin, whose twin it is; None for a teacher."""
    status = report.convergence.get(run.folder)
    if status is None:
        return None
    if status.twin_of is not None:
        own = "" if status.gain is None else f"; itself {status.text()}"
        return f"half-budget twin of {run_name(report, status.twin_of)}{own}"
    return status.text()


def run_rows(report):
    """One row per run: what it is, how it did, and which attacks and checks it has."""
    rows = []
    for run in report.runs:
        config, metrics = run.config, run.metrics
        solver = config.get("solver") or {}
        teacher = config["kind"] == "teacher"
        precision = students.precision_of(config)
        dynamics = None if teacher else students.dynamics_label(students.dynamics_of(config))
        if dynamics is not None and precision != PAPER_PRECISION:
            dynamics += f", {precision}"
        rows.append(
            {
                "folder": str(run.folder),
                "kind": config["kind"],
                "model": config.get("model"),
                "dataset": config["dataset"],
                "teacher": config.get("teacher_model"),
                "t1": config.get("t1"),
                "T": config.get("T"),
                "lambda": config.get("lambda"),
                "optimizer": None if teacher else config.get("optimizer"),
                "dynamics": dynamics,
                "precision": precision,
                "solver": solver.get("method"),
                "rtol": solver.get("rtol"),
                "atol": solver.get("atol"),
                "seed": config.get("seed"),
                "params": metrics.get("params"),
                "accuracy": run.accuracy,
                "nfe": metrics.get("test_nfe"),
                "train_seconds": metrics.get("train_seconds"),
                "epochs": config.get("epochs"),
                "images_seen": None if teacher else convergence.images_seen(config),
                "paper_budget": None if teacher else convergence.paper_fraction(config),
                "convergence": convergence_text(report, run),
                "resumed_with": resumed_with(config) or None,
                "attacks": {
                    name: {"eps": r["eps"], "n": r.get("n"), "accuracy": r["accuracy"]}
                    for name, r in sorted(sweeps(run).items())
                },
                "check": None if run.check is None else ("possible masking" if run.check["masking"] else "passed"),
                "in_paper_setup": in_paper_setup(run),
            }
        )
    return rows


def build_with_figures(runs_dir, out, on_skipped=None):
    """The report over `runs_dir` (the folder `out` and runs_dir/report excluded: reports are not runs), with
    Figure 1 written into `out`; `on_skipped(path, reason)` hears of each folder skipped. A `UserError` when there is
    nothing to show."""
    from nodekd_cli import figure

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
    files.refuse_link(out)  # a report folder inside a shared runs folder may be a link out of it
    run_files.writable_folder(out)
    result.figures = figure.write_figure1(result.series, out, result.markers)
    result.curve_figures = figure.write_learning_curves(result.curves, out, paper_finals(result.runs))
    return result


def most_trained(runs):
    """The runs that fill the paper's tables, and how many are left out: of the runs of one table cell (a teacher
    model, or a student's t1, T, teacher, optimizer and precision, on one data set), those of the budget with the most
    training images seen (then the most channels), so that no cell averages a 64-channel student with a 32-channel
    one, or 10 epochs with 40; the seeds of that budget are averaged."""

    def budget(run):
        width = run.config.get("channels")
        return convergence.images_seen(run.config) or 0, width if isinstance(width, int) else 0

    cells = {}
    for run in runs:
        c = run.config
        cell = (c["dataset"], c["kind"], c.get("model"), c.get("t1"), c.get("T"), c.get("teacher_model"))
        if run.kind == "student":
            cell += (students.other_optimizer(c), students.precision_of(c))
        cells.setdefault(cell, []).append(run)
    kept = []
    for group in cells.values():
        best = max(budget(r) for r in group)
        kept += [r for r in group if budget(r) == best]
    kept = {id(r) for r in kept}
    return [r for r in runs if id(r) in kept], len(runs) - len(kept)


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
    missing = list(dict.fromkeys(missing + whole))
    compared = comparisons(runs, status, everything)
    return Report(
        root,
        everything,
        skipped,
        tables,
        figure_series(in_tables),
        missing,
        paper["source"],
        comparisons=compared,
        claims=claims(runs, compared, status, root=root),
        markers=autoattack_points(in_tables),
        convergence=status,
        curves=learning_curves(everything, status, root),
    )


def learning_curves(runs, status, root):
    """Every student's test accuracy (%) after each epoch against the training images seen by then, from its
    history.csv: one point per run and epoch, with its family (distilled or not), whether it is a half-budget twin,
    and its convergence."""
    points = []
    for run in runs:
        if run.kind != "student":
            continue
        seen = convergence.images_seen(run.config)
        per_epoch = None if seen is None else seen // run.config["epochs"]
        found = status.get(run.folder, convergence.Status())
        for row in run_files.read_history(Path(run.folder) / run_files.HISTORY):
            if not isinstance(row.get("epoch"), int) or not isinstance(row.get("test_accuracy"), (int, float)):
                continue
            points.append(
                {
                    "dataset": run.config["dataset"],
                    "run": _relative(root, run.folder),
                    "family": family(run),
                    "distilled": run.distilled,
                    "twin": found.twin_of is not None,
                    "convergence": found.state,
                    "epoch": row["epoch"],
                    "images_seen": None if per_epoch is None else row["epoch"] * per_epoch,
                    "test_accuracy": 100 * row["test_accuracy"],
                }
            )
    return points


def _relative(root, folder):
    """`folder` relative to `root`, or `folder` itself when it lies elsewhere."""
    try:
        return str(Path(folder).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(folder)


def paper_finals(runs):
    """The paper's final test accuracies (%) that the learning curves mark, per data set: NODEs(1) and NODEs(100)
    (Table 1) where the data set has such students without distillation, and NODEs(1) + KD from each teacher at each
    T the runs have (Table 2), at the paper's budget in images seen (`convergence.PAPER_BUDGET`). A folder data set
    is marked with CIFAR-10's, as its budget is."""
    paper = paper_results()
    found = []
    for dataset in sorted({r.config["dataset"] for r in runs if r.kind == "student"}):
        family_name = data_family(dataset)
        source = "cifar10" if family_name == "folder" else family_name
        budget = convergence.PAPER_BUDGET.get(family_name)
        if budget is None or source not in paper["table1"]:
            continue
        students = [r for r in runs if r.kind == "student" and r.config["dataset"] == dataset]
        alone = {float(r.config["t1"]) for r in students if not r.distilled}
        for t1 in TABLE1_T1:
            value = paper["table1"][source].get(f"node_t1_{t1:g}") if t1 in alone else None
            if value is not None:
                found.append({"dataset": dataset, "family": f"NODEs({t1:g})", "images_seen": budget, "accuracy": value})
        distilled = {(r.config["teacher_model"], float(r.config["T"])) for r in runs if r.distilled}
        for model, temperature in sorted(distilled):
            value = paper["table2"].get(source, {}).get(f"{temperature:g}", {}).get(model)
            if value is not None:
                label = f"NODEs(1) + KD ({teacher_label(model)}, T = {temperature:g})"
                found.append({"dataset": dataset, "family": label, "images_seen": budget, "accuracy": value})
    return found


def data_family(dataset):
    from nodekd_cli import data

    return data.check_name(dataset)


def _number(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value):
    return "" if value is None else f" ({value:+.2f})"


def row_label(table, row):
    labels = []
    for name, value in zip(table.row_fields, row):
        labels.append(f"{value:g}" if isinstance(value, float) else str(value))
    return labels


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
                cells.append(f"{_number(cell.value)}{count} / {_number(cell.paper)}{_signed(cell.difference)}")
            lines.append("| " + " | ".join(row_label(table, row) + cells) + " |")
        lines += [""] + [f"- {note}" for note in table.notes] + ([""] if table.notes else [])
    if report.comparisons:
        lines += ["### What the runs show", ""] + [f"- {c['text']}" for c in report.comparisons] + [""]
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
        lines.append(
            f"| {run_name(report, row['folder'])} | {row['model'] if row['kind'] == 'teacher' else 'student'} | "
            f"{row['dataset']} | {_maybe(row['t1'])} | {_maybe(row['T'])} | {_maybe(row['lambda'])} | "
            f"{row['optimizer'] or '-'} | {row['dynamics'] or '-'} | {row['solver'] or '-'} | "
            f"{_maybe(row['params'])} | {row['accuracy']:.2f} | {_number(row['nfe'], 1)} | {seconds} | "
            f"{row['convergence'] or '-'} | {attacks or '-'} | {row['check'] or '-'} |"
        )
    if report.missing:
        lines += ["", "### Commands that fill the empty cells", "", "```"] + report.missing + ["```"]
    if report.claims:
        lines += ["", "### The paper's claims", "", "| data set | claim | verdict | students | budget | evidence |"]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        lines += [
            f"| {c['dataset']} | {c['statement']} | {c['verdict']} | {c['convergence']} | {c['budget'] or '-'} | "
            f"{c['summary']} |"
            for c in report.claims
        ]
        lines += ["", CLAIMS_NOTE, ""]
        for c in report.claims:
            lines += [f"- {c['dataset']}, {c['statement'].lower()}: **{c['verdict']}**"]
            lines += [f"  - {e}" for e in c["evidence"]]
    return "\n".join(lines) + "\n"


CLAIMS_NOTE = (
    "Each comparison's interval is a 95% one, paired image by image where both arms recorded their images' outcomes. "
    "A claim counts a comparison only when it holds after Holm's correction over the claim's comparisons (family-wise "
    f"error 5%), and is undecided (still learning) when a student it rests on gains {convergence.THRESHOLD:g} point or "
    "more from its half-budget twin to its full budget; students without a twin are not checked."
)


def _maybe(value):
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def to_json(report):
    """One document with every table cell by cell (this project's value or null, beside the paper's)."""
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
        "comparisons": report.comparisons,
        "claims": report.claims,
        "figure1": {"files": [str(f) for f in report.figures], "series": report.series, "markers": report.markers},
        "learning_curves": {"files": [str(f) for f in report.curve_figures], "points": report.curves},
        "convergence_threshold": convergence.THRESHOLD,
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
    curve_fields = ["dataset", "run", "family", "distilled", "twin", "convergence", "epoch", "images_seen"]
    write("learning_curves.csv", report.curves, curve_fields + ["test_accuracy"])
    write("runs.csv", runs, list(runs[0]) if runs else ["folder"])
    points = [
        {**{k: s[k] for k in ("dataset", "attack", "family", "runs")}, "eps": e, "accuracy": a}
        for s in report.series
        for e, a in zip(s["eps"], s["accuracy"])
    ]
    write("figure1.csv", points, ["dataset", "attack", "family", "runs", "eps", "accuracy"])
    compared = []
    for c in report.comparisons:
        keys = ("dataset", "pair", "measure", "difference", "paired", "p_value", "holm_p", "verdict", "same_budget")
        row = {k: c.get(k) for k in (*keys, "finished", "text")}
        for side in ("first", "second"):
            row.update({side: c[side]["label"], f"{side}_value": c[side]["value"], f"{side}_n": c[side]["n"]})
        row["low"], row["high"] = c["interval"] or (None, None)
        compared.append(row)
    fields = ["dataset", "pair", "measure", "first", "first_value", "first_n", "second", "second_value", "second_n"]
    fields += ["difference", "low", "high", "paired", "p_value", "holm_p", "verdict", "same_budget", "finished", "text"]
    write("comparisons.csv", compared, fields)
    claimed = [{**c, "evidence": " | ".join(c["evidence"])} for c in report.claims]
    fields = ["dataset", "claim", "statement", "verdict", "convergence", "budget", "summary", "evidence"]
    write("claims.csv", claimed, fields)
    return written
