"""The ODE layer: integrates dy/dt = f(t, y) from 0 to t1 with torchdiffeq and returns y(t1).

`ODEBlock` wraps any dynamics layer that has a `dynamics(t, y)` method; `ConvODEFunc` is the paper's: "a 4 layers
convolutional neural network with 3x3 kernel size". The dynamics are called tens to hundreds of times per forward
pass, so `ConvODEFunc` owns its kernels as Keras weights and evaluates them with torch's functional ops, without a
Keras layer call (hundreds of microseconds of Python each) per convolution. Both need the torch backend.
"""

from dataclasses import asdict, dataclass, fields

import keras

from models.dopri5 import solve as dopri5_solve

FIXED_GRID_METHODS = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")


class SolverError(RuntimeError):
    """The ODE solver gave up: its step size underflowed, it took too many steps, or it met NaN."""


def group_count(channels):
    """GroupNorm groups for `channels`: at most 32 (odenet's min(32, C) at the paper's 512 channels) and at least 16
    channels per group. With one channel per group, GroupNorm before global average pooling would normalize every
    channel's spatial mean away and make a narrow student's logits all but constant."""
    groups = max(1, min(32, channels // 16))
    while channels % groups:
        groups -= 1
    return groups


# torchdiffeq's methods, by the names `odeint(method=...)` takes (torchdiffeq keeps its own list in a private
# module; tests/test_ode.py checks that this one matches it).
SOLVER_METHODS = (
    "adaptive_heun",
    "bosh3",
    "dopri5",
    "dopri8",
    "euler",
    "explicit_adams",
    "fehlberg2",
    "fixed_adams",
    "heun2",
    "heun3",
    "implicit_adams",
    "midpoint",
    "rk4",
    "scipy_solver",
)


class InvalidSolver(ValueError):
    """Solver settings out of range: `settings` names the fields concerned, and `describe` says what is wrong in the
    words of whoever set them (the CLI names its options)."""

    def __init__(self, settings, template, value=None):
        self.settings, self.template, self.value = tuple(settings), template, value
        super().__init__(self.describe())

    def describe(self, name_of=str):
        """The message, with each setting named by `name_of` (settings it names None are left out)."""
        names = [name for name in map(name_of, self.settings) if name is not None]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return self.template.format(names=listed, value=self.value)


@dataclass(frozen=True)
class Solver:
    """How an `ODEBlock` solves: the one home of the six solver settings, their defaults and their ranges. A run's
    config.json keeps them as its "solver" (`config()`), and the layer's saved config as its own fields."""

    method: str = "dopri5"  # any torchdiffeq method (`SOLVER_METHODS`)
    rtol: float = 1e-3  # tolerances of adaptive methods (torchdiffeq's own are far tighter)
    atol: float = 1e-3
    step_size: float | None = None  # step of fixed-grid methods (None: one step over [0, t1])
    max_num_steps: int | None = None  # most steps an adaptive method may take (None: no limit)
    adjoint: bool = False  # backpropagate with `odeint_adjoint`: memory-light, one more solve backwards

    def __post_init__(self):
        if self.method not in SOLVER_METHODS:
            known = ", ".join(SOLVER_METHODS)
            raise InvalidSolver(("method",), f"Unknown ODE method {{value!r}}; choose one of: {known}", self.method)
        if self.rtol <= 0 or self.atol <= 0 or (self.step_size is not None and self.step_size <= 0):
            raise InvalidSolver(("rtol", "atol", "step_size"), "{names} must be positive")
        if self.max_num_steps is not None and self.max_num_steps < 1:
            limit = "{names} must be at least 1 (leave it out for no limit); got {value}"
            raise InvalidSolver(("max_num_steps",), limit, self.max_num_steps)

    @classmethod
    def take(cls, settings):
        """The solver of the fields in the dict `settings`, which loses them (a layer's config, keyword arguments)."""
        return cls(**{f.name: settings.pop(f.name) for f in fields(cls) if f.name in settings})

    def config(self):
        return asdict(self)

    def options(self):
        """torchdiffeq's `options` of this solver."""
        if self.method in FIXED_GRID_METHODS:
            return {"step_size": self.step_size} if self.step_size else {}
        return {"max_num_steps": self.max_num_steps} if self.max_num_steps else {}


# The design choices of the dynamics, each a registry feeding the CLI's choices (docs/research-notes.md, "Long time horizons").
TIME_INPUTS = {
    "raw": "t as a constant extra input channel of every convolution (odenet)",
    "scaled": "t / t1 as that channel, in [0, 1] whatever the horizon",
    "none": "no time input: autonomous dynamics f(y)",
}
NORMS = {
    "pre": "GroupNorm -> ReLU -> conv, four times, then a last GroupNorm (odenet)",
    "post": "conv -> GroupNorm -> ReLU, four times, without the last ReLU",
}
INITS = {
    "he": "He initialization of the convolutions, GroupNorm scales 1 (odenet)",
    "identity": "as he, but the last GroupNorm's scale starts at 0: f = 0, so y(t1) = y(0) for every t1",
    "horizon": "as he, but the last GroupNorm's scale starts at 1 / t1: the flow moves as far as a t1 = 1 one",
}


# How the dynamics lay out their state and kernels in memory (a speed choice: results agree to rounding).
MEMORY_FORMATS = {
    "contiguous": "channels-first (NCHW), torch's default",
    "channels_last": "NHWC in memory (torch.channels_last): the state from y(0) on and every kernel",
}


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; valid: {', '.join(choices)}. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="nodekd")
class ConvODEFunc(keras.layers.Layer):
    """f(t, y): the paper's "4 layers convolutional neural network with 3x3 kernel size", with GroupNorm.

    The defaults are the layout of torchdiffeq's `odenet_mnist.py`: `num_layers` times GroupNorm -> ReLU -> 3x3 conv
    of [t, h] (time enters every convolution as a constant extra input channel), then a last GroupNorm, with
    `group_count(channels)` groups. Three choices change that layout (`TIME_INPUTS`, `NORMS`, `INITS`); they decide
    whether long time horizons train (docs/research-notes.md, "Long time horizons"). Inputs are channels-first.

    Like any Keras layer it takes a dtype policy: under `dtype="mixed_bfloat16"` the convolutions run in bfloat16 (from
    the float32 weights, cast once per solve), while GroupNorm, ReLU, the time channel and the returned f stay
    float32, so that the solver's state, error estimate and step control never leave float32.

    Args:
        channels: channels of the state y (and of every hidden layer).
        num_layers: number of convolutions.
        time_input: "raw" (t), "scaled" (t / horizon) or "none" (no time channel).
        horizon: t1, the end of the time horizon, which "scaled" divides by.
        norm: "pre" (GroupNorm before each convolution and after the last) or "post" (after each convolution).
        init: "he"; "identity" (the last GroupNorm's scale starts at 0, so that f = 0 and the flow is the
            identity at initialization whatever t1); or "horizon" (that scale starts at 1 / horizon, so that the
            flow over [0, horizon] starts as far from the identity as odenet's over [0, 1]).
        memory_format: "contiguous" or "channels_last" (`MEMORY_FORMATS`): how a solve lays out the state and the
            kernels in memory; the same function to rounding (docs/benchmarks.md says what each costs).
    """

    def __init__(
        self,
        channels,
        num_layers=4,
        time_input="raw",
        horizon=1.0,
        norm="pre",
        init="he",
        memory_format="contiguous",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if channels < 1 or num_layers < 1 or horizon <= 0:
            raise ValueError(
                f"channels, num_layers and horizon must be positive. Received: channels={channels}, "
                f"num_layers={num_layers}, horizon={horizon}"
            )
        _check_choice("time_input", time_input, TIME_INPUTS)
        _check_choice("norm", norm, NORMS)
        _check_choice("init", init, INITS)
        _check_choice("memory_format", memory_format, MEMORY_FORMATS)
        self.channels = channels
        self.num_layers = num_layers
        self.time_input = time_input
        self.horizon = float(horizon)
        self.norm = norm
        self.init = init
        self.memory_format = memory_format
        self.groups = group_count(channels)

    @property
    def num_norms(self):
        return self.num_layers + (1 if self.norm == "pre" else 0)

    def build(self, input_shape):
        if input_shape[1] != self.channels:
            raise ValueError(f"Expected {self.channels} channels on axis 1. Received: input_shape={input_shape}")
        self.kernels, self.biases, self.gammas, self.betas = [], [], [], []
        last_scale = {"he": 1.0, "identity": 0.0, "horizon": 1.0 / self.horizon}[self.init]
        for i in range(self.num_norms):
            scale = keras.initializers.Constant(last_scale if i == self.num_norms - 1 else 1.0)
            self.gammas.append(self.add_weight((self.channels,), scale, name=f"norm{i}_gamma"))
            self.betas.append(self.add_weight((self.channels,), "zeros", name=f"norm{i}_beta"))
        inputs = self.channels + (0 if self.time_input == "none" else 1)
        for i in range(self.num_layers):
            # Keras's (kh, kw, in, out) layout, so that he_normal sees the right fan-in (with the time channel).
            kernel_shape = (3, 3, inputs, self.channels)
            self.kernels.append(self.add_weight(kernel_shape, "he_normal", name=f"conv{i}_kernel"))
            self.biases.append(self.add_weight((self.channels,), "zeros", name=f"conv{i}_bias"))

    def solve_params(self, shape):
        """The tensors `dynamics` reads for states of `shape`, made once per solve: the kernels in torch's (out, in,
        kh, kw) layout (each of the tens of evaluations would otherwise copy every kernel: at 512 channels on a CPU,
        that made a student train step 1.64x slower than plain PyTorch), and with a time input, each convolution's
        response to the time channel.

        A convolution of [t 1, h] is conv(h, W_h) + t conv(1, W_t), and conv(1, W_t) depends only on the kernel and
        the state's height and width (zero padding makes it smaller at the borders): made here once, it spares every
        evaluation a concatenation, a copy of the state per convolution, and the time channel's share of the
        convolution."""
        import torch
        import torch.nn.functional as F

        kernels = tuple(k.value.permute(3, 2, 0, 1).contiguous() for k in self.kernels)
        time_maps = ()
        if self.time_input != "none":
            ones = torch.ones((1, 1, *shape[2:]), dtype=kernels[0].dtype, device=kernels[0].device)
            time_maps = tuple(F.conv2d(ones, k[:, :1], padding=1) for k in kernels)
            kernels = tuple(k[:, 1:].contiguous() for k in kernels)
        # Under a mixed dtype policy the convolutions take their weights in the compute dtype, cast here once per
        # solve (the casts are differentiable: the float32 weights receive the gradients).
        compute = getattr(torch, self.compute_dtype)
        kernels = tuple(k.to(compute).contiguous(memory_format=self._layout()) for k in kernels)
        biases = tuple(b.value.to(compute) for b in self.biases)
        return kernels + biases + tuple(v.value for v in (*self.gammas, *self.betas)) + time_maps

    def _layout(self):
        import torch

        return {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}[self.memory_format]

    def solve_state(self, y0):
        """y(0) as the solve keeps its state: in this function's memory format, which every evaluation keeps."""
        import torch

        y0 = y0.contiguous(memory_format=self._layout())
        if self.memory_format == "channels_last" and torch.is_grad_enabled() and not y0.requires_grad:
            # torch 2.13's CPU GroupNorm backward crashes (segmentation fault) on a channels-last input that takes no
            # gradient while its scale and shift do: the first evaluation's, when y(0) is data. A copy that asks for
            # one (never read) sidesteps it; in a student y(0) comes from the stem and takes a gradient anyway.
            y0 = y0.detach().requires_grad_(True)
        return y0

    def dynamics(self, t, y, params=None):
        import torch.nn.functional as F

        n, m = self.num_layers, self.num_norms
        params = self.solve_params(y.shape) if params is None else params
        kernels, biases = params[:n], params[n : 2 * n]
        gammas, betas = params[2 * n : 2 * n + m], params[2 * n + m : 2 * n + 2 * m]
        time_maps = params[2 * n + 2 * m :]
        time = None if self.time_input == "none" else t.to(y.dtype)
        if self.time_input == "scaled":
            time = time / self.horizon

        def conv(i, h):
            # In the compute dtype (a no-op cast under float32); the result, as the rest, in the state's dtype.
            h = F.conv2d(h.to(kernels[i].dtype), kernels[i], biases[i], padding=1).to(y.dtype)
            return h if time is None else h + time * time_maps[i]

        def norm(i, h):
            return F.group_norm(h, self.groups, gammas[i], betas[i], eps=1e-5)

        h = y
        if self.norm == "pre":
            for i in range(n):
                h = conv(i, F.relu(norm(i, h)))
            return norm(n, h)
        for i in range(n):
            h = norm(i, conv(i, h))
            h = F.relu(h) if i < n - 1 else h
        return h

    def call(self, y, t=0.0):
        import torch

        return self.dynamics(torch.as_tensor(t, device=y.device), y)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "num_layers": self.num_layers,
                "time_input": self.time_input,
                "horizon": self.horizon,
                "norm": self.norm,
                "init": self.init,
                "memory_format": self.memory_format,
            }
        )
        return config


_SOLVER_FIELDS = frozenset(f.name for f in fields(Solver))


@keras.saving.register_keras_serializable(package="nodekd")
class ODEBlock(keras.layers.Layer):
    """y(t1) for dy/dt = func.dynamics(t, y), y(0) = the input, solved by torchdiffeq.

    dopri5 without the adjoint, the default, runs in nodekd's own loop (`models.dopri5`): torchdiffeq's steps and
    function evaluations, equal to rounding, at a fraction of its per-step cost.

    The solver (a `Solver`) is saved in the layer's config, and may be replaced on a loaded model, e.g. to evaluate
    with another solver: `block.solver = dataclasses.replace(block.solver, method="rk4")`. Function evaluations are
    counted: `nfe_forward` for the last forward solve, `nfe_backward` for the last adjoint (backward) solve.

    Args:
        func: the dynamics layer, with a `dynamics(t, y)` method; if it also has `solve_params(shape)`, that is called
            once per solve and its result passed as `dynamics(t, y, params)`, and if it has `solve_state(y0)`, the
            solve starts from what that returns (y0 laid out as the dynamics want it).
        t1: end of the time horizon [0, t1].
        solver: a `Solver` (dopri5 at rtol = atol = 1e-3 by default); its fields may be given as keyword arguments
            instead, as the saved config does.
    """

    def __init__(self, func, t1=1.0, solver=None, **kwargs):
        given = Solver.take(kwargs)
        super().__init__(**kwargs)
        if isinstance(func, dict):
            func = keras.saving.deserialize_keras_object(func)
        if t1 <= 0:
            raise ValueError(f"t1 must be positive. Received: t1={t1}")
        self.func = func
        self.t1 = float(t1)
        self.solver = solver or given
        self.nfe_forward = 0
        self.nfe_backward = 0
        self._solving = False
        self._params = None

    def __setattr__(self, name, value):
        if name in _SOLVER_FIELDS:  # it would be ignored: the solve reads `self.solver`
            raise AttributeError(
                f"{name} is a setting of the block's solver; set block.solver = dataclasses.replace(block.solver, "
                f"{name}=...) instead."
            )
        super().__setattr__(name, value)

    def build(self, input_shape):
        if not self.func.built:  # a deserialized func comes built
            self.func.build(input_shape)

    def _counted(self, t, y):
        if self._solving:
            self.nfe_forward += 1
        else:
            self.nfe_backward += 1
        if self._params is None:
            return self.func.dynamics(t, y)
        return self.func.dynamics(t, y, self._params)

    def call(self, y0):
        import torch
        from torchdiffeq import odeint, odeint_adjoint

        solver = self.solver
        t = torch.tensor([0.0, self.t1], dtype=y0.dtype, device=y0.device)
        kwargs = {"rtol": solver.rtol, "atol": solver.atol, "method": solver.method, "options": solver.options()}
        self.nfe_forward = self.nfe_backward = 0
        # A func may prepare what its dynamics read once per solve (`solve_params`); the adjoint differentiates
        # with respect to those tensors, and autograd carries the gradients on to the weights.
        self._params = self.func.solve_params(y0.shape) if hasattr(self.func, "solve_params") else None
        y0 = self.func.solve_state(y0) if hasattr(self.func, "solve_state") else y0
        self._solving = True
        try:
            if solver.adjoint:
                if self._params is not None:
                    params = self._params
                else:
                    params = tuple(v.value for v in self.func.trainable_weights)
                # Seminorm: the error control of the backward solve ignores the parameter-gradient integrals
                # (Kidger et al. 2021): 4,658 instead of 7,616 evaluations in a small test at rtol = atol = 1e-6.
                return odeint_adjoint(
                    self._counted, y0, t, adjoint_params=params, adjoint_options={"norm": "seminorm"}, **kwargs
                )[-1]
            if solver.method == "dopri5":  # torchdiffeq's steps in nodekd's leaner loop (`models.dopri5`)
                return dopri5_solve(self._counted, y0, self.t1, solver.rtol, solver.atol, solver.max_num_steps)
            return odeint(self._counted, y0, t, **kwargs)[-1]
        except AssertionError as error:  # "underflow in dt", "max_num_steps exceeded"
            raise SolverError(str(error)) from None
        finally:
            self._solving = False

    def compute_output_shape(self, input_shape):
        return input_shape

    def solver_settings(self):
        return {"t1": self.t1, **self.solver.config()}

    def get_config(self):
        config = super().get_config()
        config.update({"func": keras.saving.serialize_keras_object(self.func), **self.solver_settings()})
        return config


def ode_blocks(model):
    """The ODEBlock layers of `model` and of the models nested in it, each once (a model that keeps a list of its
    student's blocks, as `Distiller` does, lists them among its layers a second time)."""
    found = []
    for layer in model.layers:
        inner = [layer] if isinstance(layer, ODEBlock) else ode_blocks(layer) if isinstance(layer, keras.Model) else []
        found += [block for block in inner if all(block is not seen for seen in found)]
    return found
