"""utils.cams: Grad-CAM++, HiResCAM, Score-CAM and LayerCAM equal pytorch-grad-cam's maps, and behave like grad_cam.

pytorch-grad-cam returns each map ReLU'd, scaled to [0, 1] and resized to the input (OpenCV, bilinear), twice
through its ``scale_cam_image``; the expected values here are that library's own output, and ours go through the
same post-processing, so what is compared is the method's maths.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from utils.cams import CAM_METHODS, grad_cam_plus_plus, hires_cam, layer_cam, score_cam
from utils.lesson import open_photo
from utils.models import load_model
from utils.saliency import grad_cam, layer_gradients
from utils.shortcuts import small_cnn

THEIRS = {
    "grad_cam": GradCAM,
    "grad_cam_plus_plus": GradCAMPlusPlus,
    "hires_cam": HiResCAM,
    "layer_cam": LayerCAM,
    "score_cam": ScoreCAM,
}


@pytest.fixture(scope="module")
def squeezenet():
    return load_model("squeezenet1_1", device="cpu")


@pytest.fixture(scope="module")
def squirrel(squeezenet):
    return open_photo("squirrel", squeezenet)


def as_theirs(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Our N x 1 x h x w map through pytorch-grad-cam's post-processing (BaseCAM.forward, one layer)."""
    per_layer = scale_cam_image(np.maximum(cam[:, 0].numpy(), 0), (size[1], size[0]))[:, None]
    return scale_cam_image(np.maximum(per_layer, 0).mean(axis=1))


def theirs(method: str, model: nn.Module, layer: str, x: torch.Tensor, targets: list[int]) -> np.ndarray:
    spare = copy.deepcopy(model)  # pytorch-grad-cam calls .backward() on the model's parameters
    with THEIRS[method](model=spare, target_layers=[spare.get_submodule(layer)]) as cam:
        if method == "score_cam":
            cam.batch_size = 64
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])


@pytest.mark.parametrize("method", ["grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam"])
def test_gradient_cams_equal_pytorch_grad_cam_on_the_offline_model(method, squeezenet, squirrel) -> None:
    x, target = squirrel.x, squirrel.top_class
    ours = CAM_METHODS[method](squeezenet.model, squeezenet.target_layer_name, x, target)
    assert ours.shape == (1, 1, 13, 13) and float(ours.max()) > 0
    expected = theirs(method, squeezenet.model, squeezenet.target_layer_name, x, [target])
    assert np.abs(as_theirs(ours, (224, 224)) - expected).max() < 1e-5


def test_score_cam_equals_pytorch_grad_cam_on_the_offline_model(squeezenet, squirrel) -> None:
    # 512 masked copies each: at 112 x 112 pixels (a 6 x 6 grid) that is a quarter of the work of 224 x 224
    x = torch.nn.functional.interpolate(squirrel.x, size=(112, 112), mode="bilinear", antialias=True)
    ours = score_cam(squeezenet.model, squeezenet.target_layer_name, x, squirrel.top_class, batch_size=64)
    assert ours.shape == (1, 1, 6, 6) and float(ours.max()) > 0
    expected = theirs("score_cam", squeezenet.model, squeezenet.target_layer_name, x, [squirrel.top_class])
    assert np.abs(as_theirs(ours, (112, 112)) - expected).max() < 1e-4


@pytest.mark.parametrize("method", sorted(THEIRS))
@pytest.mark.parametrize("seed", [0, 1])
def test_every_cam_equals_pytorch_grad_cam_on_a_random_small_network(method, seed) -> None:
    net = small_cnn(seed=seed).eval()
    x = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(seed))
    targets = [0, 1, 1]
    ours = CAM_METHODS[method](net, "relu3", x, targets)
    assert ours.shape == (3, 1, 12, 12)
    expected = theirs(method, net, "relu3", x, targets)
    assert np.abs(as_theirs(ours, (48, 48)) - expected).max() < 1e-5


def test_each_cam_is_its_equation_on_the_layer_gradients(squeezenet, squirrel) -> None:
    model, layer, x, c = squeezenet.model, squeezenet.target_layer_name, squirrel.x, squirrel.top_class
    a, g, _ = (t.double() for t in layer_gradients(model, layer, x, c))
    hires = (g * a).sum(1, keepdim=True).relu()
    layer_weighted = (g.relu() * a).sum(1, keepdim=True).relu()
    alpha = g**2 / (2 * g**2 + a.sum((2, 3), keepdim=True) * g**3)
    alpha = torch.where(g != 0, alpha, 0)
    plus_plus = ((alpha * g.relu()).sum((2, 3), keepdim=True) * a).sum(1, keepdim=True).relu()
    assert torch.allclose(hires_cam(model, layer, x, c).double(), hires, rtol=1e-4, atol=1e-6 * float(hires.max()))
    assert torch.allclose(layer_cam(model, layer, x, c).double(), layer_weighted, rtol=1e-4, atol=1e-6)
    paper = grad_cam_plus_plus(model, layer, x, c, eps=0).double()
    assert torch.allclose(paper, plus_plus, rtol=1e-3, atol=1e-6 * float(plus_plus.max()))
    # pytorch-grad-cam's eps changes Grad-CAM++ where gradients are small: not the paper's map
    assert not torch.allclose(grad_cam_plus_plus(model, layer, x, c).double(), paper, rtol=1e-3)


def test_hires_cam_sums_to_the_score_when_one_linear_layer_follows_an_average() -> None:
    """Draelos and Carin's condition: the last convolution feeds global average pooling and one linear layer."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))
    x = torch.rand(1, 3, 9, 9)
    a, g, logits = layer_gradients(net, "0", x, 1)
    assert torch.allclose((g * a).sum(), logits[0, 1] - net[3].bias[1].detach(), atol=1e-5)
    # and Grad-CAM equals HiResCAM there: the gradient is the same in every cell
    assert torch.allclose(grad_cam(net, "0", x, 1), hires_cam(net, "0", x, 1), atol=1e-6)


@pytest.mark.parametrize("method", sorted(THEIRS))
def test_the_cams_leave_model_and_input_as_they_were(method) -> None:
    model = nn.Sequential(small_cnn(seed=0), nn.Dropout(0.5)).train()  # in training mode, with dropout
    model[0].conv1.weight.requires_grad_(False)  # one frozen parameter, to be left frozen
    x = torch.rand(2, 3, 48, 48)
    before = x.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    first = CAM_METHODS[method](model, "0.relu3", x, [0, 1])
    assert torch.equal(first, CAM_METHODS[method](model, "0.relu3", x, [0, 1])), "dropout must be off inside"
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(x, before)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._backward_hooks or m._forward_pre_hooks for m in model.modules())


def test_upsample_and_batch_size_are_checked_before_any_work() -> None:
    net = small_cnn(seed=0)
    x = torch.rand(1, 3, 48, 48)
    assert hires_cam(net, "relu3", x, 0, upsample="bilinear").shape == (1, 1, 48, 48)
    assert score_cam(net, "relu3", x, 0, upsample=True).shape == (1, 1, 48, 48)
    for method in (grad_cam_plus_plus, hires_cam, layer_cam, score_cam):
        with pytest.raises(ValueError, match=r"upsample='cubic'; use False, True \(nearest\) or a mode"):
            method(net, "relu3", x, 0, upsample="cubic")
    with pytest.raises(ValueError, match="batch_size"):
        score_cam(net, "relu3", x, 0, batch_size=0)
    with pytest.raises(ValueError, match="eps must be a small number"):
        grad_cam_plus_plus(net, "relu3", x, 0, eps=-1.0)


@pytest.mark.parametrize("method", sorted(THEIRS))
def test_bad_layers_and_classes_get_grad_cams_messages(method) -> None:
    net = small_cnn(seed=0)
    x = torch.rand(1, 3, 48, 48)
    with pytest.raises(ValueError, match="Layer 'relu9' is not in"):
        CAM_METHODS[method](net, "relu9", x, 0)
    with pytest.raises(ValueError, match="Class index 7 is out of range"):
        CAM_METHODS[method](net, "relu3", x, 7)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        CAM_METHODS[method](net, "relu3", x.numpy(), 0)


def test_score_cam_does_not_depend_on_its_batch_size() -> None:
    net = small_cnn(seed=3)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(score_cam(net, "relu3", x, [0, 1], batch_size=1), score_cam(net, "relu3", x, [0, 1]))


# --- what a caller sees: the upsampling asked for, class names, eps, the batches Score-CAM runs ---------------


@pytest.mark.parametrize("method", sorted(THEIRS))
def test_upsample_by_name_is_that_interpolation_of_the_layers_map(method) -> None:
    net = small_cnn(seed=1)
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    small = CAM_METHODS[method](net, "relu3", x, 1)
    bilinear = torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear")
    assert torch.allclose(CAM_METHODS[method](net, "relu3", x, 1, upsample="bilinear"), bilinear, atol=1e-6)
    nearest = torch.nn.functional.interpolate(small, size=(48, 48), mode="nearest")
    assert torch.allclose(CAM_METHODS[method](net, "relu3", x, 1, upsample=True), nearest, atol=1e-6)
    assert (bilinear - nearest).abs().max() > 0.01 * nearest.max()  # the two modes differ on this map


@pytest.mark.parametrize("method", sorted(THEIRS))
def test_a_class_named_in_the_models_own_categories_is_that_class(method) -> None:
    net = small_cnn(seed=2)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    by_index = CAM_METHODS[method](net, "relu3", x, [1, 0])
    by_name = CAM_METHODS[method](net, "relu3", x, ["squirrel", "cat"], categories=("cat", "squirrel"))
    assert torch.allclose(by_name, by_index, rtol=1e-5, atol=0)
    swapped = CAM_METHODS[method](net, "relu3", x, [0, 1])
    assert not torch.allclose(by_index, swapped, rtol=1e-3, atol=0)  # the other class's maps differ


class Exact(nn.Module):
    """The target layer is the input itself (A = x); class 0's score is sum(W * A), so its gradient is W exactly."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Identity()
        self.weight = nn.Parameter(weight, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (self.a(x) * self.weight).sum(dim=(1, 2, 3))
        return torch.stack([score, -score], dim=1)


def test_grad_cam_plus_plus_weights_on_exact_gradients() -> None:
    """alpha = g^2 / (2 g^2 + sum(A) g^3), with eps=0. Channel 0: g = 1 and sum(A) = -1, so alpha = 1 / 1 = 1 in each
    of the 4 cells and w = 4. Channel 1: g = 1 and sum(A) = -2, so the denominator is 0: the closed form is undefined
    there and the channel gets no weight (not g^2 / 1). Channel 2: g = 0, no weight."""
    a = torch.tensor([[[1.0, -1.0], [-0.5, -0.5]], [[-1.0, 1.0], [-1.0, -1.0]], [[3.0, 0.0], [0.0, 0.0]]]).unsqueeze(0)
    g = torch.tensor([1.0, 1.0, 0.0])[:, None, None].expand(3, 2, 2).clone()
    cam = grad_cam_plus_plus(Exact(g), "a", a, 0, eps=0)
    assert cam.tolist() == [[[[4.0, 0.0], [0.0, 0.0]]]]  # ReLU(4 A_0): channel 1 (positive top right) adds nothing


@pytest.mark.parametrize("eps", [-1.0, 1, 1.0, 1.5, "0.1", True])
def test_an_eps_that_is_not_a_small_number_is_named(eps) -> None:
    net = small_cnn(seed=0)
    message = f"eps must be a small number >= 0 (0 for the paper's formula), not {eps!r}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        grad_cam_plus_plus(net, "relu3", torch.rand(1, 3, 48, 48), 0, eps=eps)


def test_score_cam_names_a_bad_batch_size() -> None:
    with pytest.raises(ValueError, match=r"^batch_size must be at least 1, got 0\.$"):
        score_cam(small_cnn(seed=0), "relu3", torch.rand(1, 3, 48, 48), 0, batch_size=0)


def test_score_cam_runs_32_masked_images_at_a_time_unless_told() -> None:
    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn(seed=0, channels=40)
            self.batches: list[int] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.batches.append(x.shape[0])
            return self.net(x)

    model = Counting()
    x = torch.rand(1, 3, 48, 48)
    score_cam(model, "net.relu3", x, 0)
    assert model.batches == [1, 32, 8]  # one pass for the activations, then 40 masked images
    model.batches.clear()
    score_cam(model, "net.relu3", x, 0, batch_size=15)
    assert model.batches == [1, 15, 15, 10]


def test_an_unknown_upsample_mode_is_named_with_the_modes_there_are() -> None:
    expected = "upsample='cubic'; use False, True (nearest) or a mode: nearest, nearest-exact, bilinear, bicubic, area."
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        layer_cam(small_cnn(seed=0), "relu3", torch.rand(1, 3, 48, 48), 0, upsample="cubic")


def test_score_cam_is_its_equation_in_the_models_precision() -> None:
    """A float64 model gets a float64 map: softmax over the channels of the class scores of the masked inputs."""
    a = torch.rand(1, 4, 5, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    weight = torch.randn(4, 5, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    cam = score_cam(Exact(weight), "a", a, 0)
    m = (a[0] - a[0].amin((1, 2), keepdim=True)) / (a[0].amax((1, 2)) - a[0].amin((1, 2)) + 1e-8)[:, None, None]
    scores = torch.stack([(weight * (m[k] * a[0])).sum() for k in range(4)])  # class 0's score of each masked input
    expected = (torch.softmax(scores, 0)[:, None, None] * a[0]).sum(0).relu()
    assert cam.dtype == torch.float64 and torch.allclose(cam[0, 0], expected, rtol=1e-12, atol=0)


def test_score_cam_of_a_channel_that_barely_varies_is_finite() -> None:
    """A channel whose values span 1e-8 is scaled to [0, 0.5] by the guard in (A - min) / (max - min + 1e-8)."""
    a = torch.tensor([[[[0.0, 1e-8], [0.0, 0.0]], [[1.0, 0.0], [0.0, 2.0]]]], dtype=torch.float64)
    cam = score_cam(Exact(torch.ones(2, 2, 2, dtype=torch.float64)), "a", a, 0)
    assert torch.isfinite(cam).all() and float(cam.max()) > 0


def test_score_cam_of_a_sparse_input_is_that_of_the_dense_one() -> None:
    net = small_cnn(seed=0)
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(score_cam(net, "relu3", x.to_sparse(), 0), score_cam(net, "relu3", x, 0))
