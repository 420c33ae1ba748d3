"""White-box attacks and robustness sweeps, with the paper's settings (REFERENCE.md, "Attacks as the paper sets them").

Pixels in [0, 1], L-infinity balls of radius eps = e / 255, step 1/255, floor(min(e + 4, 1.25 e)) steps, projection
onto the ball and onto [0, 1] after every step. PGD starts uniformly at random in the ball; MI-FGSM accumulates
L1-normalized gradients with momentum 1; FGSM takes one signed-gradient step of size eps. Models run in inference
mode and only the input receives gradients.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F

STEP_SIZE = 1 / 255


def num_steps(e):
    """The paper's number of steps for eps = e / 255: floor(min(e + 4, 1.25 e))."""
    return int(np.floor(min(e + 4, 1.25 * e)))


def _project(x_adv, x, eps):
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def _input_gradient(model, x, y):
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x, training=False).float(), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def pgd(model, x, y, eps, steps, generator=None):
    """Madry et al.: uniform random start in the ball, then signed-gradient steps of 1/255, projected."""
    start = (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * eps
    x_adv = _project(x + start, x, eps)
    for _ in range(steps):
        x_adv = _project(x_adv + STEP_SIZE * _input_gradient(model, x_adv, y).sign(), x, eps)
    return x_adv.detach()


def mifgsm(model, x, y, eps, steps, generator=None, momentum=1.0):
    """Dong et al.: g <- momentum * g + grad / mean(|grad|) per image; steps of 1/255 along sign(g); no random start."""
    x_adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y)
        g = momentum * g + grad / grad.abs().mean(dim=tuple(range(1, x.ndim)), keepdim=True).clamp_min(1e-12)
        x_adv = _project(x_adv + STEP_SIZE * g.sign(), x, eps)
    return x_adv.detach()


def fgsm(model, x, y, eps, steps=1, generator=None):
    """Goodfellow et al.: one signed-gradient step of size eps (the step count does not apply)."""
    return _project(x + eps * _input_gradient(model, x, y).sign(), x, eps).detach()


ATTACKS = {"pgd": pgd, "mifgsm": mifgsm, "fgsm": fgsm}


def predict(model, x, batch_size):
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size], training=False).argmax(1) for i in range(0, len(x), batch_size)])


def sweep(model, x, y, attack, eps_values, *, batch_size=256, seed=0, monotone=False, progress=None):
    """Accuracy under `attack` at each eps (in 1/255) on pixels `x` in [0, 1] with labels `y`, both on the device.

    Clean predictions are made once; images misclassified clean are not attacked. The paper's protocol attacks every
    eps independently; `monotone` attacks at each eps only the images no smaller eps has broken (an adversarial
    example for eps stays one for every larger eps), which is cheaper and never weaker. `progress(e, left, seconds)`
    is called before each eps.
    """
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
        survivors = still_correct if monotone else correct
        index = survivors.nonzero().flatten()
        if progress:
            progress(e, len(index), time.perf_counter() - started)
        generator.manual_seed(seed * 1000 + e)
        robust = torch.zeros_like(correct)
        for i in range(0, len(index), batch_size):
            batch = index[i : i + batch_size]
            x_adv = method(model, x[batch], y[batch], e / 255, n_steps, generator=generator)
            robust[batch] = predict(model, x_adv, batch_size) == y[batch]
        if monotone:
            still_correct &= robust
            accuracy.append(still_correct.float().mean().item())
        else:
            accuracy.append(robust.float().mean().item())
    return {"accuracy": accuracy, "steps": steps, "seconds": time.perf_counter() - started}


RESULTS_FOLDER = "attacks"
SWEEPS = ("independent", "monotone")


def finished_runs(root):
    """Every finished run folder under `root`, sorted."""
    from pathlib import Path

    from nodekd_cli import runs

    return sorted(p.parent for p in Path(root).glob(f"*/{runs.METRICS}") if (p.parent / runs.MODEL).exists())


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
):
    """Attacks the finished run in `folder` and writes `attacks/<attack>.json` there; returns (result, reused).

    A result computed with the same settings is reused unless `force`.
    """
    from pathlib import Path

    import keras

    import models
    from nodekd_cli import runs
    from nodekd_cli.data import load_dataset
    from nodekd_cli.data.device import pixels, to_device
    from nodekd_cli.errors import UserError

    if attack not in ATTACKS:
        raise UserError(f"Unknown attack {attack!r}; choose one of: {', '.join(ATTACKS)}.")
    if sweep_mode not in SWEEPS:
        raise UserError(f"Unknown sweep {sweep_mode!r}; choose one of: {', '.join(SWEEPS)}.")
    folder = Path(folder)
    config, _ = runs.read_run(folder)
    model = keras.saving.load_model(folder / runs.MODEL)
    blocks = models.ode_blocks(model)
    settings = {
        "attack": attack,
        "norm": "linf",
        "step_size": "1/255",
        "steps_rule": "floor(min(e + 4, 1.25 e))" if attack != "fgsm" else "one step of size eps",
        "random_start": attack == "pgd",
        "momentum": 1.0 if attack == "mifgsm" else None,
        "loss": "cross-entropy",
        "sweep": sweep_mode,
        "eps": [int(e) for e in eps_values],
        "n": n,
        "seed": seed,
        "batch_size": batch_size,
        # Gradients and predictions both go through the model's own solver.
        "solver": blocks[0].solver_settings() if blocks else None,
    }
    path = folder / RESULTS_FOLDER / f"{attack}.json"
    if path.exists() and not force:
        try:
            previous = runs.read_json(path)
        except (OSError, ValueError):
            previous = None
        if previous is not None and previous.get("settings") == settings:
            return previous, True
    data = load_dataset(config["dataset"], data_dir=data_dir, manual_dir=manual_dir)
    from keras.src.backend.torch.core import get_device

    count = len(data.x_test) if n is None else min(n, len(data.x_test))
    device = get_device()
    x = pixels(to_device(data.x_test[:count], device))
    y = to_device(data.y_test[:count], device)
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
    )
    result = {
        "settings": settings,
        "attack": attack,
        "eps": settings["eps"],
        "accuracy": outcome["accuracy"],
        "steps": outcome["steps"],
        "n": count,
        "seed": seed,
        "seconds": outcome["seconds"],
    }
    path.parent.mkdir(exist_ok=True)
    runs.write_json(path, result)
    return result, False
