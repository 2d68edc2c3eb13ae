"""utils.ground_truth: the methods, the tag evidence of maps, the separation of two models, the tag's effect."""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from captum.attr import DeepLift, IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from utils.cams import grad_cam_plus_plus, hires_cam, layer_cam, score_cam
from utils.categories import describe
from utils.ground_truth import METHOD_NAMES, saliency_methods, separation, tag_effect, tag_evidence
from utils.saliency import grad_cam, guided_backprop, guided_grad_cam, upsample_cam
from utils.shortcuts import Box, corner_box, retag, small_cnn, tagged_dataset


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


@pytest.fixture(scope="module")
def signed() -> torch.Tensor:
    """Inputs with negative values, as normalised photos have: max + min is far from max - min."""
    return torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1)) * 4 - 3


def _captum_smoothgrad(
    net: nn.Module, x: torch.Tensor, classes: list[int], samples: int, noise: float, seed: int
) -> torch.Tensor:
    """Captum's SmoothGrad called directly: signed gradients of noisy copies, noise = share x the input's range."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stdev = noise * float(x.max() - x.min())
        tunnel = NoiseTunnel(Saliency(net))
        return tunnel.attribute(
            x.clone(), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev, target=classes, abs=False
        )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_smoothgrad_is_captums_noise_tunnel_with_the_documented_defaults(net, signed) -> None:
    classes = [0, 1]
    default = saliency_methods("relu3")["smoothgrad"](net, signed, classes)
    assert torch.allclose(default, _captum_smoothgrad(net, signed, classes, 8, 0.15, 0), atol=1e-7)
    chosen = saliency_methods("relu3", smoothgrad_samples=3, smoothgrad_noise=0.4, seed=5)["smoothgrad"]
    assert torch.allclose(chosen(net, signed, classes), _captum_smoothgrad(net, signed, classes, 3, 0.4, 5), atol=1e-7)
    # the maps keep their sign (abs=False), and more noise gives another map
    assert (default < 0).any() and not torch.allclose(default, _captum_smoothgrad(net, signed, classes, 8, 0.5, 0))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_smoothgrad_leaves_every_devices_generator_as_it_found_it(net, signed, monkeypatch) -> None:
    """torch.manual_seed reseeds every accelerator too (Captum draws the noise on the input's device): the method's
    seeding must restore them all, not the CPU's generator alone (fake accelerators, as tests/test_random_state.py)."""
    from test_random_state import FakeGenerators

    fake = FakeGenerators(monkeypatch)
    cpu = torch.get_rng_state()
    saliency_methods("relu3", smoothgrad_samples=2, seed=9)["smoothgrad"](net, signed, [0, 1])
    assert fake.states == fake.first and torch.equal(torch.get_rng_state(), cpu)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_integrated_gradients_and_deeplift_start_from_black_as_captum_does(net, signed) -> None:
    classes = [1, 0]
    zeros = torch.zeros_like(signed)
    expected = IntegratedGradients(net).attribute(signed, zeros, target=classes, n_steps=16)
    assert torch.allclose(saliency_methods("relu3")["integrated_gradients"](net, signed, classes), expected)
    few = IntegratedGradients(net).attribute(signed, zeros, target=classes, n_steps=2)
    assert torch.allclose(saliency_methods("relu3", ig_steps=2)["integrated_gradients"](net, signed, classes), few)
    assert not torch.allclose(few, expected)  # so the step count is seen
    deeplift = saliency_methods("relu3")["deeplift"](net, signed, classes)
    assert torch.allclose(deeplift, DeepLift(net).attribute(signed, zeros, target=classes))
    assert deeplift.abs().sum() > 0


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_gradient_is_signed_as_captums_saliency_without_abs(net, signed) -> None:
    gradient = saliency_methods("relu3")["gradient"](net, signed, [0, 1])
    assert torch.equal(gradient, Saliency(net).attribute(signed.clone(), target=[0, 1], abs=False))
    assert (gradient < 0).any()


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("grad_cam_plus_plus", grad_cam_plus_plus),
        ("hires_cam", hires_cam),
        ("score_cam", score_cam),
        ("layer_cam", layer_cam),
        ("grad_cam", grad_cam),
    ],
)
def test_each_cam_is_its_function_upsampled_bilinear(net, x, name, function) -> None:
    expected = function(net, "relu3", x, [0, 1, 1], upsample="bilinear")
    assert torch.allclose(saliency_methods("relu3")[name](net, x, [0, 1, 1]), expected)


def test_guided_grad_cam_upsamples_bilinear_as_the_paper_not_captums_nearest(net, x) -> None:
    bilinear = guided_grad_cam(net, "relu3", x, [0, 1, 1], interpolate_mode="bilinear")
    assert torch.allclose(saliency_methods("relu3")["guided_grad_cam"](net, x, [0, 1, 1]), bilinear)
    assert not torch.allclose(bilinear, guided_grad_cam(net, "relu3", x, [0, 1, 1], interpolate_mode="nearest"))


class _Noisy(nn.Sequential):
    """small_cnn that issues a warning of its own on every forward pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn("the model's own note", RuntimeWarning, stacklevel=2)
        return super().forward(x)


@pytest.mark.parametrize("name", list(METHOD_NAMES))
def test_the_methods_silence_only_their_own_expected_notes(name) -> None:
    noisy = _Noisy(OrderedDict(small_cnn(seed=0).named_children())).eval()
    method = saliency_methods("relu3", smoothgrad_samples=2, ig_steps=2)[name]
    with pytest.warns(RuntimeWarning, match="the model's own note"):
        method(noisy, torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)), [1])


@pytest.mark.parametrize("name", ["grad_cam", "guided_grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam"])
def test_a_class_without_evidence_gives_a_blank_map_without_a_warning(name) -> None:
    net = small_cnn(seed=0)
    with torch.no_grad():
        net.fc.weight.copy_(-net.fc.weight.abs())  # every channel counts against both classes: Grad-CAM is 0
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = saliency_methods("relu3")[name](net, x, [0])
    assert not maps.any()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layer": ""}, TypeError, "layer must be the Grad-CAM layer's dotted name, such as 'relu3', not ''."),
        ({"layer": 3}, TypeError, "layer must be the Grad-CAM layer's dotted name, such as 'relu3', not 3."),
        ({"smoothgrad_samples": 0}, ValueError, "smoothgrad_samples must be at least 1, got 0."),
        ({"ig_steps": 1}, ValueError, "ig_steps must be at least 2, got 1."),
        ({"seed": -1}, ValueError, "seed must be at least 0, got -1."),
        ({"seed": 1.5}, TypeError, "seed must be a whole number, not 1.5."),
        (
            {"smoothgrad_noise": 0.0},
            ValueError,
            "smoothgrad_noise must be a positive share of the input's range, not 0.0.",
        ),
        (
            {"smoothgrad_noise": -0.5},
            ValueError,
            "smoothgrad_noise must be a positive share of the input's range, not -0.5.",
        ),
        (
            {"smoothgrad_noise": True},
            ValueError,
            "smoothgrad_noise must be a positive share of the input's range, not True.",
        ),
        (
            {"smoothgrad_noise": "0.1"},
            ValueError,
            "smoothgrad_noise must be a positive share of the input's range, not '0.1'.",
        ),
    ],
)
def test_saliency_methods_refuses_bad_settings(kwargs, error, message) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        saliency_methods(**{"layer": "relu3", **kwargs})


def test_the_smallest_settings_are_accepted() -> None:
    methods = saliency_methods("relu3", smoothgrad_samples=1, ig_steps=2, seed=0, smoothgrad_noise=1)
    assert list(methods) == list(METHOD_NAMES)


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


def test_tag_evidence_goes_on_after_a_blank_map_and_takes_a_batch_of_one() -> None:
    box = Box(top=2, left=2, height=2, width=2, image_size=(8, 8))
    maps = np.zeros((3, 8, 8))
    maps[0, 2, 2] = maps[2, 3, 3] = 1.0  # map 1 is blank
    evidence = tag_evidence(maps, box)
    assert evidence.shares.tolist() == [1.0, 0.0, 1.0] and evidence.peaks.tolist() == [True, False, True]
    assert evidence.blank.tolist() == [False, True, False]
    one = tag_evidence(maps[2:], box)
    assert one.shares.tolist() == [1.0] and one.peaks.tolist() == [True]


@pytest.mark.parametrize(
    ("peak", "margin", "on_tag"),
    [
        ((1, 1), 1, True),  # the corners of the widened box
        ((4, 4), 1, True),
        ((5, 3), 1, False),  # one row below it
        ((3, 5), 1, False),  # one column right of it
        ((0, 3), 1, False),  # one row above it
        ((3, 0), 1, False),  # one column left of it
        ((5, 5), 2, True),
        ((4, 3), 0, False),  # margin 0: the box itself, rows and columns 2 and 3
        ((3, 4), 0, False),
        ((3, 3), 0, True),
        ((2, 7), 1, False),  # in the box's rows, far from its columns
        ((7, 2), 1, False),  # in the box's columns, far from its rows
    ],
)
def test_a_peak_is_on_the_tag_within_margin_pixels_of_the_box(peak, margin, on_tag) -> None:
    box = Box(top=2, left=2, height=2, width=2, image_size=(8, 8))
    maps = np.full((1, 8, 8), 0.01)
    maps[(0, *peak)] = 1.0
    assert tag_evidence(maps, box, margin=margin).peaks.tolist() == [on_tag]


@pytest.mark.parametrize(
    ("maps", "kwargs", "error", "message"),
    [
        (np.zeros((1, 8, 8)), {"margin": -1}, ValueError, "margin must be at least 0, got -1."),
        (
            np.zeros((1, 8, 8)),
            {"box": (2, 2, 2, 2)},
            TypeError,
            "box must be a Box (such as a TaggedImages' .box), not (2, 2, 2, 2).",
        ),
        (
            np.zeros((8, 8)),
            {},
            ValueError,
            "maps must be a batch N x C x H x W or N x H x W, got a float64 array of shape (8, 8).",
        ),
        (
            np.zeros((0, 8, 8)),
            {},
            ValueError,
            "maps must be a batch N x C x H x W or N x H x W, got a float64 array of shape (0, 8, 8).",
        ),
        ([[[0.0]]], {}, ValueError, "maps must be a batch N x C x H x W or N x H x W, got [[[0.0]]]."),
        (
            np.full((1, 8, 8), np.nan),
            {},
            ValueError,
            "maps contains NaN or infinite values; check the method that produced it.",
        ),
    ],
)
def test_tag_evidence_refuses_bad_input_with_one_clear_line(maps, kwargs, error, message) -> None:
    arguments = {"box": Box(top=2, left=2, height=2, width=2, image_size=(8, 8)), **kwargs}
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        tag_evidence(maps, **arguments)


def test_separation_refuses_what_is_not_numbers_with_one_clear_line() -> None:
    with pytest.raises(ValueError, match=re.escape("separation needs two sequences of numbers, not ['a'] and [1.0].")):
        separation(["a"], [1.0])
    with pytest.raises(ValueError, match=re.escape("separation needs two sequences of numbers, not [1.0] and 'b'.")):
        separation([1.0], "b")
    finite = "^separation needs finite values for both models, at least one each\\.$"
    with pytest.raises(ValueError, match=finite):
        separation([0.5, None], [0.1])  # a missing value is not a number: refused, not a numpy traceback
    with pytest.raises(ValueError, match=finite):
        separation([0.5], [None, 0.1])
    with pytest.raises(ValueError, match=finite):
        separation([0.5], [np.inf])


def test_tag_effect_is_the_mean_change_of_each_images_own_predicted_class() -> None:
    data = tagged_dataset(4, "confounded", seed=0, size=16, box=corner_box(size=4, image_size=16))
    model = small_cnn(seed=3)
    with torch.no_grad():  # move the boundary to the median image, so that both classes are predicted
        logits = model(retag(data, "all").images)
        model.fc.bias[1] -= (logits[:, 1] - logits[:, 0]).median() + 1e-4
        tagged = torch.softmax(model(retag(data, "all").images), 1)
        clean = torch.softmax(model(data.content), 1)
    changes = [abs(float(tagged[i, int(tagged[i].argmax())] - clean[i, int(tagged[i].argmax())])) for i in range(8)]
    assert len({int(c) for c in tagged.argmax(1)}) == 2  # both classes are chosen, each image its own
    assert tag_effect(model, data) == pytest.approx(np.mean(changes), rel=1e-5)
    with pytest.raises(TypeError, match=re.escape(f"not {describe(data.images)}.")):
        tag_effect(model, data.images)
