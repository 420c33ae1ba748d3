"""The report's statistics against ground truth: the textbook t interval they reduce to, independent implementations
(scipy's binomial test, the noncentral t), and simulated studies whose seed and image variances are known."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from nodekd_cli.report import stats


def test_without_an_image_share_the_interval_is_the_t_interval_on_per_seed_differences():
    # Every image has the same mean difference over seeds (each seed shifts its own images), so the images add
    # nothing: the interval is scipy's one-sample t interval on the five per-seed differences.
    rng = np.random.default_rng(0)
    n, shifts = 400, [0.02, 0.05, -0.01, 0.04, 0.03]
    rows = []
    for shift in shifts:
        row = np.zeros(n)
        row[rng.permutation(n)[: int(shift * n) if shift > 0 else 0]] = 1
        row[rng.permutation(n)[: int(-shift * n) if shift < 0 else 0]] = -1
        rows.append(row)
    differences = np.array(rows)
    columns = differences.mean(axis=0)
    differences -= columns[None, :] - columns.mean()  # every image the same mean over seeds
    found = stats.crossed(differences)
    per_seed = 100 * differences.mean(axis=1)
    reference = scipy_stats.ttest_1samp(per_seed, 0.0)
    low, high = reference.confidence_interval(0.95)
    assert found.image_variance == 0 and found.df == 4
    assert (found.low, found.high) == pytest.approx((low, high), rel=1e-9)
    assert found.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_the_crossed_variance_matches_the_two_way_anova_by_hand():
    # 3 seeds x 4 images, differences in {-1, 0, 1}. Mean squares computed with explicit loops.
    d = np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 0, -1, 1]], dtype=float)
    k, n = d.shape
    x = 100 * d
    grand = x.sum() / (k * n)
    seed_means = [sum(x[j]) / n for j in range(k)]
    image_means = [sum(x[:, i]) / k for i in range(n)]
    ms_seed = n * sum((m - grand) ** 2 for m in seed_means) / (k - 1)
    ms_image = k * sum((m - grand) ** 2 for m in image_means) / (n - 1)
    ss_res = sum((x[j, i] - seed_means[j] - image_means[i] + grand) ** 2 for j in range(k) for i in range(n))
    ms_res = ss_res / ((k - 1) * (n - 1))
    variance = ms_seed / (n * k) + max(0.0, (ms_image - ms_res) / (n * k))
    found = stats.crossed(d)
    assert found.difference == pytest.approx(grand)
    assert found.seed_variance + found.image_variance == pytest.approx(variance)
    terms = [(ms_seed / (n * k), k - 1), (ms_image / (n * k), n - 1), (ms_res / (n * k), (k - 1) * (n - 1))]
    df = variance**2 / sum(v**2 / f for v, f in terms) if ms_image > ms_res else k - 1
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(variance)
    assert (found.low, found.high) == pytest.approx((grand - half, grand + half))


def test_one_run_against_one_run_takes_the_exact_mcnemar_test():
    # 7 images only the first gets right, 2 only the second: McNemar's exact test is the binomial test of 7 of 9.
    first = [1] * 7 + [0] * 2 + [1] * 20 + [0] * 11
    second = [0] * 7 + [1] * 2 + [1] * 20 + [0] * 11
    found = stats.one_run(first, second)
    assert found.method == stats.ONE_RUN and found.exact_test
    assert found.p_value == pytest.approx(scipy_stats.binomtest(7, 9, 0.5).pvalue)
    assert found.difference == pytest.approx(100 * 5 / 40)


def _study(rng, k, n, seed_sd, noise_sd, rho, shift=(0.1, -0.05)):
    """Per-image right/wrong of two arms on k paired seeds and n images of an infinite population: image i is right
    for arm a and seed j when u_i + c_a + s_aj + e_aij > 0 (u, s, e normal; the two arms' seed effects correlated by
    rho). The truth, over images and seeds: Phi(c_a / sqrt(1 + seed_sd^2 + noise_sd^2)) for each arm."""
    u = rng.normal(0, 1, n)
    s_a = rng.normal(0, seed_sd, k)
    s_b = rho * s_a + math.sqrt(1 - rho**2) * rng.normal(0, seed_sd, k)
    a = u[None] + shift[0] + s_a[:, None] + rng.normal(0, noise_sd, (k, n)) > 0
    b = u[None] + shift[1] + s_b[:, None] + rng.normal(0, noise_sd, (k, n)) > 0
    return a.astype(float), b.astype(float)


def _truth(seed_sd, noise_sd, shift=(0.1, -0.05)):
    scale = math.sqrt(1 + seed_sd**2 + noise_sd**2)
    return 100 * (scipy_stats.norm.cdf(shift[0] / scale) - scipy_stats.norm.cdf(shift[1] / scale))


@pytest.mark.parametrize(
    "k, seed_sd, noise_sd, rho",
    [
        (3, 0.2, 0.3, 0.9),  # the seeds' share dominates
        (3, 0.02, 0.5, 0.0),  # the images' share dominates
        (5, 0.05, 0.3, 0.5),  # both
        (5, 0.1, 0.2, 0.8),
    ],
)
def test_simulated_studies_cover_the_truth_95_percent_of_the_time(k, seed_sd, noise_sd, rho):
    rng = np.random.default_rng(k * 1000 + int(100 * seed_sd))
    truth, sims, covered = _truth(seed_sd, noise_sd), 2000, 0
    for _ in range(sims):
        a, b = _study(rng, k, 1000, seed_sd, noise_sd, rho)
        found = stats.crossed(a - b)
        covered += found.low <= truth <= found.high
    # 2,000 studies: the coverage's own standard error is 0.5 points.
    assert 0.93 <= covered / sims <= 0.97, covered / sims


@pytest.mark.parametrize("k", [2, 5])
def test_a_flat_comparison_is_flagged_still_learning_at_most_about_5_percent_of_the_time(k):
    # Changes from half to full budget with mean 0 (a finished comparison), noise of 1 point a seed. The 95% t test
    # alone flags 5%; those of its flags whose 90% interval lies inside the margin are finished instead (2.4% flagged
    # with 2 seeds, 3.3% with 5). The rule still flags (not 0%): it is a test, not a switch.
    rng = np.random.default_rng(k)
    flagged = sum(stats.learning(rng.normal(0, 1, k)).state == stats.LEARNING for _ in range(4000)) / 4000
    assert 0.015 <= flagged <= 0.065, flagged


def test_more_seeds_sharpen_the_half_to_full_budget_judgement():
    # A comparison still moving by 1.5 points (noise 1 point a seed) is caught more often with 5 seeds than with 2;
    # a flat one is called finished more often.
    rng = np.random.default_rng(7)

    def rate(k, mean, state):
        return sum(stats.learning(rng.normal(mean, 1, k)).state == state for _ in range(2000)) / 2000

    assert rate(5, 1.5, stats.LEARNING) > rate(2, 1.5, stats.LEARNING) + 0.3
    assert rate(5, 0.0, stats.FINISHED) > rate(2, 0.0, stats.FINISHED) + 0.2
    assert stats.learning([0.3]).state == stats.UNDETERMINED and stats.learning([]).state == stats.UNCHECKED


def test_a_change_inside_the_margin_is_finished_however_sure_it_is():
    # Two seeds whose PGD comparison moved by the same -0.10 points (a mean over 5 eps of 1,000 images moves in steps
    # of 0.02 points, so seeds can agree exactly): the interval has width 0 and excludes 0, but the comparison moves
    # by a tenth of the margin: finished, not still learning. The same agreement outside the margin is still learning.
    assert stats.learning([-0.1, -0.1]).state == stats.FINISHED
    assert stats.learning([0.4, 0.5, 0.45]).state == stats.FINISHED
    assert stats.learning([3.0, 3.0]).state == stats.LEARNING
    assert stats.learning([1.2, 1.4, 1.3, 1.25, 1.35]).state == stats.LEARNING


def test_the_power_analysis_asks_for_the_fewest_seeds_that_reach_80_percent():
    # Computed independently with scipy's noncentral t: power(k) = P(|T| > t_crit) for T ~ nct(k - 1, ncp), with
    # ncp = effect / sqrt(sd^2 / k + image_share), sd the upper 95% bound of the per-seed differences' spread.
    per_seed, image_share, alpha, effect = [1.0, 2.5, 1.8, 2.2, 0.9], 0.05, 0.025, 1.6
    sd = np.std(per_seed, ddof=1) * math.sqrt(4 / scipy_stats.chi2.ppf(0.05, 4))

    def power_at(k):
        ncp = effect / math.sqrt(sd**2 / k + image_share)
        crit = scipy_stats.t.ppf(1 - alpha / 2, k - 1)
        return scipy_stats.nct.sf(crit, k - 1, ncp) + scipy_stats.nct.cdf(-crit, k - 1, ncp)

    found = stats.power(effect, per_seed, image_share, alpha)
    assert found.sd_upper == pytest.approx(sd)
    assert power_at(found.seeds) >= 0.8 > power_at(found.seeds - 1)
    # The test images cap the power whatever the number of seeds: too small an effect for their share.
    capped = stats.power(0.3, per_seed, 0.25, alpha)
    assert capped.seeds is None and capped.cap < 0.8 and capped.images_factor > 1
    assert stats.power(1.0, [2.0], 0.1, alpha).seeds is None  # one seed: no spread to plan with


def test_holm_adjusts_p_values_as_computed_by_hand():
    # Sorted 0.01, 0.03, 0.04 of 3: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 (monotone).
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.02]) == pytest.approx([0.02])  # one comparison: no correction
