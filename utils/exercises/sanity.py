"""Lesson 05's exercise: an edge detector, the baseline that "passes" the eye test without any model.

Adebayo et al. (2018, Fig. 1) put an edge detector beside the saliency maps (the paper does not
name it; the course uses Sobel's): it outlines the object as convincingly as some of them,
although it never looks at the model. The learner
writes it; ``diagnose_edge_map`` compares the answer with ``utils.sanity.edge_map`` up to a
positive factor (``skimage.filters.sobel`` and ``scipy.ndimage.sobel`` scale differently, and
both are right) and away from the one-pixel border (padding conventions differ there), and names
the usual mistake: one direction only, the squared magnitude, ``|gx| + |gy|``, a signed
gradient, luminance instead of the mean of the channels, plain differences instead of Sobel.
``check_edge_map`` prints the verdict or raises ``AnswerCheckError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy import ndimage

from utils.exercises import Verdict, answer_array, call_answer, correct, report, wrong
from utils.sanity import edge_map

__all__ = ["check_edge_map", "diagnose_edge_map"]

_TOLERANCE = 1e-4  # relative to the answer's largest value, after the best positive factor
_LUMINANCE = (0.2125, 0.7154, 0.0721)  # skimage.color.rgb2gray's weights


def diagnose_edge_map(answer: Any, picture: npt.NDArray[np.floating] | torch.Tensor) -> Verdict:
    """Compare a learner's edge map of ``picture`` (``H x W x 3``) with ``edge_map(picture)``.

    ``answer`` is the map (a real ``H x W`` array or tensor) or a function ``answer(picture)``
    that returns it (called on a copy). Placeholders and ``NotImplementedError`` count as not
    attempted. The ``Verdict``'s ``reason`` names the mistake: ``"raised"``, ``"type"``,
    ``"channels"``, ``"shape"``, ``"not finite"``, ``"zero"``, ``"sign"``, ``"one direction"``,
    ``"squared"``, ``"L1"``, ``"gray"``, ``"not Sobel"`` or ``"values"``.

    >>> picture = np.random.default_rng(0).random((8, 8, 3))
    >>> diagnose_edge_map(edge_map(picture) * 10, picture).status
    'correct'
    >>> diagnose_edge_map(edge_map(picture) ** 2, picture).reason
    'squared'
    """
    expected = edge_map(picture)
    original = picture.detach().clone() if isinstance(picture, torch.Tensor) else np.array(picture, copy=True)
    answer = call_answer(answer, original)
    if isinstance(answer, Verdict):
        return answer
    got = answer_array(answer, "the edge map as an H x W numpy array or torch tensor of real numbers")
    if isinstance(got, Verdict):
        return got
    return _compare(got, expected, _as_array(picture))


def check_edge_map(
    answer: Any, picture: npt.NDArray[np.floating] | torch.Tensor, *, label: str | None = None
) -> Verdict:
    """The auto-checker of lesson 05: print the verdict; raise ``AnswerCheckError`` unless correct.

    >>> picture = np.random.default_rng(0).random((8, 8, 3))
    >>> check_edge_map(edge_map, picture).passed
    Correct: your edge map equals the Sobel gradient magnitude of the gray picture (up to a constant factor).
    True
    """
    return report(diagnose_edge_map(answer, picture), label)


def _as_array(picture: npt.NDArray[np.floating] | torch.Tensor) -> npt.NDArray[np.float64]:
    """``picture`` as a float64 array (``H x W x 3`` or ``H x W``), as ``edge_map`` reads it."""
    values = picture.detach().to("cpu", torch.float64).numpy() if isinstance(picture, torch.Tensor) else picture
    return np.asarray(values, dtype=np.float64)


def _compare(
    got: npt.NDArray[np.float64], expected: npt.NDArray[np.float64], picture: npt.NDArray[np.float64]
) -> Verdict:
    height, width = expected.shape
    if got.ndim == 3 and got.shape[-1] == 3:
        return wrong(
            "channels",
            f"the answer has shape {got.shape}, one map per colour channel; make the picture gray first: the mean of "
            "its three channels.",
        )
    if got.shape != expected.shape:
        return wrong("shape", f"the answer has shape {got.shape}, expected {height} x {width}, the picture's grid.")
    if not np.isfinite(got).all():
        return wrong("not finite", "the answer contains NaN or infinite values.")
    inner, wanted = got[1:-1, 1:-1], expected[1:-1, 1:-1]
    if not np.abs(inner).max() > 0:
        return wrong(
            "zero",
            "the answer is zero everywhere (away from the border); filter the gray picture with Sobel along the "
            "rows and the columns.",
        )
    if _proportional(inner, wanted):
        return correct(
            "your edge map equals the Sobel gradient magnitude of the gray picture (up to a constant factor).",
        )
    for reason, text, candidate in _mistakes(picture):
        if _proportional(inner, candidate[1:-1, 1:-1]):
            return wrong(reason, text)
    if inner.min() < 0:
        return wrong(
            "sign",
            f"the answer has negative values (down to {inner.min():.3g}); an edge map is a magnitude, sqrt(gx**2 + "
            "gy**2).",
        )
    return wrong(
        "values",
        "the answer is not proportional to sqrt(gx**2 + gy**2) of the gray picture; check each step: "
        "gray = mean of the three channels, gx and gy = Sobel along the columns and the rows, then the magnitude.",
    )


def _proportional(got: npt.NDArray[np.float64], wanted: npt.NDArray[np.float64]) -> bool:
    """Whether ``got`` is ``k * wanted`` for some ``k > 0``, within ``_TOLERANCE`` of its largest value."""
    norm = float((wanted * wanted).sum())
    if norm == 0:
        return False
    factor = float((got * wanted).sum()) / norm
    return factor > 0 and bool(np.abs(got - factor * wanted).max() <= _TOLERANCE * np.abs(got).max())


def _mistakes(picture: npt.NDArray[np.float64]) -> list[tuple[str, str, npt.NDArray[np.float64]]]:
    gray = np.mean(picture, axis=-1) if picture.ndim == 3 else picture
    gx, gy = (ndimage.sobel(gray, axis=axis) for axis in (1, 0))  # along the columns, along the rows
    luminance = picture @ np.array(_LUMINANCE) if picture.ndim == 3 else picture
    plain_y, plain_x = np.gradient(gray)
    return [
        (
            "one direction",
            "the answer keeps only the horizontal gradient gx; combine both: sqrt(gx**2 + gy**2).",
            np.abs(gx),
        ),
        (
            "one direction",
            "the answer keeps only the vertical gradient gy; combine both: sqrt(gx**2 + gy**2).",
            np.abs(gy),
        ),
        (
            "squared",
            "the answer is gx**2 + gy**2; take its square root, so that the map grows with the edge's contrast.",
            gx**2 + gy**2,
        ),
        (
            "L1",
            "the answer is |gx| + |gy|; the exercise asks for the length of the gradient, sqrt(gx**2 + gy**2).",
            np.abs(gx) + np.abs(gy),
        ),
        (
            "gray",
            "the picture was made gray with luminance weights (as skimage.color.rgb2gray); "
            "use the mean of the three channels.",
            np.hypot(ndimage.sobel(luminance, axis=1), ndimage.sobel(luminance, axis=0)),
        ),
        (
            "not Sobel",
            "the gradients are plain differences (np.gradient); use the Sobel filter "
            "(scipy.ndimage.sobel or skimage.filters.sobel_h / sobel_v).",
            np.hypot(plain_x, plain_y),
        ),
    ]
