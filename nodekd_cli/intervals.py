"""The statistics behind the report's comparisons and claims: paired intervals and Holm's correction.

Both arms of a comparison are scored on the same test images, so their difference is judged image by image: with
per-image scores a_i and b_i (1 right, 0 wrong; under an attack, the mean over its eps), the difference of the means
is the mean of d_i = a_i - b_i, whose variance is var(d) / n (the normal approximation for a paired sample, which
McNemar's test also rests on for large n). Images both arms get right, or both wrong, add nothing to it; two
independent samples would count their binomial variances in full. Several runs of an arm (seeds) add the variance
between their values over their number, as `report._variance` does for unpaired sides; when both arms ran the same
seeds, the variance between the per-seed differences over their number instead (`report._seed_variance_of_difference`:
a seed gives both arms the same training images and initial weights).

A claim is judged from several comparisons at once, so a claim's verdict counts a comparison only when it holds
after Holm's step-down correction at `ALPHA` over the claim's comparisons (family-wise error at most `ALPHA`).
"""

import math
import statistics

ALPHA = 0.05
Z95 = 1.96  # the two-sided 95% normal quantile of every interval the report prints


def paired_variance(first, second):
    """Variance (in points squared) of the mean difference of two arms' per-image scores (fractions, one per image,
    the same images in the same order)."""
    if len(first) != len(second) or len(first) < 2:
        raise ValueError("paired scores need the same images, at least two")
    differences = [100 * (a - b) for a, b in zip(first, second)]
    return statistics.variance(differences) / len(differences)


def p_value(difference, variance):
    """Two-sided p-value of a difference against no difference, under the normal approximation."""
    if variance <= 0:
        return 0.0 if difference else 1.0
    return math.erfc(abs(difference) / math.sqrt(2 * variance))


def holm(p_values, alpha=ALPHA):
    """Holm's step-down adjusted p-values, in the order given: sorted ascending, the j-th (from 0) of m is multiplied
    by m - j, and each adjusted value is at least the one before it (capped at 1). A hypothesis is rejected when its
    adjusted value is at most `alpha`."""
    m = len(p_values)
    adjusted, running = [None] * m, 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
