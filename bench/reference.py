"""Plain PyTorch references, independent of nodekd's Keras code.

`TorchStudent` is nodekd's Neural ODE student written out in torch modules with torchdiffeq, as a user would by hand:
the step and attack benchmarks time it beside nodekd's Keras student. `TorchResNet` is the CIFAR ResNet of akamaster/pytorch_resnet_cifar10 (option-A shortcuts), written out again in
plain PyTorch: its `state_dict` keys match that repository's checkpoints (after removing the `module.` prefix). The
benchmarks time it beside nodekd's Keras model and the tests use it as ground truth for checkpoint import.
"""

import torch
import torch.nn.functional as F
from torch import nn


class _BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - in_planes) // 2 if stride != 1 or in_planes != planes else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


class TorchResNet(nn.Module):
    """ResNet-`depth` for CIFAR, NCHW input already normalized."""

    def __init__(self, depth=20, in_channels=3, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for index, planes in enumerate((16, 32, 64)):
            blocks = []
            for block in range(n):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(_BasicBlock(in_planes, planes, stride))
                in_planes = planes
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def load_akamaster(path, depth):
    """A `TorchResNet` holding the weights of an akamaster checkpoint file."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = {key.removeprefix("module."): value for key, value in checkpoint["state_dict"].items()}
    model = TorchResNet(depth)
    model.load_state_dict(state)
    return model


class _TorchDynamics(nn.Module):
    """odenet's pre-norm dynamics: (GroupNorm -> ReLU -> conv) four times, then GroupNorm; with a time input, the
    time channel concatenated to every convolution's input, as odenet does."""

    def __init__(self, channels, groups, time_scale):
        super().__init__()
        self.time_scale = time_scale
        inputs = channels + (0 if time_scale is None else 1)
        self.norms = nn.ModuleList(nn.GroupNorm(groups, channels) for _ in range(5))
        self.convs = nn.ModuleList(nn.Conv2d(inputs, channels, 3, padding=1) for _ in range(4))
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        h = y
        for norm, conv in zip(self.norms, self.convs):
            h = torch.relu(norm(h))
            if self.time_scale is not None:
                h = torch.cat([torch.ones_like(h[:, :1]) * (t * self.time_scale), h], dim=1)
            h = conv(h)
        return self.norms[-1](h)


class TorchStudent(nn.Module):
    """The student of `models.build_student` (pre-norm dynamics) in plain PyTorch modules and torchdiffeq's dopri5
    at rtol = atol = 1e-3, in float32, holding the Keras model's weights; NHWC pixels in [0, 1] in, logits out."""

    def __init__(self, keras_model, device="cpu"):
        from models.ode import group_count

        super().__init__()
        block = keras_model.get_layer("ode")
        design, t1 = block.func, block.t1
        if design.norm != "pre":
            raise ValueError("The reference student has pre-norm dynamics (GroupNorm -> ReLU -> conv).")
        channels, groups = design.channels, group_count(design.channels)
        downsample = sum(layer.name.startswith("stem_down") for layer in keras_model.layers)
        self.stem = nn.Conv2d(keras_model.input_shape[-1], channels, 3, padding=1)
        self.down_norms = nn.ModuleList(nn.GroupNorm(groups, channels) for _ in range(downsample))
        self.downs = nn.ModuleList(nn.Conv2d(channels, channels, 4, stride=2, padding=1) for _ in range(downsample))
        time_scale = {"raw": 1.0, "scaled": 1.0 / t1, "none": None}[design.time_input]
        self.func = _TorchDynamics(channels, groups, time_scale)
        self.head_norm = nn.GroupNorm(groups, channels)
        self.linear = nn.Linear(channels, keras_model.output_shape[-1])
        self.register_buffer("t", torch.tensor([0.0, t1]))
        self.register_buffer("mean", torch.tensor(keras_model.get_layer("normalize").get_weights()[0]))
        self.register_buffer("std", torch.tensor(keras_model.get_layer("normalize").get_weights()[1]))
        self._copy(keras_model)
        self.to(device)

    def _copy(self, model):
        def conv(module, kernel, bias):
            module.weight.data = torch.tensor(kernel).permute(3, 2, 0, 1).contiguous()
            module.bias.data = torch.tensor(bias)

        def norm(module, gamma, beta):
            module.weight.data, module.bias.data = torch.tensor(gamma), torch.tensor(beta)

        conv(self.stem, *model.get_layer("stem_conv").get_weights())
        for i, (n, d) in enumerate(zip(self.down_norms, self.downs)):
            norm(n, *model.get_layer(f"stem_norm{i}").get_weights())
            conv(d, *model.get_layer(f"stem_down{i}").get_weights())
        func = model.get_layer("ode").func
        for i, n in enumerate(self.func.norms):
            norm(n, func.gammas[i].numpy(), func.betas[i].numpy())
        for i, c in enumerate(self.func.convs):
            conv(c, func.kernels[i].numpy(), func.biases[i].numpy())
        norm(self.head_norm, *model.get_layer("head_norm").get_weights())
        kernel, bias = model.get_layer("logits").get_weights()
        self.linear.weight.data, self.linear.bias.data = torch.tensor(kernel.T).contiguous(), torch.tensor(bias)

    def forward(self, x):
        from torchdiffeq import odeint

        # NCHW in memory, as a PyTorch data pipeline gives it: permuted NHWC pixels would leave every later tensor in
        # channels_last while the kernels are not, which costs a plain CPU step 15-20% (docs/benchmarks.md).
        h = self.stem(((x - self.mean) / self.std).permute(0, 3, 1, 2).contiguous())
        for n, d in zip(self.down_norms, self.downs):
            h = d(torch.relu(n(h)))
        h = odeint(self.func, h, self.t, rtol=1e-3, atol=1e-3, method="dopri5")[-1]
        return self.linear(torch.relu(self.head_norm(h)).mean(dim=(2, 3)))
