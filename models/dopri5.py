"""Dormand-Prince 5(4) with torchdiffeq's step control, in a lean loop: y(t1) of dy/dt = f(t, y), y(0) = y0.

torchdiffeq's `odeint(method="dopri5")` is the reference: the same tableau, the same first step (Hairer, Norsett and
Wanner, II.4), the same error norm (root mean square of the error over atol + rtol max(|y0|, |y1|)), the same step
size update (safety 0.9, growth at most 10, shrinkage at most 0.2 after a rejection), the same last step past t1 and
the same 4th-order interpolation back to t1. So it takes the same steps and function evaluations, and agrees with
torchdiffeq to rounding (`tests/test_ode.py`). What it leaves out is what a classifier's solve never needs, and what
costs on every step: the 7-stage buffer with the stages in its last dimension (each stage's combination became a
product and a strided sum), the interpolation coefficients of every accepted step (only the last one's are used),
and the host-device synchronizations of its checks (about eight per step; here one, to read the error ratio).

Step control is not differentiated: the first step size, which torchdiffeq computes from the state with gradients,
is taken here as a number, like every later one. Backpropagating through the solve differentiates the steps taken,
as torchdiffeq's direct mode does.
"""

import math

import torch

# Nodes c, stage coefficients a, 5th-order weights b (the 7th stage is the solution: first same as last), the
# error weights b - b* (b* the embedded 4th-order solution's), and the weights of y at the step's midpoint.
C = (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
A = (
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
ERROR = (
    35 / 384 - 1951 / 21600,
    0.0,
    500 / 1113 - 22642 / 50085,
    125 / 192 - 451 / 720,
    -2187 / 6784 - -12231 / 42400,
    11 / 84 - 649 / 6300,
    -1 / 60,
)
MID = (
    6025192743 / 30085553152 / 2,
    0.0,
    51252292925 / 65400821598 / 2,
    -2691868925 / 45128329728 / 2,
    187940372067 / 1594534317056 / 2,
    -1776094331 / 19743644256 / 2,
    11237099 / 235043384 / 2,
)
ORDER = 5
SAFETY, GROWTH, SHRINK = 0.9, 10.0, 0.2


class StepFailure(AssertionError):
    """The solve cannot go on (torchdiffeq raises an AssertionError in the same cases)."""


def _combination(y, dt, weights, stages):
    """y + dt * sum_j weights[j] * stages[j], skipping zero weights."""
    total = None
    for weight, stage in zip(weights, stages):
        if weight == 0:
            continue
        if total is None:
            total = stage * (dt * weight)
        else:
            total = total.add_(stage, alpha=dt * weight)  # in place: an addition keeps nothing for backward
    return total if y is None else y + total


def _rms(x):
    return x.square().mean().sqrt()


def _first_step(func, t0, y0, f0, rtol, atol):
    """Hairer, Norsett and Wanner's initial step, as torchdiffeq's `_select_initial_step` (order 4), as a number."""
    with torch.no_grad():
        scale = atol + y0.abs() * rtol
        d0, d1 = _rms(y0 / scale).item(), _rms(f0 / scale).item()
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = func(t0 + h0, y0 + f0 * h0)
        d2 = _rms((f1 - f0) / scale).item() / h0
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1 / ORDER)
        return min(100 * h0, h1)


def _next_step(dt, ratio):
    """torchdiffeq's `_optimal_step_size` for a 5th-order method."""
    if ratio == 0:
        return dt * GROWTH
    shrink = 1.0 if ratio < 1 else SHRINK
    return dt * min(GROWTH, max(SAFETY / ratio ** (1 / ORDER), shrink))


def solve(func, y0, t1, rtol, atol, max_num_steps=None):
    """y(t1) from y(0) = y0 with dopri5; `func(t, y)` takes t as a 0-d tensor of y's dtype on y's device. Raises
    `StepFailure` when the step size underflows, the state or its derivative is not finite, or more than
    `max_num_steps` steps would be needed."""
    origin = torch.zeros((), dtype=y0.dtype, device=y0.device)

    def f(t, y):
        return func(origin + t, y)  # made on the device: a tensor from the host would wait for the device first

    t, y, steps = 0.0, y0, 0
    f0 = f(t, y0)
    dt = _first_step(f, t, y0, f0, rtol, atol)
    while True:
        if max_num_steps is not None and steps >= max_num_steps:
            raise StepFailure(f"max_num_steps exceeded ({steps}>={max_num_steps})")
        if not t + dt > t:
            raise StepFailure(f"underflow in dt {dt}")
        stages = [f0]
        for c, a in zip(C, A):
            y_stage = _combination(y, dt, a, stages)
            stages.append(f(t + dt if c == 1.0 else t + c * dt, y_stage))
        y_next = y_stage  # the last stage's state is the 5th-order solution (first same as last)
        error = _combination(None, dt, ERROR, stages)
        with torch.no_grad():
            ratio = _rms(error / (atol + rtol * torch.max(y.abs(), y_next.abs()))).item()
        if not math.isfinite(ratio):
            raise StepFailure(f"non-finite values in the state or its derivative at t = {t}")
        steps += 1
        if ratio <= 1:
            if t + dt >= t1:  # the last step: interpolate back to t1, as torchdiffeq does
                return _interpolate(y, y_next, stages, dt, (t1 - t) / dt)
            t, y, f0 = t + dt, y_next, stages[-1]
        dt = _next_step(dt, ratio)


def _interpolate(y0, y1, stages, dt, x):
    """torchdiffeq's 4th-order polynomial through y0, y1, the midpoint and the end slopes, at x in [0, 1]."""
    if x == 1.0:
        return y1
    y_mid = _combination(y0, dt, MID, stages)
    f0, f1 = stages[0], stages[-1]
    a = 2 * dt * (f1 - f0) - 8 * (y1 + y0) + 16 * y_mid
    b = dt * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * y_mid
    c = dt * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * y_mid
    d = dt * f0
    return y0 + x * d + x**2 * c + x**3 * b + x**4 * a
