"""Markdown tables of the paper's independent sweeps beside `--sweep monotone` sweeps of the same runs, images and
seed (`results/sweep-monotone/make.sh` makes them): accuracy at each eps, and what each sweep cost in attacked
image-steps, counted from the results themselves.

    python -m bench.sweep_summary results/sweep-monotone/runs

A sweep attacks at each eps > 0 the images it still counts: an independent sweep every image classified correctly
clean, a monotone sweep those that no smaller eps has broken (its accuracy at the eps before). Each attacked image
costs the eps's gradient steps and one prediction.
"""

import json
import statistics
import sys
from pathlib import Path

from nodekd_cli.attacks import num_steps

SHOWN = (1, 2, 4, 8, 12, 16, 20)  # eps columns of the accuracy table (all eps enter the differences and costs)


def image_steps(result):
    """Attacked image-steps of a saved sweep (`attacks.sweep`), from its accuracies, eps and image count."""
    accuracy, n, monotone = result["accuracy"], result["n"], result["settings"]["sweep"] == "monotone"
    total = 0.0
    for i, e in enumerate(result["eps"]):
        if e:
            attacked = round((accuracy[i - 1] if monotone else accuracy[0]) * n)
            total += attacked * (num_steps(e) + 1)
    return total


def _label(config):
    if config["kind"] == "teacher":
        return config["model"]
    kd = "" if config.get("T") is None else " + KD"
    return f"NODEs({config['t1']:g}){kd}"


def main(root):
    root = Path(root)
    rows, shares = [], {}
    for folder in sorted((root / "independent").iterdir()):
        config = json.loads((folder / "config.json").read_text())
        for attack in ("pgd", "mifgsm"):
            independent = json.loads((folder / "attacks" / f"{attack}.json").read_text())
            monotone = json.loads((root / "monotone" / folder.name / "attacks" / f"{attack}.json").read_text())
            if independent["eps"] != monotone["eps"] or independent.get("images") != monotone.get("images"):
                raise SystemExit(f"{folder.name} {attack}: the two sweeps took different eps or images")
            gaps = [100 * (a - b) for a, b in zip(independent["accuracy"], monotone["accuracy"], strict=True)]
            share = image_steps(monotone) / image_steps(independent)
            shares.setdefault(attack, []).append(share)
            rows.append((_label(config), attack, independent, monotone, gaps, share))
    at = {e: i for i, e in enumerate(rows[0][2]["eps"])}
    columns = [e for e in SHOWN if e in at]
    print(f"Accuracy (%) on the same {rows[0][2]['n']} test images, independent / monotone:\n")
    print("| model | attack | clean | " + " | ".join(f"eps {e}" for e in columns) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for label, attack, independent, monotone, _, _ in rows:
        cells = [
            f"{100 * independent['accuracy'][at[e]]:.1f} / {100 * monotone['accuracy'][at[e]]:.1f}" for e in columns
        ]
        print(f"| {label} | {attack} | {100 * independent['accuracy'][0]:.1f} | " + " | ".join(cells) + " |")
    print("\nIndependent minus monotone (points, over eps 1 to 20) and the cost of the monotone sweep:\n")
    print(
        "| model | attack | gaps from / to | mean gap | gap at 8, 12, 16, 20 | image-steps, monotone / independent"
        " | seconds, monotone / independent |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, attack, independent, monotone, gaps, share in rows:
        paper = ", ".join(f"{gaps[at[e]]:.1f}" for e in (8, 12, 16, 20) if e in at)
        seconds = monotone["seconds"] / independent["seconds"]
        print(
            f"| {label} | {attack} | {min(gaps[1:]):.1f} / {max(gaps[1:]):.1f} | "
            f"{statistics.mean(gaps[1:]):.2f} | {paper} | {share:.3f} | {seconds:.3f} |"
        )
    print()
    for attack, values in shares.items():
        print(f"- {attack}: monotone / independent image-steps from {min(values):.3f} to {max(values):.3f}")
    every = [g for *_, gaps, _ in rows for g in gaps[1:]]
    print(f"- gaps over every model, attack and eps > 0: from {min(every):.1f} to {max(every):.1f} points")
    seconds = [monotone["seconds"] / independent["seconds"] for _, _, independent, monotone, _, _ in rows]
    print(f"- seconds, monotone / independent: from {min(seconds):.3f} to {max(seconds):.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
