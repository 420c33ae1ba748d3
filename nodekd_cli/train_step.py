"""The teachers' train step, written so that a CUDA graph can capture it and replay it.

`SGDTrainStep` replaces `keras.Model.train_step` (the way Keras documents custom training with the torch backend):
cross-entropy, backward, SGD with momentum and coupled L2 weight decay, the paper's step schedule, running loss and
accuracy. It works on the Keras model's variables and on the momentum and iteration variables of a Keras SGD
optimizer (so checkpoints hold them) with torch operations only: no value leaves the device and no host value is
copied in. On a GPU, `CudaGraphStep` can then record the whole step once and replay it, which takes Keras's
per-layer Python (about 11 ms of a 16 ms ResNet20 step on an H100, `bench/gpu.sh`) out of every later step.
"""

import warnings

import keras
import torch
import torch.nn.functional as F


def step_boundaries(epochs, steps_per_epoch):
    """The steps where the paper's schedule divides the learning rate by 10: at 1/2 and 3/4 of the epochs."""
    return (max(1, epochs // 2) * steps_per_epoch, max(1, epochs * 3 // 4) * steps_per_epoch)


def step_lr(iterations, lr, boundaries):
    """lr before boundaries[0] steps, lr / 10 before boundaries[1], lr / 100 after. `iterations` may be a tensor, and
    then so is the result, on its device, without a value leaving it (a CUDA graph can capture it)."""
    if isinstance(iterations, torch.Tensor):
        return torch.where(iterations < boundaries[0], lr, torch.where(iterations < boundaries[1], lr / 10, lr / 100))
    return lr if iterations < boundaries[0] else lr / 10 if iterations < boundaries[1] else lr / 100


class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's learning-rate schedule (`step_lr` at `step_boundaries`), the one place it is written: the students'
    Keras optimizers take it as their learning rate, and the teachers' `SGDTrainStep` applies its `lr` and
    `boundaries` with `step_lr` on its own step counter."""

    def __init__(self, lr, epochs, steps_per_epoch):
        self.lr, self.epochs, self.steps_per_epoch = lr, epochs, steps_per_epoch
        self.boundaries = step_boundaries(epochs, steps_per_epoch)

    def __call__(self, step):
        return step_lr(keras.ops.convert_to_tensor(step), self.lr, self.boundaries)

    def get_config(self):
        return {"lr": self.lr, "epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch}


class SGDTrainStep:
    """`Model.train_step` of the teachers: cross-entropy and SGD with momentum and coupled L2.

    The update is Keras's SGD (m <- momentum * m - lr * g; w <- w + m) with l2 * w added to g before momentum, as
    `torch.optim.SGD(weight_decay=l2)` does. Keras's own `weight_decay` is decoupled (w -= lr * wd * w): with
    momentum 0.9 it decays ten times less than the coupled form that He et al. trained with.

    Args:
        model: a Keras model returning logits.
        optimizer: a Keras SGD optimizer; its momentum and iteration variables hold the state.
        schedule: the learning rate (a `StepSchedule`); the step reads it with `step_lr` on its step counter, torch
            operations only, so that a CUDA graph captures it.
        l2: weight decay.
    """

    def __init__(self, model, optimizer, *, schedule, l2):
        variables = model.trainable_variables
        optimizer.build(variables)
        self.model = model
        self.params = [v.value for v in variables]
        self.momenta = [m.value for m in optimizer.momentums]
        self.momentum = optimizer.momentum
        self.iterations = optimizer.iterations.value
        self.schedule, self.l2 = schedule, l2
        device = self.params[0].device
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self.seen = torch.zeros((), device=device)

    def learning_rate(self):
        """The learning rate of the next step."""
        return step_lr(int(self.iterations), self.schedule.lr, self.schedule.boundaries)

    def reset_metrics(self):
        for total in (self.loss_sum, self.correct, self.seen):
            total.zero_()

    def __call__(self, data):
        x, y = data[0], data[1]  # fit passes (x, y); train_on_batch (x, y, sample_weight)
        logits = self.model(x, training=True)
        loss = F.cross_entropy(logits.float(), y)
        grads = list(torch.autograd.grad(loss, self.params))
        with torch.no_grad():
            if self.l2:
                torch._foreach_add_(grads, self.params, alpha=self.l2)
            lr = step_lr(self.iterations, self.schedule.lr, self.schedule.boundaries)
            torch._foreach_mul_(self.momenta, self.momentum)
            torch._foreach_add_(self.momenta, torch._foreach_mul(grads, -lr))
            torch._foreach_add_(self.params, self.momenta)
            self.iterations.add_(1)
            self.loss_sum.add_(loss.detach() * y.shape[0])
            self.correct.add_((logits.argmax(1) == y).sum())
            self.seen.add_(y.shape[0])
            return {"loss": self.loss_sum / self.seen, "accuracy": self.correct / self.seen}


class CudaGraphStep:
    """Runs a capture-safe train step (`SGDTrainStep`) as one CUDA graph.

    The first `warmup` calls run eagerly on a side stream (CUDA graph capture needs libraries initialized); the
    next call captures the step with its batch copied into static input tensors; later calls with a batch of that
    shape copy it in and replay the graph. Other shapes (the smaller last batch of an epoch) run eagerly. Should the
    capture fail, a warning says why and every step runs eagerly: slower, never wrong.
    """

    def __init__(self, step, warmup=3):
        self.step, self.warmup = step, warmup
        self.calls, self.graph, self.failed = 0, None, False

    def learning_rate(self):
        return self.step.learning_rate()

    def reset_metrics(self):
        self.step.reset_metrics()

    def __call__(self, data):
        x, y = data[0], data[1]
        if self.graph is not None and x.shape == self.inputs[0].shape:
            self.inputs[0].copy_(x)
            self.inputs[1].copy_(y)
            self.graph.replay()
            return self.outputs
        if self.graph is None and not self.failed and self.calls >= self.warmup:
            return self._capture(x, y)
        self.calls += 1
        if self.calls > self.warmup:
            return self.step(data)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            outputs = self.step(data)
        torch.cuda.current_stream().wait_stream(side)
        return outputs

    def _capture(self, x, y):
        self.inputs = (x.clone(), y.clone())
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.outputs = self.step(self.inputs)
        except RuntimeError as error:
            self.failed = True
            warnings.warn(f"CUDA graph capture failed, training eagerly instead: {error}", stacklevel=2)
            torch.cuda.synchronize()
            return self.step((x, y))
        self.graph = graph
        self.graph.replay()
        return self.outputs
