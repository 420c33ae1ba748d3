"""Everything nodekd shows a person: rich tables, progress bars, messages. Commands compute; this renders."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
error_console = Console(stderr=True)


def error(message):
    error_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)


def info(message):
    console.print(message, highlight=False)


def percent(fraction):
    return "-" if fraction is None else f"{100 * fraction:.2f}"


class EpochProgress:
    """A rich progress bar per epoch showing loss, accuracy and learning rate; a line per finished epoch."""

    def __init__(self, title):
        self.title = title
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def start(self, epochs, initial_epoch):
        self.epochs = epochs
        if initial_epoch:
            info(f"Resuming {self.title} after epoch {initial_epoch} of {epochs}.")

    def epoch_start(self, epoch, steps):
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"epoch {epoch}/{self.epochs}", total=steps, metrics="")

    def batch_end(self, step, logs, lr):
        metrics = f"loss {logs.get('loss', float('nan')):.4f}  acc {percent(logs.get('accuracy'))}%  lr {lr:.4g}"
        if "nfe" in logs:
            metrics += f"  NFE {_nfe(logs['nfe'], logs.get('nfe_backward'))}"
        self.progress.update(self.task, completed=step, metrics=metrics)

    def epoch_end(self, row):
        nfe = ""
        if "train_nfe" in row:
            nfe = f"  NFE {_nfe(row['train_nfe'], row.get('train_nfe_backward'))} (test {row['test_nfe']:.1f})"
        self.progress.console.print(
            f"epoch {row['epoch']:>3}/{self.epochs}  loss {row['train_loss']:.4f}  "
            f"train {percent(row['train_accuracy'])}%  test {percent(row['test_accuracy'])}%  "
            f"lr {row['lr']:.4g}{nfe}  {row['seconds']:.1f}s",
            highlight=False,
        )


def _nfe(forward, backward=None):
    """Mean function evaluations per batch: forward, plus backward when the adjoint solves backwards."""
    return f"{forward:.1f}" + (f"+{backward:.1f}" if backward else "")


def run_summary(title, folder, config, metrics):
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run folder", str(folder))
    keys = ("model", "dataset", "teacher_model", "t1", "T", "lambda", "soft_targets", "optimizer", "channels")
    keys += ("epochs", "batch_size", "lr", "weight_decay", "seed", "source")
    for key in keys:
        if config.get(key) is not None:
            table.add_row(key.replace("_", " "), str(config[key]))
    if config.get("solver"):
        table.add_row("solver", ", ".join(f"{k} {v}" for k, v in config["solver"].items() if v is not None))
    table.add_row("parameters", f"{metrics['params']:,}")
    table.add_row("test accuracy", f"{percent(metrics['test_accuracy'])}%")
    if metrics.get("test_nfe") is not None:
        table.add_row("test NFE (forward, mean per batch)", f"{metrics['test_nfe']:.1f}")
    if metrics.get("train_seconds"):
        table.add_row("training time", f"{metrics['train_seconds']:.1f} s")
    console.print(table)


def accuracy_table(title, rows):
    """rows: (label, accuracy fraction, number of images)."""
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    table.add_column("data set")
    table.add_column("images", justify="right")
    table.add_column("test accuracy (%)", justify="right")
    for model, dataset, n, accuracy in rows:
        table.add_row(model, dataset, f"{n:,}", percent(accuracy))
    console.print(table)


def dataset_summary(data, cache=None):
    table = Table(title=f"Data set {data.name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("train images", f"{len(data.x_train):,}")
    table.add_row("test images", f"{len(data.x_test):,}")
    table.add_row("image shape", "x".join(str(s) for s in data.image_shape))
    table.add_row("classes", ", ".join(data.classes))
    if cache is not None:
        table.add_row("cache", str(cache))
    console.print(table)


def attack_table(folder, title, result, reused):
    table = Table(
        title=f"{title} on {folder} ({result['n']:,} test images){' (reused)' if reused else ''}", title_justify="left"
    )
    table.add_column("eps (/255)", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("accuracy (%)", justify="right")
    for e, steps, accuracy in zip(result["eps"], result["steps"], result["accuracy"]):
        table.add_row(str(e), str(steps), percent(accuracy))
    console.print(table)


def check_table(folder, result):
    verdict = "[bold red]possible gradient masking[/]" if result["masking"] else "[green]no sign of masking[/]"
    table = Table(
        title=f"Robustness checks on {folder}, eps {result['eps']}/255, {result['n']} images: {verdict}",
        title_justify="left",
    )
    for column in ("check", "accuracy (%)", "PGD reference (%)", "must be", "result"):
        table.add_column(column, justify="left" if column in ("check", "must be") else "right")
    for check in result["checks"]:
        outcome = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "skipped"}[check["passed"]]
        table.add_row(check["check"], percent(check["accuracy"]), percent(check["reference"]), check["rule"], outcome)
    console.print(table)
