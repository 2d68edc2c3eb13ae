"""utils.random_state.preserved_rng: seeded work inside the block leaves every device's generator as it found it.

This machine may have no accelerator, so each one torch seeds (CUDA, MPS, XPU) is stood in for by fake generators
that ``torch.manual_seed`` changes, as it does on a real device; ``_available`` is checked on fake backends.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import utils.random_state
from utils.random_state import _available, preserved_rng

DEVICES = {"cuda": 2, "mps": 1, "xpu": 1}  # how many devices each fake backend reports


class FakeGenerators:
    """One generator state per fake device of every accelerator, changed by ``torch.manual_seed``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.states = {(kind, d): 10 * i + d for i, (kind, n) in enumerate(DEVICES.items()) for d in range(n)}
        self.first = dict(self.states)
        monkeypatch.setattr(utils.random_state, "_available", lambda device_type: DEVICES.get(device_type, 0))
        for kind in DEVICES:
            module = getattr(torch, kind)
            monkeypatch.setattr(module, "get_rng_state", self._getter(kind), raising=False)
            monkeypatch.setattr(module, "set_rng_state", self._setter(kind), raising=False)
        real_seed = torch.manual_seed

        def seeding_every_device(seed: int) -> torch.Generator:
            self.states = {key: seed for key in self.states}
            return real_seed(seed)

        monkeypatch.setattr(torch, "manual_seed", seeding_every_device)

    def _getter(self, kind: str):
        return lambda device=0: torch.tensor([self.states[kind, int(device)]], dtype=torch.uint8)

    def _setter(self, kind: str):
        def set_state(state: torch.Tensor, device: int = 0) -> None:
            self.states[kind, int(device)] = int(state[0])

        return set_state


def test_every_devices_generator_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGenerators(monkeypatch)
    cpu = torch.get_rng_state()
    with preserved_rng():
        torch.manual_seed(77)
        assert set(fake.states.values()) == {77}  # the fake works: seeding changed every device
        torch.rand(3)
    assert fake.states == fake.first
    assert torch.equal(torch.get_rng_state(), cpu)


def test_the_generators_are_restored_when_the_block_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGenerators(monkeypatch)
    cpu = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="inside"), preserved_rng():
        torch.manual_seed(5)
        raise RuntimeError("inside")
    assert fake.states == fake.first and torch.equal(torch.get_rng_state(), cpu)


def test_without_accelerators_only_the_cpus_generator_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(utils.random_state, "_available", lambda device_type: 0)
    cpu = torch.get_rng_state()
    with preserved_rng():
        torch.manual_seed(3)
    assert torch.equal(torch.get_rng_state(), cpu)


# --- _available: how many devices of a kind torch reports -----------------------------------------------------


def backend(monkeypatch: pytest.MonkeyPatch, **functions) -> str:
    """A fake ``torch.<name>`` backend module with only the given functions; returns its name."""
    monkeypatch.setattr(torch, "fake_backend", SimpleNamespace(**functions), raising=False)
    return "fake_backend"


def test_the_devices_torch_reports_here_are_counted() -> None:
    assert _available("cuda") == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_a_backend_torch_lacks_has_no_devices() -> None:
    assert _available("no_such_backend") == 0


def test_a_backend_without_is_available_has_no_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _available(backend(monkeypatch, device_count=lambda: 2)) == 0


def test_an_unavailable_backend_has_no_devices_whatever_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _available(backend(monkeypatch, is_available=lambda: False, device_count=lambda: 2)) == 0


def test_an_available_backend_has_as_many_devices_as_it_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _available(backend(monkeypatch, is_available=lambda: True, device_count=lambda: 3)) == 3


def test_an_available_backend_without_a_count_has_one_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _available(backend(monkeypatch, is_available=lambda: True)) == 1
