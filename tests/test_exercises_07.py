"""Lesson 08's checker: a by-hand insertion curve passes, and each usual mistake is named."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from utils.exercises import AnswerCheckError
from utils.exercises.faithfulness import check_insertion_curve, diagnose_insertion_curve
from utils.faithfulness import replacement

STEPS = 4


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


def by_hand(
    *, start: str = "blur", descending: bool = True, reveal: bool = True, softmax: bool = True, first: bool = True
) -> Callable[..., list[float]]:
    """A learner's insertion curve, written as the lesson asks; the flags make the usual mistakes."""

    def curve(model: nn.Module, x: torch.Tensor, saliency: np.ndarray, target: int, steps: int) -> list[float]:
        base = replacement(x, start)
        order = np.argsort(-saliency.ravel() if descending else saliency.ravel(), kind="stable")
        values = []
        for k in range(0 if first else 1, steps + 1):
            shown = np.zeros(saliency.size, dtype=bool)
            shown[order[: round(k * saliency.size / steps)]] = True
            mask = torch.from_numpy(shown.reshape(saliency.shape))
            image = torch.where(mask, x, base) if reveal else torch.where(mask, base, x)
            with torch.no_grad():
                scores = model(image)
            values.append(float((torch.softmax(scores, 1) if softmax else scores)[0, target]))
        return values

    return curve


def test_a_correct_curve_passes_and_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    model, x, saliency = setting()
    verdict = check_insertion_curve(by_hand(), model, x, saliency, 2, steps=STEPS, label="by hand")
    assert verdict.passed and capsys.readouterr().out.startswith("by hand: Correct:")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (by_hand(reveal=False), "deletion"),
        (by_hand(descending=False), "order"),
        (by_hand(start="zero"), "baseline"),
        (by_hand(softmax=False), "logits"),
        (by_hand(first=False), "length"),
        (by_hand(start="mean"), "values"),
    ],
)
def test_each_usual_mistake_is_caught_for_its_reason(answer: Callable[..., list[float]], reason: str) -> None:
    model, x, saliency = setting()
    verdict = diagnose_insertion_curve(answer, model, x, saliency, 2, steps=STEPS)
    assert not verdict.passed and verdict.reason == reason, verdict.message
    with pytest.raises(AnswerCheckError, match=rf"Not yet right \({reason}\)"):
        check_insertion_curve(answer, model, x, saliency, 2, steps=STEPS)


def test_no_answer_and_a_crash_are_reported() -> None:
    model, x, saliency = setting()

    def unanswered(*_: object) -> None:
        raise NotImplementedError

    def broken(*_: object) -> None:
        raise KeyError("oops")

    assert diagnose_insertion_curve(unanswered, model, x, saliency, 2, steps=STEPS).status == "not attempted"
    assert diagnose_insertion_curve(broken, model, x, saliency, 2, steps=STEPS).reason == "raised"
    assert diagnose_insertion_curve("a curve", model, x, saliency, 2, steps=STEPS).reason == "type"
    assert diagnose_insertion_curve(np.ones((2, 3)), model, x, saliency, 2, steps=STEPS).reason == "type"
    assert diagnose_insertion_curve(["a", "b"], model, x, saliency, 2, steps=STEPS).reason == "type"
    assert (
        diagnose_insertion_curve(torch.ones(5, dtype=torch.bool), model, x, saliency, 2, steps=STEPS).reason == "type"
    )


def test_the_learner_cannot_change_the_inputs_the_checker_uses() -> None:
    model, x, saliency = setting()
    x_before, map_before = x.clone(), saliency.copy()

    def vandal(model: nn.Module, x: torch.Tensor, saliency: np.ndarray, target: int, steps: int) -> list[float]:
        x.zero_()
        saliency[:] = 0
        return [0.0] * (steps + 1)

    assert diagnose_insertion_curve(vandal, model, x, saliency, 2, steps=STEPS).reason == "values"
    assert torch.equal(x, x_before) and np.array_equal(saliency, map_before)
