"""Fusion of the student's dynamics by torch.compile: one evaluation, forward and backward, of nodekd's
`ConvODEFunc` eager against the same function through `torch.compile`, interleaved in one process.

    python -m bench.dynamics_compile                          # CPU: 512 channels, batch 4, 8x8
    python -m bench.dynamics_compile --device cuda --batch-size 128
"""

import os
import statistics
import time

from bench import common

os.environ.setdefault("KERAS_BACKEND", "torch")


def main():
    parser = common.parser(__doc__, steps=15)
    parser.add_argument("--channels", type=int, default=512)
    parser.set_defaults(batch_size=4)
    args = parser.parse_args()
    os.environ["KERAS_TORCH_DEVICE"] = args.device
    import keras
    import torch

    from models.ode import ConvODEFunc

    keras.utils.set_random_seed(0)
    func = ConvODEFunc(args.channels, time_input="none", norm="pre", init="horizon")
    y = torch.randn(args.batch_size, args.channels, 8, 8, device=args.device)
    func.build(y.shape)
    params = func.solve_params(y.shape)
    t = torch.tensor(0.5, device=args.device)

    def evaluate(dynamics):
        state = y.clone().requires_grad_(True)
        dynamics(t, state, params).square().sum().backward()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    started = time.perf_counter()
    compiled = torch.compile(func.dynamics)
    evaluate(compiled)
    compile_seconds = time.perf_counter() - started
    times = {"eager": [], "compiled": []}
    for _ in range(args.steps):
        for name, dynamics in (("eager", func.dynamics), ("compiled", compiled)):
            started = time.perf_counter()
            evaluate(dynamics)
            times[name].append(time.perf_counter() - started)
    eager, fused = (statistics.median(times[name]) for name in ("eager", "compiled"))
    device = common.device_name(args.device)
    print(
        f"{device}, {args.channels} channels, batch {args.batch_size}, 8x8, forward + backward: eager "
        f"{1000 * eager:.1f} ms, compiled {1000 * fused:.1f} ms, ratio {fused / eager:.3f} (medians of {args.steps} "
        f"interleaved evaluations; compiling took {compile_seconds:.0f} s)",
        flush=True,
    )
    common.save({"device": device, "eager_ms": 1000 * eager, "compiled_ms": 1000 * fused}, args.json)


if __name__ == "__main__":
    main()
