"""Worked answers to the exercises of lessons 01-03, and each usual mistake written out as a learner would.

These tests hold the answers, so the hand-out leaves this folder out (tests/solutions/); they show that a
right answer written from scratch passes each checker, and that each mistake written independently of the
checker is the one the checker names. tests/test_exercises_01_03.py tests the same checkers without answers.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.exercises.grad_cam import check_grad_cam, diagnose_grad_cam
from utils.exercises.guided_backprop import check_deconv_rule, diagnose_deconv_rule, relu_backward_rule
from utils.exercises.guided_grad_cam import check_guided_grad_cam, diagnose_guided_grad_cam, guided_grad_cam_bilinear
from utils.saliency import grad_cam, guided_backprop


def two_layer_net() -> nn.Sequential:
    """Two convolutions on an 8 x 8 grid (layers "1" and "3"), in-place ReLUs, three classes."""
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    ).eval()


@pytest.fixture(scope="module")
def case() -> tuple[nn.Sequential, torch.Tensor, int]:
    """A net, an image and a class that is not the top class (so that ignoring the target shows)."""
    net = two_layer_net()
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores = net(x)[0]
    return net, x, int(scores.argmin())


def parts(net: nn.Module, layer: str, x: torch.Tensor, cls: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The layer's activations, the logit's gradient and the softmax probability's gradient."""
    kept = {}
    handle = dict(net.named_modules())[layer].register_forward_hook(
        lambda m, i, out: kept.update(A=out.clone()) or kept["A"]
    )
    try:
        logits = net(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[0, cls], kept["A"], retain_graph=True)
    (grad_p,) = torch.autograd.grad(logits.softmax(1)[0, cls], kept["A"])
    return kept["A"].detach(), grad, grad_p


def weighted(alpha: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    return (alpha * A).sum(dim=1, keepdim=True)


def right_grad_cam(net, layer, x, cls):
    A, grad, _ = parts(net, layer, x, cls)
    return F.relu(weighted(grad.mean(dim=(2, 3), keepdim=True), A))


# --- lesson 01: Grad-CAM at any layer -------------------------------------------------------------


def test_the_case_can_tell_the_mistakes_apart(case):
    net, x, cls = case
    A, grad, _ = parts(net, "1", x, cls)
    assert float(weighted(grad.mean(dim=(2, 3), keepdim=True), A).min()) < 0, "a map without ReLU must differ"
    assert not torch.allclose(grad_cam(net, "1", x, cls), grad_cam(net, "3", x, cls))


def test_a_right_grad_cam_passes_at_every_layer_and_the_check_prints_it(case, capsys):
    net, x, cls = case
    for layer in ("1", "3"):
        verdict = check_grad_cam(right_grad_cam, net, layer, x, cls, label=f"layer {layer}")
        assert verdict.passed
    assert (
        capsys.readouterr().out.splitlines()[0]
        == "layer 1: Correct: your Grad-CAM at 1 (8 x 8) equals utils.saliency.grad_cam."
    )


def grad_cam_mistake(kind: str):
    def answer(net, layer, x, cls):
        A, grad, grad_p = parts(net, layer, x, cls)
        return {
            "no ReLU": lambda: weighted(grad.mean(dim=(2, 3), keepdim=True), A),
            "max": lambda: F.relu(weighted(grad.amax(dim=(2, 3), keepdim=True), A)),
            "sum": lambda: F.relu(weighted(grad.sum(dim=(2, 3), keepdim=True), A)),
            "no pooling": lambda: F.relu((grad * A).sum(dim=1, keepdim=True)),
            "abs": lambda: F.relu(weighted(grad.abs().mean(dim=(2, 3), keepdim=True), A)),
            "no weights": lambda: F.relu(A.sum(dim=1, keepdim=True)),
            "softmax": lambda: F.relu(weighted(grad_p.mean(dim=(2, 3), keepdim=True), A)),
            "normalised": lambda: (c := right_grad_cam(net, layer, x, cls)) / c.max(),
            "other layer": lambda: right_grad_cam(net, "3" if layer == "1" else "1", x, cls),
            "top class": lambda: right_grad_cam(net, layer, x, int(net(x).argmax())),
            "channels": lambda: F.relu(
                weighted(grad.mean(dim=(2, 3), keepdim=True), A) * torch.ones(1, 2, 1, 1)
            ).squeeze(0),
        }[kind]()

    return answer


@pytest.mark.parametrize(
    "kind, reason, words",
    [
        ("no ReLU", "no ReLU", "apply a ReLU to the weighted sum"),
        ("max", "max instead of mean", "average them over the grid"),
        ("sum", "sum instead of mean", "h\\*w times too large"),
        ("no pooling", "no pooling", "average each channel's gradients over the grid first"),
        ("abs", "absolute gradients", "keep the signs"),
        ("no weights", "no weights", "weight each by its mean gradient"),
        ("softmax", "softmax", "use the class score y_c, the logit"),
        ("normalised", "normalised", "divided by its maximum"),
        ("other layer", "wrong layer", "Grad-CAM at '3', not at '1'"),
        ("top class", "target ignored", "the map of the top class"),
        ("channels", "shape", "return one map"),
    ],
)
def test_each_grad_cam_mistake_is_named(case, kind, reason, words):
    net, x, cls = case
    verdict = diagnose_grad_cam(grad_cam_mistake(kind), net, "1", x, cls)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert re.search(words, verdict.message), verdict.message


def with_backward(net, layer, x, cls):
    """The right map, with the gradients taken by .backward(): the trap lesson 01 names."""
    kept = {}
    handle = dict(net.named_modules())[layer].register_forward_hook(lambda m, i, out: kept.update(A=out))
    try:
        score = net(x)[0, cls]
    finally:
        handle.remove()
    kept["A"].retain_grad()
    score.backward()
    A, grad = kept["A"], kept["A"].grad
    return F.relu(weighted(grad.mean(dim=(2, 3), keepdim=True), A)).detach()


def in_float64(net, layer, x, cls):
    """The right map computed in float64 by converting the model it was given."""
    return right_grad_cam(net.double(), layer, x.double(), cls)


@pytest.mark.parametrize(
    "answer, reason", [(with_backward, "grad left"), (in_float64, "dtype")], ids=["backward", "double"]
)
def test_a_right_map_that_changes_the_model_is_refused_and_the_model_stays_as_it_was(case, answer, reason):
    net, x, cls = case
    before = {name: value.clone() for name, value in net.state_dict().items()}
    verdict = diagnose_grad_cam(answer, net, "1", x, cls)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert "the lesson's model is unchanged" in verdict.message and "\n" not in verdict.message
    assert all(p.grad is None and p.dtype == torch.float32 for p in net.parameters())
    assert all(torch.equal(value, before[name]) for name, value in net.state_dict().items())
    assert check_grad_cam(right_grad_cam, net, "1", x, cls).passed, "the lesson goes on with the same model"


def test_grad_cam_mistakes_are_named_on_a_model_whose_parameters_are_frozen(case):
    net, x, cls = case
    frozen = two_layer_net().requires_grad_(False)
    assert diagnose_grad_cam(grad_cam_mistake("no ReLU"), net, "1", x, cls).reason == "no ReLU"
    verdict = diagnose_grad_cam(lambda m, layer, x, t: grad_cam(m, layer, x, t) * 64, frozen, "1", x, cls)
    assert verdict.reason == "sum instead of mean", verdict.message
    assert not any(p.requires_grad for p in frozen.parameters())


# --- lesson 02: the deconvnet's rule ------------------------------------------------------------


def test_relu_backward_rule_gives_the_plain_gradient_gbp_and_leaves_the_model_as_it_was(case):
    net, x, cls = case
    image = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(net(image)[0, cls], image)
    for rule, expected in [
        (lambda g, i: g * (i > 0), plain),
        (lambda g, i: F.relu(g) * (i > 0), guided_backprop(net, x, cls)),
    ]:
        image = x.clone().requires_grad_(True)
        with relu_backward_rule(net, rule):
            (got,) = torch.autograd.grad(net(image)[0, cls], image)
        assert torch.allclose(got, expected, atol=1e-6)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))


def test_the_deconvnet_rule_equals_captums_deconvolution_on_the_offline_model(capsys):
    from utils.lesson import open_photo
    from utils.models import load_model

    loaded = load_model("squeezenet1_1", device="cpu")
    photo = open_photo("squirrel", loaded)
    verdict = check_deconv_rule(
        lambda grad_output, relu_input: F.relu(grad_output), loaded.model, photo.x, photo.top_class, label="deconvnet"
    )
    assert verdict.passed and capsys.readouterr().out.startswith(
        "deconvnet: Correct: your rule at every ReLU gives Captum's Deconvolution"
    )
    guided = diagnose_deconv_rule(lambda g, i: F.relu(g) * (i > 0), loaded.model, photo.x, photo.top_class)
    assert guided.reason == "guided rule" and "that is Guided Backpropagation" in guided.message


def clamps_in_place(g, i):
    return g.clamp_(min=0)


@pytest.mark.parametrize(
    "rule, reason, words",
    [
        (lambda g, i: F.relu(g) * (i > 0), "guided rule", "keeps the forward mask"),
        (lambda g, i: g * (i > 0), "ordinary gradient", "the ReLU's ordinary backward"),
        (lambda g, i: g, "identity", "unchanged"),
        (lambda g, i: g.abs(), "absolute value", "must become 0, not positive"),
        (lambda g, i: g.clamp(max=0), "negative part", "keeps the negative part"),
        (lambda g, i: F.relu(-g), "sign", "max\\(-grad_output, 0\\)"),
        (lambda g, i: F.relu(i), "forward input", "the forward pass"),
        (clamps_in_place, "in place", "changed its arguments in place"),
        (lambda g, i: F.relu(g).sum(), "shape", "one value per element"),
        (lambda g, i: F.relu(g) + 0.1, "values", "the deconvnet gives max"),
        (lambda g, i: F.relu(g).tolist(), "type", "returned a list"),
        (lambda g, i: F.relu(g) if g.ndim == 3 else g, "network", "right on the table but the network's map differs"),
        (lambda g, i: g.no_such_method(), "raised", "raised AttributeError"),
        (torch.zeros(3), "type", "write a function my_deconv_rule"),
    ],
    ids=[
        "guided",
        "plain",
        "identity",
        "abs",
        "negative",
        "sign",
        "input",
        "in-place",
        "shape",
        "values",
        "type",
        "network",
        "raised",
        "not-a-function",
    ],
)
def test_each_deconv_mistake_is_named(case, rule, reason, words):
    net, x, cls = case
    verdict = diagnose_deconv_rule(rule, net, x, cls)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert re.search(words, verdict.message), verdict.message


# --- lesson 03: Guided Grad-CAM with bilinear upsampling -----------------------------------------


@pytest.fixture(scope="module")
def maps() -> tuple[torch.Tensor, torch.Tensor]:
    """GBP 1 x 3 x 16 x 16 with both signs, and a 3 x 3 Grad-CAM with zeros (as after its ReLU)."""
    generator = torch.Generator().manual_seed(0)
    gbp = torch.randn(1, 3, 16, 16, generator=generator)
    cam = F.relu(torch.randn(1, 1, 3, 3, generator=generator)) + torch.tensor(
        [[[[0.0, 0.5, 0.0], [1.0, 0.0, 2.0], [0.0, 0.3, 0.0]]]]
    )
    return gbp, cam


def test_the_reference_is_gbp_times_bilinear_grad_cam(maps):
    gbp, cam = maps
    expected = gbp * F.interpolate(cam, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.equal(guided_grad_cam_bilinear(gbp, cam), expected)


def test_a_right_guided_grad_cam_passes_as_function_or_tensor(maps, capsys):
    gbp, cam = maps

    def my_guided_grad_cam(gbp, cam):
        return gbp * F.interpolate(cam, size=gbp.shape[-2:], mode="bilinear")

    assert check_guided_grad_cam(my_guided_grad_cam, gbp, cam, label="squirrel").passed
    assert (
        capsys.readouterr().out == "squirrel: Correct: your Guided Grad-CAM equals GBP x bilinear-upsampled Grad-CAM.\n"
    )
    assert diagnose_guided_grad_cam(my_guided_grad_cam(gbp, cam).numpy(), gbp, cam).passed


def up(cam: torch.Tensor, mode: str, **kwargs) -> torch.Tensor:
    return F.interpolate(cam, size=(16, 16), mode=mode, **kwargs)


@pytest.mark.parametrize(
    "mistake, reason, words",
    [
        (lambda g, c: g * up(c, "nearest"), "nearest", "mode='nearest'; the paper's figure uses mode=\"bilinear\""),
        (lambda g, c: g * up(c, "nearest-exact"), "nearest-exact", "mode='nearest-exact'"),
        (lambda g, c: g * up(c, "bicubic"), "bicubic", "mode='bicubic'"),
        (lambda g, c: g * up(c, "bilinear", align_corners=True), "align_corners", "leave it at its default"),
        (lambda g, c: g * up(c, "bilinear") / c.max(), "normalised Grad-CAM", "Grad-CAM was divided by its maximum"),
        (lambda g, c: (p := g * up(c, "bilinear")) / p.abs().max(), "normalised product", "the product was divided"),
        (lambda g, c: g + up(c, "bilinear"), "sum instead of product", "were added"),
        (lambda g, c: (g * up(c, "bilinear")).abs(), "absolute value", "keep the signs"),
        (lambda g, c: up(c, "bilinear").expand_as(g), "Grad-CAM only", "multiply it with GBP"),
        (lambda g, c: g, "GBP only", "multiply it with the upsampled Grad-CAM"),
        (lambda g, c: (g * up(c, "bilinear")).sum(1, keepdim=True), "channels", "keep GBP's 3 channels"),
        (lambda g, c: g[..., :3, :3] * c, "shape", "Upsample Grad-CAM to GBP's size first"),
        (lambda g, c: g * up(c, "bilinear") / 0.0, "not finite", "NaN or infinite"),
        (lambda g, c: g * up(c, "bilinear") + 0.01, "values", "the largest difference is at"),
        (lambda g, c: "a map", "type", "the answer is a str"),
        (lambda g, c: g.no_such_method(), "raised", "raised AttributeError"),
    ],
)
def test_each_guided_grad_cam_mistake_is_named(maps, mistake, reason, words):
    verdict = diagnose_guided_grad_cam(mistake, *maps)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert re.search(words, verdict.message), verdict.message
