"""The coverage of the report's comparison interval (`nodekd_cli.report.stats.crossed`) in simulated studies whose
truth is known: two arms scored right/wrong on n images of an infinite population by k paired seeds. Image i is
right for arm a and seed j when u_i + c_a + s_aj + e_aij > 0 (u ~ N(0, 1), seed effects s ~ N(0, seed_sd^2)
correlated between the arms by rho, noise e ~ N(0, noise_sd^2)); the truth is the difference of the arms'
accuracies over images and seeds, Phi(c_a / sqrt(1 + seed_sd^2 + noise_sd^2)) - the same for b, in points.

    python results/statistics/coverage.py > results/statistics/coverage.txt
"""

import math

import numpy as np
from scipy import stats as scipy_stats

from nodekd_cli.report import stats

SHIFT = (0.1, -0.05)
REGIMES = (  # (seed_sd, noise_sd, rho): which share of the variance dominates
    (0.2, 0.3, 0.9),  # seeds
    (0.02, 0.5, 0.0),  # images
    (0.05, 0.3, 0.5),  # both
    (0.1, 0.2, 0.8),  # both
    (0.01, 0.1, 0.0),  # images, little noise
    (0.03, 0.3, 0.7),  # both
)


def coverage(k, n, seed_sd, noise_sd, rho, sims, rng):
    scale = math.sqrt(1 + seed_sd**2 + noise_sd**2)
    truth = 100 * (scipy_stats.norm.cdf(SHIFT[0] / scale) - scipy_stats.norm.cdf(SHIFT[1] / scale))
    covered, widths = 0, []
    for _ in range(sims):
        u = rng.normal(0, 1, n)
        s_a = rng.normal(0, seed_sd, k)
        s_b = rho * s_a + math.sqrt(1 - rho**2) * rng.normal(0, seed_sd, k)
        a = (u[None] + SHIFT[0] + s_a[:, None] + rng.normal(0, noise_sd, (k, n)) > 0).astype(float)
        b = (u[None] + SHIFT[1] + s_b[:, None] + rng.normal(0, noise_sd, (k, n)) > 0).astype(float)
        found = stats.crossed(a - b)
        covered += found.low <= truth <= found.high
        widths.append(found.high - found.low)
    return covered / sims, float(np.median(widths))


def main(sims=2000):
    rng = np.random.default_rng(0)
    print(f"# {sims} simulated studies a row; the coverage's own standard error is about 0.5 points")
    print("seeds  images  seed_sd  noise_sd  rho   coverage  median width (points)")
    for k in (3, 5, 10):
        for n in (1000, 10000) if k == 5 else (1000,):
            for seed_sd, noise_sd, rho in REGIMES if n == 1000 else REGIMES[:2]:
                found, width = coverage(k, n, seed_sd, noise_sd, rho, sims if n == 1000 else sims // 4, rng)
                print(
                    f"{k:5d}  {n:6d}  {seed_sd:7.2f}  {noise_sd:8.2f}  {rho:3.1f}   {100 * found:6.1f}%  {width:8.2f}"
                )


if __name__ == "__main__":
    main()
