"""Small layers the networks need beyond Keras's own."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nodekd")
class OptionAShortcut(keras.layers.Layer):
    """The "option A" identity shortcut of He et al. (2016) for CIFAR ResNets.

    Subsamples the feature map by 2 in space and zero-pads the channel axis by `pad` on each side, so the shortcut
    adds no parameters (the layout of akamaster/pytorch_resnet_cifar10's `LambdaLayer`).

    Args:
        pad: number of zero channels added before and after the input's channels.
        data_format: `"channels_last"` or `"channels_first"`.
    """

    def __init__(self, pad, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"Unknown data_format. Received: data_format={data_format}")
        self.pad = pad
        self.data_format = data_format

    def call(self, x):
        if self.data_format == "channels_first":
            return ops.pad(x[:, :, ::2, ::2], [[0, 0], [self.pad, self.pad], [0, 0], [0, 0]])
        return ops.pad(x[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [self.pad, self.pad]])

    def compute_output_shape(self, input_shape):
        def half(size):
            return None if size is None else (size + 1) // 2

        if self.data_format == "channels_first":
            n, c, h, w = input_shape
            return (n, c + 2 * self.pad, half(h), half(w))
        n, h, w, c = input_shape
        return (n, half(h), half(w), c + 2 * self.pad)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="nodekd")
class BatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that runs PyTorch's fused kernel under the torch backend.

    Keras's generic path takes moments and normalizes in several elementwise passes, which made a ResNet20 train
    step 1.45x slower than the same network in plain PyTorch on a 2-core CPU (`bench/teacher_step.py`). Under any
    other backend, or where the fused kernel does not apply (channels not on axis 1, a mask), the layer is exactly
    Keras's. One difference under torch: the moving variance is updated with the unbiased batch variance, as
    `torch.nn.BatchNorm2d` does.
    """

    def call(self, inputs, training=None, mask=None):
        if keras.backend.backend() != "torch" or mask is not None or self.axis != 1 or self.synchronized:
            return super().call(inputs, training=training, mask=mask)
        import torch.nn.functional as F

        training = bool(training) and self.trainable
        outputs = F.batch_norm(
            inputs,
            self.moving_mean.value,
            self.moving_variance.value,
            weight=self.gamma.value if self.scale else None,
            bias=self.beta.value if self.center else None,
            training=training,
            momentum=1.0 - self.momentum,
            eps=self.epsilon,
        )
        return outputs


@keras.saving.register_keras_serializable(package="nodekd")
class PixelNormalization(keras.layers.Layer):
    """(x - mean) / std over the last (channel) axis: a data set's input normalization as a model's first layer.

    The statistics are non-trainable weights, so calling the layer creates no tensor from a Python number (Keras's
    `Normalization` does, through `maximum(sqrt(variance), epsilon)`), which keeps a CUDA-graph capture of the
    train step possible.

    Args:
        mean: per-channel means.
        std: per-channel standard deviations, all positive.
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(f"mean and std need one value per channel and std > 0. Received: mean={mean}, std={std}")
        self.mean_values = [float(m) for m in mean]
        self.std_values = [float(s) for s in std]

    def build(self, input_shape):
        if input_shape[-1] != len(self.mean_values):
            raise ValueError(
                f"Expected {len(self.mean_values)} channels on the last axis. Received: input_shape={input_shape}"
            )
        channels = (len(self.mean_values),)
        constant = keras.initializers.Constant
        self.mean = self.add_weight(channels, constant(self.mean_values), trainable=False, name="mean")
        self.std = self.add_weight(channels, constant(self.std_values), trainable=False, name="std")

    def call(self, x):
        return (x - self.mean) / self.std

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_values, "std": self.std_values}


@keras.saving.register_keras_serializable(package="nodekd")
class GroupNorm(keras.layers.GroupNormalization):
    """`keras.layers.GroupNormalization` that runs PyTorch's fused kernel under the torch backend.

    Keras's generic path reshapes and takes moments in several passes; in the Neural ODE student's stem, at full
    resolution, that made a train step 1.18x slower than the same student in plain PyTorch on a 2-core CPU
    (`bench/student_step.py`). Under another backend, or with channels not on axis 1, the layer is exactly Keras's.
    """

    def call(self, inputs):
        if keras.backend.backend() != "torch" or self.axis not in (1, -3) or len(inputs.shape) != 4:
            return super().call(inputs)
        import torch.nn.functional as F

        return F.group_norm(
            inputs,
            self.groups,
            self.gamma.value if self.scale else None,
            self.beta.value if self.center else None,
            eps=self.epsilon,
        )
