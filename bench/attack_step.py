"""Attack throughput: nodekd's PGD loop against a plain PyTorch PGD loop on the same model, in one process.

Both attack the same batch of a ResNet20 (nodekd's Keras model; the plain loop calls it as a torch module with its
own cross-entropy, sign step and projection) for the same number of steps, interleaved. Prints image-steps per
second of each and their ratio.

    python -m bench.attack_step [--device cuda] [--batch-size 256] [--steps 10] [--json out.json]
"""

import os
import statistics
import time

from bench import common

os.environ.setdefault("KERAS_BACKEND", "torch")


def main():
    parser = common.parser(__doc__, steps=10, steps_help="PGD steps per attack")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ["KERAS_TORCH_DEVICE"] = args.device
    import torch
    import torch.nn.functional as F

    import models
    from nodekd_cli import attacks

    cuda = args.device.startswith("cuda")
    model = models.build_teacher("resnet20", mean=[0.49, 0.48, 0.45], std=[0.25, 0.24, 0.26])
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 32, 32, 3, device=args.device)
    y = torch.randint(0, 10, (args.batch_size,), device=args.device)
    eps = 8 / 255

    def nodekd():
        attacks.pgd(model, x, y, eps, args.steps, torch.Generator(device=args.device).manual_seed(0))

    def plain():
        x_adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1)
        for _ in range(args.steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv, training=False), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + grad.sign() / 255, x - eps), x + eps).clamp(0, 1)

    def timed(run):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    nodekd(), plain()
    times = {"nodekd": [], "plain": []}
    for _ in range(args.repeats):
        times["nodekd"].append(timed(nodekd))
        times["plain"].append(timed(plain))
    rate = {k: args.batch_size * args.steps / statistics.median(v) for k, v in times.items()}
    device = torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)"
    print(
        f"{device}, ResNet20, batch {args.batch_size}, {args.steps} PGD steps: nodekd {rate['nodekd']:.0f} "
        f"image-steps/s, plain PyTorch {rate['plain']:.0f} image-steps/s, ratio (time) "
        f"{rate['plain'] / rate['nodekd']:.3f} (medians of {args.repeats})"
    )
    common.save({"device": device, "image_steps_per_second": rate}, args.json)


if __name__ == "__main__":
    main()
