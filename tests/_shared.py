"""What several test modules share: a check that an error is exactly one expected line, a small network."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn


def refuses(error: type[Exception], message: str):
    """pytest.raises for the whole message, taken literally."""
    return pytest.raises(error, match="^" + re.escape(message) + "$")


def small_net(seed: int = 0) -> nn.Module:
    """Two convolutions, pooling to 2 x 2 and a linear layer to 5 classes, seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 5),
    )
