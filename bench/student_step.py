"""One student train step: nodekd's Keras Neural ODE against the same student in plain PyTorch with torchdiffeq.

Both run in this process on the same device, batch and weights (copied from the Keras model): a forward solve with
dopri5 (rtol = atol = 1e-3), the distillation loss against fixed teacher logits (T = 3, lambda = 0.9), a backward
pass through the solver and an SGD step. Steps are interleaved; the medians, the NFE of each and their ratio are
printed (equal weights give equal NFE, so the ratio compares the same work).

    python -m bench.student_step                                   # CPU, 32 channels
    python -m bench.student_step --channels 512 --batch-size 8 --steps 3
    python -m bench.student_step --device cuda --channels 512 --t1 1,100 --json out.json
    python -m bench.student_step --channels 512 --batch-size 4 --steps 3 --precision mixed_bfloat16
    python -m bench.student_step --channels 512 --batch-size 4 --steps 3 --memory-format channels_last
"""

import os
import statistics

from bench import common
from bench.reference import TorchStudent

os.environ.setdefault("KERAS_BACKEND", "torch")


def _kd_loss(logits, teacher, y, temperature=3.0, lam=0.9):
    import torch.nn.functional as F

    kl = F.kl_div(F.log_softmax(logits / temperature, 1), F.softmax(teacher / temperature, 1), reduction="batchmean")
    return (1 - lam) * F.cross_entropy(logits, y) + lam * temperature**2 * kl


def main():
    parser = common.parser(__doc__, steps=7)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--t1", default="1", help="comma-separated horizons")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--time-input",
        default="none",
        choices=("none", "raw", "scaled"),
        help="the dynamics' time input; with one, the reference concatenates it to every convolution (odenet)",
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "mixed_bfloat16"),
        help="nodekd's dynamics (the reference stays float32: the ratio is what the option gains)",
    )
    parser.add_argument(
        "--memory-format",
        default="contiguous",
        choices=("contiguous", "channels_last"),
        help="nodekd's dynamics' layout (models.ode.MEMORY_FORMATS; the reference stays contiguous)",
    )
    args = parser.parse_args()
    os.environ["KERAS_TORCH_DEVICE"] = args.device
    import torch

    cuda = args.device.startswith("cuda")
    results = {
        "device": common.device_name(args.device),
        "torch": torch.__version__,
        "channels": args.channels,
        "batch_size": args.batch_size,
        "time_input": args.time_input,
        "precision": args.precision,
        "memory_format": args.memory_format,
        "runs": [],
    }
    for t1 in [float(t) for t in args.t1.split(",")]:
        run = _measure(t1, args, cuda)
        results["runs"].append(run)
        memory = f", peak {run['nodekd']['peak_memory_gib']:.1f} GiB" if cuda else ""
        print(
            f"{results['device']}, {args.channels} channels, batch {args.batch_size}, t1 {t1:g}, time input "
            f"{args.time_input}, nodekd in {args.precision}, {args.memory_format}: "
            f"nodekd {run['nodekd']['median_ms']:.1f} ms (NFE {run['nodekd']['median_nfe']}{memory}), "
            f"plain PyTorch + torchdiffeq {run['torch']['median_ms']:.1f} ms (NFE {run['torch']['median_nfe']}), "
            f"ratio {run['ratio']:.3f} (medians of {args.steps} interleaved steps)",
            flush=True,
        )
    common.save(results, args.json)


def _measure(t1, args, cuda):
    """Median step time, NFE and peak memory of both students at horizon t1."""
    import keras
    import torch

    import models

    keras.utils.set_random_seed(0)
    student = models.build_student(
        channels=args.channels,
        t1=t1,
        time_input=args.time_input,
        precision=args.precision,
        memory_format=args.memory_format,
        mean=[0.49, 0.48, 0.45],
        std=[0.25, 0.24, 0.26],
    )
    distiller = models.Distiller(student, temperature=3.0, lam=0.9)
    distiller.build((None, 32, 32, 3))
    distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-4, momentum=0.9))
    reference = TorchStudent(student, args.device)
    optimizer = torch.optim.SGD(reference.parameters(), lr=1e-4, momentum=0.9)
    x = torch.rand(args.batch_size, 32, 32, 3, device=args.device)
    y = torch.randint(0, 10, (args.batch_size,), device=args.device)
    teacher = torch.randn(args.batch_size, 10, device=args.device) * 3
    block = models.ode_blocks(student)[0]

    def keras_step():
        distiller.train_on_batch((x, teacher), y)
        return block.nfe_forward + block.nfe_backward

    def torch_step():
        reference.func.nfe = 0
        optimizer.zero_grad(set_to_none=True)
        _kd_loss(reference(x), teacher, y).backward()
        optimizer.step()
        return reference.func.nfe

    for _ in range(args.warmup):
        keras_step(), torch_step()
    samples = {"nodekd": [], "torch": []}
    for _ in range(args.steps):
        samples["nodekd"].append(common.timed(keras_step, args.device))
        samples["torch"].append(common.timed(torch_step, args.device))
    run = {"t1": t1}
    for name, values in samples.items():
        run[name] = {
            "median_ms": 1000 * statistics.median(v[0] for v in values),
            "median_nfe": statistics.median(v[1] for v in values),
            "peak_memory_gib": max(v[2] for v in values) if cuda else None,
        }
    run["ratio"] = run["nodekd"]["median_ms"] / run["torch"]["median_ms"]
    return run


if __name__ == "__main__":
    main()
