"""Fits the CPU figures of the dry-run's cost model (`nodekd_cli.costs.COSTS["cpu"]`: per image of a solve, per
batch, per input image) to three student runs trained at t1 = 1 on this machine, and prints each run's estimate
with them beside what it took. docs/study.md, "The cost model", quotes the fit of:

    nodekd reproduce --preset quick --runs ../quick-runs            # the quick study's NODEs(1): 4x4 states
    python -m bench.cost_fit results/mixed-precision/runs/kd-float32-1 ../quick-runs/node-digits-t1_1 \\
        results/mixed-precision/runs/node-cifar10-float32-1 --check results/mixed-precision/runs/*float32-100

The three runs must differ in what they weigh (states of 8x8 and 4x4 pixels, 8x8 from 32x32 inputs), or the fit is
singular. Runs after --check are estimated with the fitted figures and not fitted.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from nodekd_cli import costs, data


def _terms(config):
    """Per-run totals that multiply each figure: passes, solved 8x8-state images, 32x32 input images."""
    pixels = data.info(config["dataset"]).sizes[2]
    passes, images = costs.epoch_work(config)
    solved = pixels / 4 ** config["downsample"] / 64 * (config["channels"] / 32) ** 2
    return np.array([passes, images * solved, images * pixels / 1024]) * config["epochs"]


def _read(folder):
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    return config, json.loads((folder / "metrics.json").read_text())["train_seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs=3, help="three student run folders trained at t1 = 1")
    parser.add_argument("--check", nargs="*", default=[], help="run folders to estimate with the fit")
    args = parser.parse_args()
    fitted = [_read(folder) for folder in args.runs]
    if any(config["t1"] != 1 for config, _ in fitted):
        raise SystemExit("fit runs trained at t1 = 1")
    per_pass, per_image, per_input = np.linalg.solve(
        np.array([_terms(config) for config, _ in fitted]), np.array([seconds for _, seconds in fitted])
    )
    print(f"pass {per_pass:.4g} s, student (per 8x8 image at 32 channels) {per_image:.4g} s, input {per_input:.4g} s")
    for folder in [*args.runs, *args.check]:
        config, seconds = _read(folder)
        growth = costs.nfe_growth(config)
        passes, solved, inputs = _terms(config)
        estimate = growth * (passes * per_pass + solved * per_image) + inputs * per_input
        print(f"{folder}: t1 {config['t1']:g}, estimate {estimate:.1f} s, took {seconds:.1f} s")


if __name__ == "__main__":
    main()
