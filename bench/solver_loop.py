"""The solver loop: one solve of the student's dynamics, forward and backward, through torchdiffeq's dopri5
against nodekd's lean dopri5 (`models.dopri5`), on the same dynamics, state and tolerances, interleaved in one
process. Prints the median times, their ratio, the NFE of each and how far apart their y(t1) and gradients are.

    python -m bench.solver_loop                                  # CPU: 32 channels, batch 128, 8x8 (small students)
    python -m bench.solver_loop --channels 512 --batch-size 4
    python -m bench.solver_loop --device cuda --channels 512 --batch-size 128 --t1 1,100
"""

import functools
import os
import statistics

from bench import common

os.environ.setdefault("KERAS_BACKEND", "torch")


def main():
    parser = common.parser(__doc__, steps=9)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--size", type=int, default=8, help="the state's height and width")
    parser.add_argument("--t1", default="1", help="comma-separated horizons")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    args = parser.parse_args()
    os.environ["KERAS_TORCH_DEVICE"] = args.device
    import torch

    device = common.device_name(args.device)
    results = {"device": device, "torch": torch.__version__, **{k: getattr(args, k) for k in ("channels", "size")}}
    results.update(batch_size=args.batch_size, precision=args.precision, runs=[])
    for t1 in [float(t) for t in args.t1.split(",")]:
        run = _measure(args, t1)
        results["runs"].append(run)
        print(
            f"{device}, {args.channels} channels, batch {args.batch_size}, {args.size}x{args.size}, t1 {t1:g}, "
            f"{args.precision}: torchdiffeq {run['torchdiffeq_ms']:.1f} ms, nodekd {run['nodekd_ms']:.1f} ms, ratio "
            f"{run['ratio']:.3f} (NFE {run['nfe']['torchdiffeq']} / {run['nfe']['nodekd']}; y(t1) apart by "
            f"{run['state_difference']:.1e} of its norm, gradients by {run['gradient_difference']:.1e}; medians of "
            f"{args.steps})",
            flush=True,
        )
    common.save(results, args.json)


def _measure(args, t1):
    import keras
    import torch
    from torchdiffeq import odeint

    from models import dopri5
    from models.ode import ConvODEFunc

    keras.utils.set_random_seed(0)
    func = ConvODEFunc(args.channels, time_input="none", horizon=t1, init="horizon", dtype=args.precision)
    y0 = torch.randn(args.batch_size, args.channels, args.size, args.size, device=args.device)
    func.build(y0.shape)
    weights = [v.value for v in func.trainable_weights]
    nfe = {"torchdiffeq": 0, "nodekd": 0}

    def solve(name):
        def f(t, y):
            nfe[name] += 1
            return func.dynamics(t, y, params)

        params = func.solve_params(y0.shape)
        nfe[name] = 0
        if name == "torchdiffeq":
            t = torch.tensor([0.0, t1], device=args.device)
            y1 = odeint(f, y0, t, rtol=1e-3, atol=1e-3, method="dopri5")[-1]
        else:
            y1 = dopri5.solve(f, y0, t1, 1e-3, 1e-3)
        grads = torch.autograd.grad(y1.square().mean(), weights)
        return y1.detach(), torch.cat([g.flatten() for g in grads])

    solve("torchdiffeq"), solve("nodekd")
    samples = {"torchdiffeq": [], "nodekd": []}
    outputs = {}
    for _ in range(args.steps):
        for name, times in samples.items():
            seconds, outputs[name], _ = common.timed(functools.partial(solve, name), args.device)
            times.append(seconds)
    (y_a, g_a), (y_b, g_b) = outputs["torchdiffeq"], outputs["nodekd"]
    median = {name: 1000 * statistics.median(values) for name, values in samples.items()}
    return {
        "t1": t1,
        "torchdiffeq_ms": median["torchdiffeq"],
        "nodekd_ms": median["nodekd"],
        "ratio": median["nodekd"] / median["torchdiffeq"],
        "nfe": dict(nfe),
        "state_difference": ((y_a - y_b).norm() / y_a.norm()).item(),
        "gradient_difference": ((g_a - g_b).norm() / g_a.norm()).item(),
    }


if __name__ == "__main__":
    main()
