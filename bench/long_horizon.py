"""Which student design lets long time horizons train: candidates of the dynamics and of the recipe, each trained
with the same budget at several t1, on digits and on real CIFAR-10 images.

    python -m bench.long_horizon --dataset digits --t1 1,100,500
    python -m bench.long_horizon --dataset cifar10 --t1 1,100 --cifar ../shared/data/cifar10-jpeg

A candidate is a student design (`--time-input`, `--norm`, `--init` of `nodekd student train`) and possibly a
recipe change (Adam's learning rate, the solver's tolerance); every other setting is the data set's default of
`nodekd student train` (digits: 32 channels, batch 32, 20 epochs), narrowed by the options below for CIFAR-10.
Each result is appended to `--out` (JSON lines) as soon as it exists, so an interrupted sweep resumes where it
stopped; `--markdown` prints the table of every result in that file.
"""

import argparse
import json
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from nodekd_cli.students import ODENET

CANDIDATES = {
    "odenet": {"dynamics": ODENET},
    "time t/t1": {"dynamics": {**ODENET, "time_input": "scaled"}},
    "no time": {"dynamics": {**ODENET, "time_input": "none"}},
    "identity init": {"dynamics": {**ODENET, "init": "identity"}},
    "post-norm": {"dynamics": {**ODENET, "norm": "post"}},
    "Adam lr / 10": {"dynamics": ODENET, "lr": 1e-4},
    "tolerance 1e-2": {"dynamics": ODENET, "rtol": 1e-2, "atol": 1e-2},
    "t/t1 + identity": {"dynamics": {**ODENET, "time_input": "scaled", "init": "identity"}},
    "no time + identity": {"dynamics": {**ODENET, "time_input": "none", "init": "identity"}},
    "t/t1 + identity + post": {"dynamics": {"time_input": "scaled", "norm": "post", "init": "identity"}},
    "horizon init": {"dynamics": {**ODENET, "init": "horizon"}},
    "t/t1 + horizon init": {"dynamics": {**ODENET, "time_input": "scaled", "init": "horizon"}},
    "no time + horizon init": {"dynamics": {**ODENET, "time_input": "none", "init": "horizon"}},
}


def balanced(labels, count, rng, classes=10):
    """Sorted indices of `count` items drawn evenly from the classes."""
    per_class = count // classes
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(classes)]))


def cifar_folder(archives, train_images, test_images=10000, seed=0):
    """The real CIFAR-10 JPEG images as a data set: `train_images` training and `test_images` test images, each
    drawn evenly from the classes with `seed`."""
    from nodekd_cli.data import Dataset, folder

    root = Path(tempfile.mkdtemp(prefix="cifar10-jpeg-"))
    for split in ("train", "test"):
        with tarfile.open(Path(archives) / f"{split}.tar.xz") as archive:
            archive.extractall(root, filter="data")
    full = folder.load(str(root), name=f"folder:{root}")
    rng = np.random.default_rng(seed)
    train, test = balanced(full.y_train, train_images, rng), balanced(full.y_test, test_images, rng)
    return Dataset(
        full.name, full.x_train[train], full.y_train[train], full.x_test[test], full.y_test[test], full.classes
    )


def run(candidate, t1, dataset, name, budget):
    import models
    from nodekd_cli import runs, students

    spec = CANDIDATES[candidate]
    solver = models.Solver(rtol=spec.get("rtol", 1e-3), atol=spec.get("atol", 1e-3))
    budget = {"lr": spec.get("lr"), **budget}
    config = students.student_config(name, t1=t1, dynamics=dict(spec["dynamics"]), solver=solver, **budget)
    with tempfile.TemporaryDirectory() as folder:
        runs.write_json(Path(folder) / runs.CONFIG, config)
        started = time.perf_counter()
        try:
            metrics = students.train(folder, config, dataset)
        except Exception as error:  # noqa: BLE001  (a candidate that fails is a result too)
            return {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
        history = runs.read_history(Path(folder) / runs.HISTORY)
    return {
        "test_accuracy": 100 * metrics["test_accuracy"],
        "test_nfe": metrics["test_nfe"],
        "train_nfe": float(history[-1]["train_nfe"]),
        "seconds_per_epoch": statistics.median(float(row["seconds"]) for row in history),
        "accuracy_by_epoch": [round(100 * float(row["test_accuracy"]), 2) for row in history],
        "wall_seconds": time.perf_counter() - started,
    }


def markdown(results):
    """One table per data set and budget: a row per candidate, a column per t1."""

    def budget_of(r):
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["budget"].items()) or "the data set's defaults"

    lines = []
    groups = dict.fromkeys((r["dataset"], budget_of(r)) for r in results)
    for dataset, budget in sorted(groups, key=lambda group: group[0] != "digits"):  # digits first, else as run
        group = [r for r in results if (r["dataset"], budget_of(r)) == (dataset, budget)]
        horizons = sorted({r["t1"] for r in group})
        by_key = {(r["candidate"], r["t1"]): r for r in group}
        lines += [f"{dataset}, {budget}: test accuracy %, mean forward NFE per test batch, seconds per epoch", ""]
        lines.append("| candidate | " + " | ".join(f"t1 = {t:g}" for t in horizons) + " |")
        lines.append("| --- |" + " --- |" * len(horizons))
        for candidate in CANDIDATES:
            cells = []
            for t in horizons:
                r = by_key.get((candidate, t))
                if r is None:
                    cells.append("")
                elif "error" in r:
                    cells.append(f"failed ({r['error'][:40]})")
                else:
                    cells.append(f"{r['test_accuracy']:.2f} (NFE {r['test_nfe']:.0f}, {r['seconds_per_epoch']:.0f} s)")
            if any(cells):
                lines.append(f"| {candidate} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=("digits", "cifar10"))
    parser.add_argument("--t1", default="1,100,500", help="comma-separated time horizons")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated names")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--lr", type=float, help="learning rate of every candidate (default: its own)")
    parser.add_argument("--train-images", type=int, default=10000, help="CIFAR-10 training images")
    parser.add_argument("--test-images", type=int, default=10000, help="CIFAR-10 test images")
    parser.add_argument("--cifar", default="../shared/data/cifar10-jpeg", help="folder of train/test.tar.xz")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", default="bench/results/long_horizon.jsonl")
    parser.add_argument("--markdown", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args()
    out = Path(args.out)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if args.markdown:
        print(markdown(done))
        return
    from nodekd_cli import backend

    backend.select("cpu")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from nodekd_cli.data import load_dataset

    budget = {
        k: v
        for k, v in (
            ("epochs", args.epochs),
            ("batch_size", args.batch_size),
            ("channels", args.channels),
            ("lr", args.lr),
        )
        if v is not None
    }
    if args.dataset == "cifar10":
        dataset = cifar_folder(args.cifar, args.train_images, args.test_images)
        budget.update(train_images=len(dataset.x_train), test_images=len(dataset.x_test))
    else:
        dataset = load_dataset("digits")
    training_budget = {k: v for k, v in budget.items() if not k.endswith("_images")}
    for candidate in args.candidates.split(","):
        if candidate not in CANDIDATES:
            parser.error(f"unknown candidate {candidate!r}; choose from: {', '.join(CANDIDATES)}")
        for t1 in (float(t) for t in args.t1.split(",")):
            key = {"dataset": args.dataset, "candidate": candidate, "t1": t1, "budget": budget}
            if any({k: r[k] for k in key} == key for r in done):
                continue
            result = {**key, **run(candidate, t1, dataset, dataset.name, training_budget)}
            print(json.dumps(result), flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as file:
                file.write(json.dumps(result) + "\n")
            done.append(result)


if __name__ == "__main__":
    main()
