"""Plumbing the commands share: errors as one line and an exit status, finished runs, data loading, progress and
Ctrl-C."""

import functools

import typer

from nodekd_cli import output
from nodekd_cli.errors import UserError


def friendly_errors(command):
    """Wraps a Typer command: a `UserError` or a file-system error prints one sentence to stderr and exits with
    status 1; an interruption says so and exits with 130 (`nodekd_cli.errors` lists the statuses)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            _refuse_infinite_numbers(command, kwargs)
            return command(*args, **kwargs)
        except UserError as error:
            output.error(str(error))
            raise typer.Exit(1) from None
        except BrokenPipeError:  # the reader stopped reading (`nodekd report | head -1`): end quietly
            _quiet_stdout()
            raise typer.Exit(0) from None
        except OSError as error:  # a file system the user can fix: read-only, full, a file where a folder belongs
            from nodekd_cli.runs import file_error

            output.error(str(file_error(error, action="use")))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            output.error("Interrupted; every finished result is saved.")
            raise typer.Exit(130) from None

    return wrapper


def _quiet_stdout():
    """Points stdout at /dev/null, so that Python's flush at exit meets no closed pipe again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _refuse_infinite_numbers(command, given):
    """Every number option given to `command` must be finite (Typer reads "inf" and "nan" as numbers): a `UserError`
    naming the first that is not, before anything is made or trained."""
    import inspect
    import math

    parameters = inspect.signature(command, eval_str=True).parameters
    for name, value in given.items():
        if isinstance(value, float) and not math.isfinite(value):
            parameter = parameters.get(name)
            # In `Annotated[float, typer.Option("--T", ...)]` the first flag is the OptionInfo's `default`.
            declared = [
                flag
                for info in getattr(getattr(parameter, "annotation", None), "__metadata__", ())
                for flag in (getattr(info, "default", None), *(getattr(info, "param_decls", None) or ()))
                if isinstance(flag, str) and flag.startswith("--")
            ]
            option = declared[0] if declared else "--" + name.replace("_", "-")
            raise UserError(f"{option} must be a finite number; got {value}.")


def show_if_finished(folder, config, title):
    """Shows the finished run of this configuration in `folder`, if there is one (then there is nothing to do)."""
    from nodekd_cli import runs

    if runs.run_state(folder, config) != "finished":
        return False
    output.info(f"{folder} already holds this finished run; nothing to do.")
    found = runs.read_run(folder)
    output.run_summary(title, folder, found.config, found.metrics)
    return True


def load_data(dataset, data_dir, manual_dir):
    from nodekd_cli.data import load_dataset

    with output.console.status(f"Loading {dataset}..."):
        found = load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)
    if found.skipped:
        output.warning(f"Skipped {found.skipped} files of {dataset} that are no .png or .jpg images (hidden ones too).")
    return found


def train_in_folder(folder, config, title, label, place, train):
    """What every training command does: nothing when `folder` holds the finished run of `config`; else it loads the
    data set (`place`: its name, data_dir, manual_dir; before the folder is made, so that a data error leaves nothing
    behind) and runs `train(data, reporter)` under a progress bar named `label`, then shows the run under `title`."""
    if show_if_finished(folder, config, title):
        return
    data = load_data(*place)
    metrics = train_with_progress(folder, label, lambda reporter: train(data, reporter))
    output.run_summary(title, folder, config, metrics)


def train_with_progress(folder, title, train):
    """Runs `train(reporter)` under a per-epoch progress bar; Ctrl-C says how to resume and exits with 130."""
    progress = output.EpochProgress(title)
    try:
        with progress:
            return train(progress)
    except KeyboardInterrupt:
        output.error(f"Interrupted; run the same command again to resume {folder} from its last completed epoch.")
        raise typer.Exit(130) from None


def waiting(owner):
    """What `--wait` shows while another process holds the run folder's lock."""
    output.info(f"Waiting for process {owner.get('pid', '?')} on {owner.get('host', '?')} to finish writing...")
