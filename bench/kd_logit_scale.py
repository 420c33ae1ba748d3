"""Why a distilled student trained with Adam lags in a short budget: the teacher's logit scale.

    python -m bench.kd_logit_scale --teacher runs/resnet20 --t1 1,100 --optimizer adam --scale 1,3

Trains distilled students (Algorithm 1, T = 3, lambda = 0.9) on the teacher's data set with the quick study's
student budget (16 epochs at batch 64 after one stride-2 convolution) and the teacher's logits divided by `--scale`
before the softmax at T: a teacher with the same ranking of classes and a smaller logit range. Each result (test
accuracy, the mean max-minus-min logit range of the student and of the teacher over the test set) is appended to
`--out` as a JSON line; docs/research-notes.md, "Distillation with Adam learns slowest", reads them.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def logit_range(model, x, batch_size=512):
    import torch

    with torch.no_grad():
        batches = [model(torch.as_tensor(x[i : i + batch_size])).cpu() for i in range(0, len(x), batch_size)]
    z = np.concatenate([np.asarray(b) for b in batches])
    return float(np.mean(z.max(axis=1) - z.min(axis=1)))


def run(teacher_run, t1, optimizer, scale, epochs, batch_size, downsample, lr):
    from nodekd_cli import data, runs, students

    found, teacher = students.load_teacher(teacher_run)
    teacher_config = found.config
    dataset = data.load_dataset(teacher_config["dataset"])
    budget = {"epochs": epochs, "batch_size": batch_size, "downsample": downsample, "lr": lr}
    config = students.student_config(
        teacher_config["dataset"],
        t1=t1,
        teacher_run=teacher_run,
        teacher_model_name=teacher_config["model"],
        temperature=3.0,
        optimizer=optimizer,
        **budget,
    )
    folder = Path(tempfile.mkdtemp(prefix="kd-logit-scale-"))
    runs.open_run(folder, {**config, "versions": runs.versions(), "device": "cpu"})
    # The student's run reads its soft targets from this file when it exists (Algorithm 1, lines 1-2).
    logits = students.soft_targets(folder, teacher, dataset)
    np.save(folder / students.SOFT_TARGETS_FILE, logits / scale)
    start = time.perf_counter()
    metrics = students.train(folder, config, dataset, teacher=teacher)
    _, student = students.load(folder)
    x_test = dataset.x_test.astype(np.float32) / 255
    return {
        "teacher": str(teacher_run),
        "t1": t1,
        "optimizer": config["optimizer"],
        "lr": config["lr"],
        "scale": scale,
        "epochs": epochs,
        "batch_size": batch_size,
        "downsample": downsample,
        "test_accuracy": round(100 * metrics["test_accuracy"], 2),
        "student_logit_range": round(logit_range(student, x_test), 2),
        "teacher_logit_range": round(logit_range(teacher, x_test), 2),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="runs/resnet20", help="a finished teacher run")
    parser.add_argument("--t1", default="1,100", help="time horizons, comma-separated")
    parser.add_argument("--optimizer", default="adam", help="auto, sgd or adam")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the data set's)")
    parser.add_argument("--scale", default="1,3", help="divisors of the teacher's logits, comma-separated")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--downsample", type=int, default=1)
    parser.add_argument("--out", default="bench/results/kd_logit_scale.jsonl")
    args = parser.parse_args()
    import models  # noqa: F401  (the torch backend before Keras is imported)

    for t1 in (float(v) for v in args.t1.split(",")):
        for scale in (float(v) for v in args.scale.split(",")):
            budget = (args.epochs, args.batch_size, args.downsample, args.lr)
            result = run(args.teacher, t1, args.optimizer, scale, *budget)
            print(json.dumps(result))
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
