"""The checkers of lessons 01-03, tested without their answers: every diagnosis fires, and an answer that changes the
model is refused with one line saying what changed.

The hand-out ships this file, so no wrong answer here is written out as a learner would: each is built from the
course's references (``utils.saliency.grad_cam``, ``deconv_rule``, ``guided_grad_cam_bilinear``) or from the
checkers' own tables of mistakes. tests/solutions/test_solutions_01_03.py holds the worked answers and the mistakes
written from scratch. The last test keeps each lesson's questions in shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from _shared import pooled_net, source_as_written
from torch import nn
from torch.nn.modules import module as torch_module

import utils.exercises._model_guard as model_guard
import utils.exercises.grad_cam as grad_cam_checker
import utils.exercises.guided_backprop as deconv_checker
import utils.exercises.guided_grad_cam as guided_checker
from utils.exercises import AnswerCheckError, Verdict
from utils.exercises.grad_cam import check_grad_cam, diagnose_grad_cam
from utils.exercises.guided_backprop import check_deconv_rule, deconv_rule, diagnose_deconv_rule, relu_backward_rule
from utils.exercises.guided_grad_cam import check_guided_grad_cam, diagnose_guided_grad_cam, guided_grad_cam_bilinear
from utils.saliency import grad_cam

ROOT = Path(__file__).resolve().parents[1]
LESSONS = {
    "01_grad_cam.ipynb": "check_grad_cam",
    "02_guided_backprop.ipynb": "check_deconv_rule",
    "03_guided_grad_cam.ipynb": "check_guided_grad_cam",
}
COMMON = {"not attempted", "raised", "type", "verdict"}
"""Diagnoses every checker shares (utils.exercises.call_answer and answer_array): tests/test_exercises_common.py."""


def named_in(*modules: ModuleType) -> set[str]:
    """The reasons a checker module names in its source: ``wrong("reason", ...)`` and the model guard's changes."""
    source = source_as_written(*modules)
    return set(re.findall(r'wrong\(\s*"([^"]+)"', source)) | set(
        re.findall(r'"([a-z_ ]+)",\s*\(?\s*f?"your function', source)
    )


def assert_named(verdict: Verdict, reason: str, words: str = "") -> None:
    """``verdict`` refuses the answer for ``reason``, in one line that contains ``words`` (a regex)."""
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert verdict.message.startswith(f"Not yet right ({reason}): ") and "\n" not in verdict.message
    assert re.search(words, verdict.message), verdict.message


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


X = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def lowest_class(net: nn.Module) -> int:
    """A class that is not the top class, so that ignoring the target shows."""
    with torch.no_grad():
        return int(net(X)[0].argmin())


# --- lesson 01: Grad-CAM at any layer -------------------------------------------------------------


def reference_times(factor: float) -> Callable[..., torch.Tensor]:
    return lambda m, layer, x, t: grad_cam(m, layer, x, t) * factor


def zeroes_the_classifier(m: nn.Module, layer: str, x: torch.Tensor, t: int) -> torch.Tensor:
    """The answer issue 18 found told "Correct": it breaks the model and returns zeros."""
    with torch.no_grad():
        m[-1].weight.zero_()
    return torch.zeros(1, 1, 8, 8)


def and_then(change: Callable[[nn.Module], Any]) -> Callable[..., torch.Tensor]:
    """An answer that returns the reference map after ``change(model)``: right values, changed model."""

    def answer(m: nn.Module, layer: str, x: torch.Tensor, t: int) -> torch.Tensor:
        cam = grad_cam(m, layer, x, t)
        change(m)
        return cam

    return answer


def backward(m: nn.Module) -> None:
    m(X)[0, 0].backward()


def no_inplace(m: nn.Module) -> None:
    m[1] = nn.ReLU()


def global_hook(m: nn.Module) -> None:
    torch_module.register_module_forward_hook(lambda *args: None)


def in_float64(m: nn.Module, layer: str, x: torch.Tensor, t: int) -> torch.Tensor:
    return grad_cam(m.double(), layer, x.double(), t)


GRAD_CAM_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "sum instead of mean": (reference_times(64), r"h\*w times too large"),
    "normalised": (lambda m, layer, x, t: (c := grad_cam(m, layer, x, t)) / c.max(), "divided by its maximum"),
    "wrong layer": (lambda m, layer, x, t: grad_cam(m, "3", x, t), "Grad-CAM at '3', not at '1'"),
    "target ignored": (lambda m, layer, x, t: grad_cam(m, layer, x, int(m(x).argmax())), "the map of the top class"),
    "shape": (lambda m, layer, x, t: grad_cam(m, layer, x, t).expand(1, 2, 8, 8), "return one map"),
    "not finite": (reference_times(float("inf")), "NaN or infinite"),
    "no ReLU": (lambda m, layer, x, t: (c := grad_cam(m, layer, x, t)) - c.max() / 2, "negative values"),
    "values": (lambda m, layer, x, t: (c := grad_cam(m, layer, x, t)) + c.max() / 100, "largest difference"),
    "modules": (and_then(no_inplace), r"changed the model's modules \(at '1'"),
    "dtype": (in_float64, r"is now torch.float64.*copy.deepcopy\(model\).double\(\)"),
    "weights": (zeroes_the_classifier, r"changed the model's values \(6.weight\)"),
    "requires_grad": (and_then(lambda m: m.requires_grad_(False)), r"requires_grad to False"),
    "train mode": (and_then(lambda m: m.train()), r"left the model in train mode"),
    "hooks left": (and_then(lambda m: m[3].register_forward_hook(lambda *a: None)), r"hook on the model \(at '3'\)"),
    "grad left": (and_then(backward), r"\.backward\(\) stores them.*torch.autograd.grad"),
    "grad mode": (and_then(lambda m: torch.set_grad_enabled(False)), "switched them back"),
    "default dtype": (and_then(lambda m: torch.set_default_dtype(torch.float64)), "set it back"),
    "global hooks": (and_then(global_hook), "put the global hooks back"),
}
"""Each diagnosis of the Grad-CAM checker outside its table of mistakes, with an answer that makes it fire."""

MODEL_CHANGES = {
    "modules",
    "dtype",
    "weights",
    "requires_grad",
    "train mode",
    "hooks left",
    "grad left",
    "grad mode",
    "default dtype",
    "global hooks",
}


@pytest.mark.parametrize("reason", sorted(GRAD_CAM_CASES))
def test_each_grad_cam_diagnosis_fires(reason: str) -> None:
    net = two_layer_net()
    before = {name: value.clone() for name, value in net.state_dict().items()}
    global_hooks = len(torch_module._global_forward_hooks)
    answer, words = GRAD_CAM_CASES[reason]
    assert_named(diagnose_grad_cam(answer, net, "1", X, lowest_class(net)), reason, words)
    if reason in MODEL_CHANGES:
        assert "the lesson's model is unchanged" in diagnose_grad_cam(answer, net, "1", X, 0).message
    assert all(torch.equal(value, before[name]) for name, value in net.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in net.parameters()) and not net.training
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32
    assert len(torch_module._global_forward_hooks) == global_hooks and all(not m._forward_hooks for m in net.modules())


def test_the_model_the_checker_was_given_is_checked_as_it_was_before_the_answer_ran() -> None:
    """Reference first: an answer that breaks the model it gets cannot make its own zeros "Correct"."""
    net = two_layer_net()
    expected = grad_cam(net, "1", X, 0)
    verdict = diagnose_grad_cam(zeroes_the_classifier, net, "1", X, 0)
    assert verdict.reason == "weights" and torch.equal(grad_cam(net, "1", X, 0), expected)
    assert diagnose_grad_cam(lambda *args: torch.zeros(1, 1, 8, 8), net, "1", X, 0).reason == "values"


def test_a_model_already_in_float64_gets_the_advice_to_reload_it() -> None:
    verdict = diagnose_grad_cam(grad_cam, two_layer_net().double(), "1", X, 0)
    assert_named(verdict, "dtype", r"weights are torch.float64 but the image is torch.float32.*Run the cell that loads")
    with pytest.raises(TypeError, match=r"^x has dtype torch.float64 but the model's weights are torch.float32"):
        diagnose_grad_cam(grad_cam, two_layer_net(), "1", X.double(), 0)


def test_each_mistake_in_the_grad_cam_table_is_named() -> None:
    """At layer "1" (at "3", just before the average pooling, the gradients are uniform: max = mean there)."""
    net = two_layer_net()
    target = lowest_class(net)
    for reason, text, candidate in grad_cam_checker._mistakes(net, "1", X, target):
        assert_named(diagnose_grad_cam(candidate[None, None], net, "1", X, target), reason, re.escape(text))


def test_a_grad_cam_at_a_layer_of_another_size_is_named_as_the_wrong_layer() -> None:
    verdict = diagnose_grad_cam(lambda m, layer, x, t: grad_cam(m, "4", x, t), pooled_net(), "1", X, 0)
    assert_named(verdict, "wrong layer", "it is Grad-CAM at '4'")
    assert_named(diagnose_grad_cam(torch.ones(1, 1, 3, 5), pooled_net(), "1", X, 0), "shape", r"expected 8 x 8")


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_a_grad_cam_upsampled_to_the_input_is_named(mode: str) -> None:
    verdict = diagnose_grad_cam(lambda m, layer, x, t: grad_cam(m, layer, x, t, upsample=mode), pooled_net(), "4", X, 0)
    assert_named(verdict, "upsampled", "return it at the layer's own grid, 4 x 4")


def test_every_grad_cam_diagnosis_has_a_test() -> None:
    table = {reason for reason, _, _ in grad_cam_checker._mistakes(two_layer_net(), "1", X, 0)}
    named = named_in(grad_cam_checker, model_guard)
    assert named <= set(GRAD_CAM_CASES) | table | COMMON | {"upsampled"}, named
    assert MODEL_CHANGES <= named


def test_the_reference_passes_and_the_check_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_grad_cam(grad_cam, two_layer_net(), "1", X, 0, label="layer 1").passed
    assert capsys.readouterr().out == "layer 1: Correct: your Grad-CAM at 1 (8 x 8) equals utils.saliency.grad_cam.\n"


def test_an_unanswered_grad_cam_is_not_attempted_and_the_check_stops(capsys: pytest.CaptureFixture[str]) -> None:
    def my_grad_cam(model, layer_name, x, target):
        raise NotImplementedError("write my_grad_cam")

    with pytest.raises(AnswerCheckError, match=r"^features\.7: Not attempted: my_grad_cam raises NotImplementedError"):
        check_grad_cam(my_grad_cam, two_layer_net(), "1", X, 0, label="features.7")
    assert capsys.readouterr().out == ""


# --- lesson 02: the deconvnet's rule ------------------------------------------------------------


def zeroes_its_argument(g: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    return g.zero_()


DECONV_CASES: dict[str, tuple[Any, str]] = {
    "in place": (zeroes_its_argument, "changed its arguments in place"),
    "shape": (lambda g, i: g.sum(), "one value per element"),
    "values": (lambda g, i: g / 2, "the deconvnet gives max"),
    "type": (lambda g, i: g.tolist(), "returned a list"),
    "network": (lambda g, i: deconv_rule(g, i) if g.ndim == 3 else g, "right on the table but the network's map"),
    "raised": (lambda g, i: g.no_such_method(), "raised AttributeError"),
}


@pytest.mark.parametrize("reason", sorted(DECONV_CASES))
def test_each_deconv_diagnosis_fires(reason: str) -> None:
    net = two_layer_net()
    rule, words = DECONV_CASES[reason]
    assert_named(diagnose_deconv_rule(rule, net, X, 0), reason, words)


def test_each_mistake_in_the_deconv_table_is_named() -> None:
    for reason, text, rule in deconv_checker._MISTAKES:
        assert_named(diagnose_deconv_rule(rule, two_layer_net(), X, 0), reason, re.escape(text))


def test_every_deconv_diagnosis_has_a_test() -> None:
    table = {reason for reason, _, _ in deconv_checker._MISTAKES}
    assert named_in(deconv_checker) <= set(DECONV_CASES) | table | COMMON


def test_a_deconv_answer_that_is_not_a_function_is_named() -> None:
    assert_named(diagnose_deconv_rule(torch.zeros(3), two_layer_net(), X, 0), "type", "write a function my_deconv")


def test_relu_backward_rule_removes_its_hooks_when_the_block_raises() -> None:
    net = two_layer_net()
    with pytest.raises(RuntimeError, match="inside"):
        with relu_backward_rule(net, deconv_rule):
            raise RuntimeError("inside")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_an_unanswered_deconv_rule_is_not_attempted() -> None:
    def my_deconv_rule(grad_output, relu_input):
        raise NotImplementedError("write my_deconv_rule")

    for answer in (my_deconv_rule, None, ...):
        assert diagnose_deconv_rule(answer, two_layer_net(), X, 0).status == "not attempted"
    with pytest.raises(AnswerCheckError, match=r"^Not attempted: my_deconv_rule raises NotImplementedError"):
        check_deconv_rule(my_deconv_rule, two_layer_net(), X, 0)


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


GUIDED_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "channels": (lambda g, c: guided_grad_cam_bilinear(g, c).sum(1, keepdim=True), "keep GBP's 3 channels"),
    "shape": (lambda g, c: g[..., :3, :3] * c, "Upsample Grad-CAM to GBP's size first"),
    "not finite": (lambda g, c: guided_grad_cam_bilinear(g, c) / 0.0, "NaN or infinite"),
    "values": (lambda g, c: guided_grad_cam_bilinear(g, c) + 0.01, "the largest difference is at"),
}


@pytest.mark.parametrize("reason", sorted(GUIDED_CASES))
def test_each_guided_grad_cam_diagnosis_fires(maps, reason: str) -> None:
    answer, words = GUIDED_CASES[reason]
    assert_named(diagnose_guided_grad_cam(answer, *maps), reason, words)


def test_each_mistake_in_the_guided_grad_cam_table_is_named(maps) -> None:
    gbp, cam = (m.double() for m in maps)
    for reason, text, candidate in guided_checker._mistakes(gbp, cam):
        assert_named(diagnose_guided_grad_cam(candidate, *maps), reason, re.escape(text))


def test_every_guided_grad_cam_diagnosis_has_a_test(maps) -> None:
    table = {reason for reason, _, _ in guided_checker._mistakes(*maps)}
    assert named_in(guided_checker) <= set(GUIDED_CASES) | table | COMMON


def test_the_reference_passes_leaves_its_inputs_alone_and_refuses_a_cam_of_another_shape(maps) -> None:
    gbp, cam = maps
    kept = gbp.clone(), cam.clone()
    guided_grad_cam_bilinear(gbp, cam)
    assert torch.equal(gbp, kept[0]) and torch.equal(cam, kept[1])
    with pytest.raises(ValueError, match="cam must be a 1 x 1 x h x w tensor"):
        guided_grad_cam_bilinear(gbp, cam[0])
    assert check_guided_grad_cam(guided_grad_cam_bilinear, gbp, cam, label="squirrel").passed


def test_a_guided_grad_cam_answer_cannot_change_the_maps_it_is_checked_on(maps) -> None:
    gbp, cam = maps
    kept = gbp.clone()

    def vandal(g, c):
        g.mul_(0)
        return g

    assert not diagnose_guided_grad_cam(vandal, gbp, cam).passed
    assert torch.equal(gbp, kept)


def test_an_unanswered_guided_grad_cam_is_not_attempted(maps) -> None:
    def my_guided_grad_cam(gbp, cam):
        raise NotImplementedError("write my_guided_grad_cam")

    with pytest.raises(
        AnswerCheckError, match=r"^squirrel: Not attempted: my_guided_grad_cam raises NotImplementedError"
    ):
        check_guided_grad_cam(my_guided_grad_cam, *maps, label="squirrel")


# --- the lessons' questions ---------------------------------------------------------------------


def read_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("lesson", list(LESSONS))
def test_each_lesson_asks_two_to_four_questions_with_folded_answers(lesson):
    cells = read_cells(ROOT / "notebooks" / lesson)
    questions = next(
        text(c) for c in cells if c["cell_type"] == "markdown" and "## Check your understanding" in text(c)
    )
    section = questions.split("## Check your understanding", 1)[1].split("\n## ", 1)[0]
    asked = re.findall(r"^\d\. ", section, flags=re.MULTILINE)
    assert 2 <= len(asked) <= 4 and section.count("<details><summary>Answer</summary>") == len(asked)
