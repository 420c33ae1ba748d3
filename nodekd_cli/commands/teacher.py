"""`nodekd teacher train | eval | import`: the paper's ResNet teachers."""

from pathlib import Path
from typing import Annotated

import typer

from nodekd_cli import options, output, runs
from nodekd_cli.commands._common import friendly_errors, load_data, show_if_finished, train_in_folder
from nodekd_cli.errors import UserError

app = typer.Typer(
    help="Train, evaluate or import the teachers: the paper's ResNets or a registered architecture.",
    no_args_is_help=True,
)


@app.command(epilog="Example: nodekd teacher train resnet32 --dataset svhn")
@friendly_errors
@options.taking(options.AUGMENTATION, options.SEED_AND_OUT, options.PLACE)
def train(
    model: options.TeacherName,
    dataset: options.Dataset = "digits",
    epochs: options.Epochs = None,
    batch_size: options.BatchSize = None,
    lr: Annotated[
        float | None, typer.Option(help="Initial learning rate (default: the architecture's: 0.1; resnet110 0.01).")
    ] = None,
    weight_decay: Annotated[float | None, typer.Option(help="L2 weight decay (default: 1e-4).")] = None,
    precision: options.Precision = "float32",
    cuda_graph: Annotated[
        bool | None,
        typer.Option(
            "--cuda-graph/--no-cuda-graph", help="Replay each train step as a CUDA graph (default: on with CUDA)."
        ),
    ] = None,
    **given,
):
    """Train a teacher with the paper's recipe (SGD, momentum 0.9, step schedule)."""
    from nodekd_cli import backend, teachers

    out, data_dir, manual_dir, wait = (given.pop(k) for k in ("out", "data_dir", "manual_dir", "wait"))
    device = backend.select(given.pop("device"))
    budget = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay}
    # `given` keeps --seed, --crop-padding and --flip
    config = teachers.teacher_config(model, dataset, **budget, precision=precision, **given)
    if cuda_graph and not device.startswith("cuda"):
        raise UserError(f"--cuda-graph needs a CUDA device; this run uses {device}.")
    cuda_graph = device.startswith("cuda") if cuda_graph is None else cuda_graph
    folder = Path(out) if out else runs.teacher_folder(model)

    def train(data, reporter):
        return teachers.train_run(
            folder, config, data, device=device, cuda_graph=cuda_graph, reporter=reporter, wait=wait
        )

    title, place = f"{model} on {dataset}", (dataset, data_dir, manual_dir)
    train_in_folder(folder, config, title, f"{model} in {folder}", place, train)


@app.command("eval", epilog="Example: nodekd teacher eval runs/resnet20-digits")
@friendly_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="A teacher run folder.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Another compatible data set (default: the run's).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Evaluation batch size.")] = 512,
    device: options.Device = "auto",
    data_dir: options.DataDir = None,
    manual_dir: options.ManualDir = None,
):
    """Test accuracy of a saved teacher."""
    from nodekd_cli import backend

    backend.select(device)  # before anything imports Keras, which fixes its device on import
    from nodekd_cli import teachers, training

    found, model = teachers.load(run)
    config = found.config
    dataset = dataset or config["dataset"]
    data = load_data(dataset, data_dir, manual_dir)
    expected = tuple(model.input_shape[1:])
    if data.image_shape != expected or data.num_classes != model.output_shape[-1]:
        raise UserError(
            f"{dataset} has {data.image_shape} images in {data.num_classes} classes but the teacher in {run} takes "
            f"{expected} images in {model.output_shape[-1]} classes."
        )
    accuracy = training.evaluate(model, data.x_test, data.y_test, batch_size)["accuracy"]
    output.accuracy_table(f"Teacher {run}", [(config["model"], dataset, len(data.y_test), accuracy)])


@app.command("import", epilog="Example: nodekd teacher import resnet20 --from akamaster --dataset cifar10")
@friendly_errors
@options.taking(options.PLACE)
def import_checkpoint(
    model: options.TeacherName,
    checkpoint: Annotated[
        Path,
        typer.Option(
            "--from",
            help="An akamaster/pytorch_resnet_cifar10 .th checkpoint, or akamaster: its released CIFAR-10 checkpoint "
            "of MODEL, downloaded once into torch.hub's cache with its hash checked.",
        ),
    ],
    dataset: options.Dataset = "cifar10",
    out: options.Out = None,
    **given,
):
    """Import a PyTorch CIFAR ResNet checkpoint as a teacher run, and evaluate it."""
    from nodekd_cli import backend, teachers

    if str(checkpoint) == teachers.AKAMASTER:
        teachers.check_model(model)
        checkpoint = teachers.fetch_akamaster(model)
    elif not checkpoint.is_file():
        raise UserError(f"The checkpoint {checkpoint} does not exist.")
    device, data_dir, manual_dir, wait = (given[k] for k in ("device", "data_dir", "manual_dir", "wait"))
    device = backend.select(device)
    folder = Path(out) if out else runs.teacher_folder(model)
    config = teachers.import_config(model, dataset, checkpoint)
    if show_if_finished(folder, config, f"{model} imported"):
        return
    data = load_data(dataset, data_dir, manual_dir)
    # Read and check the checkpoint before the folder is made: a mistake leaves nothing behind.
    imported = teachers.import_akamaster(model, checkpoint, data)
    with output.console.status(f"Evaluating {checkpoint.name}..."):
        metrics = teachers.import_run(folder, config, imported, data, device=device, wait=wait)
    output.run_summary(f"{model} imported from {checkpoint.name}", folder, config, metrics)
