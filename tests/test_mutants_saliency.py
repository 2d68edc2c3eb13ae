"""utils.saliency's shared helpers, value by value: the checks and copies every map module relies on.

tests/test_saliency.py compares the maps with Captum; these pin the small helpers its mutants used to change
unnoticed (the whole message of each refusal, the copy that keeps the caller's array safe, the smallest-input
search that names the size a model needs).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from _shared import refuses
from torch import nn

from utils.saliency import (
    ZeroGradCamWarning,
    as_float_array,
    channel_sum,
    check_class_range,
    class_indices,
    class_scores,
    conv_layers,
    drop_leading_ones,
    forward_sized,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    guided_grad_cam_factors,
    last_conv_layer,
    layer_gradients,
    magnitude,
    one_map,
    resolve_layer,
    saliency_maps,
    upsample_cam,
)

# --- as_float_array ----------------------------------------------------------------------------


def test_as_float_array_copies_even_a_float64_array() -> None:
    data = np.arange(4.0)
    out = as_float_array(data)
    assert out.dtype == np.float64 and not np.shares_memory(out, data)
    out[0] = 99.0
    assert data[0] == 0.0, "changing the result changed the caller's array"
    tensor = torch.arange(3.0, dtype=torch.float64)
    assert not np.shares_memory(as_float_array(tensor), tensor.numpy())


def test_as_float_array_names_what_it_refuses() -> None:
    with refuses(TypeError, "s_a must hold real numbers, not complex128."):
        as_float_array(np.zeros(2, dtype=complex), "s_a")
    with refuses(TypeError, "s_a must hold real numbers, not torch.complex64."):
        as_float_array(torch.zeros(2, dtype=torch.complex64), "s_a")
    with refuses(TypeError, "s_a must hold real numbers, not <U1."):
        as_float_array(np.array(["a"]), "s_a")
    with refuses(TypeError, "s_a must be a numpy array or a torch tensor, not tuple."):
        as_float_array((1.0,), "s_a")
    assert as_float_array(np.array([1, 2], dtype=np.uint8)).tolist() == [1.0, 2.0]


# --- drop_leading_ones ----------------------------------------------------------------------------


def test_drop_leading_ones_keeps_what_it_is_told_and_checks_keep() -> None:
    assert drop_leading_ones(np.zeros((1, 1)), keep=0).shape == ()
    assert drop_leading_ones(np.zeros((1, 1, 1, 5))).shape == (1, 5)
    assert drop_leading_ones(torch.zeros(1, 1, 2, 3), keep=3).shape == (1, 2, 3)
    with refuses(ValueError, "keep must be at least 0, got -1."):
        drop_leading_ones(np.zeros((1, 2)), keep=-1)
    with refuses(TypeError, "keep must be a whole number, not True."):
        drop_leading_ones(np.zeros((1, 2)), keep=True)
    with refuses(TypeError, "array must be a numpy array or a torch tensor, not [1, 2]."):
        drop_leading_ones([1, 2])


# --- one_map, magnitude, channel_sum ------------------------------------------------------------


@pytest.mark.parametrize("reduce", [one_map, magnitude, channel_sum])
def test_the_reductions_name_the_argument_in_their_errors(reduce) -> None:
    with refuses(
        ValueError,
        "s_b must be H x W, C x H x W or 1 x C x H x W, got shape (2, 3, 4, 4); pass one map, e.g. maps[i:i + 1].",
    ):
        reduce(np.zeros((2, 3, 4, 4)), "s_b")
    with refuses(ValueError, "s_b contains NaN or infinite values; check the method that produced it."):
        reduce(np.array([[0.0, np.inf]]), "s_b")
    with refuses(TypeError, "s_b must be a numpy array or a torch tensor, not list."):
        reduce([[0.0]], "s_b")
    with refuses(
        ValueError, "map must be H x W, C x H x W or 1 x C x H x W, got shape (0, 3); pass one map, e.g. maps[i:i + 1]."
    ):
        reduce(np.zeros((0, 3)))


def test_the_smallest_maps_are_accepted() -> None:
    assert one_map(np.array([[2.0]])).shape == (1, 1)
    assert magnitude(np.array([[-2.0]])).tolist() == [[2.0]]
    assert one_map(np.zeros((5,)).reshape(1, 5)).shape == (1, 5)


def test_a_two_dimensional_map_is_not_summed_over_its_rows() -> None:
    picture = np.array([[1.0, -2.0], [3.0, -4.0]])
    assert magnitude(picture).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert channel_sum(picture).tolist() == picture.tolist()
    assert channel_sum(picture, positive=True).tolist() == [[1.0, 0.0], [3.0, 0.0]]
    three = np.stack([picture, -picture, picture])
    assert magnitude(three).tolist() == [[3.0, 6.0], [9.0, 12.0]]
    assert channel_sum(three, positive=True).tolist() == [[2.0, 2.0], [6.0, 4.0]]


def test_channel_sum_checks_its_flag_by_name() -> None:
    with refuses(TypeError, "positive must be True or False, not 1."):
        channel_sum(np.zeros((2, 2)), positive=1)


def test_last_conv_layer_names_a_model_without_one() -> None:
    with refuses(ValueError, "Sequential has no convolutional layer (nn.Conv2d); Grad-CAM needs one."):
        last_conv_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


# --- the smallest input a model takes -----------------------------------------------------------


class NeedsSide(nn.Module):
    """A classifier that refuses (RuntimeError, as a pooling layer would) an input smaller than ``side``."""

    def __init__(self, side: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.side = side
        self.conv = nn.Conv2d(3, 2, 1).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.side:
            raise RuntimeError(f"Output size is too small for {tuple(x.shape)}")
        return self.conv(x).mean(dim=(2, 3))


@pytest.mark.parametrize(
    "side, given",
    [
        (21, 2),  # doubles 2 -> 4 -> 8 -> 16 -> 32, then bisects to 21
        (2, 1),  # the smallest search: 1 fails, 2 works
        (17, 16),
        (1024, 1),  # the search stops at 1024, the limit itself included
    ],
)
def test_an_input_too_small_is_named_with_the_exact_smallest_side(side: int, given: int) -> None:
    model = NeedsSide(side)
    message = (
        f"x is {given} x {given} pixels, too small for NeedsSide: it needs at least {side} x {side} pixels "
        "(the course's models take 224 x 224 from preprocess_imagenet_image)."
    )
    with refuses(ValueError, message):
        guided_backprop(model, torch.rand(1, 3, given, given), 0)


def test_the_probe_has_the_inputs_dtype() -> None:
    model = NeedsSide(9, torch.float64)
    with pytest.raises(ValueError, match="it needs at least 9 x 9 pixels"):
        guided_backprop(model, torch.rand(1, 3, 4, 4, dtype=torch.float64), 0)


class OnItsDevice(NeedsSide):
    """As a model on a GPU does, refuses an input on another device than its weights (here on the meta device)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device != self.conv.weight.device:
            raise RuntimeError(f"Expected all tensors to be on the same device, got {x.device}")
        return super().forward(x)


def test_the_probe_is_made_on_the_inputs_device() -> None:
    """A model on the meta device (no data, no accelerator needed): a probe made on the CPU would fail at every size."""
    from utils.saliency import _smallest_input

    model = OnItsDevice(9).to("meta")
    assert _smallest_input(model, torch.zeros(1, 3, 4, 4, device="meta")) == 9


class SquareOnly(nn.Module):
    """A classifier that refuses any input that is not square, whatever its size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != x.shape[-2]:
            raise RuntimeError("only square inputs")
        return x.mean((2, 3))


def test_a_model_that_runs_at_the_shorter_side_keeps_its_own_error() -> None:
    """4 x 6 fails but 4 x 4 runs: not a question of size (it used to say "needs at least 5 x 5 pixels")."""
    with pytest.raises(RuntimeError, match="^only square inputs$"):
        guided_backprop(SquareOnly(), torch.rand(1, 3, 4, 6), 0)
    with pytest.raises(RuntimeError, match="^only square inputs$"):  # the shorter side may be 1 pixel
        guided_backprop(SquareOnly(), torch.rand(1, 3, 1, 6), 0)


def test_an_image_without_a_batch_axis_is_named_with_its_size() -> None:
    with refuses(
        ValueError,
        "x is 4 x 4 pixels, too small for NeedsSide: it needs at least 9 x 9 pixels (the course's models take "
        "224 x 224 from preprocess_imagenet_image).",
    ):
        forward_sized(NeedsSide(9), torch.rand(3, 4, 4))


def test_a_model_that_fails_at_every_size_keeps_its_own_error() -> None:
    class Broken(NeedsSide):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="^mat1 and mat2 shapes cannot be multiplied$"):
        guided_backprop(Broken(1), torch.rand(1, 3, 4, 4), 0)


def test_past_the_limit_the_models_own_error_stands() -> None:
    with pytest.raises(RuntimeError, match="Output size is too small"):
        guided_backprop(NeedsSide(1025), torch.rand(1, 3, 4, 4), 0)


def test_layer_gradients_reads_class_names_from_the_given_categories() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.rand(1, 3, 8, 8)
    by_name = layer_gradients(net, "1", x, "cup", categories=("cat", "cup"))
    by_index = layer_gradients(net, "1", x, 1)
    for got, expected in zip(by_name, by_index):
        assert torch.equal(got, expected)
    with pytest.raises(TypeError, match="categories must be a sequence of names"):
        layer_gradients(net, "1", x, 1, categories="cat")


def test_layer_gradients_are_the_plain_activations_gradients_and_scores() -> None:
    """Computed independently with a forward hook and autograd: no guided rule, however many ReLUs follow."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()
    x = torch.rand(2, 3, 10, 10)
    kept = []
    handle = net[1].register_forward_hook(lambda module, inputs, output: kept.append(output))
    try:
        logits = net(x)
    finally:
        handle.remove()
    (expected_grad,) = torch.autograd.grad(logits[[0, 1], [2, 0]].sum(), kept[0])
    A, dA, got_logits = layer_gradients(net, "1", x, [2, 0])
    assert torch.allclose(A, kept[0].detach()) and torch.allclose(got_logits, logits.detach())
    assert torch.allclose(dA, expected_grad, atol=1e-7)
    assert not (A.requires_grad or dA.requires_grad or got_logits.requires_grad)


def test_layer_gradients_refuses_as_grad_cam_does() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.rand(1, 3, 8, 8)

    for target in (5, "dog"):
        with pytest.raises(ValueError) as ours:
            layer_gradients(net, "1", x, target, categories=("cat", "cup"))
        with pytest.raises(ValueError) as reference:
            grad_cam(net, "1", x, target, categories=("cat", "cup"))
        assert str(ours.value) == str(reference.value)


# --- the candidate layers a refusal lists -------------------------------------------------------


class Headed(nn.Module):
    """Three convolutions in ``features`` and a 1 x 1 convolution in the classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU()
        )
        self.classifier = nn.Sequential(nn.Conv2d(4, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class HeadOnly(nn.Module):
    """Its only convolution is in the head (``fc``): no layer to call the usual choice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_the_usual_choice_is_the_last_convolutional_layer_outside_the_head() -> None:
    with refuses(
        ValueError,
        "Layer 'nope' is not in Headed; convolutional layers: 'features.0', 'features.1', 'features.2', "
        "'features.3', 'features.4', 'features.5', 'classifier.0' (the last, 'features.5', is the usual choice).",
    ):
        resolve_layer(Headed(), "nope")


def test_a_model_with_convolutions_only_in_its_head_gets_no_usual_choice() -> None:
    with refuses(ValueError, "Layer 'nope' is not in HeadOnly; convolutional layers: 'fc.0'."):
        resolve_layer(HeadOnly(), "nope")


def test_a_model_without_convolutions_is_told_so() -> None:
    with refuses(ValueError, "Layer 'nope' is not in Sequential; it has no convolutional layers."):
        resolve_layer(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), "nope")


def test_a_wrong_upsample_lists_every_mode() -> None:
    with refuses(
        ValueError,
        "upsample='cubic'; use False, True (nearest) or a mode: nearest, nearest-exact, bilinear, bicubic, area.",
    ):
        grad_cam(Headed().eval(), "features.4", torch.rand(1, 3, 8, 8), 0, upsample="cubic")


# --- grad_cam, guided_grad_cam and their factors ------------------------------------------------


def test_grad_cam_runs_no_backward_pass_below_its_layer() -> None:
    """Grad-CAM needs the gradient at the layer only: the first convolution's backward never runs."""
    torch.manual_seed(1)  # a network whose maps are not blank
    net = Headed().eval()
    below = []
    handle = net.features[0].register_full_backward_hook(lambda module, grad_in, grad_out: below.append(1))
    try:
        grad_cam(net, "features.5", torch.rand(1, 3, 8, 8), 1)
        assert below == []
        guided_backprop(net, torch.rand(1, 3, 8, 8), 1)  # the hook itself works: GBP goes down to the input
        assert below == [1]
    finally:
        handle.remove()


def test_a_three_dimensional_image_is_upsampled_to_its_own_height_and_width() -> None:
    """``x`` may be one C x H x W image: the maps come back at H x W (not at W x ... from its last axes)."""
    torch.manual_seed(1)  # a network whose maps are not blank
    net, x = Headed().eval(), torch.rand(3, 9, 11)
    cam = grad_cam(net, "features.5", x, 1, upsample="bilinear")
    assert cam.shape == (1, 1, 9, 11) and cam.amin() > 0
    assert torch.allclose(cam, grad_cam(net, "features.5", x[None], 1, upsample="bilinear"))
    guided = guided_grad_cam(net, "features.5", x, 1)
    assert guided.shape == (1, 3, 9, 11)
    assert torch.allclose(guided, guided_grad_cam(net, "features.5", x[None], 1))


def test_guided_grad_cam_and_its_factors_read_class_names_from_the_given_categories() -> None:
    torch.manual_seed(1)  # a network whose maps are not blank
    net, x = Headed().eval(), torch.rand(1, 3, 8, 8)
    names = ("cat", "cup")
    by_name = guided_grad_cam(net, "features.5", x, "cup", categories=names)
    assert by_name.abs().amax() > 0
    assert torch.equal(by_name, guided_grad_cam(net, "features.5", x, 1))
    factors = guided_grad_cam_factors(net, "features.5", x, "cup", categories=names)
    assert torch.equal(factors["grad_cam"], grad_cam(net, "features.5", x, 1))
    assert torch.equal(factors["guided_backprop"], guided_backprop(net, x, 1))


# --- layer_gradients' refusals ------------------------------------------------------------------


def test_layer_gradients_quotes_a_class_name_out_of_the_models_range() -> None:
    with refuses(ValueError, "Class 'dog' is index 2, which is out of range; valid: 0-1 (the model has 2 outputs)."):
        layer_gradients(Headed().eval(), "features.5", torch.rand(1, 3, 8, 8), "dog", categories=("cat", "cup", "dog"))


class SideBranch(nn.Module):
    """``side`` runs in the forward pass, but the scores do not use its output."""

    def __init__(self, detach: bool = False) -> None:
        super().__init__()
        self.body, self.side = Headed(), nn.Conv2d(3, 2, 3)
        self.detach = detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.side(x)
        scores = self.body(x)
        return scores.detach() if self.detach else scores


def test_layer_gradients_names_a_layer_the_score_does_not_depend_on() -> None:
    message = (
        "The class score does not depend on layer {!r}; convolutional layers: 'body.features.0', 'body.features.1', "
        "'body.features.2', 'body.features.3', 'body.features.4', 'body.features.5', 'body.classifier.0', 'side' "
        "(the last, 'side', is the usual choice)."
    )
    x = torch.rand(1, 3, 8, 8)
    with refuses(ValueError, message.format("side")):  # a layer off the path to the scores
        layer_gradients(SideBranch().eval(), "side", x, 0)
    with refuses(ValueError, message.format("body.features.4")):  # scores detached from every layer
        layer_gradients(SideBranch(detach=True).eval(), "body.features.4", x, 0)
    with refuses(ValueError, message.format("side")):  # grad_cam says the same
        grad_cam(SideBranch().eval(), "side", x, 0)


def test_layer_gradients_names_a_layer_that_does_not_run() -> None:
    net = SideBranch().eval()
    net.forward = lambda x: net.body(x)  # side never runs now
    with refuses(
        ValueError,
        "Layer 'side' did not run in the forward pass; choose a layer that runs once. Convolutional layers: "
        "'body.features.0', 'body.features.1', 'body.features.2', 'body.features.3', 'body.features.4', "
        "'body.features.5', 'body.classifier.0', 'side' (the last, 'side', is the usual choice).",
    ):
        layer_gradients(net, "side", torch.rand(1, 3, 8, 8), 0)


# --- saliency_maps' targets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "targets, keys",
    [(np.array(1), [1]), (np.array([1, 0]), [1, 0]), (torch.tensor(1), [1]), ([torch.tensor(1), np.int64(0)], [1, 0])],
    ids=["0-D array", "1-D array", "0-D tensor", "tensor and numpy entries"],
)
def test_saliency_maps_takes_numpy_and_tensor_classes_as_int_keys(targets, keys) -> None:
    torch.manual_seed(1)  # a network whose maps are not blank
    net, x = Headed().eval(), torch.rand(2, 3, 8, 8)
    maps = saliency_maps(net, "features.5", x, targets)
    assert list(maps) == keys and all(type(key) is int for key in maps)
    for key in keys:
        expected = grad_cam(net, "features.5", x, key)
        assert expected.amin() > 0 and torch.equal(maps[key]["grad_cam"], expected)


@pytest.mark.parametrize(
    "targets, message",
    [
        (torch.tensor([[1]]), "targets as a tensor must be 0-D or 1-D integers, not torch.int64 (1, 1)."),
        (torch.tensor([1.0]), "targets as a tensor must be 0-D or 1-D integers, not torch.float32 (1,)."),
        (
            np.array([[1, 0]]),
            "Each target in saliency_maps is one class for all images; for one per image use guided_grad_cam.",
        ),
        (
            [torch.tensor([1, 0])],
            "Each target in saliency_maps is one class for all images; for one per image use guided_grad_cam.",
        ),
        ([], "targets is empty; give at least one class (an index or a category name)."),
    ],
    ids=["2-D tensor", "float tensor", "2-D array", "a 1-D tensor as one target", "empty"],
)
def test_saliency_maps_refuses_targets_that_are_not_one_class_each(targets, message) -> None:
    with refuses(ValueError, message):
        saliency_maps(Headed().eval(), "features.5", torch.rand(1, 3, 8, 8), targets)


# --- upsample_cam -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cam, shown",
    [
        (torch.zeros(1, 1, 2, 2, dtype=torch.int64), "a torch.int64 tensor of shape (1, 1, 2, 2)"),
        (torch.zeros(1, 2, 2), "a torch.float32 tensor of shape (1, 2, 2)"),
        ([[0.0]], "[[0.0]]"),
        (torch.zeros(1, 1, 0, 2), "a torch.float32 tensor of shape (1, 1, 0, 2)"),
    ],
    ids=["integers", "3-D", "a list", "empty"],
)
def test_upsample_cam_names_a_cam_it_cannot_take(cam, shown) -> None:
    with refuses(ValueError, f"cam must be an N x 1 x h x w float tensor (what grad_cam returns), got {shown}."):
        upsample_cam(cam, (4, 4))


def test_upsample_cam_refuses_non_finite_values_and_bad_sizes() -> None:
    with refuses(ValueError, "cam contains NaN or infinite values; check the method that produced it."):
        upsample_cam(torch.tensor([[[[float("nan"), 0.0]]]]), (2, 2))
    for size, shown in [((4,), "(4,)"), ((0, 4), "(0, 4)"), ("ab", "'ab'"), ((True, 2), "(True, 2)")]:
        with refuses(ValueError, f"size must be two positive sizes (H, W), e.g. x.shape[-2:], got {shown}."):
            upsample_cam(torch.zeros(1, 1, 2, 2), size)


def test_upsample_cam_takes_a_one_cell_map_and_a_sparse_one() -> None:
    assert upsample_cam(torch.tensor([[[[3.0]]]]), (2, 3)).tolist() == [[[[3.0, 3.0, 3.0], [3.0, 3.0, 3.0]]]]
    sparse = torch.tensor([[[[0.0, 2.0]]]]).to_sparse()
    out = upsample_cam(sparse, (1, 4))
    assert out.layout == torch.strided and out.tolist() == [[[[0.0, 0.0, 2.0, 2.0]]]]


# --- the guided rule, interpolation modes, class lists --------------------------------------------


class Gated(nn.Module):
    """Scores scaled by ReLU(a parameter): a ReLU whose output needs no gradient while parameters are frozen."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.gate = Headed(), nn.ReLU()
        self.scale = nn.Parameter(torch.tensor([2.0, -1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.gate(self.scale)


def test_the_guided_rule_skips_a_relu_whose_output_needs_no_gradient() -> None:
    torch.manual_seed(1)
    net, x = Gated().eval(), torch.rand(1, 3, 8, 8)
    expected = 2.0 * guided_backprop(net.body, x, 0)
    assert expected.abs().amax() > 0
    assert torch.allclose(guided_backprop(net, x, 0), expected)


def test_an_unknown_interpolation_mode_is_named_with_every_valid_one() -> None:
    with refuses(
        ValueError, "Unknown interpolation mode 'linear'; valid: nearest, nearest-exact, bilinear, bicubic, area."
    ):
        upsample_cam(torch.zeros(1, 1, 2, 2), (4, 4), "linear")


def test_class_indices_refuses_what_is_not_one_class_or_one_per_image() -> None:
    with refuses(ValueError, "n must be at least 1, got 0."):
        class_indices(0, 0)
    with refuses(ValueError, "A target tensor must be 0-D or 1-D (one class per image), not shape (2, 2)."):
        class_indices(torch.zeros(2, 2, dtype=torch.int64), 2)
    with refuses(ValueError, "A target array must be 1-D (one class per image), not shape (2, 2)."):
        class_indices(np.zeros((2, 2), dtype=int), 2)


def test_resolve_layer_checks_the_model_and_offers_three_close_names() -> None:
    with refuses(TypeError, "model must be a torch nn.Module (e.g. load_model().model), not 'net'."):
        resolve_layer("net", "x")
    net = nn.Sequential()
    for i in range(1, 6):
        net.add_module(f"conv{i}", nn.Conv2d(3, 3, 1))
    with refuses(
        ValueError,
        "Layer 'conv' is not in Sequential; convolutional layers: 'conv1', 'conv2', 'conv3', 'conv4', 'conv5' "
        "(the last, 'conv5', is the usual choice). Closest names: 'conv5', 'conv4', 'conv3'.",
    ):
        resolve_layer(net, "conv")


# --- the layer's output -------------------------------------------------------------------------


class Paired(nn.Module):
    """A module that returns a tuple, as some blocks do."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


class Narrow(nn.Module):
    """Feature maps ``h x 1`` (pooled over the width only) before the head."""

    def __init__(self, height: int) -> None:
        super().__init__()
        self.conv, self.pool, self.pair = nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d((height, 1)), Paired()
        self.fc = nn.Linear(4 * height, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.pair(self.conv(x))[0]).flatten(1))


def test_a_layer_whose_output_is_not_a_feature_map_is_named() -> None:
    with refuses(
        ValueError,
        "Layer 'pair' outputs tuple, not an N x C x h x w feature map; convolutional layers: 'conv' "
        "(the last, 'conv', is the usual choice).",
    ):
        layer_gradients(Narrow(2).eval(), "pair", torch.rand(1, 3, 6, 6), 0)


def test_a_one_cell_map_is_refused_but_a_map_one_cell_wide_is_not() -> None:
    with refuses(
        ValueError,
        "Layer 'pool' outputs (1, 4, 1, 1): a 1 x 1 map shows no region; choose a layer before the global pooling "
        "(or a larger input). Convolutional layers: 'conv' (the last, 'conv', is the usual choice).",
    ):
        layer_gradients(Narrow(1).eval(), "pool", torch.rand(1, 3, 6, 6), 0)
    activations, _, _ = layer_gradients(Narrow(3).eval(), "pool", torch.rand(1, 3, 6, 6), 0)
    assert activations.shape == (1, 4, 3, 1)


# --- the blank-map warning ----------------------------------------------------------------------


def brightness_net(outputs: int = 2) -> nn.Sequential:
    """Class 0's score is the mean of ReLU(sum of the channels): its Grad-CAM is blank on a dark image only."""
    net = nn.Sequential(nn.Conv2d(3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, outputs))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.zero_()
        net[4].weight.fill_(-1.0)
        net[4].weight[0] = 1.0
        net[4].bias.zero_()
    return net.eval()


def test_the_blank_map_warning_names_the_image_the_class_and_the_learners_line() -> None:
    bright, dark = torch.rand(1, 3, 4, 4) + 0.1, -torch.rand(1, 3, 4, 4) - 0.1
    with pytest.warns(ZeroGradCamWarning) as seen:
        grad_cam(brightness_net(), "1", torch.cat([bright, dark]), 0)
    assert [str(w.message) for w in seen] == [
        "Grad-CAM for class 0 on image 1 is zero everywhere: no region of layer '1' increases the score of this "
        "class, so the map (and Guided Grad-CAM) is blank. The class is probably absent from the image; try the top "
        "class."
    ]
    if "mutmut" not in sys.modules:  # mutmut's trampolines put frames of their own between the caller and here
        assert seen[0].filename == __file__, "the warning must point at the learner's call"
    with pytest.warns(ZeroGradCamWarning, match="^Grad-CAM for class 'cup' on images 0, 1 is zero"):
        grad_cam(brightness_net(), "1", torch.cat([bright, bright]), [1, 1], categories=("cat", "cup"))
    with pytest.warns(ZeroGradCamWarning, match="^Grad-CAM for class 2, 'cup' on images 0, 1 is zero"):
        grad_cam(brightness_net(3), "1", torch.cat([bright, bright]), [2, 1], categories=("cat", "cup"))


# --- the refusals every map function shares -----------------------------------------------------


class LayerOffTheInput(nn.Module):
    """Its convolution sees a constant image, not ``x``: Grad-CAM has a gradient, Guided Backpropagation none."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 2, 3), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(torch.ones_like(x)))


class Returns(nn.Module):
    """A model whose output is a tuple, or its input averaged."""

    def __init__(self, wrap: bool) -> None:
        super().__init__()
        self.wrap = wrap

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor]:
        scores = x.mean((2, 3))
        return (scores,) if self.wrap else scores


X = torch.rand(1, 3, 8, 8)
CANDIDATES = (
    "convolutional layers: 'features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'features.5', "
    "'classifier.0' (the last, 'features.5', is the usual choice)."
)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: guided_grad_cam(LayerOffTheInput().eval(), "conv", X, 0),
            ValueError,
            "The class score does not depend on the input x; check that the model uses its input.",
        ),
        (
            lambda: grad_cam(Headed().eval(), None, X, 0),
            TypeError,
            "layer is None; Grad-CAM needs a layer: a module of the model or its dotted name (see conv_layers).",
        ),
        (
            lambda: guided_backprop("net", X, 0),
            TypeError,
            "model must be a torch nn.Module (e.g. load_model().model), not 'net'.",
        ),
        (
            lambda: guided_backprop(Headed().eval(), [[0.0]], 0),
            TypeError,
            "x must be a torch.Tensor (an image C x H x W or a batch N x C x H x W), not list.",
        ),
        (
            lambda: guided_backprop(Headed().eval(), torch.zeros(0, 3, 8, 8), 0),
            ValueError,
            "x has shape (0, 3, 8, 8); expected an image C x H x W or a batch N x C x H x W.",
        ),
        (
            lambda: guided_backprop(Headed().eval(), torch.zeros(1, 8, 8, 3), 0),
            ValueError,
            "x has 8 channels (shape (1, 8, 8, 3)) but the model's first convolution takes 3 (channels last? use "
            "x.permute(0, 3, 1, 2)); preprocess the image with the model's transforms.",
        ),
        (
            lambda: guided_backprop(Headed().eval(), torch.zeros(1, 4, 8, 8), 0),
            ValueError,
            "x has 4 channels (shape (1, 4, 8, 8)) but the model's first convolution takes 3; preprocess the image "
            "with the model's transforms.",
        ),
        (
            lambda: guided_backprop(Headed().eval(), torch.full((1, 3, 8, 8), float("nan")), 0),
            ValueError,
            "x contains NaN or infinite values; check the image and its preprocessing.",
        ),
        (lambda: check_class_range([0], 0, 0), ValueError, "num_classes must be at least 1, got 0."),
        (
            lambda: check_class_range(0, 0, 2),
            TypeError,
            "classes must be a list of class indices (see class_indices), not 0.",
        ),
        (lambda: class_scores(torch.zeros(2, 2), 0), ValueError, "n must be at least 1, got 0."),
        (
            lambda: guided_backprop(Returns(wrap=True), X, 0),
            ValueError,
            "The model returned tuple; saliency maps need class scores of shape N x classes (1 x K).",
        ),
        (
            lambda: resolve_layer(HEADED, HEADED),
            ValueError,
            "The layer is the whole model, whose output is class scores; " + CANDIDATES,
        ),
        (
            lambda: resolve_layer(HEADED, nn.Conv2d(1, 1, 1)),
            ValueError,
            "The layer Conv2d is not a module of this model; " + CANDIDATES,
        ),
        (
            lambda: resolve_layer(HEADED, 3),
            TypeError,
            "A layer must be a module of the model or its dotted name, not 3.",
        ),
    ],
    ids=[
        "score off the input",
        "no layer",
        "not a model",
        "x a list",
        "empty batch",
        "channels last",
        "channel count",
        "NaN",
        "no classes",
        "classes not a list",
        "no images",
        "a tuple returned",
        "the whole model",
        "a module of another model",
        "a number as layer",
    ],
)
@pytest.mark.filterwarnings("ignore:Grad-CAM for class 0 is zero everywhere")  # the constant image's blank map
def test_each_refusal_is_one_whole_line(call, error, message) -> None:
    with refuses(error, message):
        call()


HEADED = Headed().eval()


def test_a_sparse_image_and_a_model_without_parameters_are_taken() -> None:
    torch.manual_seed(1)
    net = Headed().eval()
    assert torch.equal(guided_backprop(net, X.to_sparse(), 0), guided_backprop(net, X, 0))
    no_parameters = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    expected = torch.zeros(1, 3, 8, 8)
    expected[:, 1] = (X[:, 1] > 0).float() / 64  # d mean(ReLU(x_1)) / dx_1; nothing for the other channels
    assert torch.allclose(guided_backprop(no_parameters, X, 1), expected)


def test_the_blank_map_warning_quotes_an_imagenet_class_name_as_given() -> None:
    with pytest.warns(ZeroGradCamWarning, match="^Grad-CAM for class 'tench' is zero everywhere"):
        grad_cam(brightness_net(1000), "1", -torch.rand(1, 3, 4, 4) - 0.1, "tench")


# --- which layers conv_layers lists -------------------------------------------------------------


class ConvBlock(nn.Module):
    """A block (not a plain container) whose first submodule is its only convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 3, 1), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class NestedHead(nn.Module):
    """A convolution and, one level down, a submodule named ``head``: a classifier, not a block."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.sub = nn.Conv2d(3, 3, 1), nn.Module()
        self.sub.head = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sub.head(self.conv(x))


def test_conv_layers_lists_blocks_whole_and_looks_inside_a_classifier() -> None:
    assert [name for name, _ in conv_layers(nn.Sequential(ConvBlock(), NestedHead()))] == ["0", "1.conv", "1.sub.head"]


def test_an_activation_before_any_convolution_is_not_a_feature_map() -> None:
    assert [name for name, _ in conv_layers(nn.Sequential(nn.ReLU(), nn.Conv2d(3, 3, 1), nn.ReLU()))] == ["1", "2"]


def test_conv_layers_and_class_indices_check_their_arguments() -> None:
    with refuses(TypeError, "model must be a torch nn.Module (e.g. load_model().model), not 'net'."):
        conv_layers("net")
    assert class_indices(np.array([1, 0]), 2) == [1, 0]
    assert class_indices(np.array([1, 0]), 2, categories=("cat", "cup")) == [1, 0]


class WeightedSideBranch(SideBranch):
    """Scores times a tensor that requires grad but is not a parameter (freezing parameters leaves it on)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.ones(2, requires_grad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.weight


def test_a_layer_off_the_scores_path_is_named_even_when_the_score_needs_a_gradient() -> None:
    with pytest.raises(ValueError, match="^The class score does not depend on layer 'side'; convolutional layers"):
        layer_gradients(WeightedSideBranch().eval(), "side", torch.rand(1, 3, 8, 8), 0)
