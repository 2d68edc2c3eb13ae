"""Lesson 10's checker (utils/exercises/hires_cam.py), line by line: each usual mistake worked out here from the
activations and gradients read with a hook (not from the checker's table), the exact line a learner reads for it, and
the tolerance a right map is given (make mutation, issue 26).

The net: conv "0" (3 -> 4 channels), an in-place ReLU "1", conv "2" (4 -> 5), average pooling, a linear layer with three
classes; on this image its top class is 2. HiResCAM at "0" is 6 x 6, with zero cells.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import utils.exercises.hires_cam as checker
from utils.cams import hires_cam
from utils.exercises import AnswerCheckError
from utils.exercises.hires_cam import check_hires_cam, diagnose_hires_cam
from utils.saliency import upsample_cam

TARGET = 1
RIGHT = "Correct: your HiResCAM at 0 (6 x 6) equals utils.cams.hires_cam."


def make_net() -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3)).eval()


@pytest.fixture(scope="module")
def case():
    return make_net(), torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def message(answer, case, layer: str = "0", target: int = TARGET) -> str:
    net, x = case
    return diagnose_hires_cam(lambda *args: answer, net, layer, x, target).message


def activations_and_gradients(net: nn.Module, x: torch.Tensor, score) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv "0"'s output (before the in-place ReLU) and the gradient of ``score(logits)`` there, C x h x w."""
    seen = {}
    handle = net[0].register_forward_hook(lambda module, inputs, output: seen.update(A=output) or output.clone())
    try:
        logits = net(x.clone().requires_grad_(True))
    finally:
        handle.remove()
    (gradient,) = torch.autograd.grad(score(logits), seen["A"])
    return seen["A"].detach().double()[0], gradient.double()[0]


def by_hand(case) -> dict[str, torch.Tensor]:
    net, x = case
    A, g = activations_and_gradients(net, x, lambda logits: logits[0, TARGET])
    scores = {
        "softmax": lambda logits: torch.softmax(logits, dim=1)[0, TARGET],
        "log-softmax": lambda logits: torch.log_softmax(logits, dim=1)[0, TARGET],
        "cross-entropy loss": lambda logits: F.cross_entropy(logits, torch.tensor([TARGET])),
        "summed logits": lambda logits: logits.sum(),
    }
    maps = {name: F.relu((activations_and_gradients(net, x, score)[1] * A).sum(0)) for name, score in scores.items()}
    return {
        "HiResCAM": F.relu((g * A).sum(0)),
        "Grad-CAM": F.relu((g.mean(dim=(1, 2), keepdim=True) * A).sum(0)),
        "LayerCAM": F.relu((F.relu(g) * A).sum(0)),
        "no ReLU": (g * A).sum(0),
        "absolute gradients": F.relu((g.abs() * A).sum(0)),
        "mean over channels": F.relu((g * A).sum(0)) / 4,
        **maps,
    }


def test_the_maps_worked_out_here_are_the_checkers_table_and_the_reference(case) -> None:
    net, x = case
    maps = by_hand(case)
    assert torch.allclose(maps["HiResCAM"], hires_cam(net, "0", x, TARGET)[0, 0].double(), atol=1e-8)
    table = {reason: candidate for reason, _, candidate in checker._mistakes(net, "0", x, TARGET)}
    assert set(table) == set(maps) - {"HiResCAM"} | {"ReLU per channel"}
    for reason, expected in maps.items():
        if reason != "HiResCAM":
            assert table[reason].shape == (6, 6) and torch.allclose(table[reason], expected, atol=1e-9), reason
    assert (maps["no ReLU"] < 0).any() and not torch.allclose(maps["Grad-CAM"], maps["HiResCAM"])


TEXTS = {
    "Grad-CAM": "the gradient was averaged over the grid, one weight per channel: that is Grad-CAM. HiResCAM "
    "multiplies the gradient with the activations cell by cell, without the average.",
    "LayerCAM": "only the positive products were kept (a ReLU on the gradient, or on each channel's product before the "
    "sum): that is LayerCAM. Keep the gradient's sign; the ReLU comes once, after the sum over channels.",
    "no ReLU": "the map has negative values: apply a ReLU to the sum over channels.",
    "absolute gradients": "the map uses |gradient|; keep the signs, so that cells that lower the score count against "
    "the class.",
    "softmax": "the gradient is the softmax probability's; use the class score y_c, the logit before the softmax.",
    "log-softmax": "the gradient is the log-probability's (log_softmax, or a cross-entropy loss); use the class score "
    "y_c, the logit itself.",
    "cross-entropy loss": "the gradient is a loss's (cross-entropy: minus the log-probability), so its sign is "
    "flipped; HiResCAM takes the gradient of the class score y_c, the logit itself.",
    "summed logits": "the gradient is that of the sum of every class's score (backward from all the logits); take the "
    "logit of the target class only.",
    "mean over channels": "the products were averaged over the channels; HiResCAM sums them (a mean divides the map by "
    "the number of channels, 4).",
}


@pytest.mark.parametrize("reason", sorted(TEXTS))
def test_each_mistake_worked_out_by_hand_gets_its_line(case, reason) -> None:
    assert message(by_hand(case)[reason][None, None].float(), case) == f"Not yet right ({reason}): {TEXTS[reason]}"


def test_relu_per_channel_gets_its_line_where_the_layer_has_no_relu_after_it() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)).eval()
    x = torch.rand(1, 3, 8, 8)
    hook = {}
    handle = net[0].register_forward_hook(lambda module, inputs, output: hook.update(A=output))
    logit = net(x)[0, 1]
    handle.remove()
    (g,) = torch.autograd.grad(logit, hook["A"])
    answer = F.relu(g * hook["A"]).sum(1, keepdim=True).detach()
    assert diagnose_hires_cam(lambda *a: answer, net, "0", x, 1).message == (
        "Not yet right (ReLU per channel): the ReLU was applied to each channel's product before the sum; sum over "
        "channels first, then ReLU."
    )


def test_the_reference_passes_in_either_shape_and_within_the_tolerance(case) -> None:
    net, x = case
    reference = hires_cam(net, "0", x, TARGET)
    peak = float(reference.max())
    assert message(reference, case) == RIGHT and message(reference[0, 0], case) == RIGHT
    near, off = reference.clone(), reference.clone()
    near[0, 0, 2, 2] += 0.9e-4 * peak
    off[0, 0, 2, 2] += 1.5e-4 * peak
    assert message(near, case) == RIGHT
    assert diagnose_hires_cam(lambda *a: off, net, "0", x, TARGET).reason == "values"


def test_close_reads_an_all_zero_reference_with_an_absolute_tolerance() -> None:
    zeros = torch.zeros(2, 2, dtype=torch.float64)
    assert checker._close(torch.full((2, 2), 0.9e-4, dtype=torch.float64), zeros)
    assert not checker._close(torch.full((2, 2), 1.5e-4, dtype=torch.float64), zeros)
    assert not checker._close(torch.zeros(2, 3, dtype=torch.float64), zeros), "another shape is never close"


def test_same_up_to_scale_needs_two_positive_peaks() -> None:
    wanted = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert checker._same_up_to_scale(3 * wanted, wanted)
    assert not checker._same_up_to_scale(torch.zeros(1, 2, dtype=torch.float64), wanted)
    assert not checker._same_up_to_scale(wanted, torch.zeros(1, 2, dtype=torch.float64))
    assert not checker._same_up_to_scale(-wanted, -wanted), "no positive peak"


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_a_map_upsampled_to_the_image_is_named_even_when_scaled(case, mode, factor) -> None:
    net, x = case
    up = factor * upsample_cam(hires_cam(net, "0", x, TARGET), (8, 8), mode)
    assert message(up, case) == (
        "Not yet right (upsampled): the map was upsampled to (8, 8); return it at the layer's own grid, 6 x 6."
    )


def test_another_map_of_the_images_size_is_a_wrong_shape(case) -> None:
    assert message(torch.ones(8, 8), case) == "Not yet right (shape): the answer has shape (8, 8), expected 6 x 6."


@pytest.mark.parametrize(("shape", "read"), [((2, 6, 6), (2, 6, 6)), ((1, 2, 6, 6), (2, 6, 6)), ((36,), (36,))])
def test_more_than_one_map_is_told_to_return_one(case, shape, read) -> None:
    assert message(torch.ones(shape), case) == (
        f"Not yet right (shape): the answer has shape {read}; return one map, 1 x 1 x 6 x 6."
    )


def test_a_map_of_another_layers_size_names_that_layer(case) -> None:
    net, x = case
    assert message(hires_cam(net, "2", x, TARGET), case) == (
        "Not yet right (wrong layer): the answer has shape (4, 4), expected 6 x 6; it is HiResCAM at '2'. Use the "
        "layer you are given."
    )
    assert message(torch.ones(4, 4), case) == "Not yet right (shape): the answer has shape (4, 4), expected 6 x 6."


def test_a_map_of_another_layer_of_the_same_size_is_named() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()  # fmt: skip
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    other = hires_cam(net, "1", x, 0)
    assert not torch.allclose(other, hires_cam(net, "0", x, 0))
    assert diagnose_hires_cam(lambda *a: other, net, "0", x, 0).message == (
        "Not yet right (wrong layer): the answer is HiResCAM at '1', not at '0'; hook the layer given."
    )
    assert checker._other_layer(net, "0", x, 0, other[0, 0].double()) == "1"
    assert checker._other_layer(net, "0", x, 0, hires_cam(net, "0", x, 0)[0, 0].double()) is None, "not the layer"


@pytest.mark.parametrize("kind", ["maximum", "min-max"])
def test_a_normalised_map_is_named(kind) -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.rand(1, 3, 8, 8)
    target = next(t for t in range(2) if float(hires_cam(net, "0", x, t).min()) > 0)
    reference = hires_cam(net, "0", x, target)
    low, high = reference.min(), reference.max()
    answer = reference / high if kind == "maximum" else (reference - low) / (high - low)
    assert diagnose_hires_cam(lambda *a: answer, net, "0", x, target).message == (
        "Not yet right (normalised): the map was scaled to [0, 1] (by its maximum, or min-max); return it as it is."
    )


@pytest.mark.parametrize(("factor", "printed"), [(2.5, "2.5"), (1 / 3, "0.3333"), (100.0, "100")])
def test_a_map_times_a_constant_prints_the_constant(case, factor, printed) -> None:
    net, x = case
    assert message(factor * hires_cam(net, "0", x, TARGET), case) == (
        f"Not yet right (scaled): the map is HiResCAM times {printed}; compute the plain sum over channels of gradient "
        "x activation, with no factor (not a mean over cells, not a percentage)."
    )


def test_negative_values_that_are_no_usual_mistake_are_told_to_end_with_a_relu(case) -> None:
    net, x = case
    answer = hires_cam(net, "0", x, TARGET).clone()
    answer[0, 0, 1, 1] = -0.25
    assert (
        message(answer, case)
        == "Not yet right (no ReLU): the map has negative values (down to -0.25); end with a ReLU."
    )


def test_the_top_classs_map_is_named_and_another_class_is_told_its_values(case) -> None:
    net, x = case
    assert int(net(x).argmax(1)) == 2
    assert message(hires_cam(net, "0", x, 2), case) == (
        "Not yet right (target ignored): the answer is the map of the top class (2), not of target 1; use the class "
        "you are given."
    )
    assert message(hires_cam(net, "0", x, 0), case) == (
        "Not yet right (values): the largest difference is at cell (4, 2): expected 0.001967, got 0.0007959; check "
        "each step: the logit's gradient at the layer, times the activations cell by cell, the sum over channels, the "
        "ReLU."
    )
    assert diagnose_hires_cam(lambda *a: hires_cam(net, "0", x, 2), net, "0", x, 2).passed, "the top class asked for"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_infinity_is_not_finite(case, bad) -> None:
    net, x = case
    answer = hires_cam(net, "0", x, TARGET).clone()
    answer[0, 0, 0, 0] = bad
    assert message(answer, case) == (
        "Not yet right (not finite): the answer contains NaN or infinite values; do not divide by the map's maximum."
    )


def test_the_learners_function_gets_a_copy_and_the_arguments(case) -> None:
    net, x = case
    seen = {}

    def spy(model, layer, image, target):
        seen.update(model=model, layer=layer, image=image, target=target)
        result = hires_cam(model, layer, image, target)
        image.zero_()
        return result

    before = x.clone()
    assert diagnose_hires_cam(spy, net, "0", x, TARGET).message == RIGHT
    assert seen["model"] is not net and seen["image"] is not x and (seen["layer"], seen["target"]) == ("0", TARGET)
    assert torch.equal(x, before)


def test_a_batch_and_a_model_in_train_mode_are_refused_where_they_enter(case) -> None:
    net, x = case
    with pytest.raises(ValueError) as error:
        diagnose_hires_cam(None, net, "0", torch.cat([x, x]), TARGET)
    assert str(error.value) == "x must be one image, 1 x C x H x W, not a batch of 2."
    with pytest.raises(TypeError, match="^model must be"):
        diagnose_hires_cam(None, "net", "0", x, TARGET)


def test_the_checker_prints_the_label_then_the_verdict(case, capsys) -> None:
    net, x = case
    reference = hires_cam(net, "0", x, TARGET)
    assert check_hires_cam(lambda *a: reference, net, "0", x, TARGET).message == RIGHT
    assert capsys.readouterr().out == RIGHT + "\n"
    with pytest.raises(AnswerCheckError) as error:
        check_hires_cam(lambda *a: reference * 2.5, net, "0", x, TARGET, label="toy")
    assert str(error.value).startswith("toy: Not yet right (scaled): the map is HiResCAM times 2.5;")


def test_the_tolerance_is_absolute_at_a_large_cell(case) -> None:
    """1.05e-4 of the peak off at the second largest cell (over half the peak) is refused: a relative tolerance of
    1e-5 on top would let it pass."""
    net, x = case
    reference = hires_cam(net, "0", x, TARGET)
    answer = reference.clone().reshape(-1)
    second = int(answer.argsort(descending=True)[1])
    peak = float(reference.max())
    assert float(answer[second]) > 0.5 * peak
    answer[second] -= 1.05e-4 * peak
    assert diagnose_hires_cam(lambda *a: answer.reshape(1, 1, 6, 6), net, "0", x, TARGET).reason == "values"


def test_an_all_zero_map_upsampled_is_still_named_upsampled() -> None:
    """Class 0's weights are zero: its HiResCAM is zero everywhere, and so is the map upsampled to the image."""
    net = make_net()
    with torch.no_grad():
        net[5].weight[0] = 0.0
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert float(hires_cam(net, "0", x, 0).abs().max()) == 0.0
    assert diagnose_hires_cam(lambda *a: torch.zeros(1, 1, 8, 8), net, "0", x, 0).message == (
        "Not yet right (upsampled): the map was upsampled to (8, 8); return it at the layer's own grid, 6 x 6."
    )


def test_a_frozen_model_still_gets_its_mistakes_named(case) -> None:
    """Weights with requires_grad off (a frozen backbone): the gradient at the layer comes through the input."""
    _, x = case
    net = make_net().requires_grad_(False)
    assert message(by_hand((make_net(), x))["softmax"][None, None].float(), (net, x)) == (
        f"Not yet right (softmax): {TEXTS['softmax']}"
    )


def test_a_changed_model_is_named_with_the_whole_line(case) -> None:
    net, x = case

    def left_in_train_mode(model, layer, image, target):
        model.train()
        return hires_cam(net, layer, image, target)

    assert diagnose_hires_cam(left_in_train_mode, net, "0", x, TARGET).message == (
        "Not yet right (train mode): your function left the model in train mode (model.train() changes the model "
        "itself; at 'the model'); leave the mode as you found it. The checker ran your function on a copy: the "
        "lesson's model is unchanged."
    )


def test_an_answer_that_is_no_map_is_told_what_to_return(case) -> None:
    assert message("a map", case) == (
        "Not yet right (type): the answer is a str; return the map as a torch tensor (1 x 1 x h x w)."
    )


class WithAnUnusedLayer(nn.Module):
    """Conv "unused" is never run (hires_cam refuses it with a ValueError); "a" and "b" are, both 6 x 6."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.b(torch.relu(self.a(x)))).mean(dim=(2, 3)))


def test_a_layer_that_does_not_run_is_passed_over_in_the_search_for_the_answers_layer() -> None:
    torch.manual_seed(1)
    net, x = WithAnUnusedLayer().eval(), torch.rand(1, 3, 6, 6)
    with pytest.raises(ValueError, match="did not run"):
        hires_cam(net, "unused", x, 0)
    other = hires_cam(net, "a", x, 0)
    assert diagnose_hires_cam(lambda *a: other, net, "b", x, 0).message == (
        "Not yet right (wrong layer): the answer is HiResCAM at 'a', not at 'b'; hook the layer given."
    )


def test_a_wrong_answer_to_an_all_zero_reference_is_judged_without_dividing_by_zero() -> None:
    net = make_net()
    with torch.no_grad():
        net[5].weight[0] = 0.0
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert diagnose_hires_cam(lambda *a: torch.ones(1, 1, 6, 6), net, "0", x, 0).reason == "values"


def test_a_constant_map_is_judged_without_dividing_by_its_zero_spread() -> None:
    """A uniform image through a convolution without padding: every cell of the reference is the same, so its
    maximum is its minimum and min-max scaling is not tried."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.full((1, 3, 8, 8), 0.5)
    reference = hires_cam(net, "0", x, 0)
    assert float(reference.max()) == float(reference.min()) > 0
    assert diagnose_hires_cam(lambda *a: 3 * reference, net, "0", x, 0).reason == "scaled"
