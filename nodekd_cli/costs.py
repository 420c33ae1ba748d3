"""The cost model of `nodekd reproduce --dry-run`: a rough guess of the seconds each step of a study takes."""

import math

from nodekd_cli import data, teachers

TRAINING = ("teacher", "import", "student")


# Rough cost model for --dry-run. A training pass (forward and backward) of a batch costs a fixed part per batch and
# a part per image; an evaluation pass a third of that; an attack's gradient step or prediction a full pass per image
# and ATTACK_PASS of the fixed part. Per image: measured on one H100 (CIFAR-10: 32x32 images, 512-channel students at
# 1/4 resolution, batch 128; float32, torchdiffeq's loop without nodekd's own), scaled by depth, pixels,
# channels and by how the function evaluations of nodekd's default dynamics grow with t1. On the 2-core CPU, with
# nodekd's dopri5 loop, a 32-channel student's solver has a fixed cost per pass ("pass", seconds, also growing with
# t1) and a cost per input image ("input", per 32x32 image: CIFAR-10's 32x32 stem and augmentation) besides the
# solve's: fitted to three runs at t1 = 1 (digits at 8x8 states and batch 32, the quick preset's 4x4 states at batch
# 64, the small preset's CIFAR-10 student; docs/study.md, "The cost model"). The GPU's fixed costs are not measured (0).
NFE_GROWTH = 0.4  # NFE(t1) / NFE(1) = 1 + 0.4 log10(t1): measured 1.46 to 1.91 at t1 = 100, 2.15 at 500 (docs/study.md)
COSTS = {
    "cpu": {
        "teacher": 1.6e-4,
        "teacher_pixels": 64,
        "student": 3.7e-4,
        "pixels": 64,
        "channels": 32,
        "pass": 0.056,
        "input": 6.8e-4,
    },
    "cuda": {"teacher": 4.0e-5, "teacher_pixels": 1024, "student": 1.44e-3, "pixels": 1024 / 16, "channels": 512},
}
# An attack pass's fixed cost against a training pass's: the quick study's PGD sweeps (0.56) and checks (0.47).
ATTACK_PASS = 0.5
EVAL_PASS = 1 / 3  # a forward pass against a training pass (forward and backward)
# What a monotone sweep (`--sweep monotone`) costs, as a share of the paper's independent sweep: the largest time
# ratio measured on the paper's eps grid on real CIFAR-10 (0.26 to 0.30 for students, 0.01 for ResNet20; the
# image-steps alone 0.18 to 0.24; results/sweep-monotone, docs/research-notes.md, "Monotone sweeps"). A model that keeps more of its
# accuracy under attack costs more, up to 1 for one that nothing breaks.
MONOTONE_SHARE = 0.3
CHECK_IMAGE_STEPS = 700  # PGD at 8, 64, 255 /255, 4x steps x 3 restarts, margin, transfer, fixed step, APGD, Square


def nfe_growth(config):
    """How a student's solver work grows with its horizon (`NFE_GROWTH`), as a factor of its work at t1 = 1."""
    return 1 + NFE_GROWTH * math.log10(config["t1"])


def _image_cost(config, profile):
    """Seconds per image of one training pass (forward and backward) of the run of `config`."""
    pixels = data.info(config["dataset"]).sizes[2]
    if config["kind"] == "teacher":
        cost = teachers.architecture(config["model"]).relative_cost
        return profile["teacher"] * cost * pixels / profile["teacher_pixels"]
    solved = pixels / 4 ** config["downsample"] / profile["pixels"]
    width = (config["channels"] / profile["channels"]) ** 2
    return profile["student"] * solved * width * nfe_growth(config) + profile.get("input", 0.0) * pixels / 1024


def _pass_cost(config, profile):
    """Seconds per batch of one training pass besides its images' (a student's solver steps)."""
    return 0.0 if config["kind"] == "teacher" else profile.get("pass", 0.0) * nfe_growth(config)


def epoch_work(config):
    """(passes, images) of one epoch of the run of `config`, in training passes: its training batches and images, and
    its evaluation's over the test set (batches of at least 256), each a third of one."""
    train, test, _ = data.info(config["dataset"]).sizes
    train = min(train, config.get("train_images") or train)
    batch = config["batch_size"]
    return math.ceil(train / batch) + EVAL_PASS * math.ceil(test / max(batch, 256)), train + EVAL_PASS * test


def estimates(steps, device="cpu", profile=None):
    """A rough guess of the seconds each step takes on `device` (see COSTS; or with `profile`, figures of the same
    form), by step name: training is its epochs' training and evaluation passes; attacks and checks are their steps
    on every attacked image (every image counted as classified right, so an upper bound), in batches of 256."""
    from nodekd_cli.attacks import check_attack

    profile = profile or COSTS["cuda" if str(device).startswith("cuda") else "cpu"]
    found, trained = {}, {}
    for step in steps:
        if step.kind == "import":
            found[step.name] = 0.0
        elif step.kind in TRAINING:
            passes, images = epoch_work(step.config)
            per_epoch = passes * _pass_cost(step.config, profile) + images * _image_cost(step.config, profile)
            found[step.name] = per_epoch * step.config["epochs"]
        if step.kind in TRAINING:
            trained[step.folder] = step.config
            continue
        config = trained.get(step.folder)
        if config is None:
            found[step.name] = None
            continue
        test = data.info(config["dataset"]).sizes[1]
        images = min(test, step.images or test)
        if step.kind == "check":
            image_steps = CHECK_IMAGE_STEPS
        else:
            attack = check_attack(step.attack)  # eps 0 is a prediction alone, whatever the attack
            image_steps = sum((attack.steps(e) if e else 0) + 1 for e in step.eps)
        batches = math.ceil(images / 256)
        per_step = images * _image_cost(config, profile) + batches * ATTACK_PASS * _pass_cost(config, profile)
        found[step.name] = per_step * image_steps * (MONOTONE_SHARE if step.sweep == "monotone" else 1.0)
    return found
