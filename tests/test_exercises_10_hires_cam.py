"""Lesson 10's checker: every usual mistake in HiResCAM is named, and an answer that changes the model is refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _shared import source_as_written
from torch import nn

from utils.cams import hires_cam
from utils.exercises import AnswerCheckError, correct
from utils.exercises.hires_cam import check_hires_cam, diagnose_hires_cam
from utils.saliency import grad_cam, layer_gradients, upsample_cam
from utils.shortcuts import small_cnn


@pytest.fixture(scope="module")
def case():
    net = small_cnn(seed=4).eval()
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    # a class and image where the map has negative cells before the ReLU and LayerCAM differs from HiResCAM
    return net, "relu3", x, 1


def parts(net, layer, x, target):
    A, g, _ = layer_gradients(net, layer, x, target)
    return A, g


def test_the_reference_passes(case) -> None:
    net, layer, x, target = case
    assert check_hires_cam(lambda *a: hires_cam(*a), net, layer, x, target, label="ref").passed


def wrong_answers(net, layer, x, target):
    A, g = parts(net, layer, x, target)
    hires = hires_cam(net, layer, x, target)
    _, g_top = parts(net, layer, x, 1 - target)
    return {
        "Grad-CAM": grad_cam(net, layer, x, target),
        "LayerCAM": F.relu((F.relu(g) * A).sum(1, keepdim=True)),
        "no ReLU": (g * A).sum(1, keepdim=True),
        "ReLU per channel": F.relu(g * A).sum(1, keepdim=True),
        "absolute gradients": F.relu((g.abs() * A).sum(1, keepdim=True)),
        "normalised": hires / hires.max(),
        "upsampled": upsample_cam(hires, (48, 48), "bilinear"),
        "target ignored": F.relu((g_top * A).sum(1, keepdim=True)),
        "not finite": hires / 0.0,
    }


@pytest.mark.parametrize(
    "reason",
    ["Grad-CAM", "LayerCAM", "no ReLU", "absolute gradients", "normalised", "upsampled"],
)
def test_each_usual_mistake_is_named(case, reason) -> None:
    net, layer, x, target = case
    answer = wrong_answers(net, layer, x, target)[reason]
    verdict = diagnose_hires_cam(lambda *a: answer, net, layer, x, target)
    assert not verdict.passed and verdict.reason == reason, verdict.message


def test_relu_per_channel_is_named_where_activations_can_be_negative_and_is_layercam_where_they_cannot(case) -> None:
    net, layer, x, target = case  # relu3: activations >= 0, so ReLU(g * A) = ReLU(g) * A, LayerCAM
    A, g = parts(net, layer, x, target)
    per_channel = F.relu(g * A).sum(1, keepdim=True)
    assert diagnose_hires_cam(lambda *a: per_channel, net, layer, x, target).reason == "LayerCAM"
    torch.manual_seed(0)  # a layer with no ReLU after it: negative activations with a gradient
    linear_head = nn.Sequential(nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)).eval()
    x = torch.rand(1, 3, 8, 8)
    A, g = parts(linear_head, "0", x, 1)
    per_channel = F.relu(g * A).sum(1, keepdim=True)
    assert diagnose_hires_cam(lambda *a: per_channel, linear_head, "0", x, 1).reason == "ReLU per channel"


def test_the_softmax_gradient_is_named() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.rand(1, 3, 8, 8)

    def softmax_answer(model, layer_name, image, cls):
        seen = {}
        handle = model.get_submodule(layer_name).register_forward_hook(lambda m, i, o: seen.update(A=o))
        try:
            p = torch.softmax(model(image.clone().requires_grad_(True)), 1)[0, cls]
        finally:
            handle.remove()
        (g,) = torch.autograd.grad(p, seen["A"])
        return torch.relu((g * seen["A"]).sum(1, keepdim=True)).detach()

    verdict = diagnose_hires_cam(softmax_answer, net, "1", x, 2)
    assert verdict.reason == "softmax", verdict.message


def _answer_from_score(score):
    """A learner's HiResCAM whose gradient is that of ``score(logits, cls)`` instead of the class's logit."""

    def answer(model, layer_name, image, cls):
        seen = {}
        handle = model.get_submodule(layer_name).register_forward_hook(lambda m, i, o: seen.update(A=o))
        try:
            value = score(model(image.clone().requires_grad_(True)), cls)
        finally:
            handle.remove()
        (g,) = torch.autograd.grad(value, seen["A"])
        return torch.relu((g * seen["A"]).sum(1, keepdim=True)).detach()

    return answer


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (lambda logits, cls: torch.log_softmax(logits, 1)[0, cls], "log-softmax"),
        (lambda logits, cls: F.cross_entropy(logits, torch.tensor([cls])), "cross-entropy loss"),
        (lambda logits, cls: logits.sum(), "summed logits"),
    ],
    ids=["log_softmax", "cross_entropy", "summed_logits"],
)
def test_the_gradient_of_another_score_is_named(score, reason) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.rand(1, 3, 8, 8)
    verdict = diagnose_hires_cam(_answer_from_score(score), net, "1", x, 2)
    assert not verdict.passed and verdict.reason == reason, verdict.message


def test_rescaled_maps_are_named_by_what_scaled_them(case) -> None:
    net, layer, x, target = case
    hires = hires_cam(net, layer, x, target)
    channels = layer_gradients(net, layer, x, target)[0].shape[1]
    found = {
        "mean over channels": diagnose_hires_cam(lambda *a: hires / channels, net, layer, x, target),
        "scaled": diagnose_hires_cam(lambda *a: hires * 100, net, layer, x, target),
        "normalised": diagnose_hires_cam(lambda *a: hires / hires.max(), net, layer, x, target),
    }
    for reason, verdict in found.items():
        assert verdict.reason == reason, (reason, verdict.message)
    assert "times 100" in found["scaled"].message and f"channels, {channels}" in found["mean over channels"].message


def test_min_max_scaling_is_named_normalised_where_the_map_has_no_zero() -> None:
    torch.manual_seed(3)
    # no ReLU after the layer and a bias: the HiResCAM map is positive everywhere, so min-max differs from / max
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.rand(1, 3, 8, 8)
    target = next(
        t for t in range(2) if float(hires_cam(net, "0", x, t).min()) > 0
    )  # the class whose map has no zero cell
    hires = hires_cam(net, "0", x, target)
    min_max = (hires - hires.min()) / (hires.max() - hires.min())
    assert not torch.allclose(min_max, hires / hires.max())
    verdict = diagnose_hires_cam(lambda *a: min_max, net, "0", x, target)
    assert verdict.reason == "normalised", verdict.message


def test_target_ignored_wrong_layer_shape_and_values() -> None:
    net = small_cnn(seed=1).eval()
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    top = int(net(x).argmax(1))
    other = 1 - top
    verdict = diagnose_hires_cam(lambda m, name, i, t: hires_cam(m, name, i, top), net, "relu3", x, other)
    if torch.allclose(hires_cam(net, "relu3", x, top), hires_cam(net, "relu3", x, other)):
        pytest.skip("both classes give the same map on this draw")  # pragma: no cover - guarded by the seed
    assert verdict.reason == "target ignored", verdict.message
    verdict = diagnose_hires_cam(lambda m, name, i, t: hires_cam(m, "relu2", i, t), net, "relu3", x, other)
    # conv2's HiResCAM equals relu2's (the ReLU zeroes both factors alike): either name is the right diagnosis
    assert verdict.reason == "wrong layer" and ("'relu2'" in verdict.message or "'conv2'" in verdict.message)
    assert diagnose_hires_cam(lambda *a: torch.zeros(5, 5), net, "relu3", x, other).reason == "shape"
    assert diagnose_hires_cam(lambda *a: torch.zeros(2, 1, 12, 12), net, "relu3", x, other).reason == "shape"
    bumped = hires_cam(net, "relu3", x, other).clone()
    bumped[0, 0, 3, 4] += 1.0
    verdict = diagnose_hires_cam(lambda *a: bumped, net, "relu3", x, other)
    assert verdict.reason == "values" and "cell (3, 4)" in verdict.message
    infinite = hires_cam(net, "relu3", x, other) / 0.0
    assert diagnose_hires_cam(lambda *a: infinite, net, "relu3", x, other).reason == "not finite"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.fc.weight.data.zero_(), "weights"),
        (lambda m: m.train(), "train mode"),
        (lambda m: m.conv1.weight.requires_grad_(False), "requires_grad"),
        (lambda m: m.conv1.register_forward_hook(lambda *a: None), "hooks left"),
        (lambda m: m(torch.rand(1, 3, 48, 48))[0, 0].backward(), "grad left"),
    ],
)
def test_an_answer_that_changes_the_model_is_refused_and_the_lessons_model_is_kept(case, change, reason) -> None:
    net, layer, x, target = case
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def sneaky(model, layer_name, image, cls):
        change(model)
        return hires_cam(net, layer_name, image, cls)  # the right map, from the untouched model

    verdict = diagnose_hires_cam(sneaky, net, layer, x, target)
    assert verdict.reason == reason, verdict.message
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items()) and not net.training


def test_a_verdict_placeholder_and_errors_are_answers_not_crashes(case) -> None:
    net, layer, x, target = case
    assert diagnose_hires_cam(lambda *a: correct("trust me."), net, layer, x, target).reason == "verdict"
    assert diagnose_hires_cam(None, net, layer, x, target).status == "not attempted"

    def unfinished(*args):
        raise NotImplementedError

    assert diagnose_hires_cam(unfinished, net, layer, x, target).status == "not attempted"
    assert diagnose_hires_cam(lambda *a: 1 / 0, net, layer, x, target).reason == "raised"
    assert diagnose_hires_cam(lambda *a: "a map", net, layer, x, target).reason == "type"
    meta = torch.empty(1, 1, 12, 12, device="meta")
    assert diagnose_hires_cam(lambda *a: meta, net, layer, x, target).reason == "type"
    complex_map = hires_cam(net, layer, x, target).to(torch.complex64)
    assert diagnose_hires_cam(lambda *a: complex_map, net, layer, x, target).reason == "type"


def test_check_raises_one_line_and_refuses_bad_inputs(case) -> None:
    net, layer, x, target = case
    with pytest.raises(AnswerCheckError, match=r"^toy: Not yet right \(Grad-CAM\): the gradient was averaged"):
        check_hires_cam(lambda *a: grad_cam(*a), net, layer, x, target, label="toy")
    with pytest.raises(ValueError, match="one image"):
        diagnose_hires_cam(lambda *a: None, net, layer, torch.rand(2, 3, 48, 48), target)
    with pytest.raises(TypeError):
        diagnose_hires_cam(lambda *a: None, net, layer, x.numpy(), target)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: setattr(m, "relu3", nn.Identity()), "modules"),
        (lambda m: m.double(), "dtype"),
        (lambda m: torch.set_grad_enabled(False), "grad mode"),
        (lambda m: torch.set_default_dtype(torch.float64), "default dtype"),
        (lambda m: nn.modules.module.register_module_forward_hook(lambda *a: None), "global hooks"),
    ],
)
def test_torch_state_and_module_changes_are_named_and_put_back(case, change, reason) -> None:
    net, layer, x, target = case

    def sneaky(model, layer_name, image, cls):
        change(model)
        return hires_cam(net, layer_name, image, cls)

    verdict = diagnose_hires_cam(sneaky, net, layer, x, target)
    assert verdict.reason == reason, verdict.message
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32
    assert not nn.modules.module._global_forward_hooks


TESTED = {
    "Grad-CAM", "LayerCAM", "no ReLU", "ReLU per channel", "absolute gradients", "softmax", "normalised", "upsampled",
    "shape", "wrong layer", "target ignored", "values", "not finite", "log-softmax", "summed logits",
    "mean over channels", "scaled", "cross-entropy loss",
}  # fmt: skip


def test_every_hires_cam_diagnosis_has_a_test() -> None:
    """Every mistake the checker can name (its own table and messages) is made to fire by a test above."""
    import re

    import utils.exercises.hires_cam as checker

    source = source_as_written(checker)
    named = set(re.findall(r'wrong\(\s*"([^"]+)"', source)) | set(re.findall(r'^\s+"([A-Za-z+ -]+)",$', source, re.M))
    named |= set(re.findall(r'"([a-z ]+)" if other else "([a-z ]+)"', source)[0])
    assert named and named <= TESTED, sorted(named - TESTED)
