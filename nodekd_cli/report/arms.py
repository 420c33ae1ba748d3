"""Which runs make an arm, and which arms face each other.

An arm is the runs (seeds) of one configuration on one data set: a teacher model, or a student's t1, teacher,
temperature, optimizer, precision, width and number of training images. Runs of another width or training-set size
are another arm, not another seed. An arm's runs at different epochs that are not each other's half-budget twins are
not seeds of one budget: the arm is its runs at its largest budget. The pairs:
- "kd": a distilled student against the same student trained alone with the same optimizer (what the distillation
  claims count);
- "kd (paper)": the paper's pairing where it differs, a student distilled with SGD against one trained alone with
  Adam, shown beside the same-optimizer pairs;
- "optimizer": SGD against Adam for the same student, trained alone or distilled (how much the optimizer carries);
- "teacher": each teacher against the students trained alone with the paper's optimizer;
- "horizon": each longer horizon against t1 = 1, trained alone with the same optimizer.
"""

from dataclasses import dataclass

from nodekd_cli import convergence, students
from nodekd_cli.report.paper import comparable, student_label, teacher_label


@dataclass(frozen=True)
class Arm:
    label: str
    runs: tuple


@dataclass(frozen=True)
class Pair:
    pair: str
    first: Arm
    second: Arm


def _student_key(run):
    c = run.config
    width, images = c.get("channels"), c.get("train_images")
    kind = (students.precision_of(c), width if isinstance(width, int) else 0, images if isinstance(images, int) else 0)
    optimizer = c.get("optimizer") or students.resolve_optimizer("auto", c["t1"], run.distilled)
    teacher = (c["teacher_model"], c["T"]) if run.distilled else None
    return kind, c["t1"], teacher, optimizer


def _largest_budget(group):
    longest = max(r.config.get("epochs") or 0 for r in group)
    return tuple(r for r in group if (r.config.get("epochs") or 0) == longest)


def arms(runs):
    """The arms of one data set's comparable runs: ({teacher model: runs}, {student key: runs})."""
    teachers, found = {}, {}
    for run in runs:
        if not comparable(run):
            continue
        if run.kind == "teacher":
            teachers.setdefault(run.config["model"], []).append(run)
        else:
            found.setdefault(_student_key(run), []).append(run)
    return {m: tuple(g) for m, g in teachers.items()}, {k: _largest_budget(g) for k, g in found.items()}


def _labeller(keys):
    widths, sizes = {key[0][1] for key in keys}, {key[0][2] for key in keys}

    def label(key):
        (precision, width, images), t1, teacher, optimizer = key
        paper = students.resolve_optimizer("auto", t1, teacher is not None)
        other = None if optimizer == paper else optimizer
        text = student_label(t1, *(teacher or (None, None)), other, precision=precision)
        tags = [f"{width} channels"] if len(widths) > 1 else []
        tags += [f"{images:,} images" if images else "all images"] if len(sizes) > 1 else []
        return f"{text} [{', '.join(tags)}]" if tags else text

    return label


def pairs(runs):
    """Every `Pair` of one data set's runs, in a stable order."""
    teachers, students_by_key = arms(runs)
    label = _labeller(students_by_key)

    def arm(key):
        return Arm(label(key), students_by_key[key])

    found = []
    keys = sorted(students_by_key, key=lambda k: (k[0], k[1], k[2] or ("", 0), k[3]))
    alone = [k for k in keys if k[2] is None]
    distilled = [k for k in keys if k[2] is not None]
    for key in distilled:
        kind, t1, _, optimizer = key
        if (kind, t1, None, optimizer) in students_by_key:
            found.append(Pair("kd", arm(key), arm((kind, t1, None, optimizer))))
        paper_alone = (kind, t1, None, students.resolve_optimizer("auto", t1, False))
        paper_distilled = students.resolve_optimizer("auto", t1, True)
        if optimizer == paper_distilled != paper_alone[3] and paper_alone in students_by_key:
            found.append(Pair("kd (paper)", arm(key), arm(paper_alone)))
    for key in keys:
        kind, t1, teacher, optimizer = key
        if optimizer == "sgd" and (kind, t1, teacher, "adam") in students_by_key:
            found.append(Pair("optimizer", arm(key), arm((kind, t1, teacher, "adam"))))
    for model, group in sorted(teachers.items()):
        for key in alone:
            if key[3] == students.resolve_optimizer("auto", key[1], False):
                found.append(Pair("teacher", Arm(teacher_label(model), group), arm(key)))
    for key in alone:
        kind, t1, _, optimizer = key
        if t1 > 1.0 and (kind, 1.0, None, optimizer) in students_by_key:
            found.append(Pair("horizon", arm(key), arm((kind, 1.0, None, optimizer))))
    return found


def at_common_budget(first, second, status, by_folder):
    """The two arms' runs at the larger budget both have: when one trained for more epochs, its half-budget twins
    (and theirs, halving again) stand in for it at the other's epochs, so that a budget search's arms are compared
    like for like; the runs as they are when no chain of twins reaches that budget."""

    def epochs(group):
        found = {r.config.get("epochs") for r in group}
        return next(iter(found)) if len(found) == 1 else None

    def down(group, target):
        while epochs(group) != target:
            twins = [by_folder.get(status.get(r.folder, convergence.Status()).twin) for r in group]
            if epochs(group) is None or epochs(group) < target or any(t is None for t in twins):
                return None
            group = tuple(twins)
        return group

    a, b = epochs(first), epochs(second)
    if a is None or b is None or a == b:
        return first, second
    if a > b:
        return down(first, b) or first, second
    return first, down(second, a) or second


def on_common_seeds(first, second):
    """The two arms' runs of the seeds both ran, when they share one or more (a seed is a pair: the same training
    images and initial weights on both arms; a study still under way may have run more seeds on one arm, and one
    shared seed compares run against run rather than unpaired seeds); the runs as they are otherwise."""
    seeds = [{r.config.get("seed") for r in group} for group in (first, second)]
    common = seeds[0] & seeds[1]
    if not common or seeds[0] == seeds[1] == common:
        return first, second
    return tuple(r for r in first if r.config.get("seed") in common), tuple(
        r for r in second if r.config.get("seed") in common
    )


BUDGET_KEYS = ("epochs", "batch_size", "channels", "downsample", "train_images")


def budget(first, second):
    """(whether the two arms' training budgets are the same, what they share or where they differ: epochs, batch,
    width, stem, training images, optimizer); None for a teacher against a student."""
    a, b = first[0].config, second[0].config
    if a["kind"] == "teacher" or b["kind"] == "teacher":
        return None, "a teacher against a student: budgets of different models"
    differ = [f"{k.replace('_', ' ')} {a.get(k)} vs {b.get(k)}" for k in BUDGET_KEYS if a.get(k) != b.get(k)]
    if differ:
        text = "budgets differ: " + ", ".join(differ)
    else:
        text = f"same budget ({a.get('epochs')} epochs at batch {a.get('batch_size')}, {a.get('channels')} channels)"
    if (a.get("optimizer"), a.get("lr")) != (b.get("optimizer"), b.get("lr")):
        text += f"; optimizer {a.get('optimizer')} (lr {a.get('lr')}) vs {b.get('optimizer')} (lr {b.get('lr')})"
    return not differ, text
