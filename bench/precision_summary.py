"""A Markdown table of student runs that differ only in precision: accuracy, NFE and time of each float32 run beside
its mixed_bfloat16 twin (`results/mixed-precision/make.sh` makes them).

    python -m bench.precision_summary results/mixed-precision/runs
"""

import csv
import json
import statistics
import sys
from pathlib import Path

# What may differ between the two runs of a pair (the rest of config.json must agree).
OWN = {"precision", "versions", "device", "changes"}


def _read(folder):
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    with open(folder / "history.csv") as file:
        history = list(csv.DictReader(file))
    return config, metrics, history


def _key(config):
    return json.dumps({k: v for k, v in config.items() if k not in OWN | {"teacher"}}, sort_keys=True)


def main(root):
    runs = [_read(folder) for folder in sorted(Path(root).iterdir()) if (folder / "metrics.json").exists()]
    pairs = {}
    for run in runs:
        pairs.setdefault(_key(run[0]), {})[run[0].get("precision", "float32")] = run
    print(
        "| data set | t1 | precision | test accuracy | difference | NFE forward (train, median of epochs) | test NFE |"
        " train time |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for pair in pairs.values():
        if set(pair) != {"float32", "mixed_bfloat16"}:
            raise SystemExit(f"unpaired runs: {sorted(pair)}")
        base = 100 * pair["float32"][1]["test_accuracy"]
        for precision in ("float32", "mixed_bfloat16"):
            config, metrics, history = pair[precision]
            accuracy = 100 * metrics["test_accuracy"]
            difference = "" if precision == "float32" else f"{accuracy - base:+.2f}"
            nfe = statistics.median(float(row["train_nfe"]) for row in history)
            dataset = config["dataset"].split("/")[-1]
            print(
                f"| {dataset} | {config['t1']:g} | {precision} | {accuracy:.2f}% | {difference} | {nfe:.1f} | "
                f"{metrics['test_nfe']:.1f} | {metrics['train_seconds']:.0f} s |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
