"""How the report words and formats what it found: numbers, a comparison's sentence, the claims' note. The rich
terminal view (`nodekd_cli.output`) and the documents (`render`) share these."""

from nodekd_cli.report import stats
from nodekd_cli.report.paper import AUTOATTACK


def number(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def signed(value):
    return "" if value is None else f" ({value:+.2f})"


def plain_number(value):
    return "-" if value is None else f"{value:g}"


def maybe(value):
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def attack_names(attacks):
    """The attacks a run has (`runs_table.run_rows`' "attacks"); AutoAttack with its eps and worst-case accuracy."""
    names = []
    for name, result in attacks.items():
        if name == AUTOATTACK:
            names.append(f"AutoAttack {result['eps'][-1]}/255: {100 * result['accuracy'][-1]:.2f}%")
        else:
            names.append(name)
    return ", ".join(names)


def seeds_word(n):
    return f"{n} seed" + ("" if n == 1 else "s")


def estimate_text(estimate):
    """ ", seed-paired 95% interval +1.20 to +3.40, 5 seeds an arm" and the like."""
    if estimate is None:
        return ""
    interval = f"95% interval {estimate.low:+.2f} to {estimate.high:+.2f}"
    if estimate.method == stats.ONE_RUN:
        test = ", exact McNemar p" if estimate.exact_test else ", p"
        return f", {estimate.method}: image-paired {interval}{test} = {estimate.p_value:.3g}"
    return f", {estimate.method} {interval}, {seeds_word(estimate.seeds)} an arm, p = {estimate.p_value:.3g}"


def learning_text(learning):
    """What a comparison did from half to full budget."""
    if learning.state == stats.UNCHECKED:
        return "not checked from half to full budget (no half-budget twins)"
    changes = ", ".join(f"{c:+.2f}" for c in learning.changes)
    if learning.low is None:
        return f"{learning.state} from half to full budget (one seed: {changes})"
    return (
        f"{learning.state} from half to full budget (change {sum(learning.changes) / len(learning.changes):+.2f}, "
        f"95% {learning.low:+.2f} to {learning.high:+.2f}, margin +-{learning.margin:g})"
    )


def comparison_text(c):
    """One sentence: the two arms, the difference, its interval and test, budgets, learning, power."""
    first, second = c.first, c.second
    power = "" if c.power is None else f"; power: {c.power.text}"
    budgets = "".join(f"; {b}" for b in dict.fromkeys(side.budget for side in (first, second) if side.budget))
    return (
        f"{c.dataset}, {c.measure}: {first.label} {first.value:.2f}% vs {second.label} {second.value:.2f}%, "
        f"{c.difference:+.2f} points ({c.verdict}{estimate_text(c.estimate)}); {c.budget_text}{budgets}; "
        f"{learning_text(c.learning)}{power}."
    )


CLAIMS_NOTE = (
    "The training run is the unit: each interval is a 95% t interval of the difference over seeds, paired seed by "
    "seed where both arms ran the same seeds, with the test images' share of the variance added (Welch-Satterthwaite "
    "degrees of freedom; docs/statistics.md). A claim about a method counts only comparisons of at least "
    f"{stats.MIN_SEEDS} seeds an arm, on one primary measure (clean accuracy; robustness: PGD, mean over eps 4..20), "
    "with the same optimizer on both arms; it counts a comparison when it holds after Holm's correction over the "
    "claim's comparisons (family-wise error 5%), and is undecided (still learning) when a counted comparison still "
    "moves from half to full budget (95% t interval of the per-seed change excludes 0). A masking check counts only "
    "where its reference PGD leaves at least 5%."
)
