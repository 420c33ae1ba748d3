"""The statistics behind the report's comparisons: the training run is the unit of a method comparison.

An arm is a set of training runs (seeds) of one configuration, each scored on the same test images. A comparison of
two arms estimates the difference of their mean scores (in points) over the population of training seeds and of
test images. With per-image scores `a[j, i]` and `b[j, i]` (seed j, image i: 1 right, 0 wrong; under an attack the
mean over its eps), the paired differences `D = a - b` follow a crossed random-effects model, seeds by images:
D[j, i] = delta + seed_j + image_i + noise. Its mean over seeds and images has the variance

    V = s_seed^2 / k + max(0, (MS_image - MS_residual) / (n k))

where s_seed^2 is the variance of the k per-seed differences (their mean squares over seeds, divided by n) and
MS_image, MS_residual are the two-way ANOVA's mean squares (the images' share net of the seed noise every image
carries). The interval is mean +- t(0.975, df) sqrt(V), df by Welch-Satterthwaite over the mean squares; with only
the seed term, df = k - 1 and the interval is the textbook t interval on the per-seed differences. `docs/statistics.md`
gives the formula for recomputing any interval with scipy, and the coverage measured by simulation.

When the arms ran different seeds, each arm's seed variance enters on its own (Welch). A teacher is one given model:
it enters with no seed variance. Where each arm is one run, the comparison is "this run against that run": an
image-paired t interval, with an exact McNemar test when the scores are right/wrong. Holm's correction, the power
analysis and the half- to full-budget rule come from statsmodels and scipy.
"""

import math

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from nodekd_cli.report.records import Estimate, Learning, Power

ALPHA = 0.05
LEVEL = 0.95
MIN_SEEDS = 3  # no verdict about a method from fewer runs an arm
POWER = 0.8
MARGIN = 1.0  # points: a comparison has stopped moving when its change from half to full budget lies within +-MARGIN
MOST_SEEDS = 200  # the power analysis looks no further
SEED_PAIRED = "seed-paired"
SEED_UNPAIRED = "seeds of each arm apart (Welch)"
ONE_RUN = "this run against that run"
UNPAIRED_IMAGES = "unpaired test images (binomial)"
FINISHED, LEARNING, UNDETERMINED, UNCHECKED = "finished", "still learning", "undetermined", "not checked"


def _interval(difference, variance, df):
    half = scipy_stats.t.ppf(0.5 + LEVEL / 2, df) * math.sqrt(variance) if variance > 0 else 0.0
    if variance > 0:
        p = float(2 * scipy_stats.t.sf(abs(difference) / math.sqrt(variance), df))
    else:
        p = 0.0 if difference else 1.0
    return difference - half, difference + half, p


def _satterthwaite(terms, total=None):
    """Welch-Satterthwaite degrees of freedom of a variance estimate `total` made of mean-square terms [(value, df)]
    added or subtracted (default: their sum)."""
    total = sum(value for value, _ in terms) if total is None else total
    denominator = sum(value**2 / df for value, df in terms if value > 0)
    return total**2 / denominator if denominator > 0 else math.inf


def _mean_squares(scores):
    """(mean square of the seeds, of the images, residual) of a k x n matrix in points (k >= 2)."""
    k, n = scores.shape
    by_seed, by_image, grand = scores.mean(axis=1), scores.mean(axis=0), scores.mean()
    residual = scores - by_seed[:, None] - by_image[None, :] + grand
    return n * by_seed.var(ddof=1), k * by_image.var(ddof=1), float((residual**2).sum()) / ((n - 1) * (k - 1))


def crossed(differences):
    """The seed-paired estimate from a k x n matrix of per-image differences (fractions; k >= 2 seeds)."""
    scores = 100 * np.asarray(differences, dtype=float)
    k, n = scores.shape
    seed_ms, image_ms, residual_ms = _mean_squares(scores)
    seed_part = seed_ms / (n * k)
    image_part = max(0.0, (image_ms - residual_ms) / (n * k))
    variance = seed_part + image_part
    if image_part > 0:
        terms = [(seed_part, k - 1), (image_ms / (n * k), n - 1), (residual_ms / (n * k), (n - 1) * (k - 1))]
        df = _satterthwaite(terms, variance)
    else:
        df = k - 1
    difference = float(scores.mean())
    return Estimate(difference, *_interval(difference, variance, df), df, SEED_PAIRED, k, seed_part, image_part)


def welch(first, second):
    """The estimate for arms that ran different seeds: per-image score matrices (k_a x n, k_b x n, fractions). Each
    arm's seed variance over its number of runs (none for a one-run arm, whose spread is unknown, and none for a
    fixed model such as a teacher), plus the images' share net of the seed noise."""
    a, b = 100 * np.asarray(first, dtype=float), 100 * np.asarray(second, dtype=float)
    n = a.shape[1]
    terms, residuals = [], []
    for scores in (a, b):
        k = scores.shape[0]
        if k > 1:
            seed_ms, _, residual_ms = _mean_squares(scores)
            terms.append((seed_ms / (n * k), k - 1))
            residuals.append((residual_ms / (n * k), (n - 1) * (k - 1)))
    by_image = a.mean(axis=0) - b.mean(axis=0)
    image_raw = by_image.var(ddof=1) / n
    image_part = max(0.0, image_raw - sum(value for value, _ in residuals))
    seed_part = sum(value for value, _ in terms)
    if image_part > 0:
        df = _satterthwaite(terms + [(image_raw, n - 1)] + residuals, seed_part + image_part)
    else:
        df = _satterthwaite(terms)
    difference = float(by_image.mean())
    interval = _interval(difference, seed_part + image_part, df)
    seeds = min(a.shape[0], b.shape[0])
    return Estimate(difference, *interval, df, SEED_UNPAIRED, seeds, seed_part, image_part)


def one_run(first, second):
    """This run against that run: per-image scores of one run each (fractions, the same images). The image-paired
    t interval; its p-value from the exact McNemar test when every score is 0 or 1."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    d = 100 * (a - b)
    n = len(d)
    variance = float(d.var(ddof=1)) / n
    difference = float(d.mean())
    low, high, p = _interval(difference, variance, n - 1)
    exact = None
    if np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all():
        only_first, only_second = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        table = [[0, only_first], [only_second, 0]]
        exact = float(mcnemar(table, exact=True).pvalue) if only_first + only_second else 1.0
    p = exact if exact is not None else p
    return Estimate(difference, low, high, p, n - 1, ONE_RUN, 1, 0.0, variance, exact_test=exact is not None)


def binomial(first_values, first_n, second_values, second_n):
    """Without per-image scores (runs that did not record them): each arm's binomial variance over its test images
    plus its seed variance over its number of runs, as independent samples."""
    seed_terms, image_terms = [], []
    for values, n in ((first_values, first_n), (second_values, second_n)):
        p = float(np.mean(values)) / 100
        image_terms.append((1e4 * p * (1 - p) / n, n - 1))
        if len(values) > 1:
            seed_terms.append((float(np.var(values, ddof=1)) / len(values), len(values) - 1))
    seed_part = sum(value for value, _ in seed_terms)
    image_part = sum(value for value, _ in image_terms)
    difference = float(np.mean(first_values) - np.mean(second_values))
    df = _satterthwaite(seed_terms + image_terms)
    interval = _interval(difference, seed_part + image_part, df)
    seeds = min(len(first_values), len(second_values))
    return Estimate(difference, *interval, df, UNPAIRED_IMAGES, seeds, seed_part, image_part)


def holm(p_values, alpha=ALPHA):
    """Holm's step-down adjusted p-values, in the order given (statsmodels' `multipletests`)."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(p_values, alpha=alpha, method="holm")[1]]


def seed_sd_upper(values, level=LEVEL):
    """The one-sided upper `level` confidence bound of the standard deviation of `values` (chi-square), or None for
    fewer than two."""
    k = len(values)
    if k < 2:
        return None
    s = float(np.std(values, ddof=1))
    return s * math.sqrt((k - 1) / scipy_stats.chi2.ppf(1 - level, k - 1))


def power(effect, per_seed, image_part, alpha):
    """How many seeds an arm a two-sided t test at `alpha` needs for 80% power against `effect` (points), with the
    per-seed differences' standard deviation at its upper 95% bound (`seed_sd_upper` of `per_seed`) and the images'
    share of the variance (`image_part`, points^2), which more seeds do not shrink: a `Power`."""
    sd = seed_sd_upper(per_seed)
    if sd is None:
        return Power(None, None, None, sd, alpha, "the seed spread is unknown with one run an arm")
    effect = abs(effect)
    if effect == 0:
        return Power(None, None, None, sd, alpha, "no effect to detect")
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(POWER)
    cap = 1.0
    if image_part > 0:
        cap = float(scipy_stats.norm.cdf(effect / math.sqrt(image_part) - scipy_stats.norm.ppf(1 - alpha / 2)))
    for k in range(2, MOST_SEEDS + 1):
        achieved = TTestPower().power(effect_size=effect / math.sqrt(sd**2 + k * image_part), nobs=k, alpha=alpha)
        if achieved >= POWER:
            return Power(k, cap, None, sd, alpha, f"{k} seeds an arm")
    factor = image_part * z**2 / effect**2  # images needed, as a multiple of those now, with unlimited seeds
    text = f"more than {MOST_SEEDS} seeds an arm"
    if cap < POWER:
        text += f"; the test images cap the power at {100 * cap:.0f}% (at least {factor:.1f}x as many images needed)"
    return Power(None, cap, factor if cap < POWER else None, sd, alpha, text)


def learning(changes, margin=MARGIN):
    """Whether a comparison has stopped moving, from its per-seed changes (points) from half to full budget: finished
    when the 90% t interval of the mean change (two one-sided tests at 5%) lies within +-`margin`, however sure it is
    that the change is not exactly 0 (seeds that agree to the last image, say -0.10 and -0.10, give an interval of
    width 0); still learning when the 95% interval excludes 0 otherwise; else undetermined. Fewer than two changes:
    undetermined. A `Learning`."""
    changes = [c for c in changes if c is not None]
    if not changes:
        return Learning(UNCHECKED, (), None, None, margin)
    if len(changes) < 2:
        return Learning(UNDETERMINED, tuple(changes), None, None, margin)
    k, mean = len(changes), float(np.mean(changes))
    se = float(np.std(changes, ddof=1)) / math.sqrt(k)
    low, high = (mean + side * scipy_stats.t.ppf(0.975, k - 1) * se for side in (-1, 1))
    if se == 0:
        low = high = mean
    half90 = scipy_stats.t.ppf(0.95, k - 1) * se
    if -margin < mean - half90 and mean + half90 < margin:
        state = FINISHED
    else:
        state = LEARNING if low > 0 or high < 0 else UNDETERMINED
    return Learning(state, tuple(changes), low, high, margin)
