"""utils.ground_truth: the methods, the tag evidence of maps, the separation of two models, the tag's effect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.cams import hires_cam
from utils.ground_truth import METHOD_NAMES, saliency_methods, separation, tag_effect, tag_evidence
from utils.saliency import grad_cam, guided_backprop, upsample_cam
from utils.shortcuts import Box, corner_box, small_cnn, tagged_dataset


@pytest.fixture(scope="module")
def net() -> nn.Module:
    return small_cnn(seed=0).eval()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(0))


def test_every_method_gives_maps_on_the_input_grid_and_leaves_the_global_rng_alone(net, x) -> None:
    methods = saliency_methods("relu3", smoothgrad_samples=4, ig_steps=8)
    assert list(methods) == list(METHOD_NAMES)
    state = torch.get_rng_state()
    for name, method in methods.items():
        maps = method(net, x, [0, 1, 1])
        assert maps.shape[0] == 3 and maps.shape[-2:] == (48, 48) and maps.shape[1] in (1, 3), name
        assert not maps.requires_grad and torch.isfinite(maps).all(), name
    assert torch.equal(state, torch.get_rng_state())


def test_the_registry_computes_what_each_name_says(net, x) -> None:
    methods = saliency_methods("relu3", smoothgrad_samples=4, ig_steps=64)
    classes = [0, 1, 1]
    image = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(net(image).gather(1, torch.tensor(classes)[:, None]).sum(), image)
    assert torch.allclose(methods["gradient"](net, x, classes), gradient, atol=1e-6)
    assert torch.equal(methods["guided_backprop"](net, x, classes), guided_backprop(net, x, classes))
    expected_cam = upsample_cam(grad_cam(net, "relu3", x, classes), (48, 48), "bilinear")
    assert torch.allclose(methods["grad_cam"](net, x, classes), expected_cam)
    assert torch.allclose(
        methods["hires_cam"](net, x, classes), hires_cam(net, "relu3", x, classes, upsample="bilinear")
    )
    # Integrated Gradients from a black image: completeness, the map sums to the change of the score
    ig = methods["integrated_gradients"](net, x, classes)
    with torch.no_grad():
        change = (net(x) - net(torch.zeros_like(x))).gather(1, torch.tensor(classes)[:, None])[:, 0]
    assert torch.allclose(ig.sum((1, 2, 3)), change, rtol=0.05, atol=0.02)
    # SmoothGrad: the same seed, the same map; another seed, another map
    again = saliency_methods("relu3", smoothgrad_samples=4)["smoothgrad"](net, x, classes)
    other = saliency_methods("relu3", smoothgrad_samples=4, seed=1)["smoothgrad"](net, x, classes)
    first = methods["smoothgrad"](net, x, classes)
    assert torch.equal(first, again) and not torch.allclose(first, other)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": ""}, "layer must be the Grad-CAM layer's dotted name"),
        ({"layer": "relu3", "smoothgrad_samples": 0}, "smoothgrad_samples"),
        ({"layer": "relu3", "ig_steps": 1}, "ig_steps"),
        ({"layer": "relu3", "smoothgrad_noise": 0.0}, "smoothgrad_noise must be a positive share"),
    ],
)
def test_saliency_methods_refuses_bad_settings(kwargs, message) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        saliency_methods(**kwargs)


def test_tag_evidence_reads_share_and_peak_per_image() -> None:
    box = Box(top=4, left=4, height=2, width=2, image_size=(8, 8))
    maps = torch.zeros(4, 3, 8, 8)
    maps[0, :, 4, 4] = 1.0  # all on the tag
    maps[1, 0, 0, 0], maps[1, 0, 5, 5] = 3.0, 1.0  # peak far away, a quarter on the tag
    maps[2, 1, 3, 3] = -2.0  # peak one pixel off the box (a diagonal neighbour), negative
    evidence = tag_evidence(maps, box)  # map 3 is blank
    assert evidence.shares.tolist() == [1.0, 0.25, 0.0, 0.0]
    assert evidence.peaks.tolist() == [True, False, True, False] and evidence.blank.tolist() == [0, 0, 0, 1]
    assert tag_evidence(maps, box, margin=0).peaks.tolist() == [True, False, False, False]
    assert evidence.share == pytest.approx(0.3125) and evidence.peak_rate == 0.5


def test_separation_is_the_area_under_the_roc_curve() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 200), rng.normal(0, 1, 300)
    pairs = (a[:, None] > b[None, :]).mean()
    assert separation(a, b) == pytest.approx(pairs) and 0.7 < separation(a, b) < 0.8
    assert separation(b, a) == pytest.approx(1 - pairs)
    assert separation([1, 2], [3, 4]) == 0.0 and separation([2, 2], [2]) == 0.5
    with pytest.raises(ValueError, match="finite values for both models"):
        separation([], [1.0])
    with pytest.raises(ValueError, match="finite values"):
        separation([np.nan], [1.0])


def test_tag_effect_is_zero_for_a_model_blind_to_the_tag_and_large_for_one_that_reads_it() -> None:
    data = tagged_dataset(6, "confounded", seed=0, size=16, box=corner_box(size=4, image_size=16))

    class Reader(nn.Module):
        """Calls 'squirrel' (1) exactly when the tag's white label is in the corner."""

        def __init__(self, box: Box) -> None:
            super().__init__()
            self.mask = torch.from_numpy(box.mask()).float()
            self.scale = nn.Parameter(torch.tensor(20.0))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            brightness = (images.mean(1) * self.mask).sum((1, 2)) / self.mask.sum()
            return torch.stack([torch.zeros_like(brightness), self.scale * (brightness - 0.6)], 1)

    blind = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        blind[0].weight.zero_()
    assert tag_effect(blind, data) == pytest.approx(0.0, abs=1e-7)
    assert tag_effect(Reader(data.box), data) > 0.5
    with pytest.raises(TypeError, match="data must be TaggedImages"):
        tag_effect(blind, data.images)
