"""A worked answer to lesson 10's exercise (HiResCAM from Grad-CAM) passes its checker.

This test holds the answer, so the hand-out leaves this folder out (tests/solutions/);
tests/test_exercises_10_hires_cam.py tests the same checker without it.
"""

from __future__ import annotations

import pytest
import torch

from utils.exercises.hires_cam import diagnose_hires_cam
from utils.shortcuts import small_cnn


@pytest.fixture(scope="module")
def case():
    net = small_cnn(seed=4).eval()
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    return net, "relu3", x, 1


def test_a_hand_written_answer_passes(case) -> None:
    net, layer, x, target = case

    def by_hand(model, layer_name, image, cls):
        captured = {}

        def keep(module, inputs, output):
            captured["A"] = output
            return output.clone()

        handle = model.get_submodule(layer_name).register_forward_hook(keep)
        try:
            score = model(image.detach().clone().requires_grad_(True))[0, cls]
        finally:
            handle.remove()
        (g,) = torch.autograd.grad(score, captured["A"])
        return torch.relu((g * captured["A"]).sum(1, keepdim=True)).detach()

    assert diagnose_hires_cam(by_hand, net, layer, x, target).passed
    assert diagnose_hires_cam(by_hand, net, layer, x, 1 - target).passed
