"""White-box attacks and robustness sweeps, with the paper's settings (the paper's eps grid and steps rule).

Pixels in [0, 1], L-infinity balls of radius eps = e / 255, step 1/255, floor(min(e + 4, 1.25 e)) steps, projection
onto the ball and onto [0, 1] after every step. PGD starts uniformly at random in the ball; MI-FGSM accumulates
L1-normalized gradients with momentum 1; FGSM takes one signed-gradient step of size eps. APGD-CE (Croce and Hein
2020, AutoAttack's first component, through torchattacks) is not the paper's: 100 iterations at any eps, with its own
adaptive step size; a sweep of it asks whether a robustness difference measured with the paper's attacks survives a
stronger one. Models run in inference mode and only the input receives gradients. The checks that a measured
robustness is real are in `nodekd_cli.checks`.
"""

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nodekd_cli import files, interrupts
from nodekd_cli.data import sample_indices
from nodekd_cli.runs import ATTACKS_DIR as RESULTS_FOLDER

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


APGD_STEPS = 100  # AutoAttack's iterations of APGD-CE


class TorchClassifier(torch.nn.Module):
    """`model` (NHWC pixels in [0, 1] -> logits, e.g. a Keras model on the torch backend) as an `nn.Module` on NCHW
    pixels, for torchattacks. It owns no weights: an empty parameter tells torchattacks the device."""

    def __init__(self, model, device="cpu"):
        super().__init__()
        object.__setattr__(self, "classifier", model)  # not a submodule: torchattacks only calls it
        self.device_anchor = torch.nn.Parameter(torch.zeros(0, device=device), requires_grad=False)

    def forward(self, x):
        return self.classifier(x.permute(0, 2, 3, 1), training=False)


def apgd_ce(model, x, y, eps, steps=APGD_STEPS, generator=None, loss="ce"):
    """Croce and Hein's APGD on the cross-entropy, one restart, as AutoAttack runs it (torchattacks, which takes the
    NHWC images `x` as NCHW through `TorchClassifier`). Its random start is seeded from `generator`; the global random
    state is left as it was."""
    import torchattacks

    if loss != "ce":
        raise ValueError(f"APGD-CE attacks the cross-entropy, not {loss!r}")
    seed = 0 if generator is None else int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
    attack = torchattacks.APGD(
        TorchClassifier(model, x.device), norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce", seed=seed
    )
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # torchattacks seeds the global generator
        adversarial = attack(x.permute(0, 3, 1, 2).contiguous(), y).permute(0, 2, 3, 1)
    return _project(adversarial.to(x.dtype), x, eps).detach()


@dataclass(frozen=True)
class Attack:
    """An attack of the sweeps. Its entry in `ATTACKS` is all the CLI (`nodekd attack NAME`), the study
    (`--attacks NAME`) and the report (its tables and Figure 1) need to know about it."""

    name: str  # the command, the study's name for it and the result file `attacks/NAME.json`
    title: str  # in the report's tables and Figure 1
    description: str  # in the command's help and its table
    method: Callable  # (model, x, y, eps, steps, generator=None, loss="ce") -> adversarial images
    random_start: bool = False
    momentum: float | None = None
    one_step: bool = False  # a single step of size eps; the paper's steps rule does not apply
    iterations: int | None = None  # the same iterations at every eps, with the method's own step size

    def steps(self, e):
        """Steps at eps = e / 255."""
        return 1 if self.one_step else self.iterations or num_steps(e)

    def settings(self):
        """What a result records about the method."""
        step_size, rule = "1/255", "floor(min(e + 4, 1.25 e))"
        if self.one_step:
            step_size, rule = "eps", "one step of size eps"
        elif self.iterations:
            step_size, rule = "adaptive", f"{self.iterations} iterations at every eps"
        return {
            "attack": self.name,
            "norm": "linf",
            "step_size": step_size,
            "steps_rule": rule,
            "random_start": self.random_start,
            "momentum": self.momentum,
            "loss": "cross-entropy",
        }


ATTACKS = {
    attack.name: attack
    for attack in (
        Attack("pgd", "PGD", "PGD (Madry et al.)", pgd, random_start=True),
        Attack("mifgsm", "MI-FGSM", "MI-FGSM (Dong et al.)", mifgsm, momentum=1.0),
        Attack("fgsm", "FGSM", "FGSM (one step of eps)", fgsm, one_step=True),
        Attack(
            "apgd",
            "APGD-CE",
            f"APGD-CE (Croce and Hein, {APGD_STEPS} iterations)",
            apgd_ce,
            random_start=True,
            iterations=APGD_STEPS,
        ),
    )
}


def check_attack(name, sweep_mode="independent"):
    """The registered `Attack` `name`; a `UserError` for an unknown attack or sweep (`SWEEPS`)."""
    from nodekd_cli.errors import UserError

    if name not in ATTACKS:
        raise UserError(f"Unknown attack {name!r}; choose one of: {', '.join(ATTACKS)}.")
    if sweep_mode not in SWEEPS:
        raise UserError(f"Unknown sweep {sweep_mode!r}; choose one of: {', '.join(SWEEPS)}.")
    return ATTACKS[name]


def result_key(name, result):
    """What a saved result (`name`: its file's stem, see `result_name`) measures, as the report keys it: the attack's
    name, with " (monotone)" for a monotone sweep (which counts an image broken at any smaller eps as broken, unlike
    the paper's independent sweep, so it is never averaged or compared with one). `split_key` reads it back."""
    attack = result.get("attack") or name.split(".")[0]
    sweep = (result.get("settings") or {}).get("sweep", "independent")
    return attack if sweep == "independent" else f"{attack} ({sweep})"


def split_key(key):
    """(attack, sweep) of a `result_key`; the sweep is "" for the paper's independent one."""
    attack, _, sweep = key.removesuffix(")").partition(" (")
    return attack, sweep


def title(name):
    """The title of attack `name` (or of a `result_key`) in tables and figures (the name itself for a result of an
    attack not registered)."""
    attack, sweep = split_key(name)
    shown = ATTACKS[attack].title if attack in ATTACKS else attack
    return f"{shown} ({sweep} sweep)" if sweep else shown


def predict(model, x, batch_size):
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size], training=False).argmax(1) for i in range(0, len(x), batch_size)])


def sweep(
    model,
    x,
    y,
    attack,
    eps_values,
    *,
    batch_size=256,
    seed=0,
    monotone=False,
    progress=None,
    done=None,
    robust=None,
    on_eps=None,
    done_correct=None,
):
    """Accuracy under `attack` at each eps (in 1/255) on pixels `x` in [0, 1] with labels `y`, both on the device.

    Clean predictions are made once; images misclassified clean are not attacked. The paper's protocol attacks every
    eps independently; `monotone` attacks at each eps only the images no smaller eps has broken (an adversarial
    example for eps stays one for every larger eps), which is cheaper, and its accuracy never rises with eps.
    `progress(e, left, seconds)` is called before each eps, `on_eps(e, accuracy, correct)` after each eps computed
    (`correct`: the boolean mask of the images classified right at that eps; in a monotone sweep, those no eps so far
    has broken). A sweep interrupted with the same settings goes on from what `on_eps` was handed: an independent sweep
    takes the accuracies in `done` ({eps: accuracy}; each eps has its own seed, so they are what it would compute), a
    monotone one the accuracies of the eps it finished first and `robust`, the `correct` of the last of them; the
    masks of those eps come back from `done_correct` ({eps: mask}). The result's `correct` holds each eps's mask (None
    for a kept eps whose mask was not handed back), for comparisons paired image by image.
    """
    done = {} if done is None or (monotone and robust is None) else done
    entry = ATTACKS[attack]
    generator = torch.Generator(device=x.device)
    correct = predict(model, x, batch_size) == y
    still_correct = correct.clone()
    if monotone and done:
        still_correct = torch.as_tensor(robust, dtype=torch.bool, device=x.device)
    accuracy, steps, masks = [], [], []
    started = time.perf_counter()
    for e in eps_values:
        n_steps = entry.steps(e)
        steps.append(0 if e == 0 else n_steps)
        if e == 0:
            accuracy.append(correct.float().mean().item())
            masks.append(correct)
            continue
        if e in done:
            accuracy.append(done[e])
            masks.append((done_correct or {}).get(e))
            continue
        survivors = still_correct if monotone else correct
        index = survivors.nonzero().flatten()
        if progress:
            progress(e, len(index), time.perf_counter() - started)
        generator.manual_seed(seed * 1000 + e)
        robust_now = torch.zeros_like(correct)
        for i in range(0, len(index), batch_size):
            interrupts.check()
            batch = index[i : i + batch_size]
            x_adv = entry.method(model, x[batch], y[batch], e / 255, n_steps, generator=generator)
            robust_now[batch] = predict(model, x_adv, batch_size) == y[batch]
        if monotone:
            still_correct &= robust_now
            robust_now = still_correct.clone()
        accuracy.append(robust_now.float().mean().item())
        masks.append(robust_now)
        if on_eps:
            on_eps(e, accuracy[-1], robust_now)
    masks = [None if mask is None else [bool(b) for b in torch.as_tensor(mask).tolist()] for mask in masks]
    return {"accuracy": accuracy, "steps": steps, "correct": masks, "seconds": time.perf_counter() - started}


def sample_rule(n, seed):
    """How `test_images` chooses: every test image, or `n` drawn with `seed`, each class in proportion."""
    return "all" if n is None else f"stratified by class, seed {seed}"


@functools.lru_cache(maxsize=2)
def _test_split(dataset, data_dir=None, manual_dir=None):
    """The uint8 test images and labels of `dataset`, loaded once for all the runs that one command attacks."""
    from nodekd_cli.data import load_dataset

    data = load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)
    return data.x_test, data.y_test


@functools.lru_cache(maxsize=2)
def test_images(dataset, n=None, data_dir=None, manual_dir=None, seed=0):
    """(pixels in [0, 1], labels, indices) of the test images of `dataset` that `sample_rule(n, seed)` chooses, on
    Keras's device."""
    from nodekd_cli.backend import keras_device
    from nodekd_cli.data.device import pixels, to_device

    x_test, y_test = _test_split(dataset, data_dir, manual_dir)
    device = keras_device()
    chosen = sample_indices(y_test, n, seed)
    return pixels(to_device(x_test[chosen], device)), to_device(y_test[chosen], device), chosen


@dataclass(frozen=True)
class Sample:
    """The test images an attack or a check takes: every one (`n` None), or `n` drawn with `seed`, each class in
    proportion; from the data set as `load_dataset` finds it with `data_dir` and `manual_dir`."""

    n: int | None = None
    seed: int = 0
    data_dir: Path | None = None
    manual_dir: Path | None = None

    def of(self, dataset):
        """This sample of the test set of `dataset`, where asking for all of its images or more is every image."""
        if self.n is None or self.n < len(_test_split(dataset, self.data_dir, self.manual_dir)[1]):
            return self
        return dataclasses.replace(self, n=None)

    def settings(self):
        """What a result records about its images."""
        return {"n": self.n, "sample": sample_rule(self.n, self.seed), "seed": self.seed}

    def images(self, dataset):
        """(pixels in [0, 1], labels, test-set indices) of the images of `dataset` this sample takes."""
        return test_images(dataset, self.n, self.data_dir, self.manual_dir, self.seed)

    def indices(self, chosen):
        """What a result records of the images chosen: their test-set indices, or None for every image."""
        return None if self.n is None else chosen.tolist()


SWEEPS = ("independent", "monotone")


def result_name(attack, sweep_mode="independent"):
    """The file a sweep of `attack` is saved in, in a run's attacks folder: `<attack>.json` for the paper's independent
    sweep, `<attack>.<sweep>.json` for another, so that a run keeps both."""
    return f"{attack}.json" if sweep_mode == "independent" else f"{attack}.{sweep_mode}.json"


def result_settings(config, attack, eps_values, sample, batch_size=256, sweep_mode="independent"):
    """The settings a result of `attack_run` records, for the finished run of `config` and a `sample` as `Sample.of`
    makes it: a saved result is current when it records exactly these. They are judged from config.json alone, so
    that the study knows what is done without loading a model."""
    import models

    # Gradients and predictions both go through the student's own solver (`attack check` also tries a fixed step).
    solver = None
    if config["kind"] == "student":
        solver = {"t1": float(config["t1"]), **models.Solver(**config["solver"]).config()}
    return {
        **ATTACKS[attack].settings(),
        "sweep": sweep_mode,
        "eps": [int(e) for e in eps_values],
        **sample.settings(),
        "batch_size": batch_size,
        "gradient_solver": solver,
        "prediction_solver": solver,
    }


def _read_result(path):
    """The attack result (or partial sweep) at `path`, a dict with its settings; None if there is none to read."""
    from nodekd_cli import runs

    try:
        previous = runs.read_json(path)
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) and isinstance(previous.get("settings"), dict) else None


def saved_result(path, settings):
    """The attack result at `path` when it was computed with exactly `settings`, else None."""
    previous = _read_result(path)
    return previous if previous is not None and previous["settings"] == settings else None


def _same_but_eps(previous, settings):
    """Whether a saved result's settings are `settings` but for the eps, in an independent sweep (each eps attacked on
    its own, so a result's eps can be kept whatever others are asked for)."""
    mine = {k: v for k, v in settings.items() if k != "eps"}
    theirs = {k: v for k, v in previous["settings"].items() if k != "eps"}
    return settings.get("sweep") == "independent" and mine == theirs and isinstance(previous.get("eps"), list)


def covering_result(path, settings):
    """The saved result at `path` that answers `settings`: made with exactly them, or an independent sweep made with
    them but for its eps, which hold every eps asked for. The rule by which `attack_run` reuses a result and the study
    finds an attack done."""
    previous = _read_result(path)
    if previous is None:
        return None
    if previous["settings"] == settings:
        return previous
    return previous if _same_but_eps(previous, settings) and set(settings["eps"]) <= set(previous["eps"]) else None


def _differences(old, new):
    """The settings in which two results differ, as "n 500 -> 100"."""
    keys = sorted(set(old) | set(new), key=str)
    return ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in keys if old.get(k) != new.get(k))


def attack_run(
    folder,
    attack,
    eps_values,
    *,
    sample=Sample(),
    batch_size=256,
    sweep_mode="independent",
    force=False,
    progress=None,
    wait=None,
    say=None,
):
    """Attacks the finished run in `folder` and writes `attacks/<attack>.json` there (`result_name`: a monotone sweep
    `<attack>.monotone.json`); returns (result, reused).

    A saved result is never replaced silently. One that answers the settings (`covering_result`) is reused; an
    independent sweep made with the same settings but other eps keeps its eps and gets the missing ones, and the
    result holds them all (`say(line)` hears what was kept and computed); one made with other settings is refused in
    one sentence, unless `force`, which computes the sweep asked for and replaces it. The result file is locked
    (`runs.lock`: `wait` None fails at once, or is called with the holder and waits) and checked writable before the
    sweep starts.
    """
    from nodekd_cli import runs

    check_attack(attack, sweep_mode)
    folder = Path(folder)
    config = runs.read_run(folder).config
    sample = sample.of(config["dataset"])
    settings = result_settings(config, attack, eps_values, sample, batch_size, sweep_mode)
    path = folder / RESULTS_FOLDER / result_name(attack, sweep_mode)
    previous = None if force else covering_result(path, settings)
    if previous is not None:
        return previous, True
    settings, saved = _extend_saved(path, settings, folder, force, say)
    model = runs.load_model(folder)
    x, y, chosen = sample.images(config["dataset"])
    # The eps values an interrupted sweep of these settings finished, kept beside the result until it is written (a
    # monotone sweep's with the images still unbroken after the last: their positions in the sample).
    partial = path.parent / f".{path.stem}.sweep-so-far"
    with runs.lock(path.parent, name=f".{path.stem}.lock", wait=wait):
        for written in (path, partial):  # refused before the sweep, not after it
            files.refuse_link(written)
        done, masks, robust = _resumed(partial, settings, saved, len(y), y.device, force, say)

        def keep(e, accuracy, correct):
            done[e], masks[e] = accuracy, correct
            record = {"settings": settings, "accuracy": done}
            record["correct"] = {str(k): runs.correct_bits(mask.tolist()) for k, mask in masks.items()}
            if sweep_mode == "monotone":
                record["robust"] = correct.nonzero().flatten().tolist()
            runs.write_json(partial, record)

        outcome = sweep(
            model,
            x,
            y,
            attack,
            settings["eps"],
            batch_size=batch_size,
            seed=sample.seed,
            monotone=sweep_mode == "monotone",
            progress=progress,
            done=done,
            robust=robust,
            on_eps=keep,
            done_correct=masks,
        )
        result = {
            "settings": settings,
            "attack": attack,
            "eps": settings["eps"],
            "accuracy": outcome["accuracy"],
            "steps": outcome["steps"],
            "n": len(y),
            "seed": sample.seed,
            "images": sample.indices(chosen),  # test-set indices; None: all of them
            # Per eps, which of these images the model classifies right (`runs.correct_bits`), in their order.
            "correct": [None if mask is None else runs.correct_bits(mask) for mask in outcome["correct"]],
            "seconds": outcome["seconds"],  # of this command: eps values kept from an interrupted one cost nothing
        }
        runs.write_json(path, result)
        partial.unlink(missing_ok=True)
    return result, False


def _extend_saved(path, settings, folder, force, say):
    """(settings, saved): the saved result at `path` when it is the same sweep with other eps, its eps then added to
    `settings` (kept, the others computed); None when there is none (or `force`). A sweep made with other settings
    is refused in one sentence."""
    from nodekd_cli.errors import UserError

    saved = None if force else _read_result(path)
    if saved is None:
        return settings, None
    attack = settings["attack"]
    if not _same_but_eps(saved, settings):
        raise UserError(
            f"{path} holds a {attack} sweep made with other settings ({_differences(saved['settings'], settings)}); "
            f"nodekd attack {attack} --run {folder} --force replaces it, or attack a copy of the run to keep both."
        )
    asked = settings["eps"]
    kept = [e for e in saved["eps"] if e != 0]  # eps 0 (the clean predictions) is made anew, at no attack cost
    missing = [e for e in asked if e not in saved["eps"]]
    if say:
        say(
            f"{path.name}: kept eps {', '.join(map(str, kept)) or 'none'} of the saved sweep; computing "
            f"{', '.join(map(str, missing))}."
        )
    return {**settings, "eps": sorted(set(asked) | set(saved["eps"]))}, saved


def _partial_record(partial, settings, n, say):
    """The interrupted sweep's record at `partial` when it answers `settings` and every value in it is sound (an
    accuracy in [0, 1] and n outcomes per eps, integer eps, image positions below n); else None, a damaged one
    discarded with one line."""
    from nodekd_cli import runs

    kept = saved_result(partial, settings)
    if not kept:
        return None
    try:
        accuracy = {int(e): float(a) for e, a in kept["accuracy"].items()}
        correct = {int(e): runs.read_bits(b) for e, b in (kept.get("correct") or {}).items()}
        robust = kept.get("robust")
        sound = all(0 <= a <= 1 for a in accuracy.values()) and all(
            b is not None and len(b) == n for b in correct.values()
        )
        sound = sound and (robust is None or all(isinstance(i, int) and 0 <= i < n for i in robust))
    except (AttributeError, TypeError, ValueError):
        sound = False
    if not sound:
        if say:
            say(f"{partial.name}: damaged; discarded, and its eps attacked again.")
        partial.unlink(missing_ok=True)
        return None
    return {"accuracy": accuracy, "correct": correct, "robust": robust}


def _resumed(partial, settings, saved, n, device, force, say=None):
    """(done, masks, robust): the eps already attacked, from an interrupted sweep of these settings (`partial`) and
    from a saved result of the same sweep: their accuracies and their n images' outcomes; a monotone sweep's
    unbroken images. An eps counts as done with its images' outcomes only."""
    from nodekd_cli import runs

    kept = None if force else _partial_record(partial, settings, n, say)
    kept = kept or {"accuracy": {}, "correct": {}, "robust": None}
    masks = {e: torch.tensor(bits, device=device) for e, bits in kept["correct"].items()}
    done = {e: a for e, a in kept["accuracy"].items() if e in masks}
    if saved is not None:  # the saved sweep's eps, with their images' outcomes where it recorded them
        recorded = saved.get("correct") if isinstance(saved.get("correct"), list) else [None] * len(saved["eps"])
        for e, accuracy, bits in zip(saved["eps"], saved["accuracy"], recorded):
            found = runs.read_bits(bits)
            done[int(e)] = accuracy
            if found is not None and len(found) == n:
                masks[int(e)] = torch.tensor(found, device=device)
    robust = None
    if kept["robust"] is not None:
        robust = torch.zeros(n, dtype=torch.bool)
        robust[kept["robust"]] = True
    return done, masks, robust
