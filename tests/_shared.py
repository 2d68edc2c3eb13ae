"""What several test modules share: a check that an error is exactly one expected line, small networks (one with
max-pooling, one that warns), the source of a checker as written."""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from types import ModuleType

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


_MUTANT = re.compile(r"__mutmut_\d+$")


def source_as_written(*modules: ModuleType) -> str:
    """The modules' source, less mutmut's mutants: under ``make mutation`` the module's file also holds every mutant
    of each function (``x_name__mutmut_3``: one changed string or number each), which a test that reads the reasons
    a checker names from its source must not read as reasons (they are not called unless under test)."""
    texts = []
    for module in modules:
        source = inspect.getsource(module)
        lines = source.splitlines(keepends=True)
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _MUTANT.search(node.name):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines[start - 1 : node.end_lineno] = [""] * (node.end_lineno - start + 1)  # type: ignore[operator]
        texts.append("".join(lines))
    return "".join(texts)


def pooled_net() -> nn.Sequential:
    """Layer "1" on the 8 x 8 input grid, layer "4" on a 4 x 4 grid after max-pooling; seeded, in eval mode."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()


class Noisy(nn.Module):
    """Warns at every forward pass, as a learner's model may; counts its passes in ``Noisy.passes``."""

    passes = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Noisy.passes += 1
        warnings.warn("the model ran", UserWarning, stacklevel=1)
        return x
