"""`nodekd data prepare`: fetch or convert a data set once, e.g. on a login node that has internet."""

from typing import Annotated

import typer

from nodekd_cli import options, output
from nodekd_cli.commands._common import friendly_errors
from nodekd_cli.data import dataset_names

app = typer.Typer(help="Prepare data sets.", no_args_is_help=True)


@app.command(epilog="Example: nodekd data prepare cifar10 (on a login node with internet, before the jobs)")
@friendly_errors
def prepare(
    dataset: Annotated[str, typer.Argument(help=", ".join(dataset_names()) + ".")],
    data_dir: options.DataDir = None,
    manual_dir: options.ManualDir = None,
):
    """Prepare a data set's uint8 cache (CIFAR-10, SVHN) and show what it holds."""
    from nodekd_cli.data import check_name, load_dataset, tfds

    with output.console.status(f"Preparing {dataset}..."):
        data = load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)
    cache = tfds.cache_path(dataset, data_dir) if check_name(dataset) in tfds.TFDS_NAMES else None
    output.dataset_summary(data, cache)
