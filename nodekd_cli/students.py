"""Neural ODE students: distilled from a teacher (Algorithm 1) or trained on cross-entropy alone (the baselines).

Defaults follow the paper: batch 128, lr 0.001 divided by 10 at half and by 100 at three quarters of
the epochs, 200 epochs on CIFAR-10 and 40 on SVHN; SGD with momentum 0.9 for distillation with t1 <= 5, Adam for
larger t1 and for every student trained without distillation; lambda 0.9. The paper gives no weight decay for the
students and nodekd uses none. On `digits` the defaults are scaled to run on a laptop CPU in minutes: 32 channels,
no downsampling (the images are 8x8), batch 32 and 20 epochs (1,437 images make only 12 steps an epoch at batch
128), and lr 0.01 for SGD (0.001 took 120 steps to 16%; 0.01 reached 97.2% in 20 epochs from a 97.8% ResNet20).
"""

import math
from pathlib import Path

import numpy as np

from nodekd_cli import data, fingerprints, runs
from nodekd_cli.errors import UserError

PAPER_CHANNELS = 512
MAX_CHANNELS = 4096  # 8 times the paper's; a wider student's weights alone would fill a GPU
MAX_CROP_PADDING = 64  # pixels; the paper's images are 32 wide
MIN_T1, MAX_T1 = 1e-3, 1e4  # a horizon outside these makes the flow's scale (1 / t1) overflow or vanish
PAPER_DOWNSAMPLE = 2
DEFAULT_LR = 1e-3
PAPER_BATCH_SIZE = 128
DEFAULT_LAMBDA = 0.9
MOMENTUM = 0.9
# With SGD, the paper's distillation fails for t1 > 5 (t1 = 2 is already worse than t1 = 1): Adam above.
SGD_MAX_T1 = 5
OPTIMIZERS = ("auto", "sgd", "adam")
SOFT_TARGETS = ("precomputed", "online")
SOFT_TARGETS_FILE = "soft_targets.npy"
# The student's dynamics (docs/research-notes.md, "Long time horizons"): odenet's design left t1 = 100 and 500 at chance; without
# its time channel and with the flow's scale starting at 1 / t1 they learn (`bench/long_horizon.py`). The same
# defaults as `models.build_student`'s.
ODENET = {"time_input": "raw", "norm": "pre", "init": "he"}
DEFAULT_DYNAMICS = {"time_input": "none", "norm": "pre", "init": "horizon"}


def resolve_optimizer(requested, t1, distilled):
    """The paper's choice for `auto`: SGD for distillation with t1 <= 5, Adam otherwise."""
    if requested not in OPTIMIZERS:
        raise UserError(f"Unknown optimizer {requested!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    if requested != "auto":
        return requested
    return "sgd" if distilled and t1 <= SGD_MAX_T1 else "adam"


def dynamics_config(time_input=None, norm=None, init=None):
    """The design of the student's dynamics (`models.ConvODEFunc`); a choice left as None takes nodekd's default."""
    from models.ode import INITS, NORMS, TIME_INPUTS

    chosen = {"time_input": time_input, "norm": norm, "init": init}
    registries = {"time_input": TIME_INPUTS, "norm": NORMS, "init": INITS}
    for key, value in chosen.items():
        if value is not None and value not in registries[key]:
            option = "--" + key.replace("_", "-")
            raise UserError(f"Unknown {option} {value!r}; choose one of: {', '.join(registries[key])}.")
    return {key: DEFAULT_DYNAMICS[key] if value is None else value for key, value in chosen.items()}


def dynamics_of(config):
    """The dynamics design of a student run's config (runs made before the choice existed used odenet's)."""
    return config.get("dynamics") or ODENET


def precision_of(config):
    """The precision of a run's config (runs made before students had one computed in float32)."""
    return config.get("precision", runs.ADDED_SETTINGS["precision"])


def dynamics_label(dynamics):
    """A short name for a dynamics design: "odenet", or time input/norm/init as in "scaled/pre/identity"."""
    return "odenet" if dynamics == ODENET else "/".join(dynamics[key] for key in ("time_input", "norm", "init"))


def student_config(
    dataset,
    *,
    t1,
    teacher_run=None,
    teacher_model_name=None,
    temperature=None,
    lam=None,
    soft_targets="precomputed",
    optimizer="auto",
    epochs=None,
    batch_size=None,
    lr=None,
    channels=None,
    downsample=None,
    train_images=None,
    seed=0,
    crop_padding=None,
    flip=None,
    solver=None,
    dynamics=None,
    precision="float32",
):
    """The resolved configuration of a student run; distilled from the teacher run folder `teacher_run`, whose model
    is `teacher_model_name` (e.g. "resnet20"), when one is given. `solver` is a `models.Solver` (default: dopri5 at
    rtol = atol = 1e-3); `precision` is that of the dynamics (`models.PRECISIONS`)."""
    import models
    from nodekd_cli import training

    data.check_name(dataset)
    distilled = teacher_run is not None
    if distilled and teacher_model_name is None:
        raise TypeError("student_config needs the teacher's model name with its run folder.")
    if not MIN_T1 <= t1 <= MAX_T1:
        raise UserError(f"--t1 must lie in {MIN_T1:g}..{MAX_T1:g} (the paper: 1, 100, 500); got {t1:g}.")
    if distilled and (temperature is None or temperature <= 0):
        raise UserError(f"--T must be positive; got {temperature}.")
    lam = (DEFAULT_LAMBDA if lam is None else lam) if distilled else 0.0
    if not 0 <= lam <= 1:
        raise UserError(f"--lambda must lie in [0, 1]; got {lam}.")
    training.check_precision(precision)
    if soft_targets not in SOFT_TARGETS:
        raise UserError(f"Unknown soft-target mode {soft_targets!r}; choose one of: {', '.join(SOFT_TARGETS)}.")
    augmentation = data.default_augmentation(dataset)
    resolved_optimizer = resolve_optimizer(optimizer, t1, distilled)
    defaults = data.info(dataset).student  # the data set's defaults where they are not the paper's
    if lr is None:
        lr = defaults.get("sgd_lr", DEFAULT_LR) if resolved_optimizer == "sgd" else DEFAULT_LR
    config = {
        "kind": "student",
        "model": "node",
        "dataset": dataset,
        "t1": float(t1),
        "T": float(temperature) if distilled else None,
        "lambda": float(lam),
        "teacher": str(Path(teacher_run).resolve()) if distilled else None,
        "teacher_model": teacher_model_name if distilled else None,
        "soft_targets": soft_targets if distilled else None,
        "optimizer": resolved_optimizer,
        "momentum": MOMENTUM,
        "lr": lr,
        "lr_schedule": "step: /10 at 1/2, /100 at 3/4 of the epochs",
        "epochs": data.info(dataset).student_epochs if epochs is None else epochs,
        "batch_size": defaults.get("batch_size", PAPER_BATCH_SIZE) if batch_size is None else batch_size,
        "channels": defaults.get("channels", PAPER_CHANNELS) if channels is None else channels,
        "downsample": defaults.get("downsample", PAPER_DOWNSAMPLE) if downsample is None else downsample,
        "train_images": train_images,  # None: every training image; else a class-stratified sample drawn with seed
        "seed": seed,
        "crop_padding": augmentation.crop_padding if crop_padding is None else crop_padding,
        "flip": augmentation.flip if flip is None else flip,
        "solver": (solver or models.Solver()).config(),
        "dynamics": dynamics or dynamics_config(),
        "precision": precision,
    }
    return with_teacher_fingerprint(_checked(config))


def with_teacher_fingerprint(config):
    """`config` with its teacher's fingerprint (`fingerprints.TEACHER`: the SHA-256 of the teacher's weights) when it
    distils from a teacher whose model exists and it records none yet."""
    teacher = config.get("teacher")
    if not teacher or fingerprints.recorded(config) or not (Path(teacher) / runs.MODEL).is_file():
        return config
    fingerprint = fingerprints.model_fingerprint(Path(teacher) / runs.MODEL)
    return config if fingerprint is None else {**config, fingerprints.TEACHER: fingerprint}


def _checked(config):
    """`config` when its budget is sound; a `UserError` naming the option at fault otherwise."""
    for key in ("epochs", "batch_size", "channels"):
        if config[key] < 1:
            raise UserError(f"--{key.replace('_', '-')} must be at least 1; got {config[key]}.")
    if config["train_images"] is not None and config["train_images"] < 1:
        raise UserError(f"--train-images must be at least 1; got {config['train_images']}.")
    if config["lr"] <= 0 or config["downsample"] < 0:
        raise UserError("--lr must be positive and --downsample not negative.")
    if config["channels"] > MAX_CHANNELS:
        raise UserError(
            f"--channels must be at most {MAX_CHANNELS:,} (the paper's students have 512); got {config['channels']:,}."
        )
    if not 0 <= config["crop_padding"] <= MAX_CROP_PADDING:
        raise UserError(f"--crop-padding must lie in 0..{MAX_CROP_PADDING} pixels; got {config['crop_padding']}.")
    return config


def other_optimizer(config):
    """The optimizer of the student of `config` when it is not the one the paper trains that kind of student with
    (distilled at t1 <= 5: SGD; the others: Adam), e.g. "adam" for a distilled NODEs(1) trained with Adam; else None."""
    if config["kind"] != "student":
        return None
    optimizer, distilled = config.get("optimizer"), config.get("teacher") is not None
    return None if optimizer in (None, resolve_optimizer("auto", config["t1"], distilled)) else optimizer


def default_folder(config, root=runs.RUNS, seed=0):
    """The run folder of the student of `config` (`runs.student_folder`)."""
    distilled = config["teacher"] is not None
    return runs.student_folder(
        config["dataset"],
        config["t1"],
        teacher_model_name=config["teacher_model"] if distilled else None,
        temperature=config["T"],
        other_optimizer=other_optimizer(config),
        root=root,
        seed=seed,
    )


def load_teacher(run, dataset=None):
    """The finished teacher in the run folder `run`: its `runs.Run` and its Keras model; `dataset` must agree with the
    teacher's if given."""
    from nodekd_cli import teachers

    if not Path(run).is_dir():
        raise UserError(f"The teacher folder {run} does not exist; train one with: nodekd teacher train MODEL.")
    found, model = teachers.load(run)
    if dataset is not None and dataset != found.config["dataset"]:
        raise UserError(
            f"The teacher in {run} was trained on {found.config['dataset']}, not {dataset}; distillation uses the "
            f"teacher's data set (leave out --dataset)."
        )
    return found, model


def soft_targets(folder, teacher, dataset, batch_size=512):
    """The teacher's logits over the training split (Algorithm 1, lines 1-2), kept in the student's run folder."""
    from nodekd_cli import training

    path = Path(folder) / SOFT_TARGETS_FILE
    try:  # kept only when readable as plain numbers of the right shape, all finite; else made again from the teacher
        logits = np.load(path, allow_pickle=False)
        if logits.shape == (len(dataset.x_train), dataset.num_classes) and np.isfinite(logits).all():
            return logits
    except (OSError, ValueError, EOFError, TypeError):  # none yet, truncated, an object array, not a .npy file
        pass
    logits = training.evaluate(teacher, dataset.x_train, dataset.y_train, batch_size)["logits"].astype(np.float32)
    if not np.isfinite(logits).all():
        raise UserError(
            f"The teacher gives logits that are not finite on {dataset.name}'s training images; retrain it."
        )
    runs.save_array(path, logits)
    return logits


def check_fits(config, dataset):
    """The stem halves the image `downsample` times: the image size must allow it; and --train-images must be at most
    the training images there are (a run records the budget it had, not one it asked for)."""
    available = len(dataset.y_train)
    if config.get("train_images") is not None and config["train_images"] > available:
        raise UserError(
            f"--train-images {config['train_images']} is more than the {available:,} training images of "
            f"{dataset.name}; leave it out to train on all of them."
        )
    height, width = dataset.image_shape[:2]
    factor = 2 ** config["downsample"]
    if height % factor or width % factor:
        raise UserError(
            f"--downsample {config['downsample']} needs image sides divisible by {factor}, but {dataset.name} has "
            f"{height}x{width} images; choose a smaller --downsample."
        )


def build(config, dataset):
    """The student network of `config` for `dataset`."""
    import models

    mean, std = dataset.channel_stats()
    try:
        return models.build_student(
            input_shape=dataset.image_shape,
            num_classes=dataset.num_classes,
            channels=config["channels"],
            downsample=config["downsample"],
            t1=config["t1"],
            **dynamics_of(config),
            precision=precision_of(config),
            mean=mean,
            std=[max(s, 1e-3) for s in std],
            solver=models.Solver(**config["solver"]),
        )
    except ValueError as error:
        raise UserError(f"Cannot build the student: {error}.") from None


def train_run(folder, config, dataset, teacher=None, *, device, reporter=None, wait=None, eval_every=1):
    """Trains, resumes or finds finished the student of `config` in the run folder `folder`, holding its lock
    (`runs.writing`); returns its metrics. `teacher` is the teacher model for distillation; the test split is scored
    after every `eval_every`-th epoch and the last (`training.fit_run`)."""
    check_fits(config, dataset)  # before the folder is made: a mistake leaves nothing behind
    config = with_teacher_fingerprint(config)  # a plan made before its teacher was trained has none yet
    with runs.writing(folder, {**config, **runs.circumstances(device)}, wait=wait) as state:
        if state == "finished":
            return runs.read_json(Path(folder) / runs.METRICS)
        return train(folder, config, dataset, teacher, reporter, eval_every)


def train(folder, config, dataset, teacher=None, reporter=None, eval_every=1):
    """Trains (or resumes) the student of `config` into the open run folder `folder`; returns its metrics.

    `teacher` is the teacher model for distillation (its logits are precomputed or computed online).
    """
    import keras

    import models
    from nodekd_cli import train_step, training

    keras.utils.set_random_seed(config["seed"])
    dataset = data.train_subset(dataset, config.get("train_images"), config["seed"])
    targets = None
    if teacher is not None and config["soft_targets"] == "precomputed":
        targets = soft_targets(folder, teacher, dataset)
    student = build(config, dataset)
    distiller = models.Distiller(
        student,
        temperature=config["T"] or 1.0,
        lam=config["lambda"],
        teacher=teacher if config["soft_targets"] == "online" else None,
    )
    distiller.build((None, *dataset.image_shape))  # fit's own build would pass it (x, soft targets)
    steps = math.ceil(len(dataset.x_train) / config["batch_size"])
    schedule = train_step.StepSchedule(config["lr"], config["epochs"], steps)
    if config["optimizer"] == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=config["momentum"])
    else:
        optimizer = keras.optimizers.Adam(learning_rate=schedule)
    distiller.compile(optimizer=optimizer)

    def export(trained):
        final = build(config, dataset)
        final.set_weights(trained.student.get_weights())
        return final

    return training.fit_run(
        folder, distiller, dataset, config, None, export, reporter, extra=targets, eval_every=eval_every
    )


def load(folder):
    """The finished student run in `folder` (a `runs.Run`) and its Keras model."""
    return runs.read_run(folder, kind="student"), runs.load_model(folder)
