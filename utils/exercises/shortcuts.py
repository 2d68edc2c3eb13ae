"""Lesson 09's exercise: the share of a saliency map's mass inside the tag's box.

The learner writes ``my_box_share(saliency, box)``; ``check_box_share`` compares it with
``utils.shortcuts.box_share`` on a map and, when it differs, names the usual mistake: signed
values instead of magnitudes, one colour channel instead of all, rows and columns swapped, a box
one pixel too large or too small, the share outside the box, a density (divided by the box's
area) instead of a share, a percentage instead of a fraction, or the share rounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from utils.exercises import Verdict, answer_array, article, call_answer, correct, report, wrong
from utils.saliency import MapLike, magnitude
from utils.shortcuts import Box, box_share

__all__ = ["check_box_share", "diagnose_box_share"]

_TOLERANCE = 1e-6


def _copy(saliency: MapLike) -> MapLike:
    return saliency.detach().clone() if isinstance(saliency, torch.Tensor) else np.array(saliency, copy=True)


_ONE_NUMBER = "one number, the share (a float)"


def _number(answer: Any) -> float | Verdict:
    """The answer as one float, or the verdict saying why it is not one."""
    if isinstance(answer, Verdict):
        return answer
    if isinstance(answer, (bool, np.bool_)):
        return wrong("not a number", f"the answer is {answer}, True/False; return {_ONE_NUMBER}.")
    if isinstance(answer, (complex, np.complexfloating)):
        return wrong("type", f"the answer is a complex number ({answer}); the share is real: return {_ONE_NUMBER}.")
    if isinstance(answer, (int, float, np.number)):
        return _finite(float(answer))
    if isinstance(answer, (list, tuple)):
        try:
            answer = np.asarray(answer, dtype=np.float64)
        except (TypeError, ValueError):
            kind = article(type(answer).__name__)
            return wrong("not a number", f"the answer is {kind} of something other than numbers; return {_ONE_NUMBER}.")
    if not isinstance(answer, (torch.Tensor, np.ndarray)):
        return wrong("not a number", f"the answer is {article(type(answer).__name__)}; return {_ONE_NUMBER}.")
    values = answer_array(answer, _ONE_NUMBER, squeeze=False)
    if isinstance(values, Verdict):
        return values
    if values.size != 1:
        return wrong(
            "not a number",
            f"the answer has shape {values.shape}; return one number for the whole map (sum inside / sum of all).",
        )
    return _finite(float(values.reshape(())))


def _finite(value: float) -> float | Verdict:
    if not np.isfinite(value):
        return wrong("not finite", f"the answer is {value}; is the map's total zero, or did a division go wrong?")
    return value


def _rounded(got: float, expected: float) -> int | None:
    """The number of decimals ``got`` keeps when it is ``expected`` rounded (and differs from it), else None."""
    for decimals in range(7):
        if abs(got - round(expected, decimals)) <= 1e-12 and abs(got - expected) > _TOLERANCE:
            return decimals
    return None


def _shares_of(values: npt.NDArray[np.float64], inside: npt.NDArray[np.bool_]) -> float:
    total = float(values.sum())
    return float(values[inside].sum() / total) if total else float("nan")


def _mistakes(saliency: MapLike, box: Box) -> dict[str, tuple[float, str]]:
    """What the usual mistakes would return on this map, with the words that explain each."""
    array = (
        saliency.detach().cpu().double().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency, float)
    )
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    channels = array if array.ndim == 3 else array[None]
    inside = box.mask()
    share = box_share(saliency, box)
    found: dict[str, tuple[float, str]] = {
        "signed": (
            _shares_of(channels.sum(axis=0), inside),
            "you summed the map's signed values; take absolute values first (|map|), so that negative and positive "
            "evidence both count as mass.",
        ),
        "one channel": (
            _shares_of(np.abs(channels[0]), inside),
            "you used one colour channel; sum |map| over all channels first, as lessons 04 and 05 do.",
        ),
        "outside": (1.0 - share, "that is the share outside the box; the question is how much lies inside it."),
        "density": (
            share / box.share,
            "you divided by the box's share of the image: that is how many times denser the box is than the image "
            "on average. The share is sum inside / sum of all, without the area.",
        ),
        "percent": (100.0 * share, "that is a percentage; return a fraction between 0 and 1."),
    }
    magnitudes = magnitude(saliency)
    height, width = box.image_size
    if (
        (box.top, box.height) != (box.left, box.width)
        and box.left + box.width <= height
        and box.top + box.height <= width
    ):
        swapped = np.zeros_like(inside)
        swapped[box.left : box.left + box.width, box.top : box.top + box.height] = (
            True  # rows from left, columns from top
        )
        found["rows and columns"] = (
            _shares_of(magnitudes, swapped),
            "rows and columns are swapped: rows are the first index (top, height), columns the second (left, width).",
        )
    for grow, words in ((1, "one pixel too large (the end is not part of the box)"), (-1, "one pixel too small")):
        if (
            box.height + grow >= 1
            and box.width + grow >= 1
            and box.top + box.height + grow <= height
            and box.left + box.width + grow <= width
        ):
            other = np.zeros_like(inside)
            other[box.top : box.top + box.height + grow, box.left : box.left + box.width + grow] = True
            found[f"box {'+' if grow > 0 else '-'}1"] = (
                _shares_of(magnitudes, other),
                f"your box is {words}: it covers rows top .. top + height - 1 and columns left .. left + width - 1.",
            )
    return found


def diagnose_box_share(answer: Any, saliency: MapLike, box: Box) -> Verdict:
    """Compare ``answer`` (a function ``(saliency, box) -> share`` or a number) with ``box_share(saliency, box)``.

    The learner's function gets a copy of the map, so it cannot change the one being checked.

    >>> box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    >>> diagnose_box_share(lambda s, b: 0.75, np.array([[3.0, 1.0], [0.0, 0.0]]), box).status
    'correct'
    >>> diagnose_box_share(lambda s, b: 75.0, np.array([[3.0, 1.0], [0.0, 0.0]]), box).reason
    'percent'
    """
    expected = box_share(saliency, box)  # also checks the map and the box
    got = _number(call_answer(answer, _copy(saliency), box))
    if isinstance(got, Verdict):
        return got
    if abs(got - expected) <= _TOLERANCE * max(1.0, abs(expected)):
        return correct(f"{got:.3f} of the map's mass lies in the box (the box is {box.share:.1%} of the image).")
    for reason, (value, words) in _mistakes(saliency, box).items():
        if (
            np.isfinite(value)
            and abs(got - value) <= _TOLERANCE * max(1.0, abs(value))
            and abs(value - expected) > _TOLERANCE
        ):
            return wrong(reason, f"got {got:.4f}, expected {expected:.4f}: {words}")
    decimals = _rounded(got, expected)
    if decimals is not None:
        return wrong(
            "rounded",
            f"got {got}, the share {expected:.6f} rounded to {decimals} decimals; return it unrounded "
            "(round only what you print, e.g. f'{share:.3f}').",
        )
    if not 0.0 <= got <= 1.0:
        return wrong("range", f"got {got:.4f}; a share lies between 0 and 1 (expected {expected:.4f}).")
    return wrong(
        "value",
        f"got {got:.4f}, expected {expected:.4f}: reduce the map to |values| summed over channels, then divide the sum "
        "inside the box by the sum over the whole map.",
    )


def check_box_share(
    answer: Callable[[MapLike, Box], float] | float | None, saliency: MapLike, box: Box, *, label: str | None = None
) -> Verdict:
    """Print ``Correct: ...`` and return the verdict, or raise ``AnswerCheckError`` saying what differs.

    >>> box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    >>> check_box_share(lambda s, b: 0.75, np.array([[3.0, 1.0], [0.0, 0.0]]), box, label="toy").passed
    toy: Correct: 0.750 of the map's mass lies in the box (the box is 25.0% of the image).
    True
    """
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be text (a str) or None, not {type(label).__name__}.")
    return report(diagnose_box_share(answer, saliency, box), label)
