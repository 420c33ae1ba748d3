"""The paper's setup as the report uses it: its numbers (shipped as `paper_results.json`), the runs that are its
setup, and the labels its tables and figure give them."""

import json
from importlib import resources

from nodekd_cli import students

PAPER_SOLVER = "dopri5"
PAPER_LAMBDA = 0.9
PAPER_PRECISION = "float32"
TABLE1_T1 = (1.0, 100.0)
TABLE2_T1 = 1.0
TABLE3_EPS = (8, 12, 16, 20)
AUTOATTACK = "autoattack"  # attacks/autoattack.json: one eps, a marker in Figure 1 rather than a line
OPTIMIZER_TITLES = {"sgd": "SGD", "adam": "Adam"}


def paper_results():
    """The paper's numbers (its tables and notes), shipped with the package as `paper_results.json`."""
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


def paper_teachers():
    """The paper's teacher architectures, its tables' columns (`models.registry`)."""
    from nodekd_cli import teachers

    return teachers.paper_teachers()


def teacher_label(model):
    """A teacher architecture's name in tables and figures ("ResNet20"); an unregistered one's as it is."""
    import models

    found = models.TEACHERS.get(model)
    return model if found is None else found.label


def family(run):
    """The run's line in Figure 1."""
    if run.kind == "teacher":
        return teacher_label(run.config["model"])
    return f"NODEs({run.config['t1']:g})" + (" + KD" if run.distilled else "")


def student_label(t1, teacher_model_name=None, temperature=None, optimizer=None, precision=PAPER_PRECISION):
    """NODEs(1), NODEs(1) + KD (ResNet20, T = 3), and with an optimizer other than the paper's: NODEs(1), SGD or
    NODEs(1) + KD (ResNet20, T = 3, Adam); in another precision than float32: NODEs(1), mixed_bfloat16."""
    other = OPTIMIZER_TITLES.get(optimizer, optimizer)
    computed = "" if precision == PAPER_PRECISION else f", {precision}"
    if teacher_model_name is None:
        return f"NODEs({t1:g})" + (f", {other}" if optimizer else "") + computed
    extra = f", {other}" if optimizer else ""
    return f"NODEs({t1:g}) + KD ({teacher_label(teacher_model_name)}, T = {temperature:g}{extra}{computed})"


def paper_finals(runs):
    """The paper's final test accuracies (%) that the learning curves mark, per data set: NODEs(1) and NODEs(100)
    (Table 1) where the data set has such students without distillation, and NODEs(1) + KD from each teacher at each
    T the runs have (Table 2), at the paper's budget in images seen (`data.DataSetInfo.paper_budget`). A folder data
    set is marked with CIFAR-10's, as its budget is."""
    from nodekd_cli import data

    paper = paper_results()
    found = []
    for dataset in sorted({r.config["dataset"] for r in runs if r.kind == "student"}):
        found_info = data.info(dataset)
        source, budget = found_info.paper_results, found_info.paper_budget
        if budget is None or source not in paper["table1"]:
            continue
        mine = [r for r in runs if r.kind == "student" and r.config["dataset"] == dataset]
        alone = {float(r.config["t1"]) for r in mine if not r.distilled}
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
