"""CIFAR-style ResNets of He et al. (2016): the paper's teachers.

Depth 6n + 2: a 3x3 stem with 16 channels, three stages of n basic blocks at 16, 32 and 64 channels (stride 2 at the
start of stages 2 and 3), "option A" shortcuts, global average pooling and one dense layer. Built from
backend-agnostic Keras layers and ops only.

The model takes pixels in [0, 1], shape (batch, height, width, channels), and returns logits. Its first layer is
the data set's normalization, so a saved model is self-contained. Names follow akamaster/pytorch_resnet_cifar10
(`stem_conv` = `conv1`, `stage1_block0` with sublayers `conv1`, `bn1`, ... = `layer1.0.conv1`, ...) so that its
checkpoints can be imported weight by weight.
"""

import functools

import keras
from keras import layers, ops

from models.layers import BatchNorm, OptionAShortcut, PixelNormalization
from models.registry import TeacherArchitecture, register_teacher

STAGE_CHANNELS = (16, 32, 64)


def _channel_axis(data_format):
    return 1 if data_format == "channels_first" else -1


def _batch_norm(data_format, dtype, name):
    # momentum and epsilon of torch.nn.BatchNorm2d, the convention of the published CIFAR ResNets.
    return BatchNorm(axis=_channel_axis(data_format), momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


@keras.saving.register_keras_serializable(package="nodekd")
class BasicBlock(keras.layers.Layer):
    """conv3x3 - BN - ReLU - conv3x3 - BN, plus the (option A) shortcut, then ReLU.

    The block calls its sublayers' `call` directly: a Keras layer call costs hundreds of microseconds of Python,
    which made a ResNet20 train step with one Keras layer per conv, BN and ReLU 1.26x slower than plain PyTorch on a
    2-core CPU (`bench/teacher_step.py`). Weights and names are those of the standard layers.

    Args:
        filters: output channels.
        stride: 1, or 2 to halve the resolution (the input is then padded by 1 on every side, as PyTorch does;
            Keras's "same" would pad only the bottom and right of an even-sized input).
        data_format: `"channels_last"` or `"channels_first"`.
    """

    def __init__(self, filters, stride=1, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2. Received: stride={stride}")
        self.filters = filters
        self.stride = stride
        self.data_format = data_format
        conv = functools.partial(
            layers.Conv2D,
            filters,
            3,
            use_bias=False,
            kernel_initializer="he_normal",
            data_format=data_format,
            dtype=self.dtype_policy,
        )
        self.conv1 = conv(strides=stride, padding="valid" if stride > 1 else "same", name="conv1")
        self.bn1 = _batch_norm(data_format, self.dtype_policy, "bn1")
        self.conv2 = conv(padding="same", name="conv2")
        self.bn2 = _batch_norm(data_format, self.dtype_policy, "bn2")
        self.shortcut = None

    def build(self, input_shape):
        in_channels = input_shape[_channel_axis(self.data_format)]
        if self.stride > 1 or in_channels != self.filters:
            if (self.filters - in_channels) % 2:
                raise ValueError(
                    f"option A pads channels equally on both sides. Received: {in_channels} -> {self.filters}"
                )
            pad = (self.filters - in_channels) // 2
            self.shortcut = OptionAShortcut(pad, data_format=self.data_format, dtype=self.dtype_policy, name="shortcut")
            self.shortcut.build(input_shape)
        padded = list(input_shape)
        if self.stride > 1:
            for axis in (2, 3) if self.data_format == "channels_first" else (1, 2):
                padded[axis] = None if padded[axis] is None else padded[axis] + 2
        self.conv1.build(tuple(padded))
        hidden = self.conv1.compute_output_shape(tuple(padded))
        self.bn1.build(hidden)
        self.conv2.build(hidden)
        self.bn2.build(hidden)

    def call(self, x, training=None):
        y = x
        if self.stride > 1:
            spatial = [[1, 1], [1, 1]]
            y = ops.pad(
                y, [[0, 0], [0, 0], *spatial] if self.data_format == "channels_first" else [[0, 0], *spatial, [0, 0]]
            )
        y = ops.relu(self.bn1.call(self.conv1.call(y), training=training))
        y = self.bn2.call(self.conv2.call(y), training=training)
        shortcut = x if self.shortcut is None else self.shortcut.call(x)
        return ops.relu(y + shortcut)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[_channel_axis(self.data_format)] = self.filters
        if self.stride > 1:
            for axis in (2, 3) if self.data_format == "channels_first" else (1, 2):
                shape[axis] = None if shape[axis] is None else (shape[axis] + 1) // 2
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "stride": self.stride, "data_format": self.data_format})
        return config


def cifar_resnet(
    depth,
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    data_format=None,
    dtype=None,
    name=None,
):
    """Builds ResNet-`depth` for CIFAR-sized images.

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110 are the paper's).
        input_shape: (height, width, channels) of the [0, 1] input pixels.
        num_classes: number of logits.
        mean, std: per-channel normalization of the input pixels; `None` leaves the pixels as they are.
        data_format: layout inside the network. `None` picks `"channels_first"` under the torch backend (its
            native layout, avoiding a transpose around every convolution) and `"channels_last"` otherwise.
        dtype: a Keras dtype policy name, e.g. `"mixed_bfloat16"`; `None` uses the global policy.
        name: model name; `resnet{depth}` by default.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1. Received: depth={depth}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels). Received: input_shape={input_shape}")
    if data_format is None:
        data_format = "channels_first" if keras.backend.backend() == "torch" else "channels_last"
    blocks_per_stage = (depth - 2) // 6

    inputs = keras.Input(shape=input_shape, name="pixels")
    x = inputs
    if mean is not None or std is not None:
        channels = input_shape[-1]
        mean = [0.0] * channels if mean is None else [float(m) for m in mean]
        std = [1.0] * channels if std is None else [float(s) for s in std]
        x = PixelNormalization(mean, std, dtype=dtype, name="normalize")(x)
    if data_format == "channels_first":
        x = layers.Permute((3, 1, 2), dtype=dtype, name="to_channels_first")(x)

    x = layers.Conv2D(
        STAGE_CHANNELS[0],
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        data_format=data_format,
        dtype=dtype,
        name="stem_conv",
    )(x)
    x = _batch_norm(data_format, dtype, "stem_bn")(x)
    x = layers.ReLU(dtype=dtype, name="stem_relu")(x)
    for stage, filters in enumerate(STAGE_CHANNELS):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            x = BasicBlock(
                filters, stride, data_format=data_format, dtype=dtype, name=f"stage{stage + 1}_block{block}"
            )(x)
    x = layers.GlobalAveragePooling2D(data_format=data_format, dtype=dtype, name="pool")(x)
    # Logits stay float32 under a mixed-precision policy, for a stable softmax.
    logits = layers.Dense(num_classes, kernel_initializer="he_normal", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name or f"resnet{depth}")


# The paper's teachers; a training pass costs about its depth (the cost model's scale is ResNet20's).
for _depth in (20, 32, 44, 56, 110):
    register_teacher(
        TeacherArchitecture(
            f"resnet{_depth}",
            functools.partial(cifar_resnet, _depth),
            f"ResNet{_depth}",
            relative_cost=_depth / 20,
            lr=0.01 if _depth == 110 else 0.1,  # the paper's rates
            paper=True,
        )
    )
