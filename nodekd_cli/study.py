"""The paper's study as steps in dependency order, run in this process or spread over Ray (`nodekd reproduce`).

A step trains a teacher (or imports one), trains a student (without or with distillation), attacks a finished run
or checks its robustness. Each writes into its run folder, so a finished step is skipped, an unfinished one resumes
from its checkpoint, and a failed step blocks only the steps that need its run. Ray is optional
(`pip install 'nodekd[cluster]'`); a Ray task runs the very same `execute` as the sequential loop.
"""

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from nodekd_cli import convergence, data, runs, students, teachers
from nodekd_cli.errors import UserError

TRAINING = ("teacher", "import", "student")
PAPER_TEACHERS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")


@dataclass(frozen=True)
class Preset:
    """What a study runs: data sets, teachers, temperatures, time horizons, attacks, and the budgets."""

    description: str
    datasets: tuple
    attack_images: int | None  # the first n test images; None: all
    check_images: int  # masking checks at the eps where each run's PGD sweep leaves about half its images (`checks`)
    seeds: int = 1  # training runs (seeds 0..seeds-1) of every student arm; a claim needs 3 (`report.stats`)
    teachers: tuple = ("resnet20",)
    temperatures: tuple = (3.0,)
    t1: tuple = (1.0, 100.0)  # students without distillation (Tables 1 and 3, Figure 1)
    kd_t1: tuple = (1.0, 100.0)  # distilled students (Table 2 at t1 = 1, Figure 1)
    attacks: tuple = ("pgd", "mifgsm")  # the paper's (Figure 1)
    eps_max: int = 20  # the paper's range, 0 to 20 / 255
    eps_step: int = 4
    teacher: dict = field(default_factory=dict)  # teacher_config overrides (None: the paper's defaults)
    student: dict = field(default_factory=dict)  # student_config overrides
    sgd_lr: float | None = None  # learning rate of the students trained with SGD (distilled, t1 <= 5)
    # Distilled students also trained with Adam, the optimizer of the students trained alone: the paper distills
    # with SGD at t1 = 1, so its KD-against-no-KD comparison there mixes distillation with the optimizer.
    kd_adam_t1: tuple = ()
    # And students trained alone with SGD at the distilled students' rate: with `kd_adam_t1`, the 2x2 of {Adam, SGD} x
    # {alone, distilled} that tells distillation from the optimizer.
    alone_sgd_t1: tuple = ()
    checks: bool = True  # the masking checks (`nodekd attack check`) of every student
    # Every student also trained at half its epochs (its half-budget twin, `convergence`), so that the report can
    # judge whether it has finished learning; off where the budget is the paper's own.
    twins: bool = True


PRESETS = {
    "quick": Preset(
        description="the whole study on digits with small budgets, minutes on a laptop CPU; one seed an arm, so its "
        "report decides no claim",
        datasets=("digits",),
        attack_images=50,
        check_images=10,
        # Every student: 16 epochs at batch 64 after one stride-2 convolution (4x4 states, a quarter of the digits
        # default's solver work), so the last 4 epochs run at lr / 100 and converge within minutes; docs/results.md, "What the
        # quick study shows", says what this budget reaches and what it does not.
        student={"epochs": 16, "batch_size": 64, "downsample": 1},
        sgd_lr=0.05,  # at batch 64, SGD's digits default of 0.01 (for batch 32) reached about 50% in 8 epochs
    ),
    "small": Preset(
        description="the paper's claims on real CIFAR-10 on a 2-core CPU: an imported ResNet20, 32-channel students "
        "on 10,000 training images, three seeds an arm, attacks on 1,000 test images",
        datasets=("cifar10",),
        attack_images=1000,
        check_images=200,
        seeds=3,
        # 5 epochs of a class-stratified 10,000 of the training images at batch 64 (780 steps), 32 channels at 8x8
        # (the CIFAR-10 stem); docs/results.md, "The paper's claims on real CIFAR-10", gives the measured cost.
        student={"epochs": 5, "batch_size": 64, "channels": 32, "train_images": 10000},
        sgd_lr=0.05,  # the quick study's SGD rate at batch 64; the paper's 0.001 is for 78,000 steps
        kd_adam_t1=(1.0,),
        alone_sgd_t1=(1.0,),
    ),
    "paper": Preset(
        description="the paper's setup on CIFAR-10 and SVHN: every teacher, T in 3, 10, 20, t1 in 1, 100 (and 500 "
        "without distillation, Table 3)",
        datasets=("cifar10", "svhn"),
        attack_images=None,
        check_images=200,
        seeds=3,
        teachers=PAPER_TEACHERS,
        temperatures=(3.0, 10.0, 20.0),
        t1=(1.0, 100.0, 500.0),
        eps_step=1,
        twins=False,
    ),
}


@dataclass(frozen=True)
class Step:
    """One unit of the study. `config` is the run's resolved configuration (training steps); `after` names the
    steps whose runs this one needs."""

    kind: str  # teacher | import | student | attack | check
    folder: Path  # the run folder it writes (attacks and checks: the run they attack)
    config: dict = field(default_factory=dict)
    attack: str | None = None
    eps: tuple = ()
    images: int | None = None
    sweep: str = "independent"  # an attack step's (`attacks.SWEEPS`)
    after: tuple = ()
    teacher: Path | None = None  # a distilled student's teacher run
    checkpoint: Path | None = None  # an imported teacher's checkpoint

    @property
    def name(self):
        label = {"attack": self.attack}.get(self.kind, self.kind)
        return f"{label} {self.folder.name}"


def preset(name):
    if name not in PRESETS:
        raise UserError(f"Unknown preset {name!r}; choose one of: {', '.join(PRESETS)}.")
    return PRESETS[name]


def _narrow(chosen, available):
    return tuple(available if chosen is None else chosen)


def _scaled(epochs, scale):
    return max(1, round(epochs * scale))


def find_checkpoint(directory, model, dataset):
    """An akamaster-style checkpoint for `model`: DIR/<data set>/<model>*.th, or for cifar10 and folder data sets (the
    CIFAR-10 images in a folder, say) also DIR/<model>*.th; importing checks that it fits the data set."""
    if directory is None:
        return None
    top = dataset == "cifar10" or data.check_name(dataset) == "folder"
    if str(directory) == teachers.AKAMASTER:  # downloaded by name when the import runs (`teachers.fetch_akamaster`)
        return teachers.akamaster_path(model) if top and model in teachers.AKAMASTER_FILES else None
    places = [] if data.check_name(dataset) == "folder" else [Path(directory) / dataset]
    places += [Path(directory)] if top else []
    for place in places:
        found = sorted(place.glob(f"{model}.th")) + sorted(place.glob(f"{model}-*.th"))
        if found:
            return found[0]
    return None


def expand(
    chosen,
    *,
    root="runs",
    datasets=None,
    teacher_models=None,
    temperatures=None,
    t1=None,
    attacks=None,
    eps_max=None,
    epochs_scale=1.0,
    seeds=None,
    attack_images=-1,
    teacher_checkpoints=None,
    precision="float32",
    sweep="independent",
    twins=None,
):
    """The steps of the study `chosen` (a Preset), narrowed by the options, in an order that respects `after`:
    teachers, students without distillation, distilled students, their half-budget twins (`twins`, default the
    preset's: each student again at half its epochs, into <folder>-half), attack sweeps, robustness checks. Every
    student arm runs `seeds` seeds (default the preset's), each distilled from the one teacher of its model: a seed
    draws a student's training images and initial weights, the same for every arm. `precision` is the students' (the
    teachers train in float32); `sweep` the attack sweeps' (`attacks.sweep`)."""
    from nodekd_cli.attacks import ATTACKS, SWEEPS

    root = Path(root)
    datasets = _narrow(datasets, chosen.datasets)
    teacher_models = _narrow(teacher_models, chosen.teachers)
    temperatures = tuple(float(t) for t in _narrow(temperatures, chosen.temperatures))
    baseline_t1 = tuple(float(t) for t in (chosen.t1 if t1 is None else t1))
    kd_t1 = tuple(float(t) for t in (chosen.kd_t1 if t1 is None else t1))
    kd_adam_t1 = tuple(float(t) for t in chosen.kd_adam_t1 if t1 is None or float(t) in map(float, t1))
    alone_sgd_t1 = tuple(float(t) for t in chosen.alone_sgd_t1 if t1 is None or float(t) in map(float, t1))
    attacks = _narrow(attacks, chosen.attacks)
    eps_max = chosen.eps_max if eps_max is None else eps_max
    images = chosen.attack_images if attack_images == -1 else attack_images
    seeds = chosen.seeds if seeds is None else seeds
    for name in datasets:
        data.check_name(name)
    for model in teacher_models:
        teachers.check_model(model)
    for attack in attacks:
        if attack not in ATTACKS:
            raise UserError(f"Unknown attack {attack!r}; choose one of: {', '.join(ATTACKS)}.")
    if sweep not in SWEEPS:
        raise UserError(f"Unknown sweep {sweep!r}; choose one of: {', '.join(SWEEPS)}.")
    if epochs_scale <= 0 or any(t <= 0 for t in temperatures + baseline_t1 + kd_t1):
        raise UserError("--epochs-scale, --temperatures and --t1 must be positive.")
    if seeds < 1 or eps_max < 0 or (images is not None and images < 1):
        raise UserError("--seeds and --attack-images must be at least 1, and --eps-max at least 0.")
    family_of = {name: data.check_name(name) for name in datasets}

    teacher_steps, baseline_steps, kd_steps = [], [], []
    for dataset in datasets:
        family = family_of[dataset]
        student_epochs = _scaled(chosen.student.get("epochs", students.DEFAULT_EPOCHS[family]), epochs_scale)
        student_options = {**chosen.student, "epochs": student_epochs, "precision": precision}
        teacher_of = {}
        for model in teacher_models:
            folder = runs.teacher_folder(model, dataset, root=root)
            checkpoint = find_checkpoint(teacher_checkpoints, model, dataset)
            if checkpoint is not None:
                step = Step("import", folder, teachers.import_config(model, dataset, checkpoint), checkpoint=checkpoint)
            else:
                epochs = _scaled(chosen.teacher.get("epochs", teachers.DEFAULT_EPOCHS[family]), epochs_scale)
                options = {**chosen.teacher, "epochs": epochs}
                step = Step("teacher", folder, teachers.teacher_config(model, dataset, **options))
            teacher_steps.append(step)
            teacher_of[model] = step
        for seed in range(seeds):
            alone = [(horizon, {}) for horizon in baseline_t1]
            alone += [(horizon, {"optimizer": "sgd", "lr": chosen.sgd_lr}) for horizon in alone_sgd_t1]
            for horizon, optimizer in alone:
                config = students.student_config(dataset, t1=horizon, seed=seed, **student_options, **optimizer)
                folder = students.default_folder(config, root, seed)
                baseline_steps.append(Step("student", folder, config))
            for model in teacher_models:
                teacher = teacher_of[model]
                for temperature in temperatures:
                    arms = [(horizon, None) for horizon in kd_t1] + [(horizon, "adam") for horizon in kd_adam_t1]
                    for horizon, optimizer in arms:
                        options = dict(student_options)
                        if optimizer is not None:
                            options["optimizer"] = optimizer
                        elif (
                            chosen.sgd_lr
                            and students.resolve_optimizer(options.get("optimizer", "auto"), horizon, True) == "sgd"
                        ):
                            options["lr"] = chosen.sgd_lr
                        config = students.student_config(
                            dataset,
                            t1=horizon,
                            teacher_run=teacher.folder,
                            teacher_model_name=model,
                            temperature=temperature,
                            seed=seed,
                            **options,
                        )
                        folder = students.default_folder(config, root, seed)
                        kd_steps.append(Step("student", folder, config, after=(teacher.name,), teacher=teacher.folder))
    twins = chosen.twins if twins is None else twins
    twin_steps = [
        Step(
            "student",
            step.folder.with_name(f"{step.folder.name}-half"),
            convergence.twin_config(step.config),
            after=step.after,
            teacher=step.teacher,
        )
        for step in (baseline_steps + kd_steps if twins else [])
        if step.config["epochs"] > 1
    ]
    trained = teacher_steps + baseline_steps + kd_steps + twin_steps
    eps = tuple(range(0, eps_max + 1, chosen.eps_step))
    attack_steps = [
        Step("attack", step.folder, attack=attack, eps=eps, images=images, sweep=sweep, after=(step.name,))
        for step in teacher_steps + baseline_steps + kd_steps
        for attack in attacks
    ]
    # A check picks its eps from the run's PGD sweep (`checks.choose_eps`): after the sweep when the study has one.
    swept = {step.folder: step.name for step in attack_steps if step.attack == "pgd" and step.sweep == "independent"}
    check_steps = [
        Step("check", step.folder, images=chosen.check_images, after=(step.name, *step.after)
             + ((swept[step.folder],) if step.folder in swept else ()))
        for step in (baseline_steps + kd_steps if chosen.checks else [])
    ]
    return trained + attack_steps + check_steps


def state(step):
    """'done', 'resume' (an unfinished run to pick up), 'todo', or 'conflict: ...' (another run is in the way)."""
    if step.kind in TRAINING:
        try:
            found = runs.run_state(step.folder, step.config)
        except runs.RunConflict as conflict:
            return f"conflict: {_study_advice(conflict)}"
        except UserError as error:
            return f"conflict: {error}"
        return {"finished": "done", "resume": "resume", "new": "todo"}[found]
    from nodekd_cli import attacks

    name = runs.CHECK_FILE if step.kind == "check" else attacks.result_name(step.attack, step.sweep)
    path = step.folder / runs.ATTACKS_DIR / name
    try:
        result = runs.read_json(path)
    except (OSError, ValueError):  # no result yet
        return "todo"
    if not isinstance(result, dict):
        return "todo"
    # A sample as large as the test set is recorded as every image (`attacks.Sample.of`, which would load the data
    # set to count it: the result's count says as much).
    count, images = result.get("n"), step.images
    everything = result.get("sample", (result.get("settings") or {}).get("sample")) == attacks.sample_rule(None, 0)
    if everything and images is not None and isinstance(count, int) and images >= count:
        images = None
    if step.kind == "check":
        # The study's checks choose their eps (`checks.choose_eps`); one made at a given eps is not the study's.
        chosen = result.get("eps_rule") not in (None, "given")
        same = count is not None and chosen and result.get("seed") == 0
        sampled = result.get("sample") == attacks.sample_rule(images, 0)
        return "done" if same and sampled and images in (None, count) else "todo"
    # Current by the rule `attacks.attack_run` reuses a result by, for the study's own settings: a sweep holding every
    # eps the study asks for is done, whatever other eps it holds.
    try:
        config = runs.read_run(step.folder).config
    except UserError:  # no finished run to attack (any more)
        return "todo"
    settings = attacks.result_settings(config, step.attack, step.eps, attacks.Sample(images), sweep_mode=step.sweep)
    return "done" if attacks.covering_result(path, settings) else "todo"


# Rough cost model for --dry-run. A training pass (forward and backward) of a batch costs a fixed part per batch and
# a part per image; an evaluation pass a third of that; an attack's gradient step or prediction a full pass per image
# and ATTACK_PASS of the fixed part. Per image: measured on one H100 (CIFAR-10: 32x32 images, 512-channel students at
# 1/4 resolution, batch 128; float32, torchdiffeq's loop: issue 12's levers are not in it), scaled by depth, pixels,
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
SIZES = data.SIZES
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
    pixels = SIZES.get(data.check_name(config["dataset"]), SIZES["cifar10"])[2]
    if config["kind"] == "teacher":
        depth = int(config["model"].removeprefix("resnet"))
        return profile["teacher"] * depth / 20 * pixels / profile["teacher_pixels"]
    solved = pixels / 4 ** config["downsample"] / profile["pixels"]
    width = (config["channels"] / profile["channels"]) ** 2
    return profile["student"] * solved * width * nfe_growth(config) + profile.get("input", 0.0) * pixels / 1024


def _pass_cost(config, profile):
    """Seconds per batch of one training pass besides its images' (a student's solver steps)."""
    return 0.0 if config["kind"] == "teacher" else profile.get("pass", 0.0) * nfe_growth(config)


def epoch_work(config):
    """(passes, images) of one epoch of the run of `config`, in training passes: its training batches and images, and
    its evaluation's over the test set (batches of at least 256), each a third of one."""
    train, test, _ = SIZES.get(data.check_name(config["dataset"]), SIZES["cifar10"])
    train = min(train, config.get("train_images") or train)
    batch = config["batch_size"]
    return math.ceil(train / batch) + EVAL_PASS * math.ceil(test / max(batch, 256)), train + EVAL_PASS * test


def estimates(steps, device="cpu", profile=None):
    """A rough guess of the seconds each step takes on `device` (see COSTS; or with `profile`, figures of the same
    form), by step name: training is its epochs' training and evaluation passes; attacks and checks are their steps
    on every attacked image (every image counted as classified right, so an upper bound), in batches of 256."""
    from nodekd_cli.attacks import num_steps

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
        test = SIZES.get(data.check_name(config["dataset"]), SIZES["cifar10"])[1]
        images = min(test, step.images or test)
        image_steps = CHECK_IMAGE_STEPS if step.kind == "check" else sum(num_steps(e) + 1 for e in step.eps)
        batches = math.ceil(images / 256)
        per_step = images * _image_cost(config, profile) + batches * ATTACK_PASS * _pass_cost(config, profile)
        found[step.name] = per_step * image_steps * (MONOTONE_SHARE if step.sweep == "monotone" else 1.0)
    return found


@dataclass
class Outcome:
    step: Step
    status: str  # done (before this command), finished, failed, blocked
    message: str = ""
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)


def _load(dataset, data_dir, manual_dir, cache={}):  # noqa: B006  (a per-process cache: a study has 1-2 data sets)
    key = (dataset, data_dir, manual_dir)
    if key not in cache:
        from nodekd_cli.data import load_dataset

        cache[key] = load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)
    return cache[key]


def execute(step, *, device="cpu", data_dir=None, manual_dir=None, reporter=None, progress=None):
    """Runs one step in this process (Keras must already be on `device`); returns a short summary of its result."""
    from nodekd_cli import attacks

    if step.kind in TRAINING:
        try:
            found = runs.run_state(step.folder, step.config)
        except runs.RunConflict as conflict:  # its advice names --out, which a study does not have
            raise UserError(_study_advice(conflict)) from None
        if found == "finished":
            return {"accuracy": runs.read_json(step.folder / runs.METRICS)["test_accuracy"]}
        dataset = _load(step.config["dataset"], data_dir, manual_dir)
        if step.kind == "import":
            if step.checkpoint == teachers.akamaster_path(step.config["model"]):
                teachers.fetch_akamaster(step.config["model"], progress=False)
            model = teachers.import_akamaster(step.config["model"], step.checkpoint, dataset)
            metrics = teachers.import_run(step.folder, step.config, model, dataset, device=device)
        elif step.kind == "teacher":
            cuda_graph = device.startswith("cuda")
            metrics = teachers.train_run(
                step.folder, step.config, dataset, device=device, cuda_graph=cuda_graph, reporter=reporter
            )
        else:
            teacher = None
            if step.teacher is not None:
                _, teacher = students.load_teacher(step.teacher, step.config["dataset"])
            metrics = students.train_run(step.folder, step.config, dataset, teacher, device=device, reporter=reporter)
        return {"accuracy": metrics["test_accuracy"], "nfe": metrics.get("test_nfe")}
    sample = attacks.Sample(step.images, 0, data_dir, manual_dir)
    if step.kind == "attack":
        result, _ = attacks.attack_run(
            step.folder, step.attack, list(step.eps), sample=sample, sweep_mode=step.sweep, progress=progress
        )
        return {"eps": result["eps"], "accuracy": result["accuracy"]}
    from nodekd_cli import checks

    result = checks.check_run(step.folder, eps=None, sample=sample, progress=progress)
    return {"masking": result["masking"]}


def _study_advice(conflict):
    """A run folder's conflict (`runs.RunConflict`) with what a study can do about it."""
    if isinstance(conflict, runs.RunLocked):
        return f"{conflict.fact}; run the study again when it has ended."
    return f"{conflict.fact}; remove it, or give the study another --runs folder."


def _attempt(step, **kwargs):
    """`execute` with every failure turned into a failed outcome (a message), so that the others go on."""
    started = time.perf_counter()
    try:
        summary = execute(step, **kwargs)
    except runs.RunConflict as conflict:
        return Outcome(step, "failed", _study_advice(conflict), time.perf_counter() - started)
    except UserError as error:
        return Outcome(step, "failed", str(error), time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001  (any failure of one run must not stop the study)
        message = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        return Outcome(step, "failed", message, time.perf_counter() - started)
    return Outcome(step, "finished", seconds=time.perf_counter() - started, summary=summary)


def _blocked_by(step, outcomes):
    return [name for name in step.after if name in outcomes and outcomes[name].status in ("failed", "blocked")]


def run_sequential(steps, *, on_start=None, on_end=None, reporter_for=None, progress_for=None, **kwargs):
    """Runs the steps one after another in this process; returns an Outcome per step."""
    outcomes = {}
    for step in steps:
        if state(step) == "done":
            outcomes[step.name] = Outcome(step, "done")
        else:
            blockers = _blocked_by(step, outcomes)
            if blockers:
                outcomes[step.name] = Outcome(step, "blocked", f"needs {blockers[0]}, which did not finish")
            else:
                if on_start:
                    on_start(step)
                reporter = reporter_for(step) if reporter_for else None
                progress = progress_for(step) if progress_for else None
                outcomes[step.name] = _attempt(step, reporter=reporter, progress=progress, **kwargs)
        if on_end:
            on_end(outcomes[step.name])
    return list(outcomes.values())


def ray_available():
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _ray_task(step, device, data_dir, manual_dir, threads=None):
    """A step in a Ray worker: Keras on the device Ray gave the task, `threads` torch threads (default: the task's
    CPUs)."""
    import ray
    import torch

    from nodekd_cli import backend

    assigned = ray.get_runtime_context().get_assigned_resources()
    if device == "auto":
        device = "cuda" if assigned.get("GPU") else "cpu"
    device = backend.select(device)
    torch.set_num_threads(threads or max(1, int(assigned.get("CPU", 1))))
    return _attempt(step, device=device, data_dir=data_dir, manual_dir=manual_dir)


def run_on_ray(steps, *, workers=None, address=None, on_start=None, on_end=None, device="auto", threads=None, **kwargs):
    """Runs the steps as Ray tasks: each waits for the steps it needs, one GPU each when the cluster has GPUs.

    With `address`, joins that Ray cluster; otherwise starts a local Ray with `workers` CPUs, one task per CPU.
    Run folders must be on storage every node sees: tasks read and write them directly.
    """
    import logging

    import ray

    logging.getLogger("ray").setLevel(logging.ERROR)  # nodekd reports each step itself
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=workers, num_gpus=0 if device == "cpu" else None, include_dashboard=False, **quiet)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) if device != "cpu" else 0
        task = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=0)(_ray_task)
        outcomes, waiting, running = {}, [], {}
        names = {step.name for step in steps}
        for step in steps:
            if state(step) == "done":
                outcomes[step.name] = Outcome(step, "done")
                if on_end:
                    on_end(outcomes[step.name])
            else:
                waiting.append(step)
        while waiting or running:
            for step in list(waiting):
                blockers = _blocked_by(step, outcomes)
                if blockers:
                    outcomes[step.name] = Outcome(step, "blocked", f"needs {blockers[0]}, which did not finish")
                elif all(name in outcomes or name not in names for name in step.after):
                    if on_start:
                        on_start(step)
                    arguments = (step, device, kwargs.get("data_dir"), kwargs.get("manual_dir"), threads)
                    running[task.remote(*arguments)] = step
                else:
                    continue
                waiting.remove(step)
                if step.name in outcomes and on_end:
                    on_end(outcomes[step.name])
            if not running:
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                step = running.pop(ref)
                try:
                    outcomes[step.name] = ray.get(ref)
                except Exception as error:  # noqa: BLE001  (a worker that died, not a failing run)
                    outcomes[step.name] = Outcome(step, "failed", f"Ray task failed: {type(error).__name__}")
                if on_end:
                    on_end(outcomes[step.name])
        return [outcomes[step.name] for step in steps]
    finally:
        ray.shutdown()
