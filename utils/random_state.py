"""Torch's random state, kept: seeded work inside a block leaves every device's generator as it found it.

``torch.manual_seed`` seeds the CPU's generator and those of every accelerator torch knows
(CUDA, MPS, XPU, ...), but ``torch.random.fork_rng(devices=[])`` restores only the CPU's: on a
GPU a seeded helper would change the caller's GPU random state. ``preserved_rng`` restores
them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch

__all__ = ["ACCELERATORS", "preserved_rng"]

ACCELERATORS: tuple[str, ...] = ("cuda", "mps", "xpu")
"""The device types whose generators ``torch.manual_seed`` seeds besides the CPU's, as ``torch.<type>`` modules."""


def _available(device_type: str) -> int:
    """How many devices of ``device_type`` torch can use here (0 when none or when torch lacks the backend)."""
    module = getattr(torch, device_type, None)
    is_available = getattr(module, "is_available", None)
    if module is None or is_available is None or not is_available():
        return 0
    count = getattr(module, "device_count", None)
    return int(count()) if count is not None else 1


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Inside the block, seed and draw at will; after it, the CPU's and every accelerator's generators are restored.

    >>> before = torch.get_rng_state()
    >>> with preserved_rng():
    ...     _ = torch.manual_seed(123)
    ...     _ = torch.rand(3)
    >>> torch.equal(torch.get_rng_state(), before)
    True
    """
    with ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))  # the CPU's generator
        for device_type in ACCELERATORS:
            count = _available(device_type)
            if count:
                devices = list(range(count))
                stack.enter_context(torch.random.fork_rng(devices=devices, device_type=device_type))
        yield
