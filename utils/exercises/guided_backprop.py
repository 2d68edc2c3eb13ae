"""Lesson 02's exercise: the deconvnet's backward rule at a ReLU, checked against Captum's ``Deconvolution``.

Three ways to pass a gradient ``R`` back through a ReLU whose forward input was ``x``
(Springenberg et al., 2015, Fig. 1; the deconvnet is Zeiler & Fergus, 2014):

* the ordinary gradient: ``R * (x > 0)``, where the forward pass let the signal through;
* the deconvnet: ``max(R, 0)``, a ReLU applied to the gradient itself, whatever ``x`` was;
* Guided Backpropagation: both, ``max(R, 0) * (x > 0)``.

The learner writes the deconvnet's rule as ``my_deconv_rule(grad_output, relu_input)``.
``relu_backward_rule`` runs any such rule at every ``nn.ReLU`` of a model (in-place ReLUs
included), and ``diagnose_deconv_rule`` checks the answer twice: on a small table of gradients and
inputs, where the usual mistakes are named, and through the whole network, against Captum's
``Deconvolution``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import Deconvolution
from torch import nn

from utils.categories import check_model, describe
from utils.exercises import Verdict, answer_tensor, article, call_answer, check_image, correct, report, wrong

__all__ = ["ReluRule", "check_deconv_rule", "deconv_rule", "diagnose_deconv_rule", "relu_backward_rule"]

ReluRule = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``rule(grad_output, relu_input) -> grad_input``: how a gradient passes back through one ReLU."""

TOLERANCE = 1e-5
"""A correct network map matches Captum's to this fraction of its maximum."""


def deconv_rule(grad_output: torch.Tensor, relu_input: torch.Tensor) -> torch.Tensor:
    """The deconvnet's rule (Zeiler & Fergus, 2014): ``max(grad_output, 0)``; the forward input is ignored.

    >>> deconv_rule(torch.tensor([-1.0, 2.0]), torch.tensor([3.0, -3.0]))
    tensor([0., 2.])
    """
    for name, value in (("grad_output", grad_output), ("relu_input", relu_input)):
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided or not value.is_floating_point():
            raise TypeError(f"{name} must be a dense float torch tensor, not {describe(value)}.")
    return grad_output.clamp(min=0)


class _ReluWithRule(torch.autograd.Function):
    """``relu(x)`` forward; ``rule(grad_output, x)`` backward."""

    @staticmethod
    def forward(ctx: Any, relu_input: torch.Tensor, rule: ReluRule) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(relu_input)
        ctx.rule = rule
        return F.relu(relu_input)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (relu_input,) = ctx.saved_tensors
        return ctx.rule(grad_output, relu_input), None


@contextmanager
def relu_backward_rule(model: nn.Module, rule: ReluRule) -> Iterator[None]:
    """While the block runs, every ``nn.ReLU`` of ``model`` passes gradients back with ``rule``.

    A forward pre-hook keeps a copy of each ReLU's input (an in-place ReLU overwrites it), and a
    forward hook replaces the ReLU's output by the same values computed by a function whose
    backward is ``rule``. The hooks are removed on every path; the model is not changed.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.eye(2)), net[0].bias.zero_()
    >>> x = torch.tensor([[1.0, -1.0]], requires_grad=True)
    >>> with relu_backward_rule(net, deconv_rule):
    ...     (grad,) = torch.autograd.grad(net(x), x, torch.tensor([[-1.0, 2.0]]))
    >>> grad  # the deconvnet passes the 2.0 back although that unit's input was negative
    tensor([[0., 2.]])
    """
    check_model(model)
    if not callable(rule):
        raise TypeError(f"rule must be a function rule(grad_output, relu_input), not {describe(rule)}.")
    kept: dict[nn.Module, torch.Tensor] = {}

    def keep_input(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        kept[module] = inputs[0].clone()

    def use_rule(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        return _ReluWithRule.apply(kept.pop(module), rule)

    handles = []
    try:
        for module in model.modules():
            if isinstance(module, nn.ReLU):
                handles += [module.register_forward_pre_hook(keep_input), module.register_forward_hook(use_rule)]
        yield
    finally:
        for handle in handles:
            handle.remove()
        kept.clear()


# --- the checker --------------------------------------------------------------------------------


def _table() -> tuple[torch.Tensor, torch.Tensor]:
    """Every pairing of a gradient (negative, zero, positive) with a forward input (negative, zero, positive)."""
    grads = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    inputs = torch.tensor([-1.5, -0.1, 0.0, 0.1, 1.5])
    grad_output, relu_input = torch.meshgrid(grads, inputs, indexing="ij")
    return grad_output.reshape(1, 5, 5).clone(), relu_input.reshape(1, 5, 5).clone()


_MISTAKES: tuple[tuple[str, str, ReluRule], ...] = (
    (
        "guided rule",
        "your rule also keeps the forward mask (relu_input > 0): that is Guided Backpropagation. "
        "The deconvnet ignores the forward input.",
        lambda g, x: F.relu(g) * (x > 0),
    ),
    (
        "ordinary gradient",
        "your rule is the ReLU's ordinary backward, grad_output * (relu_input > 0); the "
        "deconvnet ignores the forward input and keeps the positive part of the gradient.",
        lambda g, x: g * (x > 0),
    ),
    ("identity", "your rule passes every gradient through unchanged; keep only its positive part.", lambda g, x: g),
    (
        "absolute value",
        "your rule returns |grad_output|; negative gradients must become 0, not positive.",
        lambda g, x: g.abs(),
    ),
    (
        "negative part",
        "your rule keeps the negative part of the gradient; keep the positive part, max(grad_output, 0).",
        lambda g, x: g.clamp(max=0),
    ),
    (
        "sign",
        "your rule returns max(-grad_output, 0); keep the positive part of grad_output itself.",
        lambda g, x: F.relu(-g),
    ),
    (
        "forward input",
        "your rule returns max(relu_input, 0), the forward pass; apply the ReLU to grad_output instead.",
        lambda g, x: F.relu(x),
    ),
)


def _rule_on_table(answer: Any) -> Verdict | None:
    """Check the rule on the table of gradients and inputs; None when it gives the deconvnet's values."""
    if not callable(answer):
        placeholder = call_answer(answer)
        if isinstance(placeholder, Verdict):
            return placeholder
        kind = article(type(answer).__name__)
        return wrong("type", f"the answer is {kind}; write a function my_deconv_rule(grad_output, relu_input).")
    grad_output, relu_input = _table()
    given_g, given_x = grad_output.clone(), relu_input.clone()
    got = call_answer(answer, given_g, given_x)
    if isinstance(got, Verdict):
        return got
    if not torch.equal(given_g, grad_output) or not torch.equal(given_x, relu_input):
        return wrong(
            "in place",
            "your rule changed its arguments in place (e.g. clamp_, relu_); return a new tensor instead.",
        )
    if not isinstance(got, torch.Tensor):
        kind = article(type(got).__name__)
        return wrong("type", f"your rule returned {kind}; return a tensor shaped like grad_output.")
    values = answer_tensor(got, "a tensor shaped like grad_output", squeeze=False)
    if isinstance(values, Verdict):
        return values
    if values.shape != grad_output.shape:
        given = tuple(grad_output.shape)
        return wrong(
            "shape",
            f"your rule returned shape {tuple(values.shape)} for a gradient of shape {given}; "
            "return one value per element.",
        )
    got = values.to(torch.float32)
    if torch.allclose(got, deconv_rule(grad_output, relu_input)):
        return None
    for reason, text, rule in _MISTAKES:
        if torch.allclose(got, rule(grad_output, relu_input).to(torch.float32)):
            return wrong(reason, text)
    i, j = np.unravel_index(int((got - deconv_rule(grad_output, relu_input)).abs().argmax()), (5, 5))
    g, x = float(grad_output[0, i, j]), float(relu_input[0, i, j])
    return wrong(
        "values",
        f"for grad_output = {g:g} and relu_input = {x:g} your rule gives {float(got[0, i, j]):g}; "
        f"the deconvnet gives max({g:g}, 0) = {max(g, 0.0):g}.",
    )


def _captum_deconvolution(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    with warnings.catch_warnings():  # Captum's notices about its own ReLU hooks and the input's requires_grad
        for notice in ("Setting backward hooks on ReLU", "Input Tensor 0 did not already require gradients"):
            warnings.filterwarnings("ignore", message=notice, category=UserWarning)
        return Deconvolution(model).attribute(x.detach().clone(), target=target).detach()


def _network_map(model: nn.Module, x: torch.Tensor, target: int, rule: ReluRule) -> torch.Tensor:
    image = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), relu_backward_rule(model, rule):
        (grad,) = torch.autograd.grad(model(image)[0, target], image)
    return grad


def diagnose_deconv_rule(answer: ReluRule | Any, model: nn.Module, x: torch.Tensor, target: int) -> Verdict:
    """Check the learner's ``answer(grad_output, relu_input)`` as the deconvnet's rule.

    First on a table of gradients and forward inputs (negative, zero, positive), where a wrong
    rule is matched against the usual mistakes (the guided rule, the ordinary gradient, |.|, the
    negative part, ...); then at every ReLU of ``model`` for image ``x`` (``1 x 3 x H x W``) and
    class ``target``, against Captum's ``Deconvolution``. The model must be in eval mode.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> diagnose_deconv_rule(lambda g, x: g.clamp(min=0), net, torch.rand(1, 3, 8, 8), 1).status
    'correct'
    >>> diagnose_deconv_rule(lambda g, x: g.clamp(min=0) * (x > 0), net, torch.rand(1, 3, 8, 8), 1).reason
    'guided rule'
    """
    check_model(model)
    check_image(x)
    found = _rule_on_table(answer)
    if found is not None:
        return found
    expected = _captum_deconvolution(model, x, target)
    try:
        got = _network_map(model, x, target, answer)
    except Exception as error:  # the learner's rule inside autograd: any error is a finding
        return wrong("raised", f"your rule raised {type(error).__name__} inside the backward pass: {error}")
    scale = float(expected.abs().max()) or 1.0
    gap = float((got.to(expected.dtype) - expected).abs().max()) / scale
    if got.shape != expected.shape or gap > TOLERANCE:
        return wrong(
            "network",
            "your rule is right on the table but the network's map differs from Captum's "
            f"Deconvolution by {gap:.1e} of its maximum; make it work elementwise on tensors of any shape.",
        )
    return correct(
        f"your rule at every ReLU gives Captum's Deconvolution (largest difference {gap:.1e} of its maximum)."
    )


def check_deconv_rule(
    answer: ReluRule | Any, model: nn.Module, x: torch.Tensor, target: int, *, label: str | None = None
) -> Verdict:
    """Lesson 02's checker: print the verdict; raise ``AnswerCheckError`` unless ``answer`` is the deconvnet's rule.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> check_deconv_rule(deconv_rule, net, torch.rand(1, 3, 8, 8), 0, label="toy").passed  # doctest: +ELLIPSIS
    toy: Correct: your rule at every ReLU gives Captum's Deconvolution (largest difference ... of its maximum).
    True
    """
    return report(diagnose_deconv_rule(answer, model, x, target), label)
