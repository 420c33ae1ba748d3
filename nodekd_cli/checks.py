"""The checks careful robustness evaluations make that a measured robustness is real (Carlini et al. 2019, "On Evaluating Adversarial Robustness"): stronger and
other attacks compared with the paper's PGD, whose failures flag possible gradient masking (`nodekd attack check`).

The attack methods and sweeps they compare against are in `nodekd_cli.attacks`; AutoAttack's components come
through torchattacks (`nodekd_cli.autoattack`).
"""

import dataclasses
import time

import torch

from nodekd_cli import files, interrupts
from nodekd_cli.attacks import RESULTS_FOLDER, Sample, num_steps, pgd, predict
from nodekd_cli.runs import CHECK_FILE


def _robust(model, x, y, correct, make_adversarial, batch_size):
    """Accuracy of `model` over all images when the clean-correct ones are replaced by `make_adversarial(x, y)`."""
    robust = torch.zeros_like(correct)
    index = correct.nonzero().flatten()
    for i in range(0, len(index), batch_size):
        interrupts.check()
        batch = index[i : i + batch_size]
        robust[batch] = predict(model, make_adversarial(x[batch], y[batch]), batch_size) == y[batch]
    return robust.float().mean().item()


# A check compares attacks at an eps where the reference PGD leaves part of the images right: at 0% every "at most the
# reference" check passes whatever the model does. `auto` picks the eps (in 1/255) at which the reference leaves the
# share of the clean-correct images nearest `TARGET` within `WINDOW`; a check whose reference accuracy is under
# `INFORMATIVE` is "not informative", and the claim "not gradient masking" does not count it as a pass.
WINDOW = (0.2, 0.8)
TARGET = 0.5
INFORMATIVE = 0.05
MAX_AUTO_EPS = 20


# What a failed check says. Most are signs of gradient masking (Carlini et al. 2019): a larger eps, more steps, a
# gradient-free, transferred or fixed-step attack doing better than the reference. APGD-CE far stronger than the
# reference says instead that the reference PGD is too weak to measure robustness at this eps (a few steps at a small
# eps): no sign of masking, but a robustness figure the paper's PGD overstates.
REFERENCE_CHECKS = ("APGD-CE",)


def kind(check_name):
    """ "reference" for a check of the reference attack's strength, "masking" for a sign of gradient masking."""
    return "reference" if check_name.startswith(REFERENCE_CHECKS) else "masking"


def failed(result, of_kind):
    """The names of the checks of `of_kind` ("masking" or "reference") that `result` (a check.json) failed."""
    return [c["check"] for c in result["checks"] if c.get("passed") is False and kind(c["check"]) == of_kind]


def informative(check):
    """Whether a check.json's result can see masking: its reference accuracy is at least `INFORMATIVE`. (Results
    written before the field existed are judged by their reference.)"""
    found = check.get("informative")
    return found if isinstance(found, bool) else (check.get("reference") or 0) >= INFORMATIVE


def choose_eps(survival_at, sweep=None, largest=MAX_AUTO_EPS):
    """The eps of `auto` and how it was found. A survival is the share of the clean-correct images the reference PGD
    leaves right. From `sweep` ({eps: accuracy}, the run's PGD sweep with its eps 0), the eps > 0 whose survival is
    nearest `TARGET` within `WINDOW`; when none lies in it, the integer eps 1, 2, ... scanned with `survival_at(eps)`
    (on the check's own images) until the survival falls under `TARGET`, and of those the one nearest `TARGET`.
    Returns (eps, rule, {eps: survival} scanned)."""
    low, high = WINDOW
    clean = (sweep or {}).get(0)
    inside = {}
    if clean:
        inside = {e: a / clean for e, a in sweep.items() if e > 0 and low <= a / clean <= high}
    if inside:
        eps = min(inside, key=lambda e: (abs(inside[e] - TARGET), e))
        return eps, f"from the run's PGD sweep: it leaves {100 * inside[eps]:.1f}% of the clean-correct images", {}
    scanned = {}
    for eps in range(1, largest + 1):
        scanned[eps] = survival_at(eps)
        if scanned[eps] < TARGET:
            break
    eps = min(scanned, key=lambda e: (abs(scanned[e] - TARGET), e))
    return eps, f"scanned from 1/255: it leaves {100 * scanned[eps]:.1f}% of the clean-correct images", scanned


def slack(n):
    """How far two accuracies over `n` images may differ in a check: 5 points or one image, whichever is larger, plus
    the float32 rounding of the accuracies (11/20 and 12/20 in float32 differ by a little more than 1/20)."""
    return max(1 / n, 0.05) + 1e-6


class _Checks:
    """The checks' shared state: the model, its images and which it gets right, the seeded generator, and the checks
    recorded so far against the reference."""

    def __init__(self, model, x, y, batch_size, seed, progress):
        self.model, self.x, self.y, self.batch_size, self.seed, self.progress = model, x, y, batch_size, seed, progress
        self.generator = torch.Generator(device=x.device)
        self.correct = predict(model, x, batch_size) == y
        self.tolerance = slack(len(y))
        self.reference = None
        self.checks = []

    def run(self, name, make):
        """The accuracy when the clean-correct images are replaced by `make(x, y)`, seeded as every check is."""
        if self.progress:
            self.progress(name)
        self.generator.manual_seed(self.seed)
        return _robust(self.model, self.x, self.y, self.correct, make, self.batch_size)

    def record(self, name, accuracy, passed, rule):
        self.checks.append(
            {"check": name, "accuracy": accuracy, "reference": self.reference, "passed": passed, "rule": rule}
        )

    def at_most(self, name, accuracy):
        self.record(name, accuracy, accuracy <= self.reference + self.tolerance, "at most the reference")

    def at_least(self, name, accuracy):
        self.record(name, accuracy, accuracy >= self.reference - self.tolerance, "at least the reference")


def _gradient_checks(c, model, e, steps, restarts, large_eps):
    """Larger eps and a stronger PGD must do at least as well as the reference; the margin loss no better."""
    for big in large_eps:
        accuracy = c.run(
            f"pgd eps {big}", lambda xb, yb, big=big: pgd(model, xb, yb, big / 255, num_steps(big), c.generator)
        )
        if big >= 255:
            c.record(f"PGD at eps {big}/255", accuracy, accuracy <= 0.05, "at most 5%")
        else:
            c.at_most(f"PGD at eps {big}/255", accuracy)

    def strongest(xb, yb):
        # More steps and restarts: an image counts as broken if any restart breaks it.
        best = xb
        for _ in range(restarts):
            candidate = pgd(model, xb, yb, e, 4 * steps, c.generator)
            broken = predict(model, candidate, c.batch_size) != yb
            best = torch.where(broken[:, None, None, None], candidate, best) if xb.ndim == 4 else candidate
        return best

    c.at_most(f"PGD, 4x steps, {restarts} restarts", c.run("pgd x4 steps, restarts", strongest))
    margin = c.run("margin loss", lambda xb, yb: pgd(model, xb, yb, e, steps, c.generator, loss="margin"))
    c.at_least("PGD on the margin (CW) loss", margin)


def _other_model_checks(c, e, steps, transfer_model, grad_model):
    """Attacks made on another model (a transfer source; the same network through a fixed-step solver) must do no
    better than the reference; skipped without one."""
    if transfer_model is not None:
        accuracy = c.run("transfer", lambda xb, yb: pgd(transfer_model, xb, yb, e, steps, c.generator))
        c.at_least("transfer from another run", accuracy)
    else:
        c.record("transfer from another run", None, None, "skipped: no source run")
    if grad_model is not None:
        accuracy = c.run("fixed-step gradients", lambda xb, yb: pgd(grad_model, xb, yb, e, steps, c.generator))
        c.at_least("gradients through a fixed-step solver", accuracy)
    else:
        c.record("gradients through a fixed-step solver", None, None, "skipped: no ODE solver")


def _torchattacks_checks(c, e, queries):
    """APGD-CE must be no weaker than the reference (else the reference is too weak to trust); the gradient-free
    Square no stronger. torchattacks' attacks on the clean-correct images, through the NCHW adapter."""
    from nodekd_cli.attacks import TorchClassifier
    from nodekd_cli.autoattack import STEPS, components

    module = TorchClassifier(c.model, c.x.device)
    classes = int(c.model(c.x[:1], training=False).shape[-1])
    named = dict(components(module, e, "standard", classes, c.seed, STEPS, queries))

    def through(attack):
        return lambda xb, yb: attack(xb.permute(0, 3, 1, 2).contiguous(), yb).permute(0, 2, 3, 1).to(xb.dtype)

    accuracy = c.run("apgd-ce", through(named["APGD-CE"]))
    c.record(f"APGD-CE ({STEPS} steps)", accuracy, c.reference <= accuracy + c.tolerance, "the reference at most it")
    c.at_least(f"Square, gradient-free ({queries} queries)", c.run("square", through(named["Square"])))


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
    """The checks careful robustness evaluations make that the measured robustness is real (Carlini et al. 2019, "On Evaluating Adversarial Robustness").

    Each check compares an accuracy with the reference, PGD at `eps` (in 1/255) with the paper's steps, and passes or
    fails (`kind`): a failed check flags possible gradient masking (`masking`), or, APGD-CE far stronger than the
    reference, a reference attack too weak to trust (`reference_too_weak`). A check without what it needs (no transfer source, no ODE solver to swap) is skipped
    (`passed` None). Comparisons allow 5 points (or one image) of slack: attacks of equal strength differ by a few
    images, masking by tens of points. A result whose reference is under `INFORMATIVE` is marked not informative.
    """
    c = _Checks(model, x, y, batch_size, seed, progress)
    e, steps = eps / 255, num_steps(eps)
    c.reference = c.run("pgd", lambda xb, yb: pgd(model, xb, yb, e, steps, c.generator))
    _gradient_checks(c, model, e, steps, restarts, large_eps)
    _other_model_checks(c, e, steps, transfer_model, grad_model)
    _torchattacks_checks(c, e, queries)
    found = {"reference": c.reference, "checks": [{**check, "kind": kind(check["check"])} for check in c.checks]}
    return {
        **found,
        "masking": bool(failed(found, "masking")),
        "reference_too_weak": bool(failed(found, "reference")),
        "informative": c.reference >= INFORMATIVE,
    }


def reference_survival(model, x, y, eps, batch_size=256, seed=0):
    """The share of the clean-correct images of `x`, `y` that the reference PGD at `eps` (in 1/255) leaves right,
    seeded as `masking_checks` seeds it (0 when the model gets none right)."""
    generator = torch.Generator(device=x.device)
    generator.manual_seed(seed)
    correct = predict(model, x, batch_size) == y
    if not correct.any():
        return 0.0

    def attack(xb, yb):
        return pgd(model, xb, yb, eps / 255, num_steps(eps), generator)

    return _robust(model, x, y, correct, attack, batch_size) / correct.float().mean().item()


def _pgd_sweep(folder):
    """The run's independent PGD sweep as {eps: accuracy}, or None."""
    from nodekd_cli.attacks import RESULTS_FOLDER as results
    from nodekd_cli.runs import read_json

    path = folder / results / "pgd.json"
    try:
        found = read_json(path) if path.is_file() else None
    except (OSError, ValueError):  # an unreadable sweep only means scanning instead
        return None
    if not isinstance(found, dict) or not isinstance(found.get("eps"), list):
        return None
    return dict(zip(found["eps"], found.get("accuracy") or []))


def _models(folder, transfer_from, grad_solver):
    """(the run's model, the transfer source's or None, the run's model solved with `grad_solver` for its gradients
    or None when it has no ODE solver to swap; default rk4 with t1 / 10 for a step size left None)."""
    import models
    from nodekd_cli import runs

    grad_solver = grad_solver or models.Solver(method="rk4")
    model = runs.load_model(folder)
    transfer_model = None
    if transfer_from is not None:
        runs.read_run(transfer_from)
        transfer_model = runs.load_model(transfer_from)
    grad_model = None
    if models.ode_blocks(model):
        grad_model = runs.load_model(folder)
        for block in models.ode_blocks(grad_model):
            step_size = grad_solver.step_size or block.t1 / 10
            block.solver = dataclasses.replace(block.solver, method=grad_solver.method, step_size=step_size)
    return model, transfer_model, grad_model


def check_run(
    folder,
    *,
    eps=None,
    sample=Sample(100),
    batch_size=256,
    transfer_from=None,
    grad_solver=None,
    queries=300,
    progress=None,
    wait=None,
):
    """Runs `masking_checks` on the finished run in `folder`; writes and returns `attacks/check.json` (locked and
    checked writable before the checks start). `grad_solver` is the fixed-step `models.Solver` of the check that
    takes gradients through another solver (default: rk4, with t1 / 10 for a step size left None). `eps` None picks
    the eps as `choose_eps` says."""
    from pathlib import Path

    import models
    from nodekd_cli import fingerprints, runs

    folder = Path(folder)
    config = runs.read_run(folder).config
    if transfer_from is None and config.get("teacher"):
        transfer_from = config["teacher"]
    model, transfer_model, grad_model = _models(folder, transfer_from, grad_solver)
    sample = sample.of(config["dataset"])
    path = folder / RESULTS_FOLDER / CHECK_FILE
    x, y, chosen = sample.images(config["dataset"])
    with runs.lock(path.parent, name=".check.lock", wait=wait):
        files.refuse_link(path)  # before the attacks, not after them
        started = time.perf_counter()
        rule, scanned = "given", {}
        if eps is None:
            if progress:
                progress("choosing eps")
            eps, rule, scanned = choose_eps(
                lambda e: reference_survival(model, x, y, e, batch_size, sample.seed), _pgd_sweep(folder)
            )
        result = masking_checks(
            model,
            x,
            y,
            eps=eps,
            batch_size=batch_size,
            seed=sample.seed,
            transfer_model=transfer_model,
            grad_model=grad_model,
            queries=queries,
            progress=progress,
        )
        result.update(
            {
                "eps": eps,
                "eps_rule": rule,
                "eps_scanned": [{"eps": e, "survival": a} for e, a in scanned.items()],
                "n": len(y),
                "sample": sample.settings()["sample"],
                "images": sample.indices(chosen),
                "seed": sample.seed,
                "transfer_from": None if transfer_from is None else str(transfer_from),
                # The source's fingerprint (`fingerprints.file_sha256` of its model.keras): which model the transfer came from.
                "transfer_sha256": None
                if transfer_from is None
                else fingerprints.file_sha256(Path(transfer_from) / runs.MODEL),
                "gradient_solver": None if grad_model is None else models.ode_blocks(grad_model)[0].solver_settings(),
                "seconds": time.perf_counter() - started,
            }
        )
        runs.write_json(path, result)
    return result
