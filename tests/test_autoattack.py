"""AutoAttack through torchattacks: the adapter, the exact worst case of a linear model, never weaker than PGD."""

import numpy as np
import pytest
import torch

from nodekd_cli import attacks
from nodekd_cli.attacks import TorchClassifier
from nodekd_cli.autoattack import Settings, autoattack


class Linear:
    """logits = x.flatten() @ W + b on NHWC pixels, called like a Keras model."""

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias

    def __call__(self, x, training=False):
        return x.flatten(1) @ self.weight + self.bias


def _linear_case(n=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(4 * 4 * 2, 5, generator=generator)
    model = Linear(weight, -0.5 * weight.sum(0))  # logits (x - 0.5) @ W: no class favoured by bright pixels
    x = 0.1 + 0.8 * torch.rand(n, 4, 4, 2, generator=generator)  # no pixel within eps of 0 or 1
    y = model(x).argmax(1)
    y[:4] = (y[:4] + 1) % 5  # a few misclassified images
    return model, x, y


def test_the_adapter_feeds_nchw_pixels_to_the_nhwc_model():
    model, x, _ = _linear_case()
    module = TorchClassifier(model)
    assert isinstance(module, torch.nn.Module) and next(module.parameters()).device == x.device
    torch.testing.assert_close(module(x.permute(0, 3, 1, 2)), model(x))


def test_autoattack_finds_the_exact_worst_case_of_a_linear_model_and_is_never_weaker_than_pgd():
    # For logits W^T x + b, an image keeps its label y under every L-inf perturbation of size eps exactly when, for
    # every other class j, (w_y - w_j) . x > eps * ||w_y - w_j||_1 (no pixel near 0 or 1 here).
    model, x, y = _linear_case()
    e = 8
    logits = model(x)
    robust = []
    for i in range(len(y)):
        w = model.weight[:, y[i]][:, None] - model.weight
        margins = logits[i, y[i]] - logits[i] - e / 255 * w.abs().sum(0)
        margins[y[i]] = 1.0
        robust.append(bool(logits[i].argmax() == y[i]) and bool((margins > 0).all()))
    assert 4 < sum(robust) < len(y) - 8  # the case has both kinds
    result = autoattack(model, x, y, Settings(e, steps=20, queries=200))
    assert result["robust"] == robust
    assert result["robust_accuracy"] == pytest.approx(np.mean(robust))
    assert result["clean_accuracy"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    names = [c["component"] for c in result["components"]]
    assert names == ["APGD-CE", "APGD-T", "FAB-T", "Square"]
    cumulative = [c["robust_accuracy"] for c in result["components"]]
    assert cumulative == sorted(cumulative, reverse=True) and cumulative[-1] == result["robust_accuracy"]
    # The paper's PGD on the same images can only be as strong, never stronger.
    adversarial = attacks.pgd(model, x, y, e / 255, attacks.num_steps(e), torch.Generator().manual_seed(0))
    assert (model(adversarial).argmax(1) == y).float().mean().item() >= result["robust_accuracy"]
