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
