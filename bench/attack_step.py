"""Attack throughput: nodekd's PGD loop against a plain PyTorch PGD loop on the same model, in one process.

Both attack the same batch for the same number of steps, interleaved: nodekd's `attacks.pgd` as its sweeps run it,
the same with the model's weights frozen (a lever: "no weight gradients": it measures what that would save),
and a plain loop (its own cross-entropy, sign step and projection). The
model is a ResNet20 (the plain loop calls the Keras model as a torch module) or the Neural ODE student (the plain loop
attacks `bench.reference.TorchStudent`, float32 with torchdiffeq, holding the same weights). Prints image-steps per
second of each, peak GPU memory, and the ratios of their times.

    python -m bench.attack_step [--device cuda] [--batch-size 256] [--steps 10] [--json out.json]
    python -m bench.attack_step --model student --channels 512 --batch-size 4 --steps 2 --t1 1,100
    python -m bench.attack_step --model student --device cuda --channels 512 --batch-size 128 --precision mixed_bfloat16
"""

import contextlib
import os
import statistics

from bench import common

os.environ.setdefault("KERAS_BACKEND", "torch")

MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def main():
    parser = common.parser(__doc__, steps=10, steps_help="PGD steps per attack")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="resnet20", choices=("resnet20", "student"))
    parser.add_argument("--channels", type=int, default=512, help="the student's")
    parser.add_argument("--t1", default="1", help="the student's horizons, comma-separated")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"), help="the student's")
    parser.add_argument(
        "--memory-format", default="contiguous", choices=("contiguous", "channels_last"), help="the student's dynamics'"
    )
    args = parser.parse_args()
    os.environ["KERAS_TORCH_DEVICE"] = args.device
    import torch

    cuda = args.device.startswith("cuda")
    device = common.device_name(args.device)
    results = {"device": device, "torch": torch.__version__, "model": args.model, "batch_size": args.batch_size}
    results["runs"] = []
    for t1 in [float(t) for t in args.t1.split(",")] if args.model == "student" else [None]:
        run = _measure(args, t1, cuda)
        results["runs"].append(run)
        what = "ResNet20" if t1 is None else f"student, {args.channels} channels, t1 {t1:g}, {args.precision}"
        what += f", {args.memory_format}" if t1 is not None and args.memory_format != "contiguous" else ""
        rates = ", ".join(f"{name} {r['image_steps_per_second']:.1f} image-steps/s" for name, r in run["of"].items())
        memory = ", ".join(f"{name} {r['peak_memory_gib']:.1f} GiB" for name, r in run["of"].items()) if cuda else ""
        print(
            f"{device}, {what}, batch {args.batch_size}, {args.steps} PGD steps: {rates}{'; peak ' if cuda else ''}"
            f"{memory}; time ratio nodekd/plain {run['ratio']:.3f}, frozen/unfrozen weights "
            f"{run['frozen_ratio']:.3f} (medians of {args.repeats}); saved for backward per step "
            f"{run['of']['nodekd, weights frozen']['saved_for_backward_mib']:.1f} MiB frozen, "
            f"{run['of']['nodekd']['saved_for_backward_mib']:.1f} MiB not",
            flush=True,
        )
    common.save(results, args.json)


@contextlib.contextmanager
def _frozen(model):
    """The model's weights take no gradient within."""
    weights = [p for p in model.parameters() if p.requires_grad]
    for weight in weights:
        weight.requires_grad_(False)
    try:
        yield
    finally:
        for weight in weights:
            weight.requires_grad_(True)


def _models(args, t1):
    """nodekd's Keras model and the model the plain loop attacks."""
    import keras

    import models
    from bench.reference import TorchStudent

    keras.utils.set_random_seed(0)
    if t1 is None:
        model = models.build_teacher("resnet20", mean=MEAN, std=STD)
        return model, model
    model = models.build_student(
        channels=args.channels, t1=t1, precision=args.precision, memory_format=args.memory_format, mean=MEAN, std=STD
    )
    return model, TorchStudent(model, args.device)


def _measure(args, t1, cuda):
    import torch
    import torch.nn.functional as F

    from nodekd_cli import attacks

    model, reference = _models(args, t1)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 32, 32, 3, device=args.device)
    y = torch.randint(0, 10, (args.batch_size,), device=args.device)
    eps = 8 / 255

    def nodekd():
        attacks.pgd(model, x, y, eps, args.steps, torch.Generator(device=args.device).manual_seed(0))

    def frozen():
        with _frozen(model):
            nodekd()

    def plain():
        x_adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1)
        for _ in range(args.steps):
            x_adv.requires_grad_(True)
            logits = reference(x_adv) if t1 is not None else reference(x_adv, training=False)
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + grad.sign() / 255, x - eps), x + eps).clamp(0, 1)

    def saved_mib(frozen):
        """What one forward pass keeps for the backward of an input gradient: the bytes of the distinct storages
        autograd saves (on any device; on a GPU, the part of peak memory a larger attack batch multiplies)."""
        sizes = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            sizes[storage.data_ptr()] = storage.nbytes()
            return tensor

        x_adv = x.clone().requires_grad_(True)
        frozen_weights = _frozen(model) if frozen else contextlib.nullcontext()
        with frozen_weights, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            F.cross_entropy(model(x_adv, training=False), y, reduction="sum")
        return sum(sizes.values()) / 2**20

    saved = {"nodekd": saved_mib(False), "nodekd, weights frozen": saved_mib(True)}
    attacks_ = {"nodekd": nodekd, "nodekd, weights frozen": frozen, "plain": plain}
    for attack in attacks_.values():
        attack()
    samples = {name: [] for name in attacks_}
    for _ in range(args.repeats):
        for name, attack in attacks_.items():
            seconds, _, peak = common.timed(attack, args.device)
            samples[name].append((seconds, peak))
    of = {
        name: {
            "median_s": statistics.median(s[0] for s in values),
            "image_steps_per_second": args.batch_size * args.steps / statistics.median(s[0] for s in values),
            "peak_memory_gib": max(s[1] for s in values) if cuda else None,
            "saved_for_backward_mib": saved.get(name),
        }
        for name, values in samples.items()
    }
    return {
        "t1": t1,
        "precision": args.precision if t1 is not None else "float32",
        "memory_format": args.memory_format if t1 is not None else "contiguous",
        "of": of,
        "ratio": of["nodekd"]["median_s"] / of["plain"]["median_s"],
        "frozen_ratio": of["nodekd, weights frozen"]["median_s"] / of["nodekd"]["median_s"],
    }


if __name__ == "__main__":
    main()
