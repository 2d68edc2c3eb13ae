"""Lesson 01's checker (utils/exercises/grad_cam.py), line by line: each usual mistake, computed here from the
layer's activations and gradients rather than taken from the checker's own table, gets the exact line a learner
sees; a scaled upsampled map, another layer found past one that does not run, the model's own warnings (mutation
testing, issue 26)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from _shared import Noisy, pooled_net, refuses
from torch import nn

from utils.exercises import Verdict
from utils.exercises.grad_cam import check_grad_cam, diagnose_grad_cam
from utils.saliency import grad_cam

X = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
LAYER = "1"


def net() -> nn.Sequential:
    """Two convolutions on an 8 x 8 grid (layer "1" is the first ReLU's output), three classes."""
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    ).eval()


def lowest(model: nn.Module) -> int:
    with torch.no_grad():
        return int(model(X)[0].argmin())


def parts(model: nn.Module, target: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layer "1"'s activations and the gradients of the logit and of the softmax probability there, C x h x w."""
    seen: list[torch.Tensor] = []
    handle = model[1].register_forward_hook(lambda module, inputs, output: seen.append(output))
    try:
        logits = model(X)
    finally:
        handle.remove()
    (A,) = seen
    (grad,) = torch.autograd.grad(logits[0, target], A, retain_graph=True)
    (grad_p,) = torch.autograd.grad(logits.softmax(dim=1)[0, target], A)
    return A.detach()[0], grad[0], grad_p[0]


def weighted(alpha: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    return (alpha[:, None, None] * A).sum(dim=0)


MISTAKES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], str]] = {
    "no ReLU": (
        lambda A, g, gp: weighted(g.mean(dim=(1, 2)), A),
        "the map has negative values: apply a ReLU to the weighted sum, keeping only evidence for the class.",
    ),
    "max instead of mean": (
        lambda A, g, gp: F.relu(weighted(g.flatten(1).max(dim=1).values, A)),
        "the channel weights are the maximum of the gradients; average them over the grid (Eq. 1).",
    ),
    "sum instead of mean": (
        lambda A, g, gp: F.relu(weighted(g.flatten(1).sum(dim=1), A)),
        "the map is h*w times too large: the weights must be the *mean* of the gradients, not their sum.",
    ),
    "no pooling": (
        lambda A, g, gp: F.relu((g * A).sum(dim=0)),
        "the gradients were multiplied with the activations pixel by pixel; average each channel's gradients over "
        "the grid first, one weight per channel.",
    ),
    "absolute gradients": (
        lambda A, g, gp: F.relu(weighted(g.abs().mean(dim=(1, 2)), A)),
        "the weights are means of |gradient|; keep the signs, so that channels that lower the score count against "
        "the class.",
    ),
    "no weights": (
        lambda A, g, gp: F.relu(A.sum(dim=0)),
        "the channels were summed without weights; weight each by its mean gradient (Eq. 1-2).",
    ),
    "softmax": (
        lambda A, g, gp: F.relu(weighted(gp.mean(dim=(1, 2)), A)),
        "the gradients are those of the softmax probability; use the class score y_c, the logit before the softmax.",
    ),
}


@pytest.mark.parametrize("target", [0, 1])
@pytest.mark.parametrize("reason", sorted(MISTAKES))
def test_each_usual_mistake_gets_its_line(reason: str, target: int) -> None:
    """For two classes: 1, the lowest, and 0, whose softmax map is not below the tolerance of a map of zeros."""
    model = net()
    mistake, text = MISTAKES[reason]
    answer = mistake(*parts(model, target))[None, None]
    assert diagnose_grad_cam(answer, model, LAYER, X, target) == Verdict(
        "wrong", reason, f"Not yet right ({reason}): {text}"
    )


def test_a_mistake_on_a_frozen_model_is_still_named() -> None:
    """The checker takes its gradients with respect to the image too: frozen weights still give A a gradient."""
    model = net().requires_grad_(False)
    target = lowest(model)
    answer = grad_cam(model, LAYER, X, target) * 64
    verdict = diagnose_grad_cam(answer, model, LAYER, X, target)
    assert verdict.reason == "sum instead of mean", verdict.message
    assert not any(p.requires_grad for p in model.parameters())


def test_negative_values_outside_the_table_name_the_lowest() -> None:
    model = net()
    target = lowest(model)
    answer = grad_cam(model, LAYER, X, target).clone()
    answer[0, 0, 2, 3] = -0.25
    assert diagnose_grad_cam(answer, model, LAYER, X, target) == Verdict(
        "wrong",
        "no ReLU",
        "Not yet right (no ReLU): the map has negative values (down to -0.25); Grad-CAM ends with a ReLU.",
    )


def test_the_largest_difference_is_named_where_it_is() -> None:
    model = net()
    target = lowest(model)
    cam = grad_cam(model, LAYER, X, target)[0, 0].double()
    answer = cam.clone()
    answer[5, 2] += 1.0
    assert diagnose_grad_cam(answer, model, LAYER, X, target).message == (
        f"Not yet right (values): the largest difference is at cell (5, 2): expected {float(cam[5, 2]):.4g}, got "
        f"{float(cam[5, 2]) + 1:.4g}; check each step: gradients of the logit, their mean per channel, the weighted "
        "sum, the ReLU."
    )


UPSAMPLED = (
    "Not yet right (upsampled): the map was upsampled to (8, 8); return it at the layer's own grid, 4 x 4 "
    "(upsampling is for display)."
)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("scale", [0.2, 2.5])
def test_an_upsampled_map_is_named_at_any_scale(mode: str, scale: float) -> None:
    model = pooled_net()
    cam = grad_cam(model, "4", X, 0)
    assert float(cam.max()) not in (0.0, 1.0)
    answer = F.interpolate(cam, size=(8, 8), mode=mode) * scale
    assert diagnose_grad_cam(answer, model, "4", X, 0).message == UPSAMPLED


def test_a_positive_map_of_the_input_size_that_is_no_grad_cam_is_a_shape_mistake() -> None:
    answer = torch.rand(8, 8, generator=torch.Generator().manual_seed(2)) + 0.1
    assert diagnose_grad_cam(answer, pooled_net(), "4", X, 0) == Verdict(
        "wrong", "shape", "Not yet right (shape): the answer has shape (8, 8), expected 4 x 4 at '4'."
    )


def test_a_map_of_another_layers_size_is_named_with_that_layer() -> None:
    model = pooled_net()
    assert diagnose_grad_cam(grad_cam(model, "1", X, 0), model, "4", X, 0).message == (
        "Not yet right (wrong layer): the answer has shape (8, 8), expected 4 x 4 at '4'; it is Grad-CAM at '1'. "
        "Use the layer you are given."
    )


class WithUnusedLayer(nn.Module):
    """A convolution that never runs, listed before the ones that do."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.unused = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_the_layer_answered_is_found_past_a_layer_that_does_not_run() -> None:
    model = WithUnusedLayer().eval()
    with pytest.raises(ValueError, match="did not run"):
        grad_cam(model, "unused", X, 1)
    verdict = diagnose_grad_cam(grad_cam(model, "body.1", X, 1), model, "body.3", X, 1)
    assert verdict == Verdict(
        "wrong",
        "wrong layer",
        "Not yet right (wrong layer): the answer is Grad-CAM at 'body.1', not at 'body.3'; hook the layer given.",
    )


def test_the_models_own_warnings_reach_the_learner_at_every_pass() -> None:
    """The search for the layer answered silences only the blank-map warning, not what the model says."""
    model = pooled_net()
    model.insert(0, Noisy())
    Noisy.passes = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdict = diagnose_grad_cam(torch.rand(8, 8, generator=torch.Generator().manual_seed(2)), model, "5", X, 0)
    assert verdict.reason == "shape"
    said = [w for w in caught if str(w.message) == "the model ran"]
    assert Noisy.passes >= 3 and len(said) == Noisy.passes


def test_the_right_answer_passes_and_a_float64_model_is_refused_where_it_enters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = net()
    assert check_grad_cam(lambda m, layer, x, t: grad_cam(m, layer, x, t), model, LAYER, X, 2, label="cat").passed
    assert capsys.readouterr().out == "cat: Correct: your Grad-CAM at 1 (8 x 8) equals utils.saliency.grad_cam.\n"
    assert diagnose_grad_cam(grad_cam(model, LAYER, X, 2), model.double(), LAYER, X, 2) == Verdict(
        "wrong",
        "dtype",
        "Not yet right (dtype): the model's weights are torch.float64 but the image is torch.float32: model.double() "
        "(or .half()) converted the lesson's model itself. Run the cell that loads the model again; to compute in "
        "float64, convert a copy inside your function: copy.deepcopy(model).double().",
    )
    with refuses(
        TypeError, "x has dtype torch.float64 but the model's weights are torch.float32; give x.to(torch.float32)."
    ):
        diagnose_grad_cam(None, net(), LAYER, X.double(), 2)


def test_shape_and_infinity_get_their_lines() -> None:
    model = net()
    cam = grad_cam(model, LAYER, X, 2)
    assert diagnose_grad_cam(cam.expand(1, 2, 8, 8), model, LAYER, X, 2).message == (
        "Not yet right (shape): the answer has shape (2, 8, 8); return one map, 1 x 1 x 8 x 8 (sum the channels)."
    )
    assert diagnose_grad_cam(cam / 0.0, model, LAYER, X, 2).message == (
        "Not yet right (not finite): the answer contains NaN or infinite values; do not divide by the map's maximum."
    )


def test_against_a_blank_reference_the_tolerance_is_absolute() -> None:
    """With the class's weights zeroed its Grad-CAM is 0 everywhere: an answer is right within 1e-4, not 2e-4."""
    model = net()
    with torch.no_grad():
        model[-1].weight[2] = 0.0
    with pytest.warns(UserWarning, match="zero everywhere"):
        assert diagnose_grad_cam(torch.full((8, 8), 0.5e-4), model, LAYER, X, 2).passed
    with pytest.warns(UserWarning, match="zero everywhere"):
        assert diagnose_grad_cam(torch.full((8, 8), 1.5e-4), model, LAYER, X, 2).reason == "values"


def test_the_tolerance_is_a_fraction_of_the_maximum_with_no_relative_part() -> None:
    model = net()
    cam = grad_cam(model, LAYER, X, 0)[0, 0].double()
    off = cam.flatten().clone()
    top = int(off.argmax())
    off[top] += 1.05e-4 * off[top]  # past 1e-4 of the maximum, within it plus a relative 1e-5
    assert diagnose_grad_cam(off.reshape(8, 8), model, LAYER, X, 0).reason == "values"


def test_the_largest_difference_is_the_answers_own_not_the_largest_value() -> None:
    model = net()
    cam = grad_cam(model, LAYER, X, 0)[0, 0].double()
    row, col = divmod(int(cam.argmin()), 8)
    answer = cam.clone()
    answer[row, col] += 0.1 * float(cam.max())
    assert diagnose_grad_cam(answer, model, LAYER, X, 0).message.startswith(
        f"Not yet right (values): the largest difference is at cell ({row}, {col}): "
    )


class FixedConvolution(nn.Module):
    """A convolution whose kernel is a buffer: a model with no parameters at all."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, padding=1)


def test_a_model_without_parameters_is_checked_in_the_images_dtype() -> None:
    model = nn.Sequential(FixedConvolution(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    assert not list(model.parameters())
    assert diagnose_grad_cam(lambda m, layer, x, t: grad_cam(m, layer, x, t), model, "1", X, 0).passed


def test_a_normalised_map_an_ignored_target_and_a_string_get_their_lines() -> None:
    model = net()
    target = lowest(model)
    cam = grad_cam(model, LAYER, X, target)
    assert diagnose_grad_cam(cam / cam.max(), model, LAYER, X, target).message == (
        "Not yet right (normalised): the map was divided by its maximum; return it as it is (scale only to draw it)."
    )
    with torch.no_grad():
        top = int(model(X).argmax())
    assert diagnose_grad_cam(grad_cam(model, LAYER, X, top), model, LAYER, X, target).message == (
        f"Not yet right (target ignored): the answer is the map of the top class ({top}), not of target {target}; "
        "use the score of the class you are given."
    )
    assert diagnose_grad_cam("map", model, LAYER, X, target).message == (
        "Not yet right (type): the answer is a str; return the map as a torch tensor (1 x 1 x h x w)."
    )


def test_a_map_of_the_input_size_against_a_blank_grad_cam_is_a_shape_mistake() -> None:
    """A blank reference upsampled is 0 everywhere: no scale makes an answer equal to it (and 0 / 0 is no scale)."""
    model = pooled_net()
    with torch.no_grad():
        model[-1].weight[1] = 0.0
    answer = torch.rand(8, 8, generator=torch.Generator().manual_seed(2)) + 0.1
    with pytest.warns(UserWarning, match="zero everywhere"):
        verdict = diagnose_grad_cam(answer, model, "4", X, 1)
    assert verdict == Verdict(
        "wrong", "shape", "Not yet right (shape): the answer has shape (8, 8), expected 4 x 4 at '4'."
    )
