"""AutoAttack (Croce and Hein 2020) and its components through torchattacks, on nodekd's models.

nodekd's models take NHWC pixels in [0, 1] and return logits; torchattacks wants an `nn.Module` on NCHW pixels in
[0, 1]: `attacks.TorchClassifier` is that adapter. `autoattack` runs the standard version the way the original does:
each component attacks only the images that every earlier one left correctly classified, so the robust accuracy
after the last component is the worst case per image. The component settings are the original's (100 iterations for
APGD-CE, APGD-T and FAB-T, 9 target classes, Square with 5000 queries); torchattacks' own `AutoAttack` class runs 10
iterations.
"""

import time
from dataclasses import dataclass

from nodekd_cli import files, interrupts
from nodekd_cli.attacks import TorchClassifier, predict

VERSIONS = {
    "standard": ("APGD-CE", "APGD-T", "FAB-T", "Square"),
    "rand": ("APGD-CE", "APGD-DLR"),  # for randomized defenses: expectation over 20 draws per step
}
STEPS = 100  # the original AutoAttack's iterations of APGD and FAB
QUERIES = 5000  # its Square budget


def components(module, eps, version="standard", num_classes=10, seed=0, steps=STEPS, queries=QUERIES):
    """(name, torchattacks attack) of AutoAttack's `version` at `eps` (a fraction of the pixel range)."""
    import torchattacks

    common = {"eps": eps, "norm": "Linf", "seed": seed, "n_restarts": 1}
    if version == "standard":
        return [
            ("APGD-CE", torchattacks.APGD(module, loss="ce", steps=steps, **common)),
            ("APGD-T", torchattacks.APGDT(module, n_classes=num_classes, steps=steps, **common)),
            ("FAB-T", torchattacks.FAB(module, multi_targeted=True, n_classes=num_classes, steps=steps, **common)),
            ("Square", torchattacks.Square(module, n_queries=queries, **common)),
        ]
    if version == "rand":
        return [
            ("APGD-CE", torchattacks.APGD(module, loss="ce", steps=steps, eot_iter=20, **common)),
            ("APGD-DLR", torchattacks.APGD(module, loss="dlr", steps=steps, eot_iter=20, **common)),
        ]
    raise ValueError(f"Unknown AutoAttack version {version!r}; valid: {', '.join(VERSIONS)}")


@dataclass(frozen=True)
class Settings:
    """What an AutoAttack run is: eps (in 1/255), the version, the iterations of APGD and FAB, Square's queries."""

    eps: int = 8
    version: str = "standard"
    steps: int = STEPS
    queries: int = QUERIES

    def record(self):
        """What a result records about the attack."""
        return {
            "attack": "autoattack",
            "version": self.version,
            "components": list(VERSIONS[self.version]),
            "norm": "linf",
            "eps": [0, int(self.eps)],
            "steps": self.steps,
            "queries": self.queries if self.version == "standard" else None,
        }


def autoattack(model, x, y, attack=Settings(), *, seed=0, batch_size=256, progress=None):
    """AutoAttack (`attack`, its `Settings`) on `model` over NHWC pixels `x` in [0, 1] with labels `y`.

    Returns the clean accuracy, the robust accuracy after each component (cumulative, as AutoAttack reports it), the
    worst case (an image counts as robust only if every component failed on it) and which images stayed robust.
    `progress(name)` is called before each component."""
    num_classes = int(model(x[:1], training=False).shape[-1])
    module = TorchClassifier(model, x.device)
    robust = predict(model, x, batch_size) == y
    clean = robust.float().mean().item()
    found, started = [], time.perf_counter()
    chosen = components(module, attack.eps / 255, attack.version, num_classes, seed, attack.steps, attack.queries)
    for name, component in chosen:
        if progress:
            progress(name)
        index = robust.nonzero().flatten()
        for i in range(0, len(index), batch_size):
            interrupts.check()
            batch = index[i : i + batch_size]
            # Contiguous NCHW: torchattacks' FAB `view`s the gradient, which keeps the input's strides.
            adversarial = component(x[batch].permute(0, 3, 1, 2).contiguous(), y[batch]).permute(0, 2, 3, 1)
            # torchattacks keeps every example in the eps-ball; the prediction decides, through nodekd's own model.
            robust[batch] &= predict(model, adversarial.to(x.dtype), batch_size) == y[batch]
        found.append({"component": name, "robust_accuracy": robust.float().mean().item()})
    return {
        "clean_accuracy": clean,
        "components": found,
        "robust_accuracy": robust.float().mean().item(),
        "robust": robust.tolist(),
        "seconds": time.perf_counter() - started,
    }


def autoattack_run(folder, attack=Settings(), *, sample=None, batch_size=256, force=False, progress=None, wait=None):
    """AutoAttack (`attack`, its `Settings`) on the finished run in `folder`; writes `attacks/autoattack.json` (the
    fields of the other attacks' results, with eps 0 and `eps`, plus each component's robust accuracy) and returns
    (result, reused)."""
    from pathlib import Path

    from nodekd_cli import runs
    from nodekd_cli.attacks import Sample, saved_result
    from nodekd_cli.errors import UserError

    if attack.version not in VERSIONS:
        raise UserError(f"Unknown AutoAttack version {attack.version!r}; choose one of: {', '.join(VERSIONS)}.")
    sample = sample or Sample()
    counts = (attack.steps, attack.queries, batch_size, 1 if sample.n is None else sample.n)
    if not 0 < attack.eps <= 255 or min(counts) < 1:
        raise UserError(
            "--eps must lie in 1..255 (in 1/255), and --steps, --queries, --batch-size and --n be at least 1."
        )
    folder = Path(folder)
    config = runs.read_run(folder).config
    sample = sample.of(config["dataset"])
    settings = {**attack.record(), **sample.settings(), "batch_size": batch_size}
    path = folder / runs.ATTACKS_DIR / "autoattack.json"
    previous = None if force else saved_result(path, settings)
    if previous is not None:
        return previous, True
    model = runs.load_model(folder)
    x, y, chosen = sample.images(config["dataset"])
    with runs.lock(path.parent, name=".autoattack.lock", wait=wait):
        files.refuse_link(path)  # before the attacks, not after them
        outcome = autoattack(model, x, y, attack, seed=sample.seed, batch_size=batch_size, progress=progress)
        result = {
            "settings": settings,
            "attack": "autoattack",
            "eps": settings["eps"],
            "accuracy": [outcome["clean_accuracy"], outcome["robust_accuracy"]],
            "components": outcome["components"],
            "robust": outcome["robust"],
            "n": len(y),
            "seed": sample.seed,
            "images": sample.indices(chosen),
            "seconds": outcome["seconds"],
        }
        runs.write_json(path, result)
    return result, False
