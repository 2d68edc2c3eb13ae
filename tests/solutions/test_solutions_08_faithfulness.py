"""The worked answer to lesson 08's exercise (an insertion curve by hand) passes the checker, and each usual mistake,
written out as a learner would, is named for its reason.

The hand-out leaves this folder out (tests/solutions/); tests/test_exercises_08_faithfulness.py tests the same checker
without the answer.
"""

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


def test_a_right_curve_that_leaves_the_model_in_train_mode_is_named_and_the_model_stays_in_eval_mode() -> None:
    model, x, saliency = setting()

    def trains(model: nn.Module, *args: object) -> list[float]:
        curve = by_hand()(model, *args)
        model.train()
        return curve

    verdict = diagnose_insertion_curve(trains, model, x, saliency, 2, steps=STEPS)
    assert verdict.reason == "train mode" and "the lesson's model is unchanged" in verdict.message, verdict.message
    assert not model.training and diagnose_insertion_curve(by_hand(), model, x, saliency, 2, steps=STEPS).passed
