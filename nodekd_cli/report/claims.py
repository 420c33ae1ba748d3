"""The paper's claims as a registry: each `ClaimRule` says which comparisons it counts (one primary measure,
declared before the data), which it shows beside them, and how its verdict follows. A new claim is one entry in
`CLAIMS`.

A claim about a method counts only comparisons of at least `stats.MIN_SEEDS` training runs an arm; with fewer it
reads "undecided (N seeds)". It is "undecided (still learning)" when a counted comparison is still moving from half
to full budget (`stats.learning`). Otherwise a comparison counts when it holds after Holm's correction over the
claim's counted comparisons (family-wise error 5%): supported when some favour the claim and none goes against it,
contradicted the other way round, undecided when none holds or they disagree. Every counted comparison states the
seeds an arm that 80% power at the claim's Holm alpha would need.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from nodekd_cli import checks as masking
from nodekd_cli import convergence
from nodekd_cli.report import stats
from nodekd_cli.report.arms import _student_key
from nodekd_cli.report.collect import relative
from nodekd_cli.report.comparisons import per_seed
from nodekd_cli.report.paper import comparable
from nodekd_cli.report.records import Claim, Counted
from nodekd_cli.report.text import comparison_text, seeds_word

STILL_LEARNING = "undecided (still learning)"


@dataclass(frozen=True)
class ClaimRule:
    key: str
    statement: str
    judge: Callable  # (rule, dataset, comparisons of the data set, runs of the data set, root) -> Claim
    counts: Callable = None  # comparison -> whether the claim counts it
    shows: Callable = None  # comparison -> whether it is shown beside the counted ones


def _convergence_word(states):
    if not states:
        return "-"
    if stats.LEARNING in states:
        return "some still learning"
    if states == {stats.FINISHED}:
        return "all finished"
    if states == {stats.UNCHECKED}:
        return "not checked (no half-budget twins)"
    return "convergence undetermined"


def _budget_text(shares):
    """Budget shares of the paper's (None: unknown) as "1% of the paper's" or "0.5-1% of the paper's"; "" if none."""
    shares = sorted(set(shares) - {None})
    if not shares:
        return ""
    low, high = (f"{100 * share:.2g}" for share in (shares[0], shares[-1]))
    return f"{low}% of the paper's" if low == high else f"{low}-{high}% of the paper's"


def _optimizer_share(shown):
    """How much of the paper's pairing's difference the optimizer alone carries, per measure, as sentences: the
    paper's pairing (SGD distilled against Adam alone) is the optimizer's part (SGD alone against Adam alone) plus
    distillation's with SGD on both arms."""
    sentences = []
    for paper in (c for c in shown if c.pair == "kd (paper)"):
        optimizer = next(
            (
                c
                for c in shown
                if c.pair == "optimizer" and c.measure == paper.measure and c.second.label == paper.second.label
            ),
            None,
        )
        if optimizer is not None:
            sentences.append(
                f"{paper.measure}: of the paper's pairing's {paper.difference:+.2f} points ({paper.first.label} "
                f"against {paper.second.label}), the optimizer alone carries {optimizer.difference:+.2f} "
                f"({optimizer.first.label} against {optimizer.second.label}), and distillation with SGD on both arms "
                f"{paper.difference - optimizer.difference:+.2f}."
            )
    return sentences


def judge_comparisons(rule, dataset, compared, runs, root):
    """The verdict of a claim judged from comparisons (see the module's docstring)."""
    counted = [c for c in compared if rule.counts(c)]
    shown = [c for c in compared if rule.shows(c) and not rule.counts(c)]
    decided = [c for c in counted if c.estimate is not None]
    alpha = stats.ALPHA / max(1, len(decided))
    decided = [
        dataclasses.replace(
            c, power=stats.power(c.estimate.difference, _differences(c), c.estimate.image_variance, alpha)
        )
        for c in decided
    ]
    adjusted = stats.holm([c.estimate.p_value for c in decided])
    tally = {v: sum(c.verdict == v for c in decided) for v in ("higher", "lower", "within noise")}
    states = {c.learning.state for c in decided}
    seeds = min((c.estimate.seeds for c in decided), default=0)
    if not decided:
        verdict = "undecided"
        paper = any(c.pair == "kd (paper)" for c in shown)
        summary = "no same-optimizer comparison" if paper else "no runs to judge it by"
    else:
        summary = ", ".join(f"{n} {v}" for v, n in tally.items() if n)
        held = [c for c, p in zip(decided, adjusted) if p <= stats.ALPHA]
        favour, against = (sum(c.difference > 0 for c in held), sum(c.difference < 0 for c in held))
        verdict = "supported" if favour and not against else "contradicted" if against and not favour else "undecided"
        if stats.LEARNING in states:
            verdict = STILL_LEARNING
        if seeds < stats.MIN_SEEDS:
            verdict = f"undecided ({seeds_word(seeds)})"
    evidence = [f"{comparison_text(c)} Holm-adjusted p = {p:.3g}." for c, p in zip(decided, adjusted)]
    evidence += _optimizer_share(shown) if shown else []
    evidence += [f"Shown, not counted: {comparison_text(c)}" for c in shown]
    sides = [side for c in decided for side in (c.first, c.second) if not side.teacher]
    return Claim(
        dataset,
        rule.key,
        rule.statement,
        verdict,
        summary,
        _convergence_word(states) if decided else "-",
        _budget_text(side.paper_fraction for side in sides),
        tuple(evidence),
        tuple(Counted(c, p) for c, p in zip(decided, adjusted)),
        tuple(shown),
    )


def _differences(comparison):
    return per_seed(comparison.first, comparison.second)[0]


def _check_evidence(name, check):
    """One sentence on a run's checks: its signs of masking, whether it could see any, the reference's strength."""
    eps = check.get("eps")
    at = f" at {eps}/255" if eps is not None else ""
    reference = check.get("reference")
    left = "" if reference is None else f" (reference PGD {100 * reference:.1f}%)"
    signs = masking.failed(check, "masking")
    if signs:
        return f"{name}: possible masking{at}{left}: {', '.join(signs)}"
    if not masking.informative(check):
        return f"{name}: not informative{at}{left}; not counted as a pass"
    weak = masking.failed(check, "reference")
    if weak:
        stronger = next(c["accuracy"] for c in check["checks"] if c["check"] in weak)
        return (
            f"{name}: no sign of masking{at}{left}, but APGD-CE leaves {100 * stronger:.1f}%: the paper's PGD is too "
            f"weak at this eps"
        )
    return f"{name}: every check passed{at}{left}"


def judge_masking(rule, dataset, compared, runs, root):
    """Not gradient masking, from `nodekd attack check` on the students. A check counts only where it can see
    masking (`checks.informative`: its reference PGD leaves at least 5%), and only its signs of masking count against
    the claim (`checks.kind`: APGD-CE far stronger than the reference says the reference is too weak, which the
    evidence reports). An arm is judged from at least `stats.MIN_SEEDS` informative checks (its seeds): it fails when
    one of its runs shows a sign of masking. Contradicted when a judged arm fails; supported when every checked arm is
    judged and passes; else undecided, naming the fewest informative checks of an arm (as a comparison names the fewest
    seeds), so that a verdict never rests on the arms that happen to have their seeds first."""
    checked = [r for r in runs if comparable(r) and r.kind == "student" and r.check]
    if not checked:
        return Claim(dataset, rule.key, rule.statement, "undecided", "no runs to judge it by", "-", "", ())
    by_arm = {}
    for run in checked:
        by_arm.setdefault(_student_key(run), []).append(run)
    counts = {key: sum(masking.informative(r.check) for r in group) for key, group in by_arm.items()}
    judged = [group for key, group in by_arm.items() if counts[key] >= stats.MIN_SEEDS]
    fewest = min(counts.values())
    if any(masking.failed(r.check, "masking") for group in judged for r in group):
        verdict = "contradicted"
    elif fewest >= stats.MIN_SEEDS:
        verdict = "supported"
    else:
        verdict = f"undecided ({fewest} informative check{'' if fewest == 1 else 's'} an arm)"
    passing = [r for r in checked if not masking.failed(r.check, "masking") and masking.informative(r.check)]
    weak = [r for r in passing if masking.failed(r.check, "reference")]
    summary = f"{len(passing)} of {len(checked)} checked students pass an informative check"
    summary += f" ({len(weak)} with the paper's PGD weaker than APGD-CE)" if weak else ""
    evidence = tuple(_check_evidence(relative(root, r.folder), r.check) for r in checked)
    budget = _budget_text(convergence.paper_fraction(r.config) for r in checked)
    return Claim(dataset, rule.key, rule.statement, verdict, summary, "-", budget, evidence)


def _primary(pairs):
    return lambda c: c.pair in pairs and c.primary and c.attack is not None


def _shown(pairs, robustness):
    return lambda c: c.pair in pairs and (c.attack is not None) == robustness


CLAIMS = (
    ClaimRule(
        "kd_accuracy",
        "Knowledge distillation raises accuracy",
        judge_comparisons,
        lambda c: c.pair == "kd" and c.attack is None,
        _shown(("kd", "kd (paper)", "optimizer"), False),
    ),
    ClaimRule(
        "kd_robustness",
        "Knowledge distillation raises robustness",
        judge_comparisons,
        _primary(("kd",)),
        _shown(("kd", "kd (paper)", "optimizer"), True),
    ),
    ClaimRule(
        "t1_robustness",
        "Robustness grows with the time horizon t1",
        judge_comparisons,
        _primary(("horizon",)),
        _shown(("horizon",), True),
    ),
    ClaimRule("no_masking", "The robustness is not gradient masking", judge_masking),
)


def claims(runs, compared, *, root):
    """Every claim of `CLAIMS` on every data set with runs: `Claim` records."""
    found = []
    for dataset in sorted({r.config["dataset"] for r in runs}):
        mine = [c for c in compared if c.dataset == dataset]
        theirs = [r for r in runs if r.config["dataset"] == dataset]
        found += [rule.judge(rule, dataset, mine, theirs, root) for rule in CLAIMS]
    return found
