"""One teacher train step: nodekd's Keras ResNet20 against the same network in plain PyTorch.

Both run in this process on the same device and the same batch (128 CIFAR-sized images in [0, 1], NHWC): a
forward pass, cross-entropy, a backward pass and an SGD step with momentum 0.9 and weight decay 1e-4. Steps are
interleaved (Keras, PyTorch, Keras, ...) so that noise from a shared machine hits both alike; the medians and
their ratio are printed.

    python -m bench.teacher_step                        # CPU
    python -m bench.teacher_step --device cuda --variants eager,bf16,graph,graph+bf16 --json out.json
"""

import os
import statistics
import time

from bench import common

os.environ.setdefault("KERAS_BACKEND", "torch")


def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def keras_step(variant, x, y, device):
    """nodekd's teacher train step, as `nodekd teacher train` installs it, called through Keras."""
    import models
    from nodekd_cli import teachers

    config = teachers.teacher_config("resnet20", "cifar10", lr=0.1, weight_decay=1e-4)
    dtype = "mixed_bfloat16" if "bf16" in variant else None
    model = models.build_teacher("resnet20", mean=[0.49, 0.48, 0.45], std=[0.25, 0.24, 0.26], dtype=dtype)
    teachers.prepare_training(model, config, steps_per_epoch=391, cuda_graph="graph" in variant)
    return lambda: model.train_on_batch(x, y)


def torch_step(x, y, device):
    import torch

    from bench.reference import TorchResNet

    model = TorchResNet(20).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    mean = torch.tensor([0.49, 0.48, 0.45], device=device)
    std = torch.tensor([0.25, 0.24, 0.26], device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(((x - mean) / std).permute(0, 3, 1, 2))
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        return (loss.item(), (logits.argmax(1) == y).float().mean().item())

    return step


def timed(step, device):
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def main():
    parser = common.parser(__doc__, steps=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", default="eager", help="comma-separated: eager, bf16, graph, graph+bf16")
    args = parser.parse_args()
    os.environ["KERAS_TORCH_DEVICE"] = args.device

    import torch

    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 32, 32, 3, device=args.device)
    y = torch.randint(0, 10, (args.batch_size,), device=args.device)
    reference = torch_step(x, y, args.device)
    results = {
        "device": common.device_name(args.device),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "variants": {},
    }
    for variant in args.variants.split(","):
        step = keras_step(variant, x, y, args.device)
        compile_start = time.perf_counter()
        for _ in range(args.warmup):
            step()
            reference()
        warmup_seconds = time.perf_counter() - compile_start
        keras_times, torch_times = [], []
        for _ in range(args.steps):
            keras_times.append(timed(step, args.device))
            torch_times.append(timed(reference, args.device))
        keras_median, torch_median = statistics.median(keras_times), statistics.median(torch_times)
        results["variants"][variant] = {
            "keras_median_ms": 1000 * keras_median,
            "torch_eager_fp32_median_ms": 1000 * torch_median,
            "ratio": keras_median / torch_median,
            "warmup_seconds": warmup_seconds,
        }
        print(
            f"{results['device']}, batch {args.batch_size}, {variant}: nodekd (Keras) {1000 * keras_median:.2f} ms, "
            f"plain PyTorch eager fp32 {1000 * torch_median:.2f} ms, ratio {keras_median / torch_median:.3f} "
            f"(medians of {args.steps} interleaved steps)",
            flush=True,
        )
    common.save(results, args.json)


if __name__ == "__main__":
    main()
