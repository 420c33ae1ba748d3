"""The converged study seed by seed, from the committed per-image files: each arm's clean and PGD accuracy on every
seed, and each comparison run against run on every seed beside its seed-paired estimate over the seeds both arms ran;
the horizon's comparison eps by eps under the paper's PGD and under APGD-CE (a stronger attack, not the paper's);
then how far each arm moved from half to full budget (its 160-epoch twin's clean accuracy, and the training accuracy
of each run's last epochs). The results page's seed table and seed-by-seed figures are quoted from its output.

    python results/cifar10-converged/by_seed.py > results/cifar10-converged/report/by_seed.md

(the report stage of make.sh runs it). Intervals are nodekd's (nodekd_cli/report/stats.py, docs/statistics.md):
one run against one, the image-paired 95% t interval; over seeds, the crossed seeds-by-images estimate.
"""

import csv
import json
from pathlib import Path

import numpy as np

from nodekd_cli.report.comparisons import PRIMARY_ATTACK, ROBUSTNESS_EPS
from nodekd_cli.report.stats import crossed, one_run
from nodekd_cli.runs import read_bits

RUNS = Path(__file__).resolve().parent / "runs"
BUDGET = 320
ARMS = {
    "node-t1_1": "NODEs(1), Adam",
    "node-t1_1-sgd": "NODEs(1), SGD",
    "kd-t1_1": "NODEs(1) + KD, SGD (the paper's)",
    "kd-t1_1-adam": "NODEs(1) + KD, Adam",
    "node-t1_100": "NODEs(100), Adam",
}
COMPARISONS = (
    ("kd-t1_1", "node-t1_1", "the paper's pairing (SGD distilled against Adam alone)"),
    ("node-t1_1-sgd", "node-t1_1", "the optimizer alone (SGD against Adam)"),
    ("kd-t1_1", "node-t1_1-sgd", "distillation, SGD on both arms"),
    ("kd-t1_1-adam", "node-t1_1", "distillation, Adam on both arms"),
    ("node-t1_100", "node-t1_1", "the horizon (t1 = 100 against 1)"),
)
MEASURES = (("clean", "clean accuracy, 10,000 test images"), ("pgd", "PGD, mean over eps 4..20, 1,000 test images"))
LAST_EPOCHS = 20  # the training accuracy of a run's end: the mean over its last epochs (one epoch is noisy)


HORIZON = ("node-t1_100", "node-t1_1")
STRONGER = "apgd"  # APGD-CE, 100 iterations at every eps (`nodekd attack apgd`), on the same 1,000 test images
STRONGER_EPS = (4, 8)  # where the horizon's PGD advantage lies (make.sh's apgd stage)


def scores(folder, measure, attack=PRIMARY_ATTACK, eps=ROBUSTNESS_EPS):
    """The run's per-image scores (fractions) on a measure (clean, or `attack` averaged over eps `eps[0]..eps[1]`),
    or None where the run has not recorded it."""
    if measure == "clean":
        bits = read_bits(json.loads((folder / "metrics.json").read_text()).get("test_correct"))
        return None if bits is None else np.array(bits, dtype=float)
    path = folder / "attacks" / f"{attack}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    low, high = eps  # by default the report's primary robustness measure: the mean over these eps (/255)
    rows = [read_bits(bits) for eps, bits in zip(result["eps"], result["correct"]) if low <= eps <= high]
    return np.array(rows, dtype=float).mean(axis=0)


def finished(seed, arm):
    folder = RUNS / f"seed{seed}" / f"e{BUDGET}" / arm
    done = (folder / "metrics.json").exists() and (folder / "attacks" / f"{PRIMARY_ATTACK}.json").exists()
    return folder if done else None


def training_accuracy(folder):
    """The run's training accuracy (percent) over its last LAST_EPOCHS epochs, from history.csv."""
    with open(folder / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return 100 * float(np.mean([float(row["train_accuracy"]) for row in rows[-LAST_EPOCHS:]]))


def twin(seed, arm):
    """The 160-epoch twin's folder, where it has finished."""
    folder = RUNS / f"seed{seed}" / f"e{BUDGET // 2}" / arm
    return folder if (folder / "metrics.json").exists() else None


def table(seeds, cell):
    """One row an arm, one column a seed; cell(seed, arm) gives a value or None."""
    print("| arm | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean (seeds) |")
    print("| --- |" + " --- |" * (len(seeds) + 1))
    for arm, name in ARMS.items():
        values = [cell(seed, arm) for seed in seeds]
        have = [v for v in values if v is not None]
        cells = [f"{v:.2f}%" if v is not None else "-" for v in values]
        mean = f"{np.mean(have):.2f}% ({len(have)})" if have else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    print()


def estimates(seeds, a, b):
    """Cells of a comparison row: each seed run against run, then seed-paired over the seeds in `a` and `b`."""
    both = [seed for seed in seeds if seed in a and seed in b]
    cells = []
    for seed in seeds:
        if seed in both:
            e = one_run(a[seed], b[seed])
            cells.append(f"{e.difference:+.2f} ({e.low:+.2f} to {e.high:+.2f})")
        else:
            cells.append("-")
    if len(both) >= 2:
        e = crossed(np.array([a[seed] - b[seed] for seed in both]))
        cells.append(f"{e.difference:+.2f} ({e.low:+.2f} to {e.high:+.2f}), {len(both)} seeds")
    else:
        cells.append("-")
    return cells


def stronger_attack(seeds, runs):
    """The horizon's comparison at each eps of STRONGER_EPS under the paper's PGD and under STRONGER, where both arms
    have both on some seed."""
    measured = {
        (seed, arm): runs[seed, arm]
        for seed in seeds
        for arm in HORIZON
        if (seed, arm) in runs and (runs[seed, arm] / "attacks" / f"{STRONGER}.json").exists()
    }
    if not any((seed, HORIZON[0]) in measured and (seed, HORIZON[1]) in measured for seed in seeds):
        return
    print("## The horizon under a stronger attack\n")
    print("NODEs(100) against NODEs(1) at each eps where the paper's PGD finds the horizon's advantage, under PGD and")
    print("under APGD-CE (`nodekd attack apgd`: AutoAttack's first component, 100 iterations at every eps, not the")
    print("paper's), on the same 1,000 test images. Accuracy: mean over the seeds with both attacks; comparisons as")
    print("above, points.\n")
    print(
        "| attack, eps | NODEs(1) | NODEs(100) | " + " | ".join(f"seed {seed}" for seed in seeds) + " | seed-paired |"
    )
    print("| --- |" + " --- |" * (len(seeds) + 3))
    for e in STRONGER_EPS:
        for attack, title in ((PRIMARY_ATTACK, "PGD"), (STRONGER, "APGD-CE")):
            side = [
                {
                    seed: scores(measured[seed, arm], "attack", attack, (e, e))
                    for seed in seeds
                    if (seed, arm) in measured
                }
                for arm in HORIZON
            ]
            means = [f"{100 * np.mean([v.mean() for v in found.values()]):.2f}%" for found in side[::-1]]
            cells = estimates(seeds, *side)
            print(f"| {title}, {e}/255 | " + " | ".join(means + cells) + " |")
    print()


def main():
    seeds = sorted(int(p.name[4:]) for p in RUNS.glob("seed*") if p.name[4:].isdigit())
    runs = {(seed, arm): finished(seed, arm) for seed in seeds for arm in ARMS}
    runs = {key: folder for key, folder in runs.items() if folder is not None}
    seeds = [seed for seed in seeds if any((seed, arm) in runs for arm in ARMS)]
    print("# The converged study, seed by seed\n")
    print("Written by `python results/cifar10-converged/by_seed.py` from the committed per-image files")
    print(f"({BUDGET} epochs; a seed draws the class-stratified 1,000 training images and the initial weights,")
    print("the same for every arm).\n")
    for measure, label in MEASURES:
        print(f"## Accuracy: {label}\n")
        table(seeds, lambda seed, arm: 100 * scores(runs[seed, arm], measure).mean() if (seed, arm) in runs else None)
    for measure, label in MEASURES:
        print(f"## Comparisons: {label}\n")
        print("Each seed: this run against that run (image-paired 95% t interval), points. Last column: seed-paired")
        print("over the seeds both arms ran (crossed seeds-by-images 95% t interval).\n")
        print("| comparison | " + " | ".join(f"seed {seed}" for seed in seeds) + " | seed-paired |")
        print("| --- |" + " --- |" * (len(seeds) + 1))
        for first, second, name in COMPARISONS:
            both = [seed for seed in seeds if (seed, first) in runs and (seed, second) in runs]
            a = {seed: scores(runs[seed, first], measure) for seed in both}
            b = {seed: scores(runs[seed, second], measure) for seed in both}
            print(f"| {name} | " + " | ".join(estimates(seeds, a, b)) + " |")
        print()
    stronger_attack(seeds, runs)
    print("## From half to full budget\n")
    print(f"Clean accuracy of the {BUDGET // 2}-epoch twins (10,000 test images; against the first table's {BUDGET}")
    print("epochs):\n")
    table(seeds, lambda seed, arm: 100 * scores(twin(seed, arm), "clean").mean() if twin(seed, arm) else None)
    print(f"Training accuracy of the {BUDGET}-epoch runs on their 1,000 training images, mean over the last")
    print(f"{LAST_EPOCHS} epochs (history.csv):\n")
    table(seeds, lambda seed, arm: training_accuracy(runs[seed, arm]) if (seed, arm) in runs else None)


if __name__ == "__main__":
    main()
