"""Every interval of every committed report recomputed with scipy alone from the committed per-image files, by the
formulas of docs/statistics.md: nothing here imports nodekd's statistics."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

REPOSITORY = Path(__file__).resolve().parents[1]
REPORTS = sorted(REPOSITORY.glob("results/*/report/report.json"))


def scores(folder, attack, eps):
    """A run's per-image scores (fractions) on the comparison's measure, from its own files."""
    folder = REPOSITORY / folder
    if attack is None:
        bits = json.loads((folder / "metrics.json").read_text()).get("test_correct")
        return None if bits is None else np.array([b == "1" for b in bits], dtype=float)
    result = json.loads((folder / "attacks" / f"{attack}.json").read_text())
    if not isinstance(result.get("correct"), list):
        return None
    rows = [result["correct"][result["eps"].index(e)] for e in eps]
    return np.mean([[b == "1" for b in row] for row in rows], axis=0)


def interval(estimate, variance, df):
    half = stats.t.ppf(0.975, df) * math.sqrt(variance)
    return estimate - half, estimate + half


def satterthwaite(total, terms):
    return total**2 / sum(v**2 / f for v, f in terms if v > 0)


def mean_squares(x):
    k, n = x.shape
    rows, columns, grand = x.mean(axis=1), x.mean(axis=0), x.mean()
    residual = ((x - rows[:, None] - columns[None, :] + grand) ** 2).sum() / ((n - 1) * (k - 1))
    return n * rows.var(ddof=1), k * columns.var(ddof=1), residual


def seed_paired(a, b):
    d = 100 * (a - b)
    k, n = d.shape
    ms_seed, ms_image, ms_res = mean_squares(d)
    seed, image = ms_seed / (n * k), max(0.0, (ms_image - ms_res) / (n * k))
    terms = [(seed, k - 1), (ms_image / (n * k), n - 1), (ms_res / (n * k), (n - 1) * (k - 1))]
    df = satterthwaite(seed + image, terms) if image > 0 else k - 1
    return interval(d.mean(), seed + image, df)


def seeds_apart(a, b):
    a, b = 100 * a, 100 * b
    n = a.shape[1]
    terms, residuals = [], []
    for x in (a, b):
        k = x.shape[0]
        if k > 1:
            ms_seed, _, ms_res = mean_squares(x)
            terms.append((ms_seed / (n * k), k - 1))
            residuals.append((ms_res / (n * k), (n - 1) * (k - 1)))
    by_image = a.mean(axis=0) - b.mean(axis=0)
    raw = by_image.var(ddof=1) / n
    image = max(0.0, raw - sum(v for v, _ in residuals))
    seed = sum(v for v, _ in terms)
    df = satterthwaite(seed + image, terms + [(raw, n - 1)] + residuals if image > 0 else terms)
    return interval(by_image.mean(), seed + image, df)


def one_run(a, b):
    d = 100 * (a[0] - b[0])
    return interval(d.mean(), d.var(ddof=1) / len(d), len(d) - 1)


def binomial(first, second):
    terms = []
    for side in (first, second):
        p = np.mean(side["values"]) / 100
        terms.append((1e4 * p * (1 - p) / side["n"], side["n"] - 1))
        if len(side["values"]) > 1:
            terms.append((np.var(side["values"], ddof=1) / len(side["values"]), len(side["values"]) - 1))
    total = sum(v for v, _ in terms)
    return interval(np.mean(first["values"]) - np.mean(second["values"]), total, satterthwaite(total, terms))


METHODS = {
    "seed-paired": seed_paired,
    "seeds of each arm apart (Welch)": seeds_apart,
    "this run against that run": one_run,
}


def rows(side, attack, eps, seeds):
    """The side's per-image scores, one row per seed in the order `seeds` (a teacher's one run in every row)."""
    found = {seed: scores(folder, attack, eps) for seed, folder in zip(side["seeds"], side["runs"])}
    if side["seeds"] == [None]:
        return np.array([found[None]] * len(seeds))
    return np.array([found[seed] for seed in seeds])


@pytest.mark.parametrize("path", REPORTS, ids=[p.parent.parent.name for p in REPORTS])
def test_every_interval_recomputes_from_the_per_image_files(path):
    document = json.loads(path.read_text())
    checked = 0
    for c in document["comparisons"]:
        if c["interval"] is None:
            continue
        first, second = c["first"], c["second"]
        if c["method"] == "unpaired test images (binomial)":
            low, high = binomial(first, second)
        else:
            if c["method"] == "seed-paired":
                seeds = sorted(s for s in (first["seeds"] if first["seeds"] != [None] else second["seeds"]))
                a, b = rows(first, c["attack"], c["eps"], seeds), rows(second, c["attack"], c["eps"], seeds)
            else:
                a = np.array([scores(f, c["attack"], c["eps"]) for f in first["runs"]])
                b = np.array([scores(f, c["attack"], c["eps"]) for f in second["runs"]])
            low, high = METHODS[c["method"]](a, b)
        assert (low, high) == pytest.approx(tuple(c["interval"]), abs=1e-6), c["text"]
        checked += 1
    assert checked > 0


STUDY = "results/cifar10-converged/runs/"
HORIZON = ("node-t1_100", "node-t1_1")
ROBUSTNESS = ("pgd", [4, 8, 12, 16, 20])  # the primary robustness measure: PGD, mean over eps 4..20
# The results page's comparisons of one seed's runs, each "this run against that run": (seed's 320-epoch runs,
# first arm, second arm, measure).
QUOTED = [
    ("seed0/e320/", "kd-t1_1-adam", "node-t1_1", (None, [])),
    ("seed0/e320/", "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ("seed0/e320/", "node-t1_1-sgd", "node-t1_1", (None, [])),
    ("seed0/e320/", "kd-t1_1", "kd-t1_1-adam", (None, [])),
    ("seed0/e320/", "kd-t1_1", "node-t1_1", (None, [])),
    ("seed0/e320/", "kd-t1_1-adam", "node-t1_1", ROBUSTNESS),
    ("seed0/e320/", "node-t1_100", "node-t1_1", (None, [])),
    ("seed0/e320/", "node-t1_100", "node-t1_1", ROBUSTNESS),
    ("seed1/e320/", "node-t1_1-sgd", "node-t1_1", (None, [])),
    ("seed1/e320/", "kd-t1_1", "node-t1_1", (None, [])),
    ("seed1/e320/", "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ("seed1/e320/", "kd-t1_1-adam", "node-t1_1", (None, [])),
    ("seed2/e320/", "kd-t1_1", "node-t1_1", (None, [])),
    ("seed2/e320/", "node-t1_1-sgd", "node-t1_1", (None, [])),
    ("seed2/e320/", "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ("seed2/e320/", "kd-t1_1-adam", "node-t1_1", (None, [])),
    ("seed2/e320/", "node-t1_100", "node-t1_1", (None, [])),
    ("seed2/e320/", "node-t1_100", "node-t1_1", ROBUSTNESS),
    ("seed3/e320/", "kd-t1_1", "node-t1_1", (None, [])),
    ("seed3/e320/", "node-t1_1-sgd", "node-t1_1", (None, [])),
    ("seed3/e320/", "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ("seed3/e320/", "kd-t1_1-adam", "node-t1_1", (None, [])),
    ("seed3/e320/", "kd-t1_1", "node-t1_1", ROBUSTNESS),
    ("seed3/e320/", "kd-t1_1", "node-t1_1-sgd", ROBUSTNESS),
    ("seed3/e320/", "node-t1_100", "node-t1_1", (None, [])),
    ("seed3/e320/", "node-t1_100", "node-t1_1", ROBUSTNESS),
    ("seed4/e320/", "node-t1_100", "node-t1_1", (None, [])),
    ("seed4/e320/", "kd-t1_1-adam", "node-t1_1", (None, [])),
    ("seed4/e320/", "kd-t1_1", "node-t1_1", (None, [])),
    ("seed4/e320/", "node-t1_1-sgd", "node-t1_1", (None, [])),
    ("seed4/e320/", "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ("seed4/e320/", "kd-t1_1", "node-t1_1", ROBUSTNESS),
    ("seed4/e320/", "kd-t1_1", "node-t1_1-sgd", ROBUSTNESS),
    ("seed4/e320/", "node-t1_100", "node-t1_1", ROBUSTNESS),
]
# And seed-paired over several seeds (the crossed estimate): (seeds, first arm, second arm, measure).
PAIRED = [
    ((0, 1), "kd-t1_1", "node-t1_1", (None, [])),
    ((0, 1, 2), "kd-t1_1", "node-t1_1", (None, [])),
    ((0, 1, 2), "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ((0, 1, 2), "kd-t1_1-adam", "node-t1_1", (None, [])),
    ((0, 1, 2), "kd-t1_1", "node-t1_1-sgd", ROBUSTNESS),
    ((0, 1, 2), "kd-t1_1-adam", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3), "kd-t1_1", "node-t1_1", (None, [])),
    ((0, 1, 2, 3), "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ((0, 1, 2, 3), "kd-t1_1-adam", "node-t1_1", (None, [])),
    ((0, 1, 2, 3), "kd-t1_1", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3), "kd-t1_1", "node-t1_1-sgd", ROBUSTNESS),
    ((0, 1, 2, 3), "kd-t1_1-adam", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2), "node-t1_100", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3), "node-t1_100", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", (None, [])),
    ((0, 1, 2, 3, 4), "kd-t1_1", "node-t1_1", (None, [])),
    ((0, 1, 2, 3, 4), "node-t1_1-sgd", "node-t1_1", (None, [])),
    ((0, 1, 2, 3, 4), "kd-t1_1", "node-t1_1-sgd", (None, [])),
    ((0, 1, 2, 3, 4), "kd-t1_1-adam", "node-t1_1", (None, [])),
    ((0, 1, 2, 3, 4), "kd-t1_1", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3, 4), "node-t1_1-sgd", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3, 4), "kd-t1_1", "node-t1_1-sgd", ROBUSTNESS),
    ((0, 1, 2, 3, 4), "kd-t1_1-adam", "node-t1_1", ROBUSTNESS),
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", ROBUSTNESS),
    # The horizon eps by eps, under the paper's PGD and under APGD-CE (a stronger attack, shown and not counted).
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", ("pgd", [4])),
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", ("pgd", [8])),
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", ("apgd", [4])),
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", ("apgd", [8])),
    ((0, 1, 2, 3, 4), "node-t1_100", "node-t1_1", ("apgd", [4, 8])),
]


def test_the_results_pages_one_seed_figures_recompute_from_that_seeds_files():
    """docs/results.md quotes single seeds of the converged study run against run: each accuracy and each difference
    with its image-paired 95% interval is what that seed's per-image files give."""
    page = " ".join((REPOSITORY / "docs" / "results.md").read_text().split())  # lines joined
    computed = set()
    for seed, first, second, (attack, eps) in QUOTED:
        a, b = scores(STUDY + seed + first, attack, eps), scores(STUDY + seed + second, attack, eps)
        low, high = one_run(a[None], b[None])
        quoted = f"{100 * (a - b).mean():+.2f} ({low:+.2f} to {high:+.2f})"
        assert quoted in page, (seed, first, second, attack, quoted)
        computed.add(quoted)
        if attack is None:
            for side in (a, b):
                assert f"{100 * side.mean():.2f}%" in page, (first, second)
    for seeds, first, second, (attack, eps) in PAIRED:
        a = np.array([scores(f"{STUDY}seed{seed}/e320/{first}", attack, eps) for seed in seeds])
        b = np.array([scores(f"{STUDY}seed{seed}/e320/{second}", attack, eps) for seed in seeds])
        low, high = seed_paired(a, b)
        quoted = f"{100 * (a - b).mean():+.2f} ({low:+.2f} to {high:+.2f})"
        assert quoted in page, (seeds, first, second, attack, quoted)
        computed.add(quoted)
    # The README quotes some of them: every difference with an interval there is one computed here.
    readme = " ".join((REPOSITORY / "README.md").read_text().split())
    intervals = re.findall(r"[+-]\d+\.\d\d \([+-]\d+\.\d\d to [+-]\d+\.\d\d\)", readme)
    assert intervals and set(intervals) <= computed, set(intervals) - computed


def test_the_seed_by_seed_page_holds_every_committed_run_and_recomputes():
    """results/cifar10-converged/report/by_seed.md (written by by_seed.py with nodekd's statistics) holds every
    committed 320-epoch run's clean and PGD accuracy, and each comparison run against run on every seed and seed-paired
    over the seeds both arms ran, as computed here with scipy alone."""
    page = (REPOSITORY / STUDY / ".." / "report" / "by_seed.md").read_text()
    runs = {
        (int(folder.parent.parent.name[4:]), folder.name): f"{STUDY}{folder.parent.parent.name}/e320/{folder.name}"
        for folder in (REPOSITORY / STUDY).glob("seed*/e320/*")
        if (folder / "metrics.json").exists() and (folder / "attacks" / "pgd.json").exists()
    }
    assert len(runs) >= 15, sorted(runs)
    for measure in ((None, []), ROBUSTNESS):
        for folder in runs.values():
            assert f"| {100 * scores(folder, *measure).mean():.2f}% |" in page, (folder, measure[0])
        for first, second in (
            ("kd-t1_1", "node-t1_1"),
            ("node-t1_1-sgd", "node-t1_1"),
            ("kd-t1_1", "node-t1_1-sgd"),
            ("kd-t1_1-adam", "node-t1_1"),
            ("node-t1_100", "node-t1_1"),
        ):
            seeds = sorted(seed for seed, arm in runs if arm == first and (seed, second) in runs)
            a = np.array([scores(runs[seed, first], *measure) for seed in seeds])
            b = np.array([scores(runs[seed, second], *measure) for seed in seeds])
            for row, seed in enumerate(seeds):
                low, high = one_run(a[row][None], b[row][None])
                assert f"{100 * (a[row] - b[row]).mean():+.2f} ({low:+.2f} to {high:+.2f})" in page, (seed, first)
            low, high = seed_paired(a, b)
            quoted = f"{100 * (a - b).mean():+.2f} ({low:+.2f} to {high:+.2f}), {len(seeds)} seeds"
            assert quoted in page, (first, second, measure[0], quoted)
    # The horizon eps by eps under the paper's PGD and under APGD-CE (a stronger attack), on the seeds with both: each
    # row holds both arms' mean accuracy, each seed run against run and the seed-paired estimate.
    stronger = page.split("## The horizon under a stronger attack")[1].split("## From half")[0]
    seeds = sorted(seed for seed, arm in runs if arm == "node-t1_100" and (seed, "node-t1_1") in runs)
    seeds = [s for s in seeds if all((REPOSITORY / runs[s, arm] / "attacks" / "apgd.json").exists() for arm in HORIZON)]
    assert len(seeds) >= 5, seeds
    for e in (4, 8):
        for attack, title in (("pgd", "PGD"), ("apgd", "APGD-CE")):
            line = next(line for line in stronger.splitlines() if line.startswith(f"| {title}, {e}/255 |"))
            a, b = (np.array([scores(runs[seed, arm], attack, [e]) for seed in seeds]) for arm in HORIZON)
            assert f"| {100 * b.mean():.2f}% | {100 * a.mean():.2f}% |" in line, (attack, e)
            for row in range(len(seeds)):
                low, high = one_run(a[row][None], b[row][None])
                assert f"{100 * (a[row] - b[row]).mean():+.2f} ({low:+.2f} to {high:+.2f})" in line, (attack, e, row)
            low, high = seed_paired(a, b)
            assert f"{100 * (a - b).mean():+.2f} ({low:+.2f} to {high:+.2f}), {len(seeds)} seeds" in line, (attack, e)
    # From half to full budget: each arm's row of twin clean accuracies, then of training accuracies over the last 20
    # epochs of the 320-epoch runs, read here from metrics.json's bits and history.csv's columns.
    twins_table, training_table = page.split("## From half to full budget")[1].split("Training accuracy")
    names = {
        "node-t1_1": "NODEs(1), Adam",
        "node-t1_1-sgd": "NODEs(1), SGD",
        "kd-t1_1": "NODEs(1) + KD, SGD",
        "kd-t1_1-adam": "NODEs(1) + KD, Adam",
        "node-t1_100": "NODEs(100), Adam",
    }

    def row(table, arm):
        return next(line for line in table.splitlines() if line.startswith(f"| {names[arm]}"))

    for (seed, arm), folder in runs.items():
        header, *lines = (REPOSITORY / folder / "history.csv").read_text().split()
        column = header.split(",").index("train_accuracy")
        training = 100 * np.mean([float(line.split(",")[column]) for line in lines[-20:]])
        assert f"| {training:.2f}% |" in row(training_table, arm), (seed, arm, training)
        twin = folder.replace("/e320/", "/e160/")
        if (REPOSITORY / twin / "metrics.json").exists():
            assert f"| {100 * scores(twin, None, []).mean():.2f}% |" in row(twins_table, arm), (seed, arm)
