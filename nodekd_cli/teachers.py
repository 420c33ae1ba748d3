"""Teachers: the paper's ResNets trained, evaluated or imported into run folders.

Defaults follow the paper: SGD with momentum 0.9, lr 0.1 (0.01 for ResNet110), batch 128, 300
epochs on CIFAR-10 and 40 on SVHN, lr / 10 at half and / 100 at three quarters of the epochs. The paper gives no
weight decay; the default 1e-4 (coupled L2, as torch.optim.SGD) is He et al.'s and that of the reference CIFAR
ResNets whose accuracies are published (akamaster/pytorch_resnet_cifar10).
"""

import math
import os
import warnings
from pathlib import Path

from nodekd_cli import data, fingerprints, runs
from nodekd_cli.errors import UserError

DEFAULT_BATCH_SIZE = 128
DEFAULT_WEIGHT_DECAY = 1e-4
MOMENTUM = 0.9


def teacher_names():
    """The registered teacher architectures (`models.registry`)."""
    import models

    return list(models.TEACHERS)


def paper_teachers():
    """The registered architectures that are the paper's teachers, in the paper's order."""
    import models

    return tuple(name for name, architecture in models.TEACHERS.items() if architecture.paper)


def architecture(name):
    """The registered `models.TeacherArchitecture` of `name`; a `UserError` naming the registered ones otherwise."""
    import models

    if name not in models.TEACHERS:
        raise UserError(f"Unknown teacher {name!r}; choose one of: {', '.join(teacher_names())}.")
    return models.TEACHERS[name]


def check_model(name):
    architecture(name)


def teacher_config(
    model,
    dataset,
    *,
    epochs=None,
    batch_size=None,
    lr=None,
    weight_decay=None,
    seed=0,
    crop_padding=None,
    flip=None,
    precision="float32",
):
    """The resolved configuration of a teacher training run: every number that changes the result."""
    from nodekd_cli import training

    data.check_name(dataset)
    check_model(model)
    training.check_precision(precision)
    augmentation = data.default_augmentation(dataset)
    config = {
        "kind": "teacher",
        "model": model,
        "dataset": dataset,
        "epochs": data.info(dataset).teacher_epochs if epochs is None else epochs,
        "batch_size": DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        "optimizer": "sgd",
        "momentum": MOMENTUM,
        "lr": architecture(model).lr if lr is None else lr,
        "lr_schedule": "step: /10 at 1/2, /100 at 3/4 of the epochs",
        "weight_decay": DEFAULT_WEIGHT_DECAY if weight_decay is None else weight_decay,
        "seed": seed,
        "crop_padding": augmentation.crop_padding if crop_padding is None else crop_padding,
        "flip": augmentation.flip if flip is None else flip,
        "precision": precision,
    }
    for key in ("epochs", "batch_size"):
        if config[key] < 1:
            raise UserError(f"--{key.replace('_', '-')} must be at least 1; got {config[key]}.")
    if config["crop_padding"] > 64:
        raise UserError(f"--crop-padding must lie in 0..64 pixels; got {config['crop_padding']}.")
    if config["lr"] <= 0 or config["weight_decay"] < 0 or config["crop_padding"] < 0:
        raise UserError("--lr must be positive, and --weight-decay and --crop-padding not negative.")
    return config


def build(config, dataset, *, dtype=None):
    """The teacher network of `config` for `dataset`, normalizing with the training split's statistics."""
    import models

    mean, std = dataset.channel_stats()
    std = [max(s, 1e-3) for s in std]  # a constant channel (all one value) would divide by zero
    return models.build_teacher(
        config["model"],
        input_shape=dataset.image_shape,
        num_classes=dataset.num_classes,
        mean=mean,
        std=std,
        dtype=dtype,
    )


def prepare_training(model, config, steps_per_epoch, cuda_graph=False):
    """Compiles `model` for the teacher recipe of `config` and installs its train step; returns the step.

    `cuda_graph` replays each train step as a CUDA graph (same result, less Python per step; CUDA only).
    """
    import keras

    from nodekd_cli import train_step

    # Keras's SGD holds the momentum and iteration variables (checkpoints save them); SGDTrainStep updates them.
    model.compile(optimizer=keras.optimizers.SGD(momentum=config["momentum"]))
    step = train_step.SGDTrainStep(
        model,
        model.optimizer,
        schedule=train_step.StepSchedule(config["lr"], config["epochs"], steps_per_epoch),
        l2=config["weight_decay"],
    )
    if cuda_graph:
        step = train_step.CudaGraphStep(step)
    model.train_step = step
    return step


def train_run(folder, config, dataset, *, device, cuda_graph=False, reporter=None, wait=None):
    """Trains, resumes or finds finished the teacher of `config` in the run folder `folder`, holding its lock
    (`runs.writing`); returns its metrics."""
    circumstances = {**runs.circumstances(device), "cuda_graph": cuda_graph}
    with runs.writing(folder, {**config, **circumstances}, wait=wait) as state:
        if state == "finished":
            return runs.read_json(Path(folder) / runs.METRICS)
        return train(folder, config, dataset, reporter, cuda_graph)


def train(folder, config, dataset, reporter=None, cuda_graph=False):
    """Trains (or resumes) the teacher of `config` into the open run folder `folder`; returns its metrics."""
    import keras

    from nodekd_cli import training

    keras.utils.set_random_seed(config["seed"])
    policy = None if config["precision"] == "float32" else config["precision"]
    model = build(config, dataset, dtype=policy)
    step = prepare_training(model, config, math.ceil(len(dataset.x_train) / config["batch_size"]), cuda_graph)

    def export(trained):
        final = build(config, dataset)  # float32, whatever the training precision
        final.set_weights(trained.get_weights())
        return final

    return training.fit_run(folder, model, dataset, config, step, export, reporter)


def load(folder):
    """The finished teacher run in `folder` (a `runs.Run`) and its Keras model."""
    return runs.read_run(folder, kind="teacher"), runs.load_model(folder)


# Input normalization of the akamaster/pytorch_resnet_cifar10 checkpoints (pixels in [0, 1]).
# akamaster/pytorch_resnet_cifar10's released checkpoints, named as torch.hub expects: the part after the dash is the
# start of the file's SHA-256, which the download checks.
AKAMASTER_URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
AKAMASTER_FILES = {
    "resnet20": "resnet20-12fca82f.th",
    "resnet32": "resnet32-d509ac18.th",
    "resnet44": "resnet44-014dd654.th",
    "resnet56": "resnet56-4bfd9763.th",
    "resnet110": "resnet110-1d1ed7c2.th",
}
AKAMASTER = "akamaster"  # `--from akamaster`, `--teacher-checkpoints akamaster`: download by name


def akamaster_path(model_name):
    """Where torch.hub keeps akamaster's checkpoint of `model_name`: <torch.hub.get_dir()>/checkpoints/<file>."""
    import torch

    check_model(model_name)
    return Path(torch.hub.get_dir()) / "checkpoints" / AKAMASTER_FILES[model_name]


def fetch_akamaster(model_name, progress=True):
    """akamaster's CIFAR-10 checkpoint of `model_name`, downloaded once into torch.hub's cache with torch.hub's
    download, which checks the file's SHA-256 against the prefix in its name and keeps nothing if it differs. The
    address is `AKAMASTER_URL`, or `$NODEKD_AKAMASTER_URL` (a mirror, or a file:// folder)."""
    import urllib.error

    import torch

    path = akamaster_path(model_name)
    if path.is_file():
        return path
    url = (os.environ.get("NODEKD_AKAMASTER_URL") or AKAMASTER_URL).rstrip("/") + "/" + path.name
    prefix = path.stem.rsplit("-", 1)[1]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=progress)
    except RuntimeError as error:  # torch.hub's "invalid hash value"
        raise UserError(f"The file at {url} is not akamaster's {path.name} ({error}); nothing was kept.") from None
    except (OSError, urllib.error.URLError) as error:
        reason = getattr(error, "reason", None) or error
        raise UserError(
            f"Cannot download {url} ({reason}); on a machine with internet fetch that file and put it at {path}, or "
            f"pass --from FILE."
        ) from None
    return path


AKAMASTER_MEAN = (0.485, 0.456, 0.406)
AKAMASTER_STD = (0.229, 0.224, 0.225)


def import_config(model_name, dataset, checkpoint):
    """The configuration of a teacher run imported from an akamaster checkpoint."""
    check_model(model_name)
    data.check_name(dataset)
    return {
        "kind": "teacher",
        "model": model_name,
        "dataset": dataset,
        "source": "import",
        "checkpoint": str(Path(checkpoint).resolve()),
        "normalization": {"mean": list(AKAMASTER_MEAN), "std": list(AKAMASTER_STD)},
    }


def import_akamaster(model_name, checkpoint, dataset):
    """A Keras teacher holding the weights of an akamaster/pytorch_resnet_cifar10 checkpoint file."""
    import pickle

    import keras
    import numpy as np
    import torch

    import models

    check_model(model_name)
    try:
        # weights_only: tensors and plain containers only, never code (a checkpoint may come from anywhere).
        with warnings.catch_warnings():  # torch warns before it refuses a plain pickle: the error says it all
            warnings.simplefilter("ignore")
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v.numpy() for k, v in saved["state_dict"].items()}
    except (
        OSError,
        RuntimeError,
        KeyError,
        TypeError,
        AttributeError,
        ValueError,
        EOFError,
        pickle.UnpicklingError,
    ):
        # PyTorch's own message runs to several lines and suggests weights_only=False, unsafe on an unknown file.
        raise UserError(
            f"{checkpoint} is not a PyTorch checkpoint holding a state_dict; expected an akamaster .th file."
        ) from None
    if dataset.image_shape[-1] != 3 or dataset.num_classes != 10:
        raise UserError(
            f"The checkpoint is a 3-channel, 10-class CIFAR model but {dataset.name} has "
            f"{dataset.image_shape[-1]} channels and {dataset.num_classes} classes."
        )
    model = models.build_teacher(
        model_name, input_shape=dataset.image_shape, num_classes=10, mean=AKAMASTER_MEAN, std=AKAMASTER_STD
    )
    assigned = set()

    def take(key):
        if key not in state:
            raise UserError(f"The checkpoint {checkpoint} has no {key}; is it really a {model_name}?")
        assigned.add(key)
        return state[key]

    for layer, source in _akamaster_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            weights = [take(f"{source}.weight").transpose(2, 3, 1, 0)]
        elif isinstance(layer, models.BatchNorm):
            weights = [take(f"{source}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]
        else:  # the dense head
            weights = [take(f"{source}.weight").T, take(f"{source}.bias")]
        for variable, value in zip(layer.weights, weights):
            if tuple(variable.shape) != value.shape:
                raise UserError(
                    f"The checkpoint's {source} has shape {value.shape}, {model_name} needs {tuple(variable.shape)}; "
                    f"is it really a {model_name}?"
                )
            variable.assign(np.asarray(value, dtype=np.float32))
    unused = [k for k in state if k not in assigned and not k.endswith("num_batches_tracked")]
    if unused:
        raise UserError(f"The checkpoint {checkpoint} has weights {model_name} lacks ({unused[0]}, ...).")
    return model


def _akamaster_layers(model):
    """(layer, akamaster module name) of every layer with weights: stem_conv -> conv1,
    stage1_block0.bn2 -> layer1.0.bn2."""
    import models

    for layer in model.layers:
        if isinstance(layer, models.BasicBlock):
            stage, block = layer.name.removeprefix("stage").split("_block")
            for part in ("conv1", "bn1", "conv2", "bn2"):
                yield getattr(layer, part), f"layer{stage}.{block}.{part}"
        elif layer.name in AKAMASTER_NAMES:
            yield layer, AKAMASTER_NAMES[layer.name]


AKAMASTER_NAMES = {"stem_conv": "conv1", "stem_bn": "bn1", "logits": "linear"}


def import_run(folder, config, model, dataset, *, device, wait=None):
    """Saves an imported teacher (`import_akamaster`) of `config` into the run folder `folder`, evaluated on
    `dataset`, holding the folder's lock (`runs.writing`); returns its metrics."""
    import numpy as np

    from nodekd_cli import training

    with runs.writing(folder, {**config, **runs.circumstances(device)}, wait=wait) as state:
        if state == "finished":
            return runs.read_json(Path(folder) / runs.METRICS)
        result = training.evaluate(model, dataset.x_test, dataset.y_test)
        runs.save_model(folder, model)
        metrics = {
            "test_accuracy": result["accuracy"],
            "test_loss": result["loss"],
            "test_images": len(dataset.y_test),
            "params": training.count_params(model),
            "epochs": 0,
            "train_seconds": 0.0,
            "test_correct": runs.correct_bits(result["logits"].argmax(1) == np.asarray(dataset.y_test)),
            **fingerprints.of_model(Path(folder) / runs.MODEL),
        }
        runs.write_json(Path(folder) / runs.METRICS, metrics)
    return metrics
