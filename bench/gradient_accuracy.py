"""How accurate a student's float32 and mixed-precision gradients are, against float64 with the same weights.

For each precision and memory layout, a ConvODEFunc (16 channels, batch 3 of 5x6 states, the seed of tests/test_ode)
is solved over [0, 1] with Euler (one step), rk4 (4 steps) and dopri5 (rtol = atol = 1e-3), and the gradient of
|y(1)|^2 with respect to the weights is compared with the float64 one: the error relative to the whole float64
gradient. Run: KERAS_BACKEND=torch python -m bench.gradient_accuracy (docs/research-notes.md, "How accurate the students' gradients
are").
"""

import platform

import torch

from models.ode import ODEBlock
from tests.test_ode import _twins


def cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            return next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main():
    print(f"{cpu_name()}, torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'precision':<15} {'layout':<14} {'euler (1 step)':>15} {'rk4 (4 steps)':>14} {'dopri5':>10}")
    for dtype in ("float32", "mixed_bfloat16"):
        state = "float32"
        for layout in ("contiguous", "channels_last"):
            row = []
            for solver in ({"method": "euler", "step_size": 1.0}, {"method": "rk4", "step_size": 0.25}, {}):
                funcs, y0 = _twins(8, [dtype, "float64"])
                funcs[0].memory_format = layout
                grads = []
                for func, dt in zip(funcs, (state, "float64")):
                    block = ODEBlock(func, t1=1.0, dtype=dt, **solver)
                    block(y0.to(getattr(torch, dt))).square().sum().backward()
                    grads.append(torch.cat([v.value.grad.double().flatten() for v in func.trainable_weights]))
                row.append(((grads[0] - grads[1]).norm() / grads[1].norm()).item())
            print(f"{dtype:<15} {layout:<14} {row[0]:>15.1e} {row[1]:>14.1e} {row[2]:>10.1e}")


if __name__ == "__main__":
    main()
