"""White-box attacks and robustness sweeps, with the paper's settings (REFERENCE.md, "Attacks as the paper sets them").

Pixels in [0, 1], L-infinity balls of radius eps = e / 255, step 1/255, floor(min(e + 4, 1.25 e)) steps, projection
onto the ball and onto [0, 1] after every step. PGD starts uniformly at random in the ball; MI-FGSM accumulates
L1-normalized gradients with momentum 1; FGSM takes one signed-gradient step of size eps. Models run in inference
mode and only the input receives gradients.
"""

import functools
import time

import numpy as np
import torch
import torch.nn.functional as F

from nodekd_cli import interrupts
from nodekd_cli.data import sample_indices
from nodekd_cli.runs import ATTACKS_DIR as RESULTS_FOLDER
from nodekd_cli.runs import CHECK_FILE

STEP_SIZE = 1 / 255


def num_steps(e):
    """The paper's number of steps for eps = e / 255: floor(min(e + 4, 1.25 e))."""
    return int(np.floor(min(e + 4, 1.25 * e)))


def _project(x_adv, x, eps):
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def margin_loss(logits, y):
    """Carlini-Wagner's margin: the best other logit minus the true one (raising it crosses the boundary)."""
    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return (others - true).sum()


LOSSES = {"ce": lambda logits, y: F.cross_entropy(logits, y, reduction="sum"), "margin": margin_loss}


def _input_gradient(model, x, y, loss="ce"):
    x = x.detach().requires_grad_(True)
    value = LOSSES[loss](model(x, training=False).float(), y)
    (grad,) = torch.autograd.grad(value, x)
    return grad


def pgd(model, x, y, eps, steps, generator=None, loss="ce"):
    """Madry et al.: uniform random start in the ball, then signed-gradient steps of 1/255, projected."""
    start = (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * eps
    x_adv = _project(x + start, x, eps)
    for _ in range(steps):
        x_adv = _project(x_adv + STEP_SIZE * _input_gradient(model, x_adv, y, loss).sign(), x, eps)
    return x_adv.detach()


def mifgsm(model, x, y, eps, steps, generator=None, loss="ce", momentum=1.0):
    """Dong et al.: g <- momentum * g + grad / mean(|grad|) per image; steps of 1/255 along sign(g); no random start."""
    x_adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y, loss)
        g = momentum * g + grad / grad.abs().mean(dim=tuple(range(1, x.ndim)), keepdim=True).clamp_min(1e-12)
        x_adv = _project(x_adv + STEP_SIZE * g.sign(), x, eps)
    return x_adv.detach()


def fgsm(model, x, y, eps, steps=1, generator=None, loss="ce"):
    """Goodfellow et al.: one signed-gradient step of size eps (the step count does not apply)."""
    return _project(x + eps * _input_gradient(model, x, y, loss).sign(), x, eps).detach()


ATTACKS = {"pgd": pgd, "mifgsm": mifgsm, "fgsm": fgsm}


def predict(model, x, batch_size):
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size], training=False).argmax(1) for i in range(0, len(x), batch_size)])


def sweep(
    model, x, y, attack, eps_values, *, batch_size=256, seed=0, monotone=False, progress=None, done=None, on_eps=None
):
    """Accuracy under `attack` at each eps (in 1/255) on pixels `x` in [0, 1] with labels `y`, both on the device.

    Clean predictions are made once; images misclassified clean are not attacked. The paper's protocol attacks every
    eps independently; `monotone` attacks at each eps only the images no smaller eps has broken (an adversarial
    example for eps stays one for every larger eps), which is cheaper and never weaker. `progress(e, left, seconds)`
    is called before each eps. An independent sweep takes the accuracies in `done` ({eps: accuracy}, from an
    interrupted sweep of the same settings: each eps has its own seed, so they are what it would compute) and calls
    `on_eps(e, accuracy)` after each eps it computes.
    """
    done = {} if monotone or done is None else done
    method = ATTACKS[attack]
    generator = torch.Generator(device=x.device)
    correct = predict(model, x, batch_size) == y
    still_correct = correct.clone()
    accuracy, steps = [], []
    started = time.perf_counter()
    for e in eps_values:
        n_steps = 1 if attack == "fgsm" else num_steps(e)
        steps.append(0 if e == 0 else n_steps)
        if e == 0:
            accuracy.append(correct.float().mean().item())
            continue
        if e in done:
            accuracy.append(done[e])
            continue
        survivors = still_correct if monotone else correct
        index = survivors.nonzero().flatten()
        if progress:
            progress(e, len(index), time.perf_counter() - started)
        generator.manual_seed(seed * 1000 + e)
        robust = torch.zeros_like(correct)
        for i in range(0, len(index), batch_size):
            interrupts.check()
            batch = index[i : i + batch_size]
            x_adv = method(model, x[batch], y[batch], e / 255, n_steps, generator=generator)
            robust[batch] = predict(model, x_adv, batch_size) == y[batch]
        if monotone:
            still_correct &= robust
            accuracy.append(still_correct.float().mean().item())
        else:
            accuracy.append(robust.float().mean().item())
            if on_eps:
                on_eps(e, accuracy[-1])
    return {"accuracy": accuracy, "steps": steps, "seconds": time.perf_counter() - started}


def sample_rule(n, seed):
    """How `test_images` chooses: every test image, or `n` drawn with `seed`, each class in proportion."""
    return "all" if n is None else f"stratified by class, seed {seed}"


@functools.lru_cache(maxsize=2)
def test_images(dataset, n=None, data_dir=None, manual_dir=None, seed=0):
    """(pixels in [0, 1], labels, indices) of the test images of `dataset` that `sample_rule(n, seed)` chooses, on
    Keras's device, loaded once for all the runs of a data set that one command attacks."""
    from nodekd_cli.backend import keras_device
    from nodekd_cli.data import load_dataset
    from nodekd_cli.data.device import pixels, to_device

    data = load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)
    device = keras_device()
    chosen = sample_indices(data.y_test, n, seed)
    return pixels(to_device(data.x_test[chosen], device)), to_device(data.y_test[chosen], device), chosen


SWEEPS = ("independent", "monotone")


def sample_size(dataset, n, data_dir=None, manual_dir=None):
    """`n` as a sample of the test set of `dataset`: None (every image) when it asks for all of them or more."""
    if n is None:
        return None
    _, y, _ = test_images(dataset, None, data_dir, manual_dir)
    return None if n >= len(y) else n


def saved_result(path, settings):
    """The attack result at `path` when it was computed with exactly `settings`, else None."""
    from nodekd_cli import runs

    try:
        previous = runs.read_json(path)
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) and previous.get("settings") == settings else None


def attack_run(
    folder,
    attack,
    eps_values,
    *,
    n=None,
    batch_size=256,
    seed=0,
    sweep_mode="independent",
    force=False,
    data_dir=None,
    manual_dir=None,
    progress=None,
    wait=False,
    on_wait=None,
):
    """Attacks the finished run in `folder` and writes `attacks/<attack>.json` there; returns (result, reused).

    A result computed with the same settings is reused unless `force`. The result file is locked (`runs.lock`, with
    `wait`, calling `on_wait(holder)` first) and checked writable before the sweep starts.
    """
    from pathlib import Path

    import models
    from nodekd_cli import runs
    from nodekd_cli.errors import UserError

    if attack not in ATTACKS:
        raise UserError(f"Unknown attack {attack!r}; choose one of: {', '.join(ATTACKS)}.")
    if sweep_mode not in SWEEPS:
        raise UserError(f"Unknown sweep {sweep_mode!r}; choose one of: {', '.join(SWEEPS)}.")
    folder = Path(folder)
    config, _ = runs.read_run(folder)
    model = runs.load_model(folder)
    blocks = models.ode_blocks(model)
    n = sample_size(config["dataset"], n, data_dir, manual_dir)
    settings = {
        "attack": attack,
        "norm": "linf",
        "step_size": "1/255" if attack != "fgsm" else "eps",
        "steps_rule": "floor(min(e + 4, 1.25 e))" if attack != "fgsm" else "one step of size eps",
        "random_start": attack == "pgd",
        "momentum": 1.0 if attack == "mifgsm" else None,
        "loss": "cross-entropy",
        "sweep": sweep_mode,
        "eps": [int(e) for e in eps_values],
        "n": n,
        "sample": sample_rule(n, seed),
        "seed": seed,
        "batch_size": batch_size,
        # Gradients and predictions both go through the model's own solver (`attack check` also tries a fixed step).
        "gradient_solver": blocks[0].solver_settings() if blocks else None,
        "prediction_solver": blocks[0].solver_settings() if blocks else None,
    }
    path = folder / RESULTS_FOLDER / f"{attack}.json"
    previous = None if force else saved_result(path, settings)
    if previous is not None:
        return previous, True
    x, y, chosen = test_images(config["dataset"], n, data_dir, manual_dir, seed)
    # The eps values an interrupted sweep of these settings finished, kept beside the result until it is written.
    partial = path.parent / f".{attack}.sweep-so-far"
    with runs.lock(path.parent, name=f".{attack}.lock", wait=wait, on_wait=on_wait):
        kept = (None if force else saved_result(partial, settings)) or {}
        done = {int(e): a for e, a in kept["accuracy"].items()} if isinstance(kept.get("accuracy"), dict) else {}

        def keep(e, accuracy):
            done[e] = accuracy
            runs.write_json(partial, {"settings": settings, "accuracy": done})

        outcome = sweep(
            model,
            x,
            y,
            attack,
            settings["eps"],
            batch_size=batch_size,
            seed=seed,
            monotone=sweep_mode == "monotone",
            progress=progress,
            done=done,
            on_eps=keep,
        )
        result = {
            "settings": settings,
            "attack": attack,
            "eps": settings["eps"],
            "accuracy": outcome["accuracy"],
            "steps": outcome["steps"],
            "n": len(y),
            "seed": seed,
            "images": None if n is None else chosen.tolist(),  # test-set indices; None: all of them
            "seconds": outcome["seconds"],  # of this command: eps values kept from an interrupted one cost nothing
        }
        runs.write_json(path, result)
        partial.unlink(missing_ok=True)
    return result, False


def _robust(model, x, y, correct, make_adversarial, batch_size):
    """Accuracy of `model` over all images when the clean-correct ones are replaced by `make_adversarial(x, y)`."""
    robust = torch.zeros_like(correct)
    index = correct.nonzero().flatten()
    for i in range(0, len(index), batch_size):
        interrupts.check()
        batch = index[i : i + batch_size]
        robust[batch] = predict(model, make_adversarial(x[batch], y[batch]), batch_size) == y[batch]
    return robust.float().mean().item()


def slack(n):
    """How far two accuracies over `n` images may differ in a check: 5 points or one image, whichever is larger, plus
    the float32 rounding of the accuracies (11/20 and 12/20 in float32 differ by a little more than 1/20)."""
    return max(1 / n, 0.05) + 1e-6


def masking_checks(
    model,
    x,
    y,
    *,
    eps=8,
    batch_size=256,
    seed=0,
    transfer_model=None,
    grad_model=None,
    queries=300,
    restarts=3,
    large_eps=(64, 255),
    progress=None,
):
    """The checks careful robustness evaluations make that the measured robustness is real (REFERENCE.md).

    Each check compares an accuracy with the reference, PGD at `eps` (in 1/255) with the paper's steps, and passes or
    fails; a failed check flags possible gradient masking, or (APGD-CE far stronger than the reference) a reference
    attack too weak to trust. A check without what it needs (no transfer source, no
    ODE solver to swap) is skipped (`passed` None). Comparisons allow 5 points (or one image) of slack: attacks of
    equal strength differ by a few images, masking by tens of points.
    """
    tolerance = slack(len(y))
    generator = torch.Generator(device=x.device)
    correct = predict(model, x, batch_size) == y
    e, steps = eps / 255, num_steps(eps)

    def run(name, make):
        if progress:
            progress(name)
        generator.manual_seed(seed)
        return _robust(model, x, y, correct, make, batch_size)

    reference = run("pgd", lambda xb, yb: pgd(model, xb, yb, e, steps, generator))
    checks = []

    def record(name, accuracy, passed, rule):
        checks.append({"check": name, "accuracy": accuracy, "reference": reference, "passed": passed, "rule": rule})

    for big in large_eps:
        accuracy = run(
            f"pgd eps {big}", lambda xb, yb, big=big: pgd(model, xb, yb, big / 255, num_steps(big), generator)
        )
        limit = 0.05 if big >= 255 else reference + tolerance
        rule = "at most 5%" if big >= 255 else "at most the reference"
        record(f"PGD at eps {big}/255", accuracy, accuracy <= limit, rule)

    def strongest(xb, yb):
        # More steps and restarts: an image counts as broken if any restart breaks it.
        best = xb
        for _ in range(restarts):
            candidate = pgd(model, xb, yb, e, 4 * steps, generator)
            broken = predict(model, candidate, batch_size) != yb
            best = torch.where(broken[:, None, None, None], candidate, best) if xb.ndim == 4 else candidate
        return best

    accuracy = run("pgd x4 steps, restarts", strongest)
    record(f"PGD, 4x steps, {restarts} restarts", accuracy, accuracy <= reference + tolerance, "at most the reference")
    accuracy = run("margin loss", lambda xb, yb: pgd(model, xb, yb, e, steps, generator, loss="margin"))
    record("PGD on the margin (CW) loss", accuracy, accuracy >= reference - tolerance, "at least the reference")
    if transfer_model is not None:
        accuracy = run("transfer", lambda xb, yb: pgd(transfer_model, xb, yb, e, steps, generator))
        record("transfer from another run", accuracy, accuracy >= reference - tolerance, "at least the reference")
    else:
        record("transfer from another run", None, None, "skipped: no source run")
    if grad_model is not None:
        accuracy = run("fixed-step gradients", lambda xb, yb: pgd(grad_model, xb, yb, e, steps, generator))
        record(
            "gradients through a fixed-step solver",
            accuracy,
            accuracy >= reference - tolerance,
            "at least the reference",
        )
    else:
        record("gradients through a fixed-step solver", None, None, "skipped: no ODE solver")
    # torchattacks' attacks on the clean-correct images, through the NCHW adapter (`nodekd_cli.autoattack`).
    from nodekd_cli.autoattack import STEPS, TorchClassifier, components

    module = TorchClassifier(model, x.device)
    named = dict(components(module, e, "standard", int(model(x[:1], training=False).shape[-1]), seed, STEPS, queries))

    def through(attack):
        return lambda xb, yb: attack(xb.permute(0, 3, 1, 2).contiguous(), yb).permute(0, 2, 3, 1).to(xb.dtype)

    accuracy = run("apgd-ce", through(named["APGD-CE"]))
    record(f"APGD-CE ({STEPS} steps)", accuracy, reference <= accuracy + tolerance, "the reference at most it")
    accuracy = run("square", through(named["Square"]))
    passed = accuracy >= reference - tolerance
    record(f"Square, gradient-free ({queries} queries)", accuracy, passed, "at least the reference")
    return {"reference": reference, "checks": checks, "masking": any(c["passed"] is False for c in checks)}


def check_run(
    folder,
    *,
    eps=8,
    n=100,
    batch_size=256,
    seed=0,
    transfer_from=None,
    grad_method="rk4",
    grad_step_size=None,
    queries=300,
    data_dir=None,
    manual_dir=None,
    progress=None,
    wait=False,
    on_wait=None,
):
    """Runs `masking_checks` on the finished run in `folder`; writes and returns `attacks/check.json` (locked and
    checked writable before the checks start)."""
    from pathlib import Path

    import models
    from models.ode import solver_methods
    from nodekd_cli import runs
    from nodekd_cli.errors import UserError

    if grad_method not in solver_methods():
        raise UserError(f"Unknown ODE method {grad_method!r}; choose one of: {', '.join(solver_methods())}.")
    folder = Path(folder)
    config, _ = runs.read_run(folder)
    model = runs.load_model(folder)
    if transfer_from is None and config.get("teacher"):
        transfer_from = config["teacher"]
    transfer_model = None
    if transfer_from is not None:
        runs.read_run(transfer_from)
        transfer_model = runs.load_model(transfer_from)
    grad_model = None
    if models.ode_blocks(model):
        grad_model = runs.load_model(folder)
        for block in models.ode_blocks(grad_model):
            block.method, block.step_size = grad_method, grad_step_size or block.t1 / 10
    n = sample_size(config["dataset"], n, data_dir, manual_dir)
    path = folder / RESULTS_FOLDER / CHECK_FILE
    x, y, chosen = test_images(config["dataset"], n, data_dir, manual_dir, seed)
    with runs.lock(path.parent, name=".check.lock", wait=wait, on_wait=on_wait):
        started = time.perf_counter()
        result = masking_checks(
            model,
            x,
            y,
            eps=eps,
            batch_size=batch_size,
            seed=seed,
            transfer_model=transfer_model,
            grad_model=grad_model,
            queries=queries,
            progress=progress,
        )
        result.update(
            {
                "eps": eps,
                "n": len(y),
                "sample": sample_rule(n, seed),
                "images": None if n is None else chosen.tolist(),
                "seed": seed,
                "transfer_from": None if transfer_from is None else str(transfer_from),
                "gradient_solver": None if grad_model is None else models.ode_blocks(grad_model)[0].solver_settings(),
                "seconds": time.perf_counter() - started,
            }
        )
        runs.write_json(path, result)
    return result
