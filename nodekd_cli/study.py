"""The paper's study as steps in dependency order, run in this process or spread over Ray (`nodekd reproduce`).

A step trains a teacher (or imports one), trains a student (without or with distillation), attacks a finished run
or checks its robustness. Each writes into its run folder, so a finished step is skipped, an unfinished one resumes
from its checkpoint, and a failed step blocks only the steps that need its run. Ray is optional
(`pip install 'nodekd[cluster]'`); a Ray task runs the very same `execute` as the sequential loop.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from nodekd_cli import convergence, data, runs, students, teachers
from nodekd_cli.costs import TRAINING
from nodekd_cli.errors import UserError


@dataclass(frozen=True)
class Preset:
    """What a study runs: data sets, teachers, temperatures, time horizons, attacks, and the budgets."""

    description: str
    datasets: tuple
    attack_images: int | None  # a class-stratified sample of n test images; None: all
    check_images: int  # masking checks at the eps where each run's PGD sweep leaves about half its images (`checks`)
    seeds: int = 1  # training runs (seeds 0..seeds-1) of every student arm; a claim needs 3 (`report.stats`)
    teachers: tuple | None = ("resnet20",)  # None: every registered architecture that is one of the paper's
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
        description="the paper's claims on real CIFAR-10 in about three hours of a 2-core CPU: an imported "
        "ResNet20, 32-channel students on 10,000 training images, three seeds an arm, attacks on 1,000 test images",
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
        teachers=None,
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


MOST_SEEDS = 100  # a plan is built whole (and priced by --dry-run): more seeds than this is a typo


@dataclass(frozen=True)
class Plan:
    """What `expand` plans: a preset's choices narrowed by the command's options, checked."""

    root: Path
    datasets: tuple
    teacher_models: tuple
    temperatures: tuple
    alone: tuple  # (t1, optimizer overrides) of the students trained alone
    distilled: tuple  # (t1, optimizer or None for the paper's) of the distilled students
    attacks: tuple
    eps: tuple
    images: int | None
    seeds: int
    epochs_scale: float
    precision: str
    sweep: str
    twins: bool
    checkpoints: Path | None


def _plan(
    chosen,
    *,
    root,
    datasets,
    teacher_models,
    temperatures,
    t1,
    attacks,
    eps_max,
    epochs_scale,
    seeds,
    attack_images,
    teacher_checkpoints,
    precision,
    sweep,
    twins,
):
    """The `Plan` of `expand`'s arguments; a `UserError` for any that cannot be planned."""
    from nodekd_cli.attacks import check_attack

    def horizons(default, narrowing=True):
        return tuple(float(t) for t in default if not narrowing or t1 is None or float(t) in map(float, t1))

    datasets = _narrow(datasets, chosen.datasets)
    teacher_models = _narrow(teacher_models, chosen.teachers or teachers.paper_teachers())
    temperatures = tuple(float(t) for t in _narrow(temperatures, chosen.temperatures))
    baseline_t1 = horizons(chosen.t1 if t1 is None else t1, False)
    kd_t1 = horizons(chosen.kd_t1 if t1 is None else t1, False)
    eps_max = chosen.eps_max if eps_max is None else eps_max
    images = chosen.attack_images if attack_images == -1 else attack_images
    seeds = chosen.seeds if seeds is None else seeds
    attacks = _narrow(attacks, chosen.attacks)
    for name in datasets:
        data.check_name(name)
    for model in teacher_models:
        teachers.check_model(model)
    for attack in attacks:
        check_attack(attack, sweep)
    check_attack("pgd", sweep)
    if epochs_scale <= 0 or any(t <= 0 for t in temperatures + baseline_t1 + kd_t1):
        raise UserError("--epochs-scale, --temperatures and --t1 must be positive.")
    if not 1 <= seeds <= MOST_SEEDS or eps_max < 0 or (images is not None and images < 1):
        raise UserError(
            f"--seeds must lie in 1..{MOST_SEEDS}, --attack-images be at least 1, and --eps-max at least 0."
        )
    sgd = {"optimizer": "sgd", "lr": chosen.sgd_lr}
    alone = tuple((t, {}) for t in baseline_t1) + tuple((t, sgd) for t in horizons(chosen.alone_sgd_t1))
    distilled = tuple((t, None) for t in kd_t1) + tuple((t, "adam") for t in horizons(chosen.kd_adam_t1))
    return Plan(
        Path(root),
        datasets,
        teacher_models,
        temperatures,
        alone,
        distilled,
        attacks,
        tuple(range(0, eps_max + 1, chosen.eps_step)),
        images,
        seeds,
        epochs_scale,
        precision,
        sweep,
        chosen.twins if twins is None else twins,
        teacher_checkpoints,
    )


def _teacher_step(chosen, plan, dataset, model):
    """The step that imports the teacher `model` of `dataset` (with a checkpoint for it) or trains it."""
    folder = runs.teacher_folder(model, dataset, root=plan.root)
    checkpoint = find_checkpoint(plan.checkpoints, model, dataset)
    if checkpoint is not None:
        return Step("import", folder, teachers.import_config(model, dataset, checkpoint), checkpoint=checkpoint)
    epochs = _scaled(chosen.teacher.get("epochs", data.info(dataset).teacher_epochs), plan.epochs_scale)
    return Step("teacher", folder, teachers.teacher_config(model, dataset, **{**chosen.teacher, "epochs": epochs}))


def _student_steps(chosen, plan, dataset, seed, teacher_of):
    """The students of one data set and seed: (trained alone, distilled from each teacher at each T)."""
    epochs = _scaled(chosen.student.get("epochs", data.info(dataset).student_epochs), plan.epochs_scale)
    options = {**chosen.student, "epochs": epochs, "precision": plan.precision}
    alone = []
    for horizon, optimizer in plan.alone:
        config = students.student_config(dataset, t1=horizon, seed=seed, **options, **optimizer)
        alone.append(Step("student", students.default_folder(config, plan.root, seed), config))
    distilled = []
    for model in plan.teacher_models:
        teacher = teacher_of[model]
        for temperature, (horizon, optimizer) in ((t, arm) for t in plan.temperatures for arm in plan.distilled):
            chosen_options = dict(options)
            if optimizer is not None:
                chosen_options["optimizer"] = optimizer
            elif chosen.sgd_lr and students.resolve_optimizer(options.get("optimizer", "auto"), horizon, True) == "sgd":
                chosen_options["lr"] = chosen.sgd_lr
            config = students.student_config(
                dataset,
                t1=horizon,
                teacher_run=teacher.folder,
                teacher_model_name=model,
                temperature=temperature,
                seed=seed,
                **chosen_options,
            )
            folder = students.default_folder(config, plan.root, seed)
            distilled.append(Step("student", folder, config, after=(teacher.name,), teacher=teacher.folder))
    return alone, distilled


def _twin(step):
    """A student's half-budget twin (`convergence`): its config at half the epochs, in <folder>-half."""
    folder = step.folder.with_name(f"{step.folder.name}-half")
    return Step("student", folder, convergence.twin_config(step.config), after=step.after, teacher=step.teacher)


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
    plan = _plan(chosen, **{name: value for name, value in locals().items() if name != "chosen"})
    teacher_steps, baseline_steps, kd_steps = [], [], []
    for dataset in plan.datasets:
        teacher_of = {model: _teacher_step(chosen, plan, dataset, model) for model in plan.teacher_models}
        teacher_steps += teacher_of.values()
        for seed in range(plan.seeds):
            alone, distilled = _student_steps(chosen, plan, dataset, seed, teacher_of)
            baseline_steps += alone
            kd_steps += distilled
    trained_students = baseline_steps + kd_steps
    twin_steps = [_twin(step) for step in trained_students if plan.twins and step.config["epochs"] > 1]
    attack_steps = [
        Step(
            "attack", step.folder, attack=attack, eps=plan.eps, images=plan.images, sweep=plan.sweep, after=(step.name,)
        )
        for step in teacher_steps + trained_students
        for attack in plan.attacks
    ]
    # A check picks its eps from the run's PGD sweep (`checks.choose_eps`): after the sweep when the study has one.
    swept = {step.folder: step.name for step in attack_steps if step.attack == "pgd" and step.sweep == "independent"}
    check_steps = [
        Step(
            "check",
            step.folder,
            images=chosen.check_images,
            after=(step.name, *step.after) + ((swept[step.folder],) if step.folder in swept else ()),
        )
        for step in (trained_students if chosen.checks else [])
    ]
    return teacher_steps + trained_students + twin_steps + attack_steps + check_steps


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


def _short_temp_dir():
    """A temporary folder for a local Ray: its sockets' paths must stay under 107 bytes (AF_UNIX), which a long TMPDIR
    would pass, so a long one gives way to /tmp."""
    import tempfile

    base = tempfile.gettempdir()
    return os.path.join(base if len(base) <= 40 else "/tmp", f"nodekd-ray-{os.getuid()}")


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
        ray.init(
            num_cpus=workers,
            num_gpus=0 if device == "cpu" else None,
            include_dashboard=False,
            _temp_dir=_short_temp_dir(),
            **quiet,
        )
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
