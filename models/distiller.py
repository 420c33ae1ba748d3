"""Knowledge distillation (the paper's Algorithm 1) as a Keras model with a custom train step.

L = (1 - lambda) * CE(softmax(l_student), y) + lambda * T^2 * KL(softmax(l_teacher / T) || softmax(l_student / T)).
The paper writes D_KL(log(s^N) || s^R), the argument order of PyTorch's `kl_div(log_softmax(student / T),
softmax(teacher / T))`, which is KL(teacher || student). The KL is summed over classes and averaged over the batch
(PyTorch's reduction="batchmean", the true KL divergence).
"""

import keras
from keras import ops

from models.ode import ode_blocks


def distillation_loss(labels, student_logits, teacher_logits, temperature, lam):
    """Algorithm 1's loss, averaged over the batch; `teacher_logits` may be `None` when `lam` is 0."""
    ce = ops.mean(ops.sparse_categorical_crossentropy(labels, student_logits, from_logits=True))
    if lam == 0:
        return ce
    log_teacher = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_student = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.mean(ops.sum(ops.exp(log_teacher) * (log_teacher - log_student), axis=-1))
    return (1 - lam) * ce + lam * temperature**2 * kl


@keras.saving.register_keras_serializable(package="nodekd")
class Distiller(keras.Model):
    """Trains `student` with `distillation_loss`, the way Keras documents a custom train step for torch.

    Batches are `((x, teacher_logits), y)` when the soft targets were computed beforehand (Algorithm 1, lines 1-2),
    or `(x, y)` with a frozen `teacher` that is run on each batch (online soft targets), or `(x, y)` with `lam` = 0
    and no teacher (a student trained on cross-entropy alone). Logs the running loss, accuracy and the mean number of
    function evaluations of the student's ODE blocks per batch (forward solve; backward solve with the adjoint).

    Args:
        student: the model to train (returns logits).
        temperature: T.
        lam: lambda, the weight of the distillation term.
        teacher: a model returning logits, for online soft targets.
    """

    def __init__(self, student, temperature=3.0, lam=0.9, teacher=None, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0 or not 0 <= lam <= 1:
            raise ValueError(f"Need T > 0 and 0 <= lambda <= 1. Received: T={temperature}, lambda={lam}")
        self.student = student
        self.blocks = ode_blocks(student)  # whose evaluations each step counts
        self.temperature = temperature
        self.lam = lam
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.nfe_tracker = keras.metrics.Mean(name="nfe")
        self.nfe_backward_tracker = keras.metrics.Mean(name="nfe_backward")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker, self.nfe_tracker, self.nfe_backward_tracker]

    def call(self, x, training=False):
        return self.student(x, training=training)

    def train_step(self, data):
        import torch

        inputs, y = data[0], data[1]
        teacher_logits = None
        if isinstance(inputs, (tuple, list)):
            x, teacher_logits = inputs
        else:
            x = inputs
            if self.lam > 0:
                if self.teacher is None:
                    raise ValueError("A distillation batch needs teacher logits, or a teacher to compute them.")
                with torch.no_grad():
                    teacher_logits = self.teacher(x, training=False)
        self.zero_grad()
        logits = self.student(x, training=True)
        loss = distillation_loss(y, logits, teacher_logits, self.temperature, self.lam)
        loss.backward()
        variables = self.student.trainable_weights
        gradients = [v.value.grad for v in variables]
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(loss.detach())
        self.accuracy_tracker.update_state(y, logits.detach())
        self.nfe_tracker.update_state(sum(b.nfe_forward for b in self.blocks))
        self.nfe_backward_tracker.update_state(sum(b.nfe_backward for b in self.blocks))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "student": keras.saving.serialize_keras_object(self.student),
                "temperature": self.temperature,
                "lam": self.lam,
                "teacher": None if self.teacher is None else keras.saving.serialize_keras_object(self.teacher),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        if config.get("teacher") is not None:
            config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        return cls(**config)
