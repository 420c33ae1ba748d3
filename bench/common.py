"""What the step benchmarks share: their command line, and the JSON file their figures may also go to."""

import argparse
import json


def parser(doc, steps, steps_help="timed steps of each"):
    """A parser with the options every step benchmark takes: --device, --batch-size, --steps and --json."""
    found = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    found.add_argument("--device", default="cpu")
    found.add_argument("--batch-size", type=int, default=128)
    found.add_argument("--steps", type=int, default=steps, help=steps_help)
    found.add_argument("--json", help="also write the results to this file")
    return found


def save(results, path):
    """Writes `results` to `path` as JSON, when a path is given."""
    if path:
        with open(path, "w") as file:
            json.dump(results, file, indent=2)


def device_name(device):
    """The GPU's name, or the CPU and its core count: how the benchmarks name where they ran."""
    import os

    import torch

    return torch.cuda.get_device_name() if str(device).startswith("cuda") else f"cpu ({os.cpu_count()} cores)"


def timed(run, device):
    """(seconds, what `run()` returned, peak GPU memory in GiB or None) of one call of `run`, with the device
    synchronized before and after."""
    import time

    import torch

    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = run()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, result, torch.cuda.max_memory_allocated() / 2**30 if cuda else None
