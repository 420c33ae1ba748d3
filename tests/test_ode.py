"""The ODE layer against exact solutions and gradients, its solver settings, NFE counts and serialization."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import torch

import models
from models.ode import ConvODEFunc, ODEBlock, SolverError


@keras.saving.register_keras_serializable(package="nodekd_tests")
class LinearODEFunc(keras.layers.Layer):
    """dy/dt = a * y: y(t1) = exp(a * t1) * y0, and d y(t1) / da = t1 * exp(a * t1) * y0."""

    def __init__(self, a=0.5, **kwargs):
        super().__init__(**kwargs)
        self.a_value = a

    def build(self, input_shape):
        self.a = self.add_weight((), keras.initializers.Constant(self.a_value), name="a")

    def dynamics(self, t, y):
        return self.a.value * y

    def get_config(self):
        return {**super().get_config(), "a": self.a_value}


@pytest.mark.parametrize(
    "t1, a, method, options, tolerance",
    [
        (1.0, 0.5, "dopri5", {"rtol": 1e-7, "atol": 1e-9}, 1e-5),
        (100.0, -0.05, "dopri5", {"rtol": 1e-7, "atol": 1e-9}, 1e-5),
        (1.0, 0.5, "rk4", {"step_size": 0.01}, 1e-6),
        (100.0, -0.05, "rk4", {"step_size": 0.5}, 1e-6),
    ],
)
def test_linear_ode_exact_solution(t1, a, method, options, tolerance):
    y0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    block = ODEBlock(LinearODEFunc(a, dtype="float64"), t1=t1, method=method, dtype="float64", **options)
    y1 = block(y0)
    np.testing.assert_allclose(y1.detach().numpy(), math.exp(a * t1) * y0.numpy(), rtol=tolerance)


@pytest.mark.parametrize("adjoint", [False, True])
def test_parameter_gradient_is_exact(adjoint):
    t1, a = 2.0, 0.3
    y0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    func = LinearODEFunc(a, dtype="float64")
    block = ODEBlock(func, t1=t1, rtol=1e-10, atol=1e-12, adjoint=adjoint, dtype="float64")
    block(y0).sum().backward()
    expected = t1 * math.exp(a * t1) * y0.sum().item()
    assert func.a.value.grad.item() == pytest.approx(expected, rel=1e-6)
    assert (block.nfe_backward > 0) == adjoint


def test_gradcheck_conv_dynamics_direct():
    # A fixed grid, so that backpropagation through the solver is the exact derivative of what it computes.
    keras.utils.set_random_seed(0)
    block = ODEBlock(ConvODEFunc(2, dtype="float64"), t1=0.5, method="rk4", step_size=0.25, dtype="float64")
    y0 = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y: block(y), (y0,), atol=1e-6, rtol=1e-4)


def test_gradcheck_adjoint():
    # The adjoint solves a second ODE backwards: with tight tolerances its gradient matches finite differences.
    y0 = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64, requires_grad=True)
    block = ODEBlock(
        LinearODEFunc(-0.7, dtype="float64"), t1=1.5, rtol=1e-10, atol=1e-10, adjoint=True, dtype="float64"
    )
    assert torch.autograd.gradcheck(lambda y: block(y).square(), (y0,), atol=1e-6, rtol=1e-4)


def test_adjoint_gives_every_weight_a_gradient_along_the_direct_one():
    keras.utils.set_random_seed(1)
    y0 = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    func = ConvODEFunc(4, dtype="float64")
    grads = {}
    for adjoint in (False, True):
        block = ODEBlock(func, t1=1.0, rtol=1e-5, atol=1e-5, adjoint=adjoint, dtype="float64")
        for v in func.trainable_weights:
            v.value.grad = None
        block(y0).square().sum().backward()
        grads[adjoint] = [v.value.grad for v in func.trainable_weights]
    assert all(g is not None for g in grads[True])
    direct, adjoint = (torch.cat([g.flatten() for g in grads[k]]) for k in (False, True))
    # The adjoint's gradient carries the backward solve's error (about 10% at this tolerance, shrinking as the
    # tolerance tightens); its direction agrees.
    assert torch.nn.functional.cosine_similarity(direct, adjoint, dim=0) > 0.99


def test_nfe_grows_when_the_tolerance_tightens():
    keras.utils.set_random_seed(2)
    func = ConvODEFunc(4)
    y0 = torch.randn(2, 4, 4, 4)
    counts = []
    for tolerance in (1e-2, 1e-4, 1e-6):
        block = ODEBlock(func, t1=1.0, rtol=tolerance, atol=tolerance)
        with torch.no_grad():
            block(y0)
        counts.append(block.nfe_forward)
    assert counts[0] < counts[1] < counts[2]
    assert counts[0] >= 6  # one dopri5 step takes six evaluations (the seventh is reused)


def test_solver_failures_raise_solver_error():
    func = ConvODEFunc(4)
    with pytest.raises(SolverError, match="max_num_steps"):
        ODEBlock(func, t1=10.0, rtol=1e-9, atol=1e-9, max_num_steps=3)(torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match="Unknown ODE method 'rk5'"):
        ODEBlock(func, method="rk5")(torch.randn(1, 4, 3, 3))


def test_solver_settings_can_change_on_a_loaded_model(tmp_path):
    model = models.build_student(input_shape=(8, 8, 1), channels=8, downsample=0, mean=[0.3], std=[0.4])
    x = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, atol=1e-6)
    (block,) = models.ode_blocks(loaded)
    assert block.solver_settings() == {
        "t1": 1.0,
        "method": "dopri5",
        "rtol": 1e-3,
        "atol": 1e-3,
        "step_size": None,
        "max_num_steps": None,
        "adjoint": False,
    }
    with pytest.raises(AttributeError, match="block.solver = dataclasses.replace"):
        block.method = "rk4"  # would be ignored: the solver is one value
    block.solver = dataclasses.replace(block.solver, method="rk4", step_size=0.25)
    loaded(x)
    assert block.nfe_forward == 4 * 4  # four rk4 steps of four evaluations


@pytest.mark.parametrize(
    "time_input, norm, norms", [("raw", "pre", 5), ("scaled", "pre", 5), ("none", "pre", 5), ("none", "post", 4)]
)
def test_student_at_the_papers_width_has_the_expected_parameters(time_input, norm, norms):
    # stem 3x3 (3 -> 512) and two 4x4 stride-2 convs with biases; two stem GroupNorms; in the ODE function 4 3x3
    # convs (512 -> 512, with a time channel 513 -> 512) and 5 GroupNorms (pre) or 4 (post); head GroupNorm and dense.
    c = 512
    inputs = c if time_input == "none" else c + 1
    expected = (27 * c + c) + 2 * (16 * c * c + c) + 2 * 2 * c + norms * 2 * c + 4 * (9 * inputs * c + c) + 2 * c
    expected += c * 10 + 10
    model = models.build_student(channels=c, time_input=time_input, norm=norm)
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == expected


DESIGNS = [("raw", "pre"), ("scaled", "pre"), ("none", "pre"), ("scaled", "post"), ("none", "post")]


@pytest.mark.parametrize("t1", [1.0, 100.0, 500.0])
@pytest.mark.parametrize("time_input, norm", DESIGNS)
def test_identity_init_starts_as_the_identity_flow(t1, time_input, norm):
    keras.utils.set_random_seed(3)
    func = ConvODEFunc(8, time_input=time_input, horizon=t1, norm=norm, init="identity", dtype="float64")
    y0 = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    func.build(y0.shape)
    with torch.no_grad():
        assert torch.count_nonzero(func.dynamics(torch.tensor(t1 / 2), y0)) == 0  # f = 0 exactly
        y1 = ODEBlock(func, t1=t1, dtype="float64")(y0)
    # y(t1) = y(0) whatever the horizon, up to the rounding of dopri5's interpolation at t1.
    np.testing.assert_allclose(y1.numpy(), y0.numpy(), rtol=0, atol=1e-12)


def _unit_horizon_twin(func):
    """The same dynamics over [0, 1]: equal weights, except that the last GroupNorm's scale is 1 (horizon init's
    1 / t1 times t1)."""
    twin = ConvODEFunc(
        func.channels, time_input=func.time_input, horizon=1.0, norm=func.norm, init="he", dtype=func.dtype
    )
    twin.build((None, func.channels, None, None))
    twin.set_weights(func.get_weights())
    twin.gammas[-1].assign(func.gammas[-1].numpy() * func.horizon)
    return twin


@pytest.mark.parametrize("t1", [100.0, 500.0])
@pytest.mark.parametrize("time_input, norm", [d for d in DESIGNS if d[0] != "raw"])
def test_horizon_init_starts_as_the_unit_horizon_flow(t1, time_input, norm):
    # y over [0, t1] with f = g / t1 at time t / t1 is z over [0, 1] with g at time s: z(s) = y(s t1), and
    # Runge-Kutta steps on grids rescaled with time agree to rounding. (dopri5 agrees only to its tolerance: its
    # first step is not chosen scale-free.)
    keras.utils.set_random_seed(4)
    func = ConvODEFunc(4, time_input=time_input, horizon=t1, norm=norm, init="horizon", dtype="float64")
    func.build((None, 4, None, None))
    twin = _unit_horizon_twin(func)
    np.testing.assert_allclose(func.gammas[-1].numpy(), 1 / t1)
    y0 = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    long = ODEBlock(func, t1=t1, method="rk4", step_size=t1 / 8, dtype="float64")
    unit = ODEBlock(twin, t1=1.0, method="rk4", step_size=1 / 8, dtype="float64")
    with torch.no_grad():
        y_long, y_unit = long(y0), unit(y0)
    np.testing.assert_allclose(y_long.numpy(), y_unit.numpy(), rtol=0, atol=1e-12)
    assert not torch.allclose(y_long, y0, atol=1e-2)  # a flow that moves, unlike identity init's


def test_dynamics_choices_are_checked():
    for arguments, name in (({"time_input": "t"}, "time_input"), ({"norm": "mid"}, "norm"), ({"init": "x"}, "init")):
        with pytest.raises(ValueError, match=f"Unknown {name}"):
            ConvODEFunc(4, **arguments)
    with pytest.raises(ValueError, match="horizon must be positive"):
        ConvODEFunc(4, horizon=0.0)


def test_a_distillers_blocks_are_counted_once():
    # Distiller keeps its student's ODE blocks in a list, which Keras tracks as its layers too: the evaluation NFE
    # of a distiller must still be the block's own count, not twice it.
    from nodekd_cli.training import evaluate

    student = models.build_student(input_shape=(8, 8, 1), channels=8, downsample=0, mean=[0.3], std=[0.4])
    distiller = models.Distiller(student, lam=0.0)
    assert models.ode_blocks(distiller) == models.ode_blocks(student)
    x = np.random.default_rng(0).integers(0, 255, (6, 8, 8, 1), dtype=np.uint8)
    result = evaluate(distiller, x, np.zeros(6, dtype=np.int64))
    assert result["nfe"] == models.ode_blocks(student)[0].nfe_forward > 0


def test_the_solver_names_are_torchdiffeqs():
    from torchdiffeq._impl.odeint import SOLVERS  # private: read here only, to keep models/ode.py's list honest

    from models.ode import SOLVER_METHODS

    assert sorted(SOLVER_METHODS) == sorted(SOLVERS)


def _concatenating_dynamics(func, t, y):
    """ConvODEFunc's dynamics in odenet's form, the time channel concatenated to every convolution's input, built
    from torch.nn modules holding the layer's Keras weights: the reference for the form without the concatenation."""
    time = t if func.time_input == "raw" else t / func.horizon
    dtype = func.kernels[0].value.dtype
    convs, norms = [], []
    for kernel, bias in zip(func.kernels, func.biases):
        conv = torch.nn.Conv2d(func.channels + 1, func.channels, 3, padding=1, dtype=dtype)
        conv.weight.data, conv.bias.data = kernel.value.detach().permute(3, 2, 0, 1), bias.value.detach()
        convs.append(conv)
    for gamma, beta in zip(func.gammas, func.betas):
        norm = torch.nn.GroupNorm(func.groups, func.channels, eps=1e-5, dtype=dtype)
        norm.weight.data, norm.bias.data = gamma.value.detach(), beta.value.detach()
        norms.append(norm)
    timed = [torch.nn.Sequential(_TimeChannel(time), conv) for conv in convs]
    if func.norm == "pre":  # (GroupNorm, ReLU, conv) four times, then GroupNorm
        layers = [m for pair in zip(norms, timed) for m in (pair[0], torch.nn.ReLU(), pair[1])] + [norms[-1]]
    else:  # (conv, GroupNorm, ReLU) four times, without the last ReLU
        layers = [m for pair in zip(timed, norms) for m in (*pair, torch.nn.ReLU())][:-1]
    return torch.nn.Sequential(*layers)(y)


class _TimeChannel(torch.nn.Module):
    def __init__(self, time):
        super().__init__()
        self.time = float(time)

    def forward(self, h):
        return torch.cat([torch.full_like(h[:, :1], self.time), h], dim=1)


@pytest.mark.parametrize("time_input, norm", [("raw", "pre"), ("scaled", "pre"), ("raw", "post")])
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-5)])
def test_the_time_channel_without_a_concatenation_equals_it_to_rounding(time_input, norm, dtype, tolerance):
    keras.utils.set_random_seed(3)
    func = ConvODEFunc(16, time_input=time_input, horizon=7.0, norm=norm, dtype=dtype)
    y = torch.randn(3, 16, 5, 6, dtype=getattr(torch, dtype))  # 5 x 6: the borders' response differs from the inside
    func.build(y.shape)
    params = func.solve_params(y.shape)
    for t in (0.0, 0.3, 6.5):
        got = func.dynamics(torch.tensor(t, dtype=y.dtype), y, params)
        expected = _concatenating_dynamics(func, t, y)
        scale = expected.abs().max().item()
        assert (got - expected).abs().max().item() <= tolerance * scale, t


def _twins(seed, policies, time_input="none", norm="pre", t1=1.0, shape=(3, 16, 5, 6)):
    """ConvODEFuncs of the same weights under each dtype policy, and a float64 state of `shape`."""
    keras.utils.set_random_seed(seed)
    y0 = torch.randn(shape, dtype=torch.float64)
    funcs = [
        ConvODEFunc(shape[1], time_input=time_input, horizon=t1, norm=norm, init="horizon", dtype=p) for p in policies
    ]
    for func in funcs:
        func.build(shape)
        func.set_weights(funcs[0].get_weights())
    return funcs, y0


@pytest.mark.parametrize("time_input, norm", [("none", "pre"), ("raw", "pre"), ("scaled", "post")])
def test_mixed_precision_dynamics_convolve_in_bfloat16_and_answer_in_float32(time_input, norm):
    (exact, mixed), y = _twins(4, ["float64", "mixed_bfloat16"], time_input, norm, t1=7.0)
    params = mixed.solve_params(y.shape)
    assert all(k.dtype == torch.bfloat16 for k in params[: mixed.num_layers])
    assert all(v.value.dtype == torch.float32 for v in mixed.trainable_weights)
    for t in (0.0, 2.5):
        expected = exact.dynamics(torch.tensor(t, dtype=torch.float64), y)
        got = mixed.dynamics(torch.tensor(t), y.float(), params)
        assert got.dtype == torch.float32
        error = (got.double() - expected).abs().max().item() / expected.abs().max().item()
        # bfloat16 keeps 8 significant bits (relative rounding 2^-9): its error shows, and stays within 2%.
        assert 1e-4 < error < 0.02, (t, error)


@pytest.mark.parametrize("t1", [1.0, 100.0])
def test_a_mixed_precision_solve_stays_within_two_percent_of_the_exact_flow(t1):
    """y(t1) of a mixed-precision solve (dopri5, rtol = atol = 1e-3) against the exact solution of the same
    dynamics (float64, rtol = atol = 1e-7): within 2% of how far the flow moves the state (measured: 0.44% and
    0.49%, against 0.31% and 0.34% for a float32 solve at this tolerance). The solver's state stays float32."""
    (exact, mixed), y0 = _twins(5, ["float64", "mixed_bfloat16"], t1=t1)
    states = []
    dynamics = mixed.dynamics
    mixed.dynamics = lambda t, y, params=None: states.append(y.dtype) or dynamics(t, y, params)
    expected = ODEBlock(exact, t1=t1, rtol=1e-7, atol=1e-7, dtype="float64")(y0)
    block = ODEBlock(mixed, t1=t1)
    got = block(y0.float())
    assert got.dtype == torch.float32 and set(states) == {torch.float32}
    assert ((got.double() - expected).norm() / (expected - y0).norm()).item() < 0.02
    assert block.nfe_forward == len(states) >= 6


def test_mixed_precision_gradients_reach_the_float32_weights_along_the_float32_ones():
    (full, mixed), y0 = _twins(6, ["float32", "mixed_bfloat16"])
    grads = []
    for func in (full, mixed):
        ODEBlock(func, t1=1.0, method="rk4", step_size=0.25)(y0.float()).square().sum().backward()
        grads.append(torch.cat([v.value.grad.flatten() for v in func.trainable_weights]))
    assert grads[1].dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(*grads, dim=0) > 0.999


def test_a_saved_mixed_precision_student_keeps_its_precision(tmp_path):
    model = models.build_student(
        input_shape=(8, 8, 1), channels=16, downsample=0, mean=[0.3], std=[0.4], precision="mixed_bfloat16"
    )
    x = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    (block,) = models.ode_blocks(loaded)
    assert block.func.dtype_policy.name == "mixed_bfloat16" and block.dtype_policy.name == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), expected)


def _solve_and_grads(func, y0, state_dtype, **solver):
    """y(t1), the weights' gradients of |y(t1)|^2 (float64, flat) and the NFE of a solve of `func` over [0, 1]."""
    block = ODEBlock(func, t1=1.0, dtype=state_dtype, **solver)
    y1 = block(y0.to(getattr(torch, state_dtype)))
    y1.square().sum().backward()
    grads = torch.cat([v.value.grad.double().flatten() for v in func.trainable_weights])
    return y1.double(), grads, block.nfe_forward


# Each precision's error model, relative to the scale of the whole float64 gradient (and of how far the flow moves
# the state): float32 keeps 24 bits (unit roundoff u = 2^-24 = 6e-8), bfloat16 8 (2^-9 = 2e-3). On fixed steps a
# solve's error is a few hundred roundoffs at most (16 evaluations of 4 convolutions and 5 GroupNorms): float32 1e-5,
# mixed_bfloat16 0.1 (measured on an AMD EPYC with AVX-512: 2e-7 and 0.033, both layouts).
FIXED_STEP_BOUND = {"float64": 1e-12, "float32": 1e-5, "mixed_bfloat16": 0.1}


@pytest.mark.parametrize("dtype", ["float64", "float32", "mixed_bfloat16"])
def test_a_channels_last_solve_is_as_accurate_as_the_contiguous_one(dtype):
    # Ground truth: the same dynamics and weights in float64, contiguous, on the same fixed steps (rk4, 4 steps of
    # 0.25). Each layout's y(t1) and weight gradients lie within its precision's error model of it; and a dopri5 solve
    # in channels_last keeps that layout in every evaluation (else it only pays for the copies).
    funcs, y0 = _twins(8, [dtype, dtype, "float64"])
    funcs[1].memory_format = "channels_last"
    state_dtype = "float32" if dtype == "mixed_bfloat16" else dtype
    y_ref, g_ref, _ = _solve_and_grads(funcs[2], y0, "float64", method="rk4", step_size=0.25)
    for func in funcs[:2]:
        y1, grads, nfe = _solve_and_grads(func, y0, state_dtype, method="rk4", step_size=0.25)
        assert nfe == 16
        assert ((y1 - y_ref).norm() / (y_ref - y0).norm()).item() < FIXED_STEP_BOUND[dtype], func.memory_format
        assert ((grads - g_ref).norm() / g_ref.norm()).item() < FIXED_STEP_BOUND[dtype], func.memory_format
    layouts = []
    for func in funcs[:2]:
        dynamics = func.dynamics

        def record(t, y, *params, func=func, dynamics=dynamics):
            layouts.append((func.memory_format, y.is_contiguous(memory_format=torch.channels_last)))
            return dynamics(t, y, *params)

        func.dynamics = record
        y1 = ODEBlock(func, t1=1.0, dtype=state_dtype)(y0.to(getattr(torch, state_dtype)))
        assert y1.is_contiguous(memory_format=torch.channels_last) == (func.memory_format == "channels_last")
    assert {layout for layout, _ in layouts} == {"contiguous", "channels_last"}
    assert all(is_last == (layout == "channels_last") for layout, is_last in layouts)
    with pytest.raises(ValueError, match="Unknown memory_format"):
        ConvODEFunc(4, memory_format="nhwc")


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_a_float32_dopri5_gradient_is_within_the_error_model_of_its_step_size_control(memory_format):
    """Ground truth: the float64 solve with the same weights (the same steps: NFE equal). An adaptive solve is
    differentiated through its step-size control, whose error estimate is the difference of two solutions that agree
    to about rtol: in float32 it carries a rounding of about u / rtol of itself (u = 2^-24), and every later step and
    state depends on it. So the float32 gradient's error is bounded by about 100 u / rtol = 6e-3 of the whole
    gradient at rtol 1e-3, not by the few hundred u of a fixed-step solve: measured on an AMD EPYC with AVX-512,
    6.4e-4 contiguous and 1.6e-6 channels-last (the same weights; which layout's rounding falls well is luck), against
    2e-7 for both on rk4's fixed steps (docs/research-notes.md, "How accurate the students' gradients are")."""
    funcs, y0 = _twins(8, ["float32", "float64"])
    funcs[0].memory_format = memory_format
    y_ref, g_ref, nfe_ref = _solve_and_grads(funcs[1], y0, "float64")
    y1, grads, nfe = _solve_and_grads(funcs[0], y0, "float32")
    assert nfe == nfe_ref >= 6
    assert ((y1 - y_ref).norm() / (y_ref - y0).norm()).item() < 1e-5  # the forward solve: rounding only
    assert ((grads - g_ref).norm() / g_ref.norm()).item() < 100 * 2**-24 / 1e-3


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_a_students_state_takes_its_kernels_layout_in_every_evaluation(memory_format):
    # The stem hands the ODE block its state in channels_last (NHWC pixels permuted to NCHW); a solve whose state and
    # kernels disagree makes every convolution convert one of them (15-20% of a 512-channel CPU step).
    model = models.build_student(input_shape=(8, 8, 1), channels=16, downsample=0, memory_format=memory_format)
    (block,) = models.ode_blocks(model)
    dynamics, seen = block.func.dynamics, []

    def record(t, y, params):
        seen.append(
            y.is_contiguous(memory_format=getattr(torch, memory_format.replace("contiguous", "contiguous_format")))
        )
        return dynamics(t, y, params)

    block.func.dynamics = record
    model(torch.rand(2, 8, 8, 1))
    assert len(seen) == block.nfe_forward >= 6 and all(seen)


def test_the_lean_dopri5_solves_a_linear_ode_exactly():
    from models import dopri5

    y0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    times = []
    for t1, a in ((1.0, 0.5), (100.0, -0.05)):
        y1 = dopri5.solve(lambda t, y, a=a: times.append(t) or a * y, y0, t1, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(y1.numpy(), math.exp(a * t1) * y0.numpy(), rtol=1e-6)
    assert {(t.dtype, t.device, t.dim()) for t in times} == {(y0.dtype, y0.device, 0)}  # as torchdiffeq passes t


@pytest.mark.parametrize(
    "t1, tolerance, time_input", [(1.0, 1e-3, "raw"), (100.0, 1e-3, "none"), (7.0, 1e-2, "raw"), (1.0, 1e-6, "scaled")]
)
def test_the_lean_dopri5_takes_torchdiffeqs_steps_and_agrees_with_it_to_rounding(t1, tolerance, time_input):
    """As many evaluations at the same times (to 1e-3: float32 rounding of the error estimate moves the step sizes,
    by up to 4e-4 at rtol = 1e-6) and y(t1) equal to rounding (measured: within 2e-6 of |y|). Gradients: torchdiffeq
    also differentiates its first step size, which it computes from the state; given the same first step as a number,
    its weight gradients agree with the lean loop's to rounding (measured: 2e-6 at rtol = 1e-3; at 1e-6, where
    rounding moves the steps, 1e-3)."""
    from torchdiffeq import odeint

    from models import dopri5

    keras.utils.set_random_seed(7)
    func = ConvODEFunc(16, time_input=time_input, horizon=t1, init="horizon")
    y0 = torch.randn(3, 16, 5, 6)
    func.build(y0.shape)
    span = torch.tensor([0.0, t1])
    results = []
    for solve in (
        lambda f: odeint(f, y0, span, rtol=tolerance, atol=tolerance, method="dopri5")[-1],
        lambda f: dopri5.solve(f, y0, t1, tolerance, tolerance),
    ):
        times = []
        y1 = solve(lambda t, y, times=times: times.append(t.item()) or func.dynamics(t, y))
        grads = torch.autograd.grad(y1.square().sum(), [v.value for v in func.trainable_weights])
        results.append((times, y1.detach(), torch.cat([g.flatten() for g in grads])))
    (times, expected, _), (got_times, got, got_grad) = results
    assert len(got_times) == len(times)
    np.testing.assert_allclose(got_times, times, rtol=1e-3, atol=1e-6)
    assert ((got - expected).norm() / expected.norm()).item() < 1e-5
    if tolerance >= 1e-3:
        first = {"first_step": 5 * got_times[2]}  # the first step's second stage is at dt / 5
        y1 = odeint(func.dynamics, y0, span, rtol=tolerance, atol=tolerance, method="dopri5", options=first)[-1]
        grads = torch.autograd.grad(y1.square().sum(), [v.value for v in func.trainable_weights])
        expected_grad = torch.cat([g.flatten() for g in grads])
        assert ((got_grad - expected_grad).norm() / expected_grad.norm()).item() < 1e-4


def test_the_lean_dopri5_fails_as_torchdiffeq_does():
    from models import dopri5

    y0 = torch.ones(2, 3)
    with pytest.raises(AssertionError, match="max_num_steps exceeded"):
        dopri5.solve(lambda t, y: -50 * y, y0, 10.0, 1e-9, 1e-9, max_num_steps=3)
    with pytest.raises(AssertionError, match="non-finite"):
        dopri5.solve(lambda t, y: y / (1.0 - t), y0, 2.0, 1e-3, 1e-3)  # blows up at t = 1
