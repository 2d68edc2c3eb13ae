"""Lesson 02's checker (utils/exercises/guided_backprop.py), line by line: each usual rule, written here from
scratch rather than taken from the checker's own table, gets the exact line a learner sees; the network check is
measured against Captum directly; the rule's hooks and refusals (mutation testing, issue 26)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from _shared import Noisy, refuses
from captum.attr import Deconvolution
from torch import nn

from utils.exercises import Verdict
from utils.exercises.guided_backprop import check_deconv_rule, deconv_rule, diagnose_deconv_rule, relu_backward_rule

X = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))


def net() -> nn.Sequential:
    """Two convolutions, the first ReLU in place, average pooling: a map that depends on each ReLU's rule."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()


def diagnosed(rule: object) -> Verdict:
    return diagnose_deconv_rule(rule, net(), X, 1)


RULES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]] = {
    "guided rule": (
        lambda g, x: torch.where(x > 0, g.clamp(min=0), torch.zeros_like(g)),
        "your rule also keeps the forward mask (relu_input > 0): that is Guided Backpropagation. The deconvnet "
        "ignores the forward input.",
    ),
    "ordinary gradient": (
        lambda g, x: torch.where(x > 0, g, torch.zeros_like(g)),
        "your rule is the ReLU's ordinary backward, grad_output * (relu_input > 0); the deconvnet ignores the forward "
        "input and keeps the positive part of the gradient.",
    ),
    "identity": (lambda g, x: g + 0, "your rule passes every gradient through unchanged; keep only its positive part."),
    "absolute value": (
        lambda g, x: torch.where(g < 0, -g, g),
        "your rule returns |grad_output|; negative gradients must become 0, not positive.",
    ),
    "negative part": (
        lambda g, x: torch.minimum(g, torch.zeros_like(g)),
        "your rule keeps the negative part of the gradient; keep the positive part, max(grad_output, 0).",
    ),
    "sign": (
        lambda g, x: torch.maximum(-g, torch.zeros_like(g)),
        "your rule returns max(-grad_output, 0); keep the positive part of grad_output itself.",
    ),
    "forward input": (
        lambda g, x: torch.maximum(x, torch.zeros_like(x)),
        "your rule returns max(relu_input, 0), the forward pass; apply the ReLU to grad_output instead.",
    ),
}


@pytest.mark.parametrize("reason", sorted(RULES))
def test_each_usual_rule_gets_its_line(reason: str) -> None:
    rule, text = RULES[reason]
    assert diagnosed(rule) == Verdict("wrong", reason, f"Not yet right ({reason}): {text}")


def test_a_rule_in_float64_is_judged_by_its_values() -> None:
    assert diagnosed(lambda g, x: g.double().clamp(min=0)).passed
    assert diagnosed(lambda g, x: g.double().abs()).reason == "absolute value"


@pytest.mark.parametrize(
    ("g", "x", "gives", "line"),
    [
        (
            0.5,
            -0.1,
            3.5,
            "for grad_output = 0.5 and relu_input = -0.1 your rule gives 3.5; the deconvnet gives max(0.5, 0) = 0.5.",
        ),
        (
            -2.0,
            1.5,
            -7.0,
            "for grad_output = -2 and relu_input = 1.5 your rule gives -7; the deconvnet gives max(-2, 0) = 0.",
        ),
        (
            -0.5,
            0.1,
            0.25,
            "for grad_output = -0.5 and relu_input = 0.1 your rule gives 0.25; the deconvnet gives max(-0.5, 0) = 0.",
        ),
    ],
)
def test_a_rule_off_at_one_pairing_is_told_that_pairing(g: float, x: float, gives: float, line: str) -> None:
    def rule(grad_output: torch.Tensor, relu_input: torch.Tensor) -> torch.Tensor:
        there = (grad_output == g) & (relu_input == torch.tensor(x))
        return torch.where(there, torch.full_like(grad_output, gives), grad_output.clamp(min=0))

    assert diagnosed(rule) == Verdict("wrong", "values", f"Not yet right (values): {line}")


def _relu(g: torch.Tensor) -> torch.Tensor:
    return torch.maximum(g, torch.zeros_like(g))


TABLE_CORNERS: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]] = {
    "a small negative gradient": (
        lambda g, x: torch.where((g < 0) & (g > -1), g, _relu(g)),
        "for grad_output = -0.5 and relu_input = -1.5 your rule gives -0.5; the deconvnet gives max(-0.5, 0) = 0.",
    ),
    "a zero gradient": (
        lambda g, x: torch.where(g == 0, torch.ones_like(g), _relu(g)),
        "for grad_output = 0 and relu_input = -1.5 your rule gives 1; the deconvnet gives max(0, 0) = 0.",
    ),
    "a large gradient": (
        lambda g, x: torch.where(g > 1, g + 1, _relu(g)),
        "for grad_output = 2 and relu_input = -1.5 your rule gives 3; the deconvnet gives max(2, 0) = 2.",
    ),
    "a large negative input": (
        lambda g, x: torch.where(x < -1, _relu(g) + 1, _relu(g)),
        "for grad_output = -2 and relu_input = -1.5 your rule gives 1; the deconvnet gives max(-2, 0) = 0.",
    ),
    "a zero input": (
        lambda g, x: torch.where(x == 0, _relu(g) + 1, _relu(g)),
        "for grad_output = -2 and relu_input = 0 your rule gives 1; the deconvnet gives max(-2, 0) = 0.",
    ),
    "a small positive input": (
        lambda g, x: torch.where((x > 0) & (x < 0.5), _relu(g) + 1, _relu(g)),
        "for grad_output = -2 and relu_input = 0.1 your rule gives 1; the deconvnet gives max(-2, 0) = 0.",
    ),
}


@pytest.mark.parametrize("corner", sorted(TABLE_CORNERS))
def test_the_table_holds_each_kind_of_gradient_and_input(corner: str) -> None:
    """A rule wrong only for one kind of value (a zero gradient, a small negative one, ...) is caught on the table."""
    rule, line = TABLE_CORNERS[corner]
    assert diagnosed(rule) == Verdict("wrong", "values", f"Not yet right (values): {line}")


def test_what_is_not_a_rule_is_named() -> None:
    assert diagnosed(torch.zeros(3)).message == (
        "Not yet right (type): the answer is a Tensor; write a function my_deconv_rule(grad_output, relu_input)."
    )
    assert diagnosed(None).status == "not attempted"
    assert diagnosed(lambda g, x: g.tolist()) == Verdict(
        "wrong", "type", "Not yet right (type): your rule returned a list; return a tensor shaped like grad_output."
    )
    assert diagnosed(lambda g, x: g.numpy()).message == (
        "Not yet right (type): your rule returned an ndarray; return a tensor shaped like grad_output."
    )
    assert diagnosed(lambda g, x: g.clamp(min=0) > 0).message == (
        "Not yet right (type): the answer is a boolean tensor (dtype bool): True/False, not numbers; return a tensor "
        "shaped like grad_output."
    )


def test_a_rule_of_another_shape_is_told_both_shapes() -> None:
    for rule, shape in ((lambda g, x: g.sum(), "()"), (lambda g, x: g.clamp(min=0)[None], "(1, 1, 5, 5)")):
        assert diagnosed(rule) == Verdict(
            "wrong",
            "shape",
            f"Not yet right (shape): your rule returned shape {shape} for a gradient of shape (1, 5, 5); return one "
            "value per element.",
        )


@pytest.mark.parametrize("argument", [0, 1])
def test_a_rule_that_changes_either_argument_in_place_is_named(argument: int) -> None:
    def rule(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        (g, x)[argument].mul_(1.5)
        return deconv_rule(g, x)

    assert diagnosed(rule) == Verdict(
        "wrong",
        "in place",
        "Not yet right (in place): your rule changed its arguments in place (e.g. clamp_, relu_); return a new tensor "
        "instead.",
    )


def _captum(model: nn.Module) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Deconvolution(model).attribute(X.clone(), target=1).detach()


def _identity_map(model: nn.Module) -> torch.Tensor:
    """Every ReLU passing its gradient through: the gradient of the same network with the ReLUs taken out."""
    linear = nn.Sequential(*(m for m in model if not isinstance(m, nn.ReLU)))
    image = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(linear(image)[0, 1], image)
    return grad


def test_a_rule_right_only_on_the_table_is_told_the_gap_to_captum() -> None:
    model = net()
    expected = _captum(model)
    gap = float((_identity_map(model) - expected).abs().max()) / float(expected.abs().max())
    assert gap > 1e-3
    verdict = diagnose_deconv_rule(lambda g, x: g + 0 if g.ndim == 4 else deconv_rule(g, x), model, X, 1)
    assert verdict == Verdict(
        "wrong",
        "network",
        f"Not yet right (network): your rule is right on the table but the network's map differs from Captum's "
        f"Deconvolution by {gap:.1e} of its maximum; make it work elementwise on tensors of any shape.",
    )


def test_a_rule_that_raises_only_in_the_network_is_named_with_the_error() -> None:
    def rule(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if g.ndim == 4:
            raise ValueError("only tables")
        return deconv_rule(g, x)

    assert diagnosed(rule) == Verdict(
        "wrong", "raised", "Not yet right (raised): your rule raised ValueError inside the backward pass: only tables"
    )


def test_the_right_rule_passes_with_captums_map_quietly_and_even_without_gradients(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = net()
    torch.set_warn_always(True)  # torch's warn-once notices (meshgrid without indexing=...) at every call
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("error")  # Captum's notices about its hooks are the checker's to silence
            assert check_deconv_rule(lambda g, x: g.clamp(min=0), model, X, 1, label="toy").passed
    finally:
        torch.set_warn_always(False)
    line = capsys.readouterr().out
    found = re.fullmatch(
        r"toy: Correct: your rule at every ReLU gives Captum's Deconvolution \(largest difference (\S+) of its "
        r"maximum\)\.\n",
        line,
    )
    assert found is not None, line
    assert float(found.group(1)) <= 1e-6
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert X.grad is None and not X.requires_grad


def test_a_model_whose_map_is_zero_passes_the_right_rule_without_dividing_by_zero() -> None:
    model = net()
    with torch.no_grad():
        model[-1].weight.zero_()
    assert float(_captum(model).abs().max()) == 0.0
    assert diagnose_deconv_rule(deconv_rule, model, X, 1).passed


# --- the rule and its hooks ----------------------------------------------------------------------------------


def test_deconv_rule_refuses_what_is_not_a_dense_float_tensor() -> None:
    g = torch.tensor([1.0, -1.0])
    for bad, shown in ((torch.tensor([1, -1]), "a torch.int64 tensor of shape (2,)"), ([1.0], "[1.0]")):
        with refuses(TypeError, f"grad_output must be a dense float torch tensor, not {shown}."):
            deconv_rule(bad, g)  # type: ignore[arg-type]
        with refuses(TypeError, f"relu_input must be a dense float torch tensor, not {shown}."):
            deconv_rule(g, bad)  # type: ignore[arg-type]
    with refuses(TypeError, "relu_input must be a dense float torch tensor, not a torch.float32 tensor of shape (2,)."):
        deconv_rule(g, g.to_sparse())


def test_relu_backward_rule_refuses_a_rule_that_is_not_a_function() -> None:
    with refuses(TypeError, "rule must be a function rule(grad_output, relu_input), not 'max'."):
        with relu_backward_rule(net(), "max"):  # type: ignore[arg-type]
            pass


def test_each_relu_uses_the_rule_on_its_own_input_even_in_place() -> None:
    """Every ReLU (the in-place one too) gets the forward input it saw, and its output is the ReLU's."""
    model = net()
    seen: list[torch.Tensor] = []

    def rule(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return F.relu(g)

    inputs: list[torch.Tensor] = []
    handles = [model[i].register_forward_pre_hook(lambda m, a: inputs.append(a[0].clone())) for i in (1, 3)]
    image = X.clone().requires_grad_(True)
    try:
        with relu_backward_rule(model, rule):
            out = model(image)
            torch.autograd.grad(out[0, 1], image)
    finally:
        for handle in handles:
            handle.remove()
    assert len(seen) == 2 and torch.equal(seen[0], inputs[1]) and torch.equal(seen[1], inputs[0])
    assert torch.allclose(out, net()(X))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_the_models_own_warnings_reach_the_learner_at_every_pass() -> None:
    """Only Captum's two notices are silenced around its Deconvolution, not what the model says."""
    model = net()
    model.insert(0, Noisy())
    Noisy.passes = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert diagnose_deconv_rule(deconv_rule, model, X, 1).passed
    said = [w for w in caught if str(w.message) == "the model ran"]
    assert Noisy.passes == 2 and len(said) == 2


def test_against_a_zero_map_the_gap_is_absolute() -> None:
    """With the classifier zeroed Captum's map is 0: the gap is the answer's own largest value, not a fraction."""
    model = net()
    with torch.no_grad():
        model[-1].weight.zero_()

    def plus(c: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return lambda g, x: g.clamp(min=0) + c if g.ndim == 4 else deconv_rule(g, x)

    image = X.clone().requires_grad_(True)
    with relu_backward_rule(model, plus(1.0)):
        (unit,) = torch.autograd.grad(model(image)[0, 1], image)
    c = 1.5e-5 / float(unit.abs().max())  # the map grows with c: its largest value is then 1.5e-5
    verdict = diagnose_deconv_rule(plus(c), model, X, 1)
    assert verdict.reason == "network" and "by 1.5e-05 of its maximum" in verdict.message, verdict.message
    assert diagnose_deconv_rule(plus(c / 3), model, X, 1).passed


class SaysCaptumsWords(nn.Module):
    """Warns with the words of Captum's notice, but as a RuntimeWarning: only Captum's UserWarning is silenced."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn("Input Tensor 0 did not already require gradients (the model's own)", RuntimeWarning, 1)
        return x


def test_only_captums_user_warning_is_silenced_not_the_same_words_of_another_kind() -> None:
    model = net()
    model.insert(0, SaysCaptumsWords())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert diagnose_deconv_rule(deconv_rule, model, X, 1).passed
    assert sum(w.category is RuntimeWarning for w in caught) == 2
