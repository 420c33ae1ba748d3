"""Why NODEs(100) stay at chance on digits: the student of `nodekd reproduce --preset quick` at t1 = 100, trained as
it is and with its time channel held at zero (time-independent dynamics), same seed and budget.

    python -m bench.time_input            # about 2.5 minutes on a 2-core CPU

In odenet's dynamics (`models.ConvODEFunc`) time enters every convolution as a constant extra channel holding t; at
t near 100 that channel dominates the GroupNorm-ed features. This script measures what that costs.
"""

import argparse
import json
import tempfile
from pathlib import Path


def train(zero_time, epochs, batch_size):
    from models.ode import ConvODEFunc
    from nodekd_cli import runs, students
    from nodekd_cli.data import load_dataset

    dynamics = ConvODEFunc.dynamics
    if zero_time:
        ConvODEFunc.dynamics = lambda self, t, y, params=None: dynamics(self, t * 0, y, params)
    try:
        config = students.student_config("digits", t1=100.0, epochs=epochs, batch_size=batch_size)
        with tempfile.TemporaryDirectory() as folder:
            runs.write_json(Path(folder) / runs.CONFIG, config)
            return students.train(folder, config, load_dataset("digits"))
    finally:
        ConvODEFunc.dynamics = dynamics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    from nodekd_cli import backend

    backend.select("cpu")
    results = {}
    for name, zero_time in (("time channel t (as trained)", False), ("time channel 0", True)):
        metrics = train(zero_time, args.epochs, args.batch_size)
        results[name] = {"test_accuracy": metrics["test_accuracy"], "test_nfe": metrics["test_nfe"]}
        print(f"{name}: test accuracy {100 * metrics['test_accuracy']:.2f}%, test NFE {metrics['test_nfe']:.0f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
