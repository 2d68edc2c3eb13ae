"""Lesson 08's checker: the insertion curve of a saliency map, computed by hand.

The exercise: start from the blurred image (``utils.faithfulness.replacement(x, "blur")``), reveal
the pixels of ``x`` in the order the map ranks them, highest first, ``N / steps`` more pixels at
each step, and return the class probability after every step, ``steps + 1`` values from the
blurred image to the whole image (Petsiuk et al., 2018, "RISE", Section 4.1). The reference is
``utils.faithfulness.insertion_deletion(..., baseline="blur", patch=1).insertion``, computed
first; the learner's function then runs on a deep copy of the model, and one that changes it
(train mode left on, weights, hooks, ``.grad``) or torch's global state is refused with one line
saying what changed. The lesson's model is never changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from utils.exercises import Verdict, answer_array, call_answer, correct, report, wrong
from utils.exercises._model_guard import UNCHANGED, copy_for_learner, global_state_kept, model_change
from utils.faithfulness import insertion_deletion
from utils.saliency import MapLike

__all__ = ["check_insertion_curve", "diagnose_insertion_curve"]

_TOLERANCE = 0.01  # probabilities; ties and rounding of the step sizes move a curve by far less


_WANT = "the steps + 1 probabilities as a 1-D numpy array, tensor or list of numbers"


def _as_curve(answer: Any) -> npt.NDArray[np.float64] | Verdict:
    if isinstance(answer, (list, tuple)):
        try:
            answer = np.asarray([float(value) for value in answer])
        except (TypeError, ValueError):
            return wrong("type", f"the list holds something other than numbers; return {_WANT}.")
    values = answer_array(answer, _WANT)
    if isinstance(values, Verdict):
        return values
    if values.ndim > 1 or values.size == 0:
        return wrong("type", f"the answer has shape {values.shape}; return {_WANT}.")
    if not np.isfinite(values).all():
        return wrong("type", "the curve contains NaN or infinite values.")
    return values.reshape(-1)


def _matches(curve: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]) -> bool:
    return curve.shape == reference.shape and bool(np.abs(curve - reference).max() <= _TOLERANCE)


def diagnose_insertion_curve(
    answer: Any, model: nn.Module, x: torch.Tensor, saliency: MapLike, target: int | str, *, steps: int = 8
) -> Verdict:
    """Compare ``answer`` (a curve, or a function ``(model, x, saliency, target, steps) -> curve``) with the reference.

    The usual mistakes get a name (the verdict's ``reason``): ``"length"`` (not ``steps + 1``
    values), ``"sign"`` (the curve times -1), ``"percent"`` (times 100), ``"logits"`` (values
    outside [0, 1] otherwise: scores, not probabilities), ``"deletion"`` (pixels removed instead of
    revealed), ``"order"`` (least important pixels first), ``"baseline"`` (revealed on zeros, not
    on the blurred image); otherwise ``"values"`` says where the curves part. The function runs
    on a copy of ``model``; one that changes it is named as in ``utils.exercises.grad_cam``
    (``"train mode"``, ``"weights"``, ``"hooks left"``, ``"grad left"``, ...).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> x, saliency = torch.rand(1, 3, 8, 8), torch.rand(8, 8)
    >>> reference = insertion_deletion(net, x, saliency, 1, steps=4, baseline="blur").insertion
    >>> diagnose_insertion_curve(reference, net, x, saliency, 1, steps=4).status
    'correct'
    >>> diagnose_insertion_curve(reference[:-1], net, x, saliency, 1, steps=4).reason
    'length'
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (the model input, 1 x C x H x W), not {type(x).__name__}.")
    reference = insertion_deletion(model, x, saliency, target, steps=steps, baseline="blur")  # checks every argument
    saliency_copy = saliency.detach().clone() if isinstance(saliency, torch.Tensor) else np.array(saliency, copy=True)
    used = copy_for_learner(model)
    with global_state_kept() as changed:
        given = call_answer(answer, used, x.detach().clone(), saliency_copy, target, steps)
    if isinstance(given, Verdict):
        return given
    change = changed[0] if changed else model_change(model, used)
    if change is not None:
        return wrong(change[0], f"{change[1]} {UNCHANGED}")
    curve = _as_curve(given)
    if isinstance(curve, Verdict):
        return curve
    if curve.size != steps + 1:
        return wrong(
            "length",
            f"got {curve.size} values; a curve with steps={steps} has {steps + 1}: the blurred image "
            "(0 pixels revealed) first, then one value after each step, ending with the whole image.",
        )
    if _matches(curve, reference.insertion):
        return correct(f"your insertion curve matches the reference (AUC {reference.insertion_auc:.3f}).")
    if _matches(-curve, reference.insertion):
        return wrong(
            "sign",
            "the curve is the probabilities times -1; return the class probability itself, between 0 and 1.",
        )
    if _matches(curve / 100, reference.insertion):
        return wrong("percent", "the curve is in percent; return the probability as a fraction between 0 and 1.")
    if curve.min() < -_TOLERANCE or curve.max() > 1 + _TOLERANCE:
        return wrong(
            "logits",
            f"values from {curve.min():.2f} to {curve.max():.2f}: use the class probability, "
            "torch.softmax(logits, dim=1)[:, target], not the raw scores.",
        )
    if _matches(curve, reference.deletion):
        return wrong(
            "deletion",
            "this is the deletion curve: start from the blurred image and REVEAL x's pixels, "
            "rather than removing them from x.",
        )
    reversed_order = insertion_deletion(model, x, -_as_array(saliency), target, steps=steps, baseline="blur")
    if _matches(curve, reversed_order.insertion):
        return wrong(
            "order",
            "the pixels come in reverse order: reveal the map's HIGHEST values first "
            "(np.argsort(-values) or descending=True).",
        )
    if _matches(curve, insertion_deletion(model, x, saliency, target, steps=steps, baseline="zero").insertion):
        return wrong(
            "baseline", "the pixels are revealed on zeros: start from replacement(x, 'blur'), the blurred image."
        )
    step = int(np.argmax(np.abs(curve - reference.insertion) > _TOLERANCE))
    return wrong(
        "values",
        f"the curves part at step {step} ({step}/{steps} of the pixels revealed): yours gives {curve[step]:.3f}, the "
        f"reference {reference.insertion[step]:.3f}. Check how many pixels each step reveals and where they come from.",
    )


def _as_array(saliency: MapLike) -> npt.NDArray[np.float64]:
    if isinstance(saliency, torch.Tensor):
        return saliency.detach().to("cpu", torch.float64).numpy()
    return np.asarray(saliency, dtype=np.float64)


def check_insertion_curve(
    answer: Any,
    model: nn.Module,
    x: torch.Tensor,
    saliency: MapLike,
    target: int | str,
    *,
    steps: int = 8,
    label: str | None = None,
) -> Verdict:
    """Lesson 08's auto-checker: print the verdict if right, else raise ``AnswerCheckError`` saying what differs."""
    return report(diagnose_insertion_curve(answer, model, x, saliency, target, steps=steps), label)
