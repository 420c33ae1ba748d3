"""What the runs show, pair by pair (`arms.pairs`), per data set and measure: clean accuracy, and the accuracy under
each attack averaged over eps 4..20/255 (the paper's robustness measure). Each comparison carries its estimate
(`stats`), whether it has stopped moving from half to full budget, and the seeds a power analysis asks for.
"""

import statistics

import numpy as np

from nodekd_cli import convergence
from nodekd_cli import runs as run_files
from nodekd_cli.attacks import ATTACKS, split_key
from nodekd_cli.attacks import title as attack_title
from nodekd_cli.report import arms, stats
from nodekd_cli.report.collect import sweeps
from nodekd_cli.report.records import Comparison, Side
from nodekd_cli.report.tables import attack_order

ROBUSTNESS_EPS = (4, 20)  # the paper's robustness measure: the mean accuracy over eps 4..20/255
PRIMARY_ATTACK = "pgd"  # declared before the data: PGD is the robustness claims' measure; the others are shown
CLEAN = "clean accuracy"


def _clean(run):
    """(value, n, (which images, per-image scores) or None) of a run's clean test accuracy."""
    bits = run_files.read_bits(run.metrics.get("test_correct"))
    n = run.metrics.get("test_images")
    scores = None if bits is None or len(bits) != n else (("test", n), tuple(float(b) for b in bits))
    return run.accuracy, n, scores


def _under_attack(attack, eps):
    """A measure: a run's accuracy (%) under `attack` (a result key) averaged over `eps`, with its per-image scores
    when the result recorded them."""

    def measure(run):
        result = sweeps(run).get(attack)
        if result is None or not set(eps) <= set(result["eps"]):
            return None
        value = 100 * statistics.fmean(result["accuracy"][result["eps"].index(e)] for e in eps)
        correct, scores = result.get("correct"), None
        if isinstance(correct, list) and len(correct) == len(result["eps"]):
            rows = [run_files.read_bits(correct[result["eps"].index(e)]) for e in eps]
            if all(row is not None and len(row) == result.get("n") for row in rows):
                images = tuple(result["images"]) if isinstance(result.get("images"), list) else None
                scores = ((attack, images, result.get("n")), tuple(statistics.fmean(c) for c in zip(*rows)))
        return value, result.get("n"), scores

    return measure


def _side(arm, measure, status, by_folder):
    """The `Side` of `arm`'s runs on `measure` (run -> (value, n, scores) or None), or None when a run lacks it."""
    measured = [measure(r) for r in arm.runs]
    if any(m is None for m in measured):
        return None
    sizes = {n for _, n, _ in measured}
    scored = [s for _, _, s in measured]
    images = scores = None
    if all(s is not None for s in scored) and len({which for which, _ in scored}) == 1:
        images, scores = scored[0][0], tuple(s for _, s in scored)
    teacher = arm.runs[0].kind == "teacher"
    found = [status.get(r.folder, convergence.Status()) for r in arm.runs]
    twins = [by_folder.get(s.twin) for s in found]
    twin_values = tuple(None if t is None or measure(t) is None else measure(t)[0] for t in twins)
    first = arm.runs[0].config
    return Side(
        label=arm.label,
        values=tuple(v for v, _, _ in measured),
        seeds=tuple(None if teacher else r.config.get("seed") for r in arm.runs),
        runs=tuple(str(r.folder) for r in arm.runs),
        n=sizes.pop() if len(sizes) == 1 else None,
        images=images,
        scores=scores,
        twin_values=twin_values,
        gains=tuple(None if t is None else v - t for (v, _, _), t in zip(measured, twin_values)),
        budget=None if teacher else convergence.budget_text(first),
        paper_fraction=None if teacher else convergence.paper_fraction(first),
        teacher=teacher,
    )


def _paired_seeds(first, second):
    """The seeds both sides ran, when each seed appears once a side; a teacher pairs with every seed."""
    if first.teacher or second.teacher:
        other = second if first.teacher else first
        return [s for s in other.seeds]
    if None in first.seeds + second.seeds or len(set(first.seeds)) < len(first.seeds):
        return []
    return sorted(set(first.seeds) & set(second.seeds))


def _rows(side, seeds):
    """The side's per-image scores (and twin values) in the order of `seeds` (a teacher repeats its one run)."""
    if side.teacher:
        scores = None if side.scores is None else [side.scores[0]] * len(seeds)
        return scores, [side.values[0]] * len(seeds), [side.values[0]] * len(seeds)
    at = {seed: i for i, seed in enumerate(side.seeds)}
    scores = None if side.scores is None else [side.scores[at[s]] for s in seeds]
    return scores, [side.values[at[s]] for s in seeds], [side.twin_values[at[s]] for s in seeds]


def estimate(first, second):
    """The `Estimate` of first - second (`stats`), or None without test-image counts to judge by."""
    seeds = _paired_seeds(first, second)
    if first.scores is not None and first.images == second.images:
        if len(first.values) == 1 and len(second.values) == 1:
            return stats.one_run(first.scores[0], second.scores[0])
        if (first.teacher or second.teacher or set(seeds) == set(first.seeds) == set(second.seeds)) and len(seeds) > 1:
            a, _, _ = _rows(first, seeds)
            b, _, _ = _rows(second, seeds)
            return stats.crossed(np.asarray(a) - np.asarray(b))
        return stats.welch(first.scores, second.scores)
    if first.n and second.n:
        return stats.binomial(first.values, first.n, second.values, second.n)
    return None


def per_seed(first, second):
    """(per-seed differences, per-seed changes of the difference from half to full budget) over the seeds both
    sides ran."""
    seeds = _paired_seeds(first, second)
    _, a, a_twin = _rows(first, seeds)
    _, b, b_twin = _rows(second, seeds)
    differences = [x - y for x, y in zip(a, b)]
    changes = []
    for x, y, tx, ty in zip(a, b, a_twin, b_twin):
        changes.append(None if tx is None or ty is None else (x - y) - (tx - ty))
    return differences, changes


def compare(dataset, pair, measure_name, attack, primary, first, second, budget, eps=(), alpha=stats.ALPHA):
    """The `Comparison` of two sides on one measure (under an attack, averaged over `eps`)."""
    found = estimate(first, second)
    differences, changes = per_seed(first, second)
    power = None
    if found is not None:
        power = stats.power(found.difference, differences, found.image_variance, alpha)
    same, text = budget
    learning = stats.learning(changes)
    return Comparison(
        dataset, pair, measure_name, attack, primary, first, second, found, learning, power, same, text, tuple(eps)
    )


def comparisons(runs, status=None, everything=None):
    """Every comparison the runs allow, per data set (see `arms`), on clean accuracy and under each attack that
    every run of both arms has. With `status` (`convergence.statuses`) and `everything` (all runs, twins included),
    two arms trained for different epochs are compared at the smaller budget through the other's twins, and each
    comparison is judged from half to full budget."""
    status = status or {}
    by_folder = {r.folder: r for r in everything or runs}
    found = []
    for dataset in sorted({r.config["dataset"] for r in runs}):
        for pair in arms.pairs([r for r in runs if r.config["dataset"] == dataset]):
            first, second = pair.first, pair.second
            if pair.pair != "teacher":
                a, b = arms.on_common_seeds(*arms.at_common_budget(first.runs, second.runs, status, by_folder))
                first, second = arms.Arm(first.label, a), arms.Arm(second.label, b)
            budget = arms.budget(first.runs, second.runs)
            sides = [_side(arm, _clean, status, by_folder) for arm in (first, second)]
            found.append(compare(dataset, pair.pair, CLEAN, None, True, *sides, budget))
            if pair.pair == "teacher":
                continue
            both = first.runs + second.runs
            measured = {name for r in both for name in sweeps(r) if split_key(name)[0] in ATTACKS}
            for attack in sorted(measured, key=lambda name: (attack_order(name), name)):
                if not all(attack in sweeps(r) for r in both):
                    continue
                common = set.intersection(*(set(sweeps(r)[attack]["eps"]) for r in both))
                eps = sorted(e for e in common if ROBUSTNESS_EPS[0] <= e <= ROBUSTNESS_EPS[1])
                if not eps:
                    continue
                sides = [_side(arm, _under_attack(attack, eps), status, by_folder) for arm in (first, second)]
                measure = f"{attack_title(attack)} accuracy, mean over eps {', '.join(map(str, eps))}"
                primary = attack == PRIMARY_ATTACK
                found.append(compare(dataset, pair.pair, measure, attack, primary, *sides, budget, eps))
    return found
