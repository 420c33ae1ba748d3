"""On a CUDA GPU: does the CUDA-graph train step compute what the eager one does?

Copies of ResNet20 with the same weights take the same 12 batches (the last one smaller, so it runs eagerly): two
through `SGDTrainStep`, one through `CudaGraphStep(SGDTrainStep)`, with cuDNN's deterministic algorithms. Prints the
largest weight difference between the two eager runs (the noise floor) and between eager and graph, and the logged
losses.

    python -m bench.graph_check [--json out.json]
"""

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_TORCH_DEVICE", "cuda")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json")
    args = parser.parse_args()
    import numpy as np
    import torch

    import models
    from nodekd_cli import teachers

    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    config = teachers.teacher_config("resnet20", "cifar10")
    torch.manual_seed(0)
    batches = [
        (torch.rand(128, 32, 32, 3, device="cuda"), torch.randint(0, 10, (128,), device="cuda")) for _ in range(11)
    ]
    batches.append((torch.rand(40, 32, 32, 3, device="cuda"), torch.randint(0, 10, (40,), device="cuda")))
    results = {}
    weights = None
    for name, graph in (("eager", False), ("eager_again", False), ("graph", True)):
        model = models.build_teacher("resnet20", mean=[0.5] * 3, std=[0.25] * 3)
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        step = teachers.prepare_training(model, config, steps_per_epoch=12, cuda_graph=graph)
        for batch in batches:
            logs = step(batch)
        torch.cuda.synchronize()
        results[name] = {
            "weights": model.get_weights(),
            "loss": float(logs["loss"]),
            "accuracy": float(logs["accuracy"]),
            "captured": graph and step.graph is not None,
        }

    def difference(a, b):
        return max(float(np.abs(x - y).max()) for x, y in zip(results[a]["weights"], results[b]["weights"]))

    summary = {
        "device": torch.cuda.get_device_name(),
        "graph_captured": results["graph"]["captured"],
        "max_weight_difference_eager_vs_eager": difference("eager", "eager_again"),
        "max_weight_difference_eager_vs_graph": difference("eager", "graph"),
        "loss_eager": results["eager"]["loss"],
        "loss_graph": results["graph"]["loss"],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(summary, file, indent=2)


if __name__ == "__main__":
    main()
