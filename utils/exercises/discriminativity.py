"""Lesson 04's exercise: write the test of discriminativity's picture, ``S_A - S_B`` with each map scaled to [0, 1].

``diagnose_discriminativity_map`` compares a learner's map with
``utils.discriminativity.discriminativity_map`` (the article's scaling: each map divided by its
own maximum) and names the usual mistake when one matches: wrong shape or channels, classes in
the wrong order, maps not scaled, both maps divided by one maximum, the difference scaled
instead of the maps, minimum subtracted, channels reduced another way, a map subtracted from
itself, no subtraction. ``check_discriminativity_map`` prints the verdict or raises
``AnswerCheckError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from utils.discriminativity import discriminativity_map, scale_01
from utils.exercises import Verdict, answer_array, call_answer, correct, report, wrong
from utils.saliency import MapLike, channel_sum
from utils.sanity import magnitude_pair

__all__ = ["check_discriminativity_map", "diagnose_discriminativity_map"]

_TOLERANCE = 1e-4  # a correct answer matches the reference this closely (maps lie in [-1, 1])


def diagnose_discriminativity_map(answer: Any, s_a: MapLike, s_b: MapLike) -> Verdict:
    """Compare a learner's discriminativity map with ``discriminativity_map(s_a, s_b)``.

    ``answer`` is the map (real-valued array or tensor, ``H x W`` or with leading size-1
    dimensions) or a function ``answer(s_a, s_b)`` that returns it (called on copies). ``None``,
    ``...``, ``NotImplemented`` or a function that raises ``NotImplementedError`` or returns
    ``None`` counts as not attempted. The ``Verdict``'s ``reason`` names the mistake:
    ``"raised"``, ``"type"``, ``"channels"``, ``"shape"``, ``"not finite"``, ``"sign"``,
    ``"not scaled"``, ``"joint scaling"``, ``"scaled difference"``, ``"min-max"``,
    ``"reduction"``, ``"zero"``, ``"not subtracted"`` or ``"values"``. A function that is right on
    ``s_a`` and ``s_b`` is run again on a test pair whose maps have no zero: min-max scaling, for
    one, equals division by the maximum on maps whose minimum is 0, and differs on these.

    >>> s_a, s_b = np.array([[4.0, 0.0]]), np.array([[0.0, 2.0]])
    >>> diagnose_discriminativity_map(np.array([[1.0, -1.0]]), s_a, s_b).status
    'correct'
    >>> diagnose_discriminativity_map(lambda a, b: a - b, s_a, s_b).reason
    'not scaled'
    """
    verdict = _judge(answer, s_a, s_b)
    if not verdict.passed or not callable(answer):
        return verdict
    probe_a, probe_b = _probe(s_a, seed=0), _probe(s_b, seed=1)
    again = _judge(answer, probe_a, probe_b)
    if again.passed:
        return verdict
    text = again.message.split(": ", 1)[-1]
    return Verdict(
        again.status,
        again.reason,
        f"{again.message.split(': ', 1)[0]}: right on these maps, but not on a test pair whose maps have no zero "
        f"(a map's minimum is not always 0): {text}",
    )


def _judge(answer: Any, s_a: MapLike, s_b: MapLike) -> Verdict:
    expected = discriminativity_map(s_a, s_b)
    given = call_answer(answer, _copy(s_a), _copy(s_b))
    if isinstance(given, Verdict):
        return given
    got = answer_array(given, "the map as an H x W numpy array or torch tensor of S_A - S_B")
    if isinstance(got, Verdict):
        return got
    return _compare(got, expected, s_a, s_b)


def _probe(saliency: MapLike, seed: int) -> MapLike:
    """A map shaped, typed and placed like ``saliency``, with signed values whose magnitudes lie in [0.5, 1.5] x k.

    Its minimum is not 0 (Grad-CAM's and GBP's usually are), so that min-max scaling shows; ``k``
    (1, then 3) gives the two maps of a pair different maxima.
    """
    generator = torch.Generator().manual_seed(seed)
    shape = tuple(saliency.shape)
    values = (torch.rand(shape, generator=generator, dtype=torch.float64) + 0.5) * (1 + 2 * seed)
    values = values * torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).double()
    if isinstance(saliency, torch.Tensor):
        return values.to(saliency.device, saliency.dtype if saliency.is_floating_point() else torch.float64)
    array = np.asarray(saliency)
    return values.numpy().astype(array.dtype if np.issubdtype(array.dtype, np.floating) else np.float64)


def check_discriminativity_map(answer: Any, s_a: MapLike, s_b: MapLike, *, label: str | None = None) -> Verdict:
    """The auto-checker of lesson 04: print the verdict; raise ``AnswerCheckError`` unless correct.

    ``answer`` and the maps as in ``diagnose_discriminativity_map``; ``label`` (e.g. the
    method's name) starts the printed line. Returns the (correct) ``Verdict``.

    >>> s_a, s_b = np.array([[4.0, 0.0]]), np.array([[0.0, 2.0]])
    >>> check_discriminativity_map(np.array([[1.0, -1.0]]), s_a, s_b, label="toy").passed
    toy: Correct: your map equals S_A - S_B with each map scaled to [0, 1].
    True
    >>> check_discriminativity_map(np.array([[-1.0, 1.0]]), s_a, s_b)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    utils.exercises.AnswerCheckError: Not yet right (sign): the answer is S_B - S_A: ...
    """
    return report(diagnose_discriminativity_map(answer, s_a, s_b), label)


def _copy(saliency: MapLike) -> MapLike:
    return saliency.detach().clone() if isinstance(saliency, torch.Tensor) else np.array(saliency, copy=True)


def _compare(got: npt.NDArray[np.float64], expected: npt.NDArray[np.float64], s_a: MapLike, s_b: MapLike) -> Verdict:
    height, width = expected.shape
    if got.ndim == 3:
        return wrong(
            "channels",
            f"the answer has {got.shape[0]} channels (shape {got.shape}); reduce each map to one channel first: "
            "absolute values, summed over the channels.",
        )
    if got.shape != expected.shape:
        smaller = got.ndim == 2 and got.shape[0] < height and got.shape[1] < width
        hint = " Upsample Grad-CAM to the input size first." if smaller else ""
        return wrong("shape", f"the answer has shape {got.shape}, expected {height} x {width}, the input's grid.{hint}")
    if not np.isfinite(got).all():
        return wrong(
            "not finite",
            "the answer contains NaN or infinite values; leave an all-zero map at zero instead of dividing by its "
            "maximum (0).",
        )
    if _close(got, expected):
        return correct("your map equals S_A - S_B with each map scaled to [0, 1].")
    for reason, text, candidate in _mistakes(s_a, s_b, expected):
        if _close(got, candidate):
            return wrong(reason, text)
    low, high = float(got.min()), float(got.max())
    if low < -1 - _TOLERANCE or high > 1 + _TOLERANCE:
        return wrong(
            "not scaled",
            f"the answer spans [{low:.3g}, {high:.3g}], outside [-1, 1]; scale each map to [0, 1] before subtracting.",
        )
    row, col = np.unravel_index(int(np.argmax(np.abs(got - expected))), got.shape)
    return wrong(
        "values",
        f"the largest difference is at pixel ({row}, {col}): expected {expected[row, col]:.4f}, "
        f"got {got[row, col]:.4f}; "
        "check each step: |values| summed over channels, divided by the map's own maximum, then S_A - S_B.",
    )


def _close(got: npt.NDArray[np.float64], wanted: npt.NDArray[np.float64]) -> bool:
    return bool(np.allclose(got, wanted, rtol=0.0, atol=_TOLERANCE * max(1.0, float(np.abs(wanted).max()))))


def _mistakes(
    s_a: MapLike, s_b: MapLike, expected: npt.NDArray[np.float64]
) -> list[tuple[str, str, npt.NDArray[np.float64]]]:
    """The usual wrong answers: (reason, advice, the map that mistake gives)."""
    a, b = magnitude_pair(s_a, s_b, ("s_a", "s_b"))
    raw = a - b
    joint = max(float(a.max()), float(b.max()))
    spread = float(np.abs(raw).max())
    positive_a, positive_b = (scale_01(channel_sum(s, positive=True)) for s in (s_a, s_b))
    summed_a, summed_b = (scale_01(channel_sum(s)) for s in (s_a, s_b))
    return [
        (
            "sign",
            "the answer is S_B - S_A: the classes are in the wrong order. Put class A first (red = A, blue = B).",
            -expected,
        ),
        (
            "not scaled",
            "the maps were not scaled: divide each map by its own maximum (to [0, 1]) before subtracting.",
            raw,
        ),
        (
            "not scaled",
            "the maps were not scaled, and the classes are in the wrong order: scale each map to [0, 1], "
            "then S_A - S_B.",
            -raw,
        ),
        (
            "joint scaling",
            "both maps were divided by the same maximum; divide each by its own, so each spans [0, 1].",
            raw / joint if joint > 0 else raw,
        ),
        (
            "scaled difference",
            "the difference was scaled; scale each map to [0, 1] first, then subtract.",
            raw / spread if spread > 0 else raw,
        ),
        (
            "min-max",
            "each map's minimum was subtracted; divide by the maximum only, so that zero stays zero.",
            _min_max(a) - _min_max(b),
        ),
        (
            "reduction",
            "only the positive parts were kept; take absolute values, then sum over the channels.",
            positive_a - positive_b,
        ),
        (
            "reduction",
            "the channels were summed before taking absolute values; take |values| first, then sum.",
            summed_a - summed_b,
        ),
        ("not subtracted", "the answer is S_A alone, scaled; subtract the scaled S_B.", scale_01(a)),
        (
            "zero",
            "the answer is zero everywhere: was a map subtracted from itself? Use S_A for class A and S_B for class B.",
            np.zeros_like(expected),
        ),
    ]


def _min_max(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    spread = float(np.ptp(values))
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)
