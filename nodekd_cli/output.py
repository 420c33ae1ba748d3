"""Everything nodekd shows a person: rich tables, progress bars, messages. Commands compute; this renders.

Into a terminal, output fits the terminal's width. Into a file or a pipe (a cluster job's log), every line is whole:
no text is wrapped and tables take their natural width, one row a line, unless COLUMNS asks for a width; progress
bars give way to one line per finished epoch or step.
"""

import os

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

LOG_WIDTH = 100_000  # "no wrapping": wider than any line nodekd writes


class _Console(Console):
    """A rich console that, writing to a file or a pipe with no COLUMNS set, is as wide as `LOG_WIDTH`."""

    @property
    def size(self):
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            return ConsoleDimensions(LOG_WIDTH, super().size.height)
        return super().size

    @size.setter
    def size(self, new_size):
        Console.size.fset(self, new_size)

    def on_broken_pipe(self):
        """The reader stopped reading (`nodekd report | head -1`): the command ends quietly, with status 0."""
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0)


console = _Console()
error_console = _Console(stderr=True)


def error(message):
    error_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)


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
            test_nfe = f" (test {row['test_nfe']:.1f})" if row.get("test_nfe") is not None else ""
            nfe = f"  NFE {_nfe(row['train_nfe'], row.get('train_nfe_backward'))}{test_nfe}"
        scored = row.get("test_accuracy") is not None  # --eval-every leaves some epochs unscored
        tested = f"test {percent(row['test_accuracy'])}%" if scored else "test not scored"
        self.progress.console.print(
            f"epoch {row['epoch']:>3}/{self.epochs}  loss {row['train_loss']:.4f}  "
            f"train {percent(row['train_accuracy'])}%  {tested}  "
            f"lr {row['lr']:.4g}{nfe}  {row['seconds']:.1f}s",
            highlight=False,
            soft_wrap=not self.progress.console.is_terminal,  # a log keeps each epoch's line whole
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
    keys += ("epochs", "batch_size", "lr", "weight_decay", "seed", "source", "precision")
    for key in keys:
        if config.get(key) is not None:
            table.add_row(key.replace("_", " "), str(config[key]))
    if config.get("dynamics"):
        table.add_row("dynamics", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in config["dynamics"].items()))
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


def _titled(title, table):
    """`table` under `title` on a line of its own: a table's own title wraps at the table's width, which in a log
    breaks a run's path over several lines."""
    console.print(title, style="table.title", highlight=False)
    console.print(table)


def attack_table(folder, title, result, reused):
    table = Table()
    table.add_column("eps (/255)", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("accuracy (%)", justify="right")
    for e, steps, accuracy in zip(result["eps"], result["steps"], result["accuracy"]):
        table.add_row(str(e), str(steps), percent(accuracy))
    _titled(f"{title} on {folder} ({result['n']:,} test images){' (reused)' if reused else ''}", table)


def autoattack_table(folder, result, reused):
    settings = result["settings"]
    title = f"AutoAttack ({settings['version']}) at eps {result['eps'][-1]}/255 on {folder}, {result['n']} images"
    table = Table()
    table.add_column("after")
    table.add_column("robust accuracy", justify="right")
    table.add_row("no attack (clean)", percent(result["accuracy"][0]))
    for component in result["components"]:
        table.add_row(component["component"], percent(component["robust_accuracy"]))
    _titled(title + (" (saved result)" if reused else ""), table)
    info(f"Worst case per image: {percent(result['accuracy'][-1])}%; saved in {folder}/attacks/autoattack.json")


def check_table(folder, result):
    from nodekd_cli.checks import failed, informative

    verdict = "[bold red]possible gradient masking[/]" if result["masking"] else "[green]no sign of masking[/]"
    if not result["masking"] and failed(result, "reference"):
        verdict += " [yellow](but APGD-CE is far stronger than the paper's PGD at this eps)[/]"
    if not result["masking"] and not informative(result):
        verdict = (
            "[yellow]not informative[/] (the reference PGD leaves under 5%: every check passes whatever the model)"
        )
    table = Table()
    for column in ("check", "accuracy (%)", "PGD reference (%)", "must be", "result"):
        table.add_column(column, justify="left" if column in ("check", "must be") else "right")
    for check in result["checks"]:
        outcome = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "skipped"}[check["passed"]]
        table.add_row(check["check"], percent(check["accuracy"]), percent(check["reference"]), check["rule"], outcome)
    _titled(f"Robustness checks on {folder}, eps {result['eps']}/255, {result['n']} images: {verdict}", table)
    if result.get("eps_rule") not in (None, "given"):
        info(f"eps {result['eps']}/255 {result['eps_rule']}")


def warning(message):
    error_console.print(f"[yellow]{escape(message)}[/]", highlight=False, soft_wrap=True)


def skipped(path, reason):
    """A folder the report skipped, and why."""
    warning(f"Skipped {path}: {reason}.")


def plain(text):
    """Text for other programs (JSON, Markdown): printed as is, without rich's wrapping or markup."""
    import sys

    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _report_cell(cell):
    if cell.value is None:
        ours = "[dim]-[/]"
    else:
        ours = f"[bold]{cell.value:.2f}[/]" + (f" [dim]x{len(cell.values)}[/]" if len(cell.values) > 1 else "")
    if cell.paper is None:
        return ours
    difference = "" if cell.difference is None else f" {cell.difference:+.2f}"
    return f"{ours}\n[dim]paper {cell.paper:.2f}{difference}[/]"


def report(report):
    """The paper's tables beside the paper's numbers, the figure files, the run table and what is missing."""
    from nodekd_cli.report import run_rows
    from nodekd_cli.report.text import CLAIMS_NOTE, comparison_text

    info(
        f"[dim]Runs under {report.root}; each cell: this project's value (xN: mean of N runs), below it the paper's "
        f"and the difference.[/]"
    )
    for table in report.tables:
        rich_table = _paper_table(table)
        if _natural_width(rich_table) > console.width:
            # Too wide for the terminal (Table 1 has 7 value columns): one row per column instead.
            transposed = _paper_table(table, transpose=True)
            rich_table = transposed if _natural_width(transposed) <= console.width else rich_table
        console.print(rich_table)
        for note in table.notes:
            info(f"[dim]{note}[/]")
    rows = run_rows(report)
    console.print(_runs_table(report, rows, wide=console.width >= RUNS_TABLE_WIDTH))
    if console.width < RUNS_TABLE_WIDTH:
        info(
            f"[dim]Data set, lambda, dynamics, solver, parameters and training time: a terminal of {RUNS_TABLE_WIDTH}"
            " columns, or --format json or csv.[/]"
        )
    if report.comparisons:
        info("What the runs show:")
        for comparison in report.comparisons:
            console.print(f"  {comparison_text(comparison)}", highlight=False, markup=False, soft_wrap=True)
    if report.missing:
        info("To fill the empty cells:")
        for command in report.missing:
            console.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)
    if report.figures:
        info("Figure 1 (accuracy against eps): " + ", ".join(str(f) for f in report.figures))
    else:
        info("Figure 1: no attack results yet (nodekd attack pgd, nodekd attack mifgsm).")
    if report.curve_figures:
        info("Learning curves (test accuracy against images seen): " + ", ".join(map(str, report.curve_figures)))
    if report.claims:
        title = "The paper's claims, as these runs judge them"
        claims_table = Table(title=title, title_justify="left", show_lines=True)
        for column in ("data set", "claim", "verdict", "students", "budget", "evidence"):
            claims_table.add_column(column, overflow="fold")
        colour = {"supported": "green", "contradicted": "bold red"}
        for claim in report.claims:
            verdict = f"[{colour.get(claim.verdict, 'yellow')}]{escape(claim.verdict)}[/]"
            row = (claim.dataset, claim.statement, verdict, claim.convergence, claim.budget or "-")
            claims_table.add_row(*row, claim.summary)
        console.print(claims_table)
        info(f"[dim]{escape(CLAIMS_NOTE)} --format markdown lists the evidence.[/]")


RUNS_TABLE_WIDTH = 160  # below it the run table keeps its main columns


def _natural_width(renderable):
    """The width `renderable` takes without wrapping (`console.measure` stops at the terminal's)."""
    return console.measure(renderable, options=console.options.update(max_width=10_000)).maximum


def _paper_table(table, transpose=False):
    """One of the paper's tables as a rich table: rows (data set, ...) by columns, or, transposed, a row per column."""
    from nodekd_cli.report.tables import row_label

    rich_table = Table(title=table.title, title_justify="left", show_lines=True)
    if transpose:
        rich_table.add_column("", overflow="fold")
        for row in table.rows:
            names = [f"{n}={v}" if n != "dataset" else v for n, v in zip(table.row_fields, row_label(table, row))]
            rich_table.add_column(" ".join(names), justify="right", overflow="fold")
        for column, label in table.columns:
            rich_table.add_row(label, *(_report_cell(table.cells[row, column]) for row in table.rows))
        return rich_table
    for name in table.row_fields:
        rich_table.add_column({"dataset": "data set"}.get(name, name), overflow="fold")
    for _, label in table.columns:
        rich_table.add_column(label, justify="right", overflow="fold")
    for row in table.rows:
        cells = [_report_cell(table.cells[row, column]) for column, _ in table.columns]
        rich_table.add_row(*row_label(table, row), *cells)
    return rich_table


def _runs_table(report, rows, wide):
    """The run table: every column when `wide`, else the run, what it is, its accuracy, NFE, attacks and check."""
    from nodekd_cli.report.runs_table import run_name
    from nodekd_cli.report.text import attack_names, plain_number

    runs_table = Table(title="Runs", title_justify="left")
    numbers = ("params", "acc. (%)", "NFE", "train time")
    columns = ["run", "model"] + (["data set"] if wide else []) + ["t1", "T"]
    columns += ["lambda", "dynamics", "solver", "params"] if wide else []
    columns += ["acc. (%)", "NFE"] + (["train time"] if wide else []) + ["learning", "attacks / check"]
    for column in columns:
        # Long run names fold onto a second line rather than lose their end.
        runs_table.add_column(column, justify="right" if column in numbers else "left", overflow="fold")
    checks = {None: "", "passed": " / [green]check passed[/]", "possible masking": " / [bold red]masking?[/]"}
    checks["not informative"] = " / [yellow]check not informative[/]"
    checks["reference too weak"] = " / [yellow]PGD too weak[/]"
    for row in rows:
        seconds = row["train_seconds"]
        model = row["model"] if row["kind"] == "teacher" else f"NODE ({row['teacher']})" if row["teacher"] else "NODE"
        if row.get("teacher_check") == "changed since":
            model += " [bold red]teacher changed since[/]"
        resumed = f"\n[dim]{escape(row['resumed_with'])}[/]" if row["resumed_with"] else ""
        values = {
            "run": escape(run_name(report, row["folder"])) + resumed,
            "model": model,
            "data set": row["dataset"],
            "t1": plain_number(row["t1"]),
            "T": plain_number(row["T"]),
            "lambda": plain_number(row["lambda"]),
            "dynamics": row["dynamics"] or "-",
            "solver": row["solver"] or "-",
            "params": "-" if row["params"] is None else f"{row['params']:,}",
            "acc. (%)": f"{row['accuracy']:.2f}",
            "NFE": "-" if row["nfe"] is None else f"{row['nfe']:.1f}",
            "train time": "-" if seconds is None else f"{seconds:.0f} s",
            "learning": _learning(row["convergence"]),
            "attacks / check": (attack_names(row["attacks"]) or "-") + checks[row["check"]],
        }
        runs_table.add_row(*(values[column] for column in columns))
    return runs_table


def _learning(text):
    """The run table's learning cell: the gain over the half-budget twin."""
    return "-" if text is None else escape(text)


def _duration(seconds):
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


STATE_STYLES = {"done": "[green]done[/]", "resume": "[yellow]resume[/]", "todo": "to do"}


def study_plan(title, steps, states, costs, device):
    """The steps of a study (`--dry-run`): what each does, whether it is done, and a rough cost."""
    table = Table(title=title, title_justify="left")
    for column in ("#", "step", "run folder", "what", "state", f"estimate ({device})"):
        table.add_column(column, justify="right" if column in ("#", f"estimate ({device})") else "left")
    for index, step in enumerate(steps, 1):
        state = states[step.name]
        shown = STATE_STYLES.get(state, f"[bold red]{state}[/]")
        cost = "-" if state == "done" else _duration(costs.get(step.name))
        table.add_row(str(index), step.kind, str(step.folder), _step_summary(step), shown, cost)
    console.print(table)
    left = [costs.get(s.name) or 0 for s in steps if states[s.name] != "done"]
    done = sum(states[s.name] == "done" for s in steps)
    info(f"{done} of {len(steps)} steps done; the rest: roughly {_duration(sum(left))} on {device} (a rough guess).")


def _step_summary(step):
    config = step.config
    if step.kind == "teacher":
        return f"train {config['model']} on {config['dataset']}, {config['epochs']} epochs"
    if step.kind == "import":
        return f"import {config['model']} from {step.checkpoint.name}"
    if step.kind == "student":
        what = f"T {config['T']:g} from {config['teacher_model']}" if config["teacher"] else "no distillation"
        return f"NODE t1 {config['t1']:g}, {what}, {config['epochs']} epochs"
    images = "all" if step.images is None else step.images
    if step.kind == "check":
        return f"robustness checks at the eps PGD halves, {images} images"
    sweep = "" if step.sweep == "independent" else f", {step.sweep} sweep"
    return f"{step.attack} eps {step.eps[0]}..{step.eps[-1]}/255, {images} images{sweep}"


class StudyProgress:
    """A bar over the study's steps and one for the current step; a line per step that ends."""

    def __init__(self, steps):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.study = self.progress.add_task("study", total=len(steps), detail="")
        self.current = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def start(self, step):
        self.current[step.name] = self.progress.add_task(step.name, total=None, detail="")
        if not console.is_terminal:  # a log: a line when a step starts, as when it ends
            console.print(f"started {step.name}", highlight=False)

    def end(self, outcome):
        step = outcome.step
        if step.name in self.current:
            self.progress.remove_task(self.current.pop(step.name))
        self.progress.advance(self.study)
        if outcome.status == "done":
            return
        if outcome.status == "finished":
            self.progress.console.print(
                f"[green]finished[/] {step.name}: {_outcome_summary(outcome.summary)} ({_duration(outcome.seconds)})",
                highlight=False,
            )
        else:
            self.progress.console.print(
                f"[bold red]{outcome.status}[/] {step.name}: {outcome.message}", highlight=False
            )

    def reporter(self, step):
        """Per-epoch progress of a training step (the protocol of `training.fit_run`)."""
        progress, task = self.progress, self.current.get(step.name)

        class Reporter:
            def start(self, epochs, initial_epoch):
                self.epochs = epochs
                progress.update(task, total=epochs, completed=initial_epoch)

            def epoch_start(self, epoch, steps):
                pass

            def batch_end(self, step, logs, lr):
                progress.update(task, detail=f"loss {logs.get('loss', float('nan')):.3f}")

            def epoch_end(self, row):
                progress.update(task, completed=row["epoch"], detail=f"test {percent(row['test_accuracy'])}%")

        return Reporter()

    def attack_progress(self, step):
        progress, task = self.progress, self.current.get(step.name)

        def update(e, left=None, seconds=None):
            detail = f"eps {e}/255, {left} images left" if left is not None else str(e)
            progress.update(task, detail=detail)

        return update


def _outcome_summary(summary):
    if "masking" in summary:
        return "possible gradient masking" if summary["masking"] else "no sign of masking"
    if "eps" in summary:
        return f"accuracy {percent(summary['accuracy'][0])}% at eps {summary['eps'][0]}, " + (
            f"{percent(summary['accuracy'][-1])}% at {summary['eps'][-1]}/255"
        )
    nfe = f", test NFE {summary['nfe']:.1f}" if summary.get("nfe") else ""
    return f"test accuracy {percent(summary['accuracy'])}%{nfe}"


def study_summary(outcomes):
    counts = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    words = {"finished": "ran now", "done": "done before", "failed": "failed", "blocked": "blocked by a failure"}
    info("Study: " + ", ".join(f"{counts[k]} {words[k]}" for k in words if counts.get(k)) + ".")
    for outcome in outcomes:
        if outcome.status in ("failed", "blocked"):
            error(f"{outcome.step.name}: {outcome.message}")
