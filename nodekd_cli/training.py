"""Training and evaluating classifiers into run folders: the loop every nodekd trainer shares.

Training goes through `keras.Model.fit` with device-resident batches (`data.device.TrainBatches`). After each
epoch a callback evaluates the test split (after every `eval_every`-th epoch and the last), appends a row to
`history.csv` and writes `checkpoint.h5`, so a run killed mid-epoch resumes from its last completed epoch with a
continuous history.
"""

import io
import re
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import torch

from models import PRECISIONS
from models.ode import SolverError, ode_blocks
from nodekd_cli import backend, files, fingerprints, interrupts, runs
from nodekd_cli.data.device import TrainBatches, pixels, to_device
from nodekd_cli.errors import UserError


def check_precision(precision):
    """`precision` must be one of `models.PRECISIONS` (Keras dtype policies)."""
    if precision not in PRECISIONS:
        raise UserError(f"Unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}.")


def evaluate(model, x_uint8, y, batch_size=512):
    """Test loss, accuracy, logits and (for Neural ODEs) the mean forward NFE per batch of `model` in inference
    mode on uint8 images, batched on Keras's device."""
    device = backend.keras_device()
    blocks = ode_blocks(model)
    logits, nfe = [], []
    with torch.no_grad():
        for start in range(0, len(x_uint8), batch_size):
            batch = pixels(to_device(x_uint8[start : start + batch_size], device))
            logits.append(model(batch, training=False).float())
            nfe.append(sum(block.nfe_forward for block in blocks))
    logits = torch.cat(logits)
    labels = to_device(y, device)
    result = {
        "loss": torch.nn.functional.cross_entropy(logits, labels).item(),
        "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        "logits": logits.cpu().numpy(),
    }
    if blocks:
        result["nfe"] = float(np.mean(nfe))
    return result


def count_params(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def save_checkpoint(path, model, optimizer, epoch):
    """Weights and optimizer state after `epoch` completed epochs, built in memory and written atomically: a full
    disk leaves the last checkpoint as it was and fails in one sentence (`files.DiskFull`), never inside h5py."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.attrs["epoch"] = epoch
        for group_name, variables in (("model", model.weights), ("optimizer", optimizer.variables)):
            group = file.create_group(group_name)
            for index, variable in enumerate(variables):
                group.create_dataset(str(index), data=keras.ops.convert_to_numpy(variable))
    files.write_bytes(path, buffer.getvalue())


def load_checkpoint(path, model, optimizer):
    """Restores `save_checkpoint`'s state; returns the number of completed epochs."""
    try:
        with h5py.File(path, "r") as file:
            for group_name, variables in (("model", model.weights), ("optimizer", optimizer.variables)):
                group = file[group_name]
                if len(group) != len(variables):
                    raise ValueError(f"{len(group)} {group_name} variables saved, {len(variables)} expected")
                for index, variable in enumerate(variables):
                    value = group[str(index)][()]
                    if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.isfinite(value).all():
                        raise ValueError(f"{group_name} variable {index} holds NaN or infinite values")
                    variable.assign(value)
            return int(file.attrs["epoch"])
    except (OSError, KeyError, ValueError) as error:
        raise UserError(f"The checkpoint {path} is unreadable ({error}); delete it to start the run again.") from None


class _RunCallback(keras.callbacks.Callback):
    """Per epoch: seeds the batches, evaluates, writes history and checkpoint, and reports progress."""

    def __init__(
        self, folder, batches, dataset, train_step, history, reporter, eval_batch_size, changes="", *, every, epochs
    ):
        super().__init__()
        self.eval_every, self.epochs = every, epochs  # score the test split after every `every`-th epoch and the last
        self.folder, self.batches, self.dataset, self.train_step = Path(folder), batches, dataset, train_step
        self.history, self.reporter, self.eval_batch_size = history, reporter, eval_batch_size
        self.report_every = max(1, len(batches) // 50)
        self.epoch = None
        self.changes = changes  # settings changed on resuming: noted in the next epoch's row
        self.correct = None  # the last evaluation's test images classified right

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.batches.set_epoch(epoch)
        if self.train_step is not None:
            self.train_step.reset_metrics()
        self.epoch_lr = self.learning_rate()
        self.started = time.perf_counter()
        if self.reporter:
            self.reporter.epoch_start(epoch + 1, len(self.batches))

    def on_train_batch_end(self, batch, logs=None):
        interrupts.check()
        if self.reporter and ((batch + 1) % self.report_every == 0 or batch + 1 == len(self.batches)):
            values = {k: float(v) for k, v in (logs or {}).items()}
            self.reporter.batch_end(batch + 1, values, self.learning_rate())

    def learning_rate(self):
        """The learning rate of the next step, rounded off float noise."""
        if self.train_step is not None:
            lr = self.train_step.learning_rate()
        else:
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        return float(f"{lr:.6g}")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        train = {k: float(v) for k, v in logs.items()}
        if not np.isfinite(train["loss"]):
            raise UserError(
                f"Epoch {epoch + 1}: the training loss became {train['loss']}; lower --lr and run the command again "
                f"(it resumes from the last completed epoch)."
            )
        if (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs:
            test = evaluate(self.model, self.dataset.x_test, self.dataset.y_test, self.eval_batch_size)
            self.correct = test["logits"].argmax(1) == np.asarray(self.dataset.y_test)
        else:  # not scored: the columns stay, empty (evaluating touches no weight and no random state)
            test = dict.fromkeys(("loss", "accuracy", *(("nfe",) if ode_blocks(self.model) else ())))
            self.correct = None
        row = {"epoch": epoch + 1, "lr": self.epoch_lr, **{f"train_{k}": v for k, v in train.items()}}
        row.update({f"test_{k}": v for k, v in test.items() if k != "logits"})
        row["seconds"] = seconds
        if self.changes:
            row["changes"], self.changes = self.changes, ""
        self.history.append(row)
        runs.write_history(self.folder / runs.HISTORY, self.history)
        save_checkpoint(self.folder / runs.CHECKPOINT, self.model, self.model.optimizer, epoch + 1)
        if self.reporter:
            self.reporter.epoch_end(row)


def _solver_failure(error, model):
    """What the solver said (Keras wraps it in a longer message) and the setting to change. The options and soft
    targets are checked to be finite before training, so weights that are not finite mean the training diverged (a
    learning rate too high); finite weights with a vanishing step mean stiff dynamics (tolerances or solver)."""
    found = re.search(r"(max_num_steps exceeded|underflow in dt)[^\n\x1b]*", str(error))
    reason = found.group(0) if found else str(error).splitlines()[0]
    weights = (keras.ops.convert_to_numpy(w) for w in model.trainable_weights)
    if not all(np.isfinite(w).all() for w in weights):
        return f"{reason}: the weights became NaN or infinite, the training diverged", "lower --lr"
    if "max_num_steps" in reason:
        return reason, "raise --max-num-steps, or loosen --rtol/--atol"
    return reason, "loosen --rtol/--atol, or use a fixed-step --method such as rk4, or lower --lr"


def fit_run(folder, model, dataset, config, train_step, export, reporter=None, extra=None, eval_every=1):
    """Trains a compiled `model` on `dataset` into the run folder `folder`, resuming a checkpoint there.

    `config` supplies epochs, batch_size, seed, crop_padding, flip. `train_step` is the model's installed train step
    (see `nodekd_cli.train_step`; `None` when the model's own `train_step` and optimizer do the work); the training
    state lives in `model.optimizer`'s variables, which checkpoints save. `extra` (per training example) travels
    with each batch. The test split is scored after every `eval_every`-th epoch and the last. `export(model)` returns
    a fresh, uncompiled inference model holding the trained weights; it is saved as `model.keras`, so the artifact
    carries no optimizer or training-only objects. Returns the metrics written to metrics.json: the last epoch's test
    metrics, parameters, epochs and training time.
    """
    folder = Path(folder)
    device = backend.keras_device()
    batches = TrainBatches(
        to_device(dataset.x_train, device),
        to_device(dataset.y_train, device),
        config["batch_size"],
        seed=config["seed"],
        crop_padding=config["crop_padding"],
        flip=config["flip"],
        extra=None if extra is None else to_device(extra, device),
    )
    model.optimizer.build(model.trainable_variables)
    initial_epoch, history = _resume(folder, model)
    callback = _RunCallback(
        folder,
        batches,
        dataset,
        train_step,
        history,
        reporter,
        max(config["batch_size"], 256),
        changes=runs.changes_after(folder, initial_epoch) if initial_epoch else "",
        every=eval_every,
        epochs=config["epochs"],
    )
    if reporter:
        reporter.start(config["epochs"], initial_epoch)
    if initial_epoch < config["epochs"]:
        try:
            # shuffle=False: the batches are already shuffled, by a generator a resumed run can reproduce.
            model.fit(
                batches,
                epochs=config["epochs"],
                initial_epoch=initial_epoch,
                callbacks=[callback],
                shuffle=False,
                verbose=0,
            )
        except SolverError as error:
            reason, advice = _solver_failure(error, model)
            raise UserError(
                f"Epoch {callback.epoch}: the ODE solver failed ({reason}); {advice}, and run the command again (it "
                f"resumes from the last completed epoch)."
            ) from None
    final = export(model)
    runs.save_model(folder, final)
    return _finish(folder, final, dataset, history, callback)


def _resume(folder, model):
    """(epochs done, their history rows) of the run in `folder`: its checkpoint loaded into `model` and its
    optimizer, or (0, []) for a new run."""
    if not (folder / runs.CHECKPOINT).exists():
        return 0, []
    initial_epoch = load_checkpoint(folder / runs.CHECKPOINT, model, model.optimizer)
    history = runs.read_history(folder / runs.HISTORY)
    history = [row for row in history if isinstance(row.get("epoch"), int) and row["epoch"] <= initial_epoch]
    if [row["epoch"] for row in history] != list(range(1, initial_epoch + 1)):
        raise UserError(
            f"{folder / runs.HISTORY} does not hold the {initial_epoch} epochs its checkpoint was saved after; "
            f"remove {folder} and run the command again."
        )
    return initial_epoch, history


def _finish(folder, final, dataset, history, callback):
    """Writes the finished run's metrics.json (the last epoch's test metrics, parameters, epochs, training time and
    which test images it gets right), removes its checkpoint and returns the metrics."""
    metrics = {key: value for key, value in history[-1].items() if key.startswith("test_")}
    correct = callback.correct
    if correct is None:  # resumed after its last epoch: the images it classifies right, from the finished model
        correct = evaluate(final, dataset.x_test, dataset.y_test, callback.eval_batch_size)["logits"].argmax(1)
        correct = correct == np.asarray(dataset.y_test)
    metrics.update(
        {
            **fingerprints.of_model(folder / runs.MODEL),  # what its students' fingerprints name
            "params": count_params(final),
            "test_images": len(dataset.y_test),
            "epochs": len(history),
            "train_seconds": sum(row["seconds"] for row in history),
            "test_correct": runs.correct_bits(correct),
        }
    )
    runs.write_json(folder / runs.METRICS, metrics)
    (folder / runs.CHECKPOINT).unlink(missing_ok=True)
    return metrics
