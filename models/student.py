"""The Neural ODE student: stem, ODE block, head.

The paper says only that the dynamics are "a 4 layers convolutional neural network with 3x3 kernel size" with 512
channels, solved by Dopri5 over [0, t1]. The rest follows torchdiffeq's `odenet_mnist.py`, the closest public
design:

- stem: a 3x3 convolution to `channels`, then `downsample` times GroupNorm -> ReLU -> 4x4 convolution with stride 2
  (odenet uses 2, giving 1/4 resolution: 8x8 for 32x32 images);
- ODE block: `ConvODEFunc`, integrated from 0 to t1. odenet's dynamics (time as an extra input channel of every
  convolution, GroupNorm -> ReLU -> conv, a last GroupNorm) are kept, but by default without the time channel and
  with the last GroupNorm's scale starting at 1 / t1 (`time_input="none"`, `init="horizon"`): odenet's own left
  t1 = 100 and 500 at chance (docs/research-notes.md, "Long time horizons"); `time_input="raw", init="he"` is odenet's;
- GroupNorm everywhere with `group_count(C)` groups: odenet's 32 at 512 channels, and at least 16 channels per
  group for narrow students (one channel per group erases what the pooling head needs);
- head: GroupNorm -> ReLU -> global average pooling -> dense logits.

With `precision="mixed_bfloat16"` the dynamics' convolutions, nearly all of the student's work, run in bfloat16;
the solver, the stem and the head stay float32.

Convolutions and the dense layer start from He initialization (Algorithm 1). Like the teachers, the model takes
pixels in [0, 1], NHWC, and normalizes them in its first layer. The ODE layer needs the torch backend.
"""

import keras
from keras import layers

from models.layers import GroupNorm, PixelNormalization
from models.ode import ConvODEFunc, ODEBlock, Solver, group_count


def _group_norm(channels, name):
    return GroupNorm(groups=group_count(channels), axis=1, epsilon=1e-5, name=name)


def build_student(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    channels=512,
    downsample=2,
    t1=1.0,
    time_input="none",
    norm="pre",
    init="horizon",
    precision="float32",
    memory_format="contiguous",
    mean=None,
    std=None,
    solver=Solver(),
    name="ode_student",
):
    """Builds the Neural ODE student; `time_input`, `norm`, `init`, `precision` (the dtype policy of the dynamics,
    e.g. "mixed_bfloat16") and `memory_format` go to `ConvODEFunc`, `solver` to `ODEBlock`."""
    if downsample < 0 or input_shape[0] % (2**downsample) or input_shape[1] % (2**downsample):
        raise ValueError(f"The image size must divide by 2**downsample. Received: {input_shape}, {downsample}")
    conv = {"kernel_initializer": "he_normal", "data_format": "channels_first"}
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = inputs
    if mean is not None or std is not None:
        c = input_shape[-1]
        x = PixelNormalization(mean or [0.0] * c, std or [1.0] * c, name="normalize")(x)
    x = layers.Permute((3, 1, 2), name="to_channels_first")(x)
    x = layers.Conv2D(channels, 3, padding="same", name="stem_conv", **conv)(x)
    for i in range(downsample):
        x = _group_norm(channels, f"stem_norm{i}")(x)
        x = layers.ReLU(name=f"stem_relu{i}")(x)
        x = layers.ZeroPadding2D(1, data_format="channels_first", name=f"stem_pad{i}")(x)
        x = layers.Conv2D(channels, 4, strides=2, name=f"stem_down{i}", **conv)(x)
    dynamics = {"time_input": time_input, "norm": norm, "init": init, "memory_format": memory_format}
    func = ConvODEFunc(channels, horizon=t1, dtype=precision, name="dynamics", **dynamics)
    x = ODEBlock(func, t1=t1, solver=solver, name="ode")(x)
    x = _group_norm(channels, "head_norm")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(data_format="channels_first", name="pool")(x)
    logits = layers.Dense(num_classes, kernel_initializer="he_normal", name="logits")(x)
    return keras.Model(inputs, logits, name=name)
