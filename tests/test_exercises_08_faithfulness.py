"""Lesson 08's checker, tested without its answer: every diagnosis fires, and a curve off by a factor is named for it.

The hand-out ships this file, so no curve here is computed by hand: each wrong answer is built from the course's
reference (``utils.faithfulness.insertion_deletion``). tests/solutions/test_solutions_08_faithfulness.py holds the
worked answer and the mistakes written from scratch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from _shared import source_as_written
from torch import nn

import utils.exercises._model_guard as model_guard
import utils.exercises.faithfulness as curve_checker
from utils.exercises import AnswerCheckError, Verdict
from utils.exercises.faithfulness import check_insertion_curve, diagnose_insertion_curve
from utils.faithfulness import insertion_deletion

STEPS = 4
TARGET = 2
COMMON = {"not attempted", "raised", "type", "verdict"}
"""Diagnoses every checker shares (utils.exercises.call_answer and answer_array): tests/test_exercises_common.py."""


def linear_net() -> nn.Sequential:
    """A linear classifier with large weights: every pixel moves the probabilities, so every mistake shows."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 3))
    with torch.no_grad():
        net[1].weight.mul_(0.5)
    return net.eval()


def setting() -> tuple[nn.Module, torch.Tensor, np.ndarray]:
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    x[..., :6] += 3.0  # a bright left half: the blurred image differs from the mean colour and from zeros
    return linear_net(), x, np.random.default_rng(1).random((12, 12))


def curve(saliency_sign: float = 1.0, baseline: str = "blur", kind: str = "insertion") -> Callable[..., np.ndarray]:
    """An answer that returns the reference's curve for another map sign, baseline or kind."""

    def answer(model: nn.Module, x: torch.Tensor, saliency: np.ndarray, target: int, steps: int) -> np.ndarray:
        curves = insertion_deletion(model, x, saliency_sign * saliency, target, steps=steps, baseline=baseline)
        return getattr(curves, kind)

    return answer


def transformed(change: Callable[[np.ndarray], Any]) -> Callable[..., Any]:
    return lambda *args: change(curve()(*args))


def and_then(change: Callable[[nn.Module], Any]) -> Callable[..., np.ndarray]:
    """The reference curve, returned after ``change(model)``: right values, changed model."""

    def answer(model: nn.Module, *args: Any) -> np.ndarray:
        values = curve()(model, *args)
        change(model)
        return values

    return answer


def backward(model: nn.Module) -> None:
    model(torch.zeros(1, 3, 12, 12))[0, 0].backward()


CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "length": (transformed(lambda c: c[:-1]), "a curve with steps=4 has 5"),
    "sign": (transformed(lambda c: -c), "times -1"),
    "percent": (transformed(lambda c: 100 * c), "in percent"),
    "logits": (transformed(lambda c: 10 * c - 3), r"use the class probability, torch.softmax"),
    "deletion": (curve(kind="deletion"), "this is the deletion curve"),
    "order": (curve(saliency_sign=-1.0), "reverse order"),
    "baseline": (curve(baseline="zero"), "revealed on zeros"),
    "values": (curve(baseline="mean"), "the curves part at step"),
    "train mode": (and_then(lambda m: m.train()), "left the model in train mode"),
    "weights": (and_then(lambda m: m[1].bias.data.add_(1)), r"changed the model's values \(1.bias\)"),
    "hooks left": (and_then(lambda m: m[1].register_forward_hook(lambda *a: None)), "left a hook"),
    "grad left": (and_then(backward), r"\.backward\(\) stores them"),
    "grad mode": (and_then(lambda m: torch.set_grad_enabled(False)), "switched them back"),
}


def assert_named(verdict: Verdict, reason: str, words: str = "") -> None:
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert verdict.message.startswith(f"Not yet right ({reason}): ") and "\n" not in verdict.message
    assert re.search(words, verdict.message), verdict.message


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_diagnosis_fires_and_the_model_stays_as_it_was(reason: str) -> None:
    model, x, saliency = setting()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    answer, words = CASES[reason]
    assert_named(diagnose_insertion_curve(answer, model, x, saliency, TARGET, steps=STEPS), reason, words)
    with pytest.raises(AnswerCheckError, match=rf"^Not yet right \({reason}\)"):
        check_insertion_curve(answer, model, x, saliency, TARGET, steps=STEPS)
    assert not model.training and all(p.grad is None for p in model.parameters()) and torch.is_grad_enabled()
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert not model[1]._forward_hooks


def test_every_diagnosis_has_a_test() -> None:
    source = source_as_written(curve_checker, model_guard)
    named = set(re.findall(r'wrong\(\s*"([^"]+)"', source))
    changes = set(re.findall(r'"([a-z_ ]+)",\s*\(?\s*f?"your function', source))
    assert named <= set(CASES) | COMMON, named - set(CASES)
    assert {"train mode", "weights", "hooks left", "grad left", "grad mode"} <= changes, changes


def test_the_reference_passes_and_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    model, x, saliency = setting()
    verdict = check_insertion_curve(curve(), model, x, saliency, TARGET, steps=STEPS, label="reference")
    assert verdict.passed and capsys.readouterr().out.startswith("reference: Correct: your insertion curve matches")


def test_no_answer_and_a_crash_are_reported() -> None:
    model, x, saliency = setting()

    def unanswered(*_: object) -> None:
        raise NotImplementedError

    def broken(*_: object) -> None:
        raise KeyError("oops")

    assert diagnose_insertion_curve(unanswered, model, x, saliency, TARGET, steps=STEPS).status == "not attempted"
    assert diagnose_insertion_curve(broken, model, x, saliency, TARGET, steps=STEPS).reason == "raised"
    for answer in ("a curve", np.ones((2, 3)), ["a", "b"], torch.ones(5, dtype=torch.bool), [np.nan] * 5):
        assert diagnose_insertion_curve(answer, model, x, saliency, TARGET, steps=STEPS).reason == "type"


def test_the_learner_cannot_change_the_inputs_the_checker_uses() -> None:
    model, x, saliency = setting()
    x_before, map_before = x.clone(), saliency.copy()

    def vandal(model: nn.Module, x: torch.Tensor, saliency: np.ndarray, target: int, steps: int) -> list[float]:
        x.zero_()
        saliency[:] = 0
        return [0.0] * (steps + 1)

    assert diagnose_insertion_curve(vandal, model, x, saliency, TARGET, steps=STEPS).reason == "values"
    assert torch.equal(x, x_before) and np.array_equal(saliency, map_before)
