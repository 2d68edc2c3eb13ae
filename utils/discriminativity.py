"""The test of discriminativity: does a saliency method tell two classes apart?

For classes A and B in one picture, compute the maps ``S_A`` and ``S_B``, scale each to [0, 1]
and look at ``S_A - S_B`` with a diverging colormap centred on zero (red = A, blue = B). A
class-discriminative method separates the two objects; a method that shows the same thing
for any class gives a pale, mixed picture.

* ``paired_maps`` computes the two classes' maps for Guided Backpropagation, Grad-CAM
  (upsampled to the input size) and Guided Grad-CAM from one forward pass.
* ``scale_01`` and ``discriminativity_map`` are the test's picture; ``map_correlation`` compares two maps.
* ``discriminativity_score`` turns it into numbers (``DiscriminativityReport``): how much of
  the two maps differs (``separation``), whether the difference lies on the right objects
  (``localisation``, when their regions are known) and how alike the maps are (``correlation``).
* ``check_discriminativity_map`` is lesson 04's auto-checker: it compares a learner's map
  with ``discriminativity_map`` and names the mistake (shape, scaling, sign or class order).

A map is reduced to one value per pixel the same way everywhere here: absolute values,
summed over the colour channels (a Grad-CAM map has one channel and no negative values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from utils.datasets import category_index, imagenet_categories
from utils.saliency import MapLike, magnitude, saliency_maps, upsample_cam

__all__ = [
    "METHODS",
    "METHOD_TITLES",
    "AnswerCheckError",
    "DiscriminativityReport",
    "Verdict",
    "check_discriminativity_map",
    "diagnose_discriminativity_map",
    "discriminativity_map",
    "discriminativity_score",
    "map_correlation",
    "paired_maps",
    "scale_01",
]

Masks = tuple[MapLike, MapLike]

METHODS: tuple[str, ...] = ("guided_backprop", "grad_cam", "guided_grad_cam")
"""The methods the test compares, as ``saliency_maps`` names them."""
METHOD_TITLES: Mapping[str, str] = MappingProxyType(
    {"guided_backprop": "Guided Backprop", "grad_cam": "Grad-CAM", "guided_grad_cam": "Guided Grad-CAM"}
)
"""How figures and tables name each method."""

_TOLERANCE = 1e-4  # a correct answer matches the reference this closely (maps lie in [-1, 1])


# --- the two classes' maps ----------------------------------------------------------------------


def paired_maps(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    class_a: int | str,
    class_b: int | str,
    *,
    categories: Sequence[str] | None = None,
    interpolate_mode: str = "bilinear",
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{method: (S_A, S_B)}`` for the three ``METHODS``, from ONE forward pass (``saliency_maps``).

    ``x`` is one image (``1 x C x H x W`` or ``C x H x W``); classes are indices or names of
    ``categories`` (default: ImageNet's), and must differ. Every map is a detached
    ``1 x C x H x W`` tensor on ``x``'s grid: Grad-CAM is upsampled with ``interpolate_mode``
    (bilinear, as the Grad-CAM paper), the same upsampling Guided Grad-CAM uses here.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> pairs = paired_maps(net, "1", torch.rand(3, 8, 8), 0, 1, categories=("cat", "cup"))
    >>> {method: tuple(s_a.shape) for method, (s_a, s_b) in pairs.items()}
    {'guided_backprop': (1, 3, 8, 8), 'grad_cam': (1, 1, 8, 8), 'guided_grad_cam': (1, 3, 8, 8)}
    >>> paired_maps(net, "1", torch.rand(3, 8, 8), "cup", 1, categories=("cat", "cup"))
    Traceback (most recent call last):
    ...
    ValueError: class_a 'cup' and class_b 1 are the same class ('cup', index 1); the test compares two different classes.
    """
    names = tuple(imagenet_categories() if categories is None else categories)
    a, b = (_class_index(label, given, names) for label, given in (("class_a", class_a), ("class_b", class_b)))
    if a == b:
        raise ValueError(
            f"class_a {class_a!r} and class_b {class_b!r} are the same class ({names[a]!r}, index {a}); "
            "the test compares two different classes."
        )
    if not isinstance(x, torch.Tensor) or not (x.ndim == 3 or (x.ndim == 4 and x.shape[0] == 1)):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be one image, 1 x C x H x W or C x H x W, got {shape}; pass x[i:i + 1] for image i.")
    maps = saliency_maps(model, layer, x, [a, b], interpolate_mode=interpolate_mode, categories=names)
    size = x.shape[-2:]
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for method in METHODS:
        s_a, s_b = (maps[c][method].detach() for c in (a, b))
        if method == "grad_cam":
            s_a, s_b = upsample_cam(s_a, size, interpolate_mode), upsample_cam(s_b, size, interpolate_mode)
        pairs[method] = (s_a, s_b)
    return pairs


def _class_index(label: str, given: int | str, names: tuple[str, ...]) -> int:
    try:
        return category_index(given, names)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{label}: {error}") from None


# --- the picture ------------------------------------------------------------------------------


def _by_max(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    top = float(values.max())
    return values / top if top > 0 else values


def scale_01(saliency: MapLike) -> npt.NDArray[np.float64]:
    """The map scaled to [0, 1]: ``|saliency|`` summed over channels, divided by its maximum.

    ``saliency`` is ``H x W``, ``C x H x W`` or ``1 x C x H x W`` (a tensor or an array; it is
    not changed); the result is a new ``H x W`` float64 array whose maximum is 1. An all-zero
    map stays all zero (never NaN).

    >>> scale_01(torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]]]))  # 2 channels, 1 x 2: |.| sums to 4 and 2.5
    array([[1.   , 0.625]])
    >>> scale_01(np.zeros((1, 2)))
    array([[0., 0.]])
    """
    return _by_max(magnitude(saliency, "saliency"))


def _reduced_pair(s_a: MapLike, s_b: MapLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    a, b = magnitude(s_a, "s_a"), magnitude(s_b, "s_b")
    if a.shape != b.shape:
        raise ValueError(
            f"s_a is {a.shape[0]} x {a.shape[1]} but s_b is {b.shape[0]} x {b.shape[1]}; compare maps on the same grid "
            "(upsample a Grad-CAM map to the input size with utils.saliency.upsample_cam(cam, x.shape[-2:]))."
        )
    return a, b


def discriminativity_map(s_a: MapLike, s_b: MapLike) -> npt.NDArray[np.float64]:
    """``scale_01(s_a) - scale_01(s_b)``: the test's picture, ``H x W`` in [-1, 1].

    Positive (red with ``DIVERGING_CMAP``) where class A's map is relatively stronger, negative
    (blue) where class B's is. Both maps must be on the same grid (a ``ValueError`` says how to
    upsample Grad-CAM otherwise).

    >>> discriminativity_map(np.array([[4.0, 1.0, 0.0]]), np.array([[0.0, 5.0, 10.0]]))
    array([[ 1.  , -0.25, -1.  ]])
    """
    a, b = _reduced_pair(s_a, s_b)
    return _by_max(a) - _by_max(b)


# --- the score --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscriminativityReport:
    """How class-discriminative a method's two maps are; see ``discriminativity_score``.

    ``score``, ``separation`` and ``localisation`` lie in [0, 1] (higher = more discriminative);
    ``localisation`` is ``None`` when the objects' regions are unknown. ``correlation`` lies in
    [-1, 1] (1 = the same map up to scale).
    """

    score: float
    separation: float
    localisation: float | None
    correlation: float


def discriminativity_score(s_a: MapLike, s_b: MapLike, masks: Masks | None = None) -> DiscriminativityReport:
    """Score the test of discriminativity for one method: a ``DiscriminativityReport``.

    With ``a = scale_01(s_a)``, ``b = scale_01(s_b)`` and the picture ``D = a - b``:

    * ``separation = sum|D| / sum(a + b)``: the share of the two maps' mass that does not
      cancel in the picture. 0 when the maps are the same up to a factor, however small or
      large they are (a picture rescaled to its own range would turn their tiny differences
      into full-range noise); 1 when they never overlap.
    * ``localisation = (sum of D > 0 inside mask A + sum of |D < 0| inside mask B) / sum|D|``:
      the share of the picture's red that lies on object A and of its blue on object B.
      ``masks = (mask_a, mask_b)`` are ``H x W`` boolean (or 0/1) arrays or tensors on the
      maps' grid; without them the location part is skipped (``None``).
    * ``score = separation * localisation`` (``= separation`` without masks): the share of the
      maps' mass that shows up in the picture on the right object, red on A and blue on B.
    * ``correlation``: Pearson's correlation of the two reduced maps (``|.|`` summed over
      channels); reported beside the score, not part of it.

    Every number stays finite: with no difference at all, ``separation`` and ``localisation``
    are 0; when a map is constant (e.g. all zero), ``correlation`` is 1.0 if both scaled maps
    are equal and 0.0 otherwise.

    >>> blob = np.array([[0.0, 1.0, 3.0, 0.0]])
    >>> discriminativity_score(blob, 1e-9 * blob)
    DiscriminativityReport(score=0.0, separation=0.0, localisation=None, correlation=1.0)
    >>> left, right = np.array([[True, True, False, False]]), np.array([[False, False, True, True]])
    >>> discriminativity_score(np.array([[1.0, 1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0, 1.0]]), (left, right))
    DiscriminativityReport(score=1.0, separation=1.0, localisation=1.0, correlation=-1.0)
    """
    reduced_a, reduced_b = _reduced_pair(s_a, s_b)
    a, b = _by_max(reduced_a), _by_max(reduced_b)
    difference = a - b
    moved, total = float(np.abs(difference).sum()), float((a + b).sum())
    separation = moved / total if total > 0 else 0.0
    localisation = None
    if masks is not None:
        mask_a, mask_b = _checked_masks(masks, difference.shape)
        placed = float(np.clip(difference, 0, None)[mask_a].sum() + np.clip(-difference, 0, None)[mask_b].sum())
        localisation = placed / moved if moved > 0 else 0.0
    score = separation if localisation is None else separation * localisation
    return DiscriminativityReport(
        score=_unit(score), separation=_unit(separation), localisation=None if localisation is None else _unit(localisation),
        correlation=_correlation(a, b),
    )


def _unit(value: float) -> float:
    """``value`` clipped to [0, 1] (only rounding error lies outside) and rounded to 12 decimals."""
    return float(round(min(max(value, 0.0), 1.0), 12))


def _checked_masks(masks: Masks, shape: tuple[int, ...]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    if not (isinstance(masks, (tuple, list)) and len(masks) == 2):
        raise ValueError(f"masks must be a pair (mask_a, mask_b) of H x W boolean arrays, got {type(masks).__name__}.")
    return _checked_mask("mask_a", masks[0], shape), _checked_mask("mask_b", masks[1], shape)


def _checked_mask(name: str, mask: MapLike, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """A new boolean ``H x W`` copy of ``mask``, checked against the maps' ``shape``."""
    values = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.array(mask)
    given = values.shape
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    if values.shape != shape:
        raise ValueError(
            f"{name} has shape {given} but the maps are {shape[0]} x {shape[1]}; build the masks on the model "
            "input's grid (two_class_image does)."
        )
    if values.dtype != np.bool_:
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (True on the object) or 0/1, got values other than 0 and 1.")
        values = values.astype(bool)
    if not values.any():
        raise ValueError(f"{name} is empty (no True pixel); it must mark where the object is.")
    return values


def _correlation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(round(np.clip(np.corrcoef(a.ravel(), b.ravel())[0, 1], -1.0, 1.0), 12))


def map_correlation(s_a: MapLike, s_b: MapLike, mask: MapLike | None = None) -> float:
    """Pearson's correlation of two maps (``|.|`` summed over channels), over ``mask`` if given.

    1 means the same map up to scale. Constant maps give 1.0 if equal after ``scale_01``, else
    0.0 (as ``discriminativity_score``). ``mask`` is one ``H x W`` boolean (or 0/1) mask.

    >>> ramp = np.arange(6.0).reshape(2, 3)
    >>> map_correlation(ramp, 10 * ramp), map_correlation(ramp, ramp[::-1], mask=np.array([[1, 1, 1], [0, 0, 0]]))
    (1.0, 1.0)
    """
    a, b = (_by_max(m) for m in _reduced_pair(s_a, s_b))
    if mask is None:
        return _correlation(a, b)
    inside = _checked_mask("mask", mask, a.shape)
    return _correlation(a[inside], b[inside])


# --- the auto-checker -------------------------------------------------------------------------


class AnswerCheckError(AssertionError):
    """The answer to a challenge is missing or not right yet; the message says what differs."""


Status = Literal["correct", "not attempted", "wrong"]


@dataclass(frozen=True)
class Verdict:
    """What the checker found: ``status``, a short ``reason`` and a ``message`` for the learner.

    ``reason`` is one of ``"correct"``, ``"not attempted"``, ``"raised"``, ``"type"``,
    ``"channels"``, ``"shape"``, ``"not finite"``, ``"sign"``, ``"not scaled"``,
    ``"joint scaling"``, ``"scaled difference"``, ``"min-max"``, ``"reduction"``,
    ``"zero"``, ``"not subtracted"``, ``"values"``.
    """

    status: Status
    reason: str
    message: str

    @property
    def passed(self) -> bool:
        """Whether the answer is correct."""
        return self.status == "correct"

    def __str__(self) -> str:
        return self.message


def diagnose_discriminativity_map(answer: Any, s_a: MapLike, s_b: MapLike) -> Verdict:
    """Compare a learner's discriminativity map with ``discriminativity_map(s_a, s_b)``.

    ``answer`` is the map (array or tensor, ``H x W`` or with leading size-1 dimensions) or a
    function ``answer(s_a, s_b)`` that returns it (called on copies). ``None``, ``...``,
    ``NotImplemented`` or a function that raises ``NotImplementedError`` or returns ``None``
    counts as not attempted. A wrong answer is matched against the usual mistakes: wrong
    shape or channels, classes in the wrong order (``S_B - S_A``), maps not scaled, both maps
    divided by one maximum, the difference scaled instead of the maps, minimum subtracted,
    channels reduced another way, a map subtracted from itself, no subtraction.

    >>> s_a, s_b = np.array([[4.0, 0.0]]), np.array([[0.0, 2.0]])
    >>> diagnose_discriminativity_map(np.array([[1.0, -1.0]]), s_a, s_b).status
    'correct'
    >>> diagnose_discriminativity_map(lambda a, b: a - b, s_a, s_b).reason
    'not scaled'
    """
    expected = discriminativity_map(s_a, s_b)
    if callable(answer):
        name = getattr(answer, "__name__", "your function")
        try:
            answer = answer(_copy(s_a), _copy(s_b))
        except NotImplementedError:
            return Verdict("not attempted", "not attempted", f"Not attempted: {name} raises NotImplementedError; write it in the cell marked YOUR ANSWER.")
        except Exception as error:  # the learner's code: any error is a finding, not a crash
            return _wrong("raised", f"{name} raised {type(error).__name__}: {error}")
    if answer is None or answer is Ellipsis or answer is NotImplemented:
        return Verdict("not attempted", "not attempted", "Not attempted: no answer yet; write it in the cell marked YOUR ANSWER.")
    got = _answer_array(answer)
    if isinstance(got, Verdict):
        return got
    return _compare(got, expected, s_a, s_b)


def _copy(saliency: MapLike) -> MapLike:
    return saliency.detach().clone() if isinstance(saliency, torch.Tensor) else np.array(saliency, copy=True)


def _wrong(reason: str, text: str) -> Verdict:
    return Verdict("wrong", reason, f"Not yet right ({reason}): {text}")


def _answer_array(answer: Any) -> npt.NDArray[np.float64] | Verdict:
    if isinstance(answer, torch.Tensor):
        values = answer.detach().to("cpu", torch.float64).numpy()
    elif isinstance(answer, np.ndarray) and np.issubdtype(answer.dtype, np.number):
        values = answer.astype(np.float64)
    else:
        return _wrong("type", f"the answer is a {type(answer).__name__}; return the map as an H x W numpy array or torch tensor.")
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    return values


def _compare(got: npt.NDArray[np.float64], expected: npt.NDArray[np.float64], s_a: MapLike, s_b: MapLike) -> Verdict:
    height, width = expected.shape
    if got.ndim == 3:
        return _wrong(
            "channels",
            f"the answer has {got.shape[0]} channels (shape {got.shape}); reduce each map to one channel first: "
            "absolute values, summed over the channels.",
        )
    if got.shape != expected.shape:
        smaller = got.ndim == 2 and got.shape[0] < height and got.shape[1] < width
        hint = " Upsample Grad-CAM to the input size first." if smaller else ""
        return _wrong("shape", f"the answer has shape {got.shape}, expected {height} x {width}, the input's grid.{hint}")
    if not np.isfinite(got).all():
        return _wrong("not finite", "the answer contains NaN or infinite values; leave an all-zero map at zero instead of dividing by its maximum (0).")
    if _close(got, expected):
        return Verdict("correct", "correct", "Correct: your map equals S_A - S_B with each map scaled to [0, 1].")
    for reason, text, candidate in _mistakes(s_a, s_b, expected):
        if _close(got, candidate):
            return _wrong(reason, text)
    low, high = float(got.min()), float(got.max())
    if low < -1 - _TOLERANCE or high > 1 + _TOLERANCE:
        return _wrong("not scaled", f"the answer spans [{low:.3g}, {high:.3g}], outside [-1, 1]; scale each map to [0, 1] before subtracting.")
    row, col = np.unravel_index(int(np.argmax(np.abs(got - expected))), got.shape)
    return _wrong(
        "values",
        f"the largest difference is at pixel ({row}, {col}): expected {expected[row, col]:.4f}, got {got[row, col]:.4f}; "
        "check each step: |values| summed over channels, divided by the map's own maximum, then S_A - S_B.",
    )


def _close(got: npt.NDArray[np.float64], wanted: npt.NDArray[np.float64]) -> bool:
    return bool(np.allclose(got, wanted, rtol=0.0, atol=_TOLERANCE * max(1.0, float(np.abs(wanted).max()))))


def _mistakes(
    s_a: MapLike, s_b: MapLike, expected: npt.NDArray[np.float64]
) -> list[tuple[str, str, npt.NDArray[np.float64]]]:
    """The usual wrong answers: (reason, advice, the map that mistake gives)."""
    a, b = _reduced_pair(s_a, s_b)
    raw = a - b
    joint = max(float(a.max()), float(b.max()))
    spread = float(np.abs(raw).max())
    positive_a, positive_b = (_by_max(_channel_sum(s, positive=True)) for s in (s_a, s_b))
    summed_a, summed_b = (_by_max(np.abs(_channel_sum(s))) for s in (s_a, s_b))
    mistakes: list[tuple[str, str, npt.NDArray[np.float64]]] = [
        ("sign", "the answer is S_B - S_A: the classes are in the wrong order. Put class A first (red = A, blue = B).", -expected),
        ("not scaled", "the maps were not scaled: divide each map by its own maximum (to [0, 1]) before subtracting.", raw),
        ("not scaled", "the maps were not scaled, and the classes are in the wrong order: scale each map to [0, 1], then S_A - S_B.", -raw),
        ("joint scaling", "both maps were divided by the same maximum; divide each by its own, so each spans [0, 1].", raw / joint if joint > 0 else raw),
        ("scaled difference", "the difference was scaled; scale each map to [0, 1] first, then subtract.", raw / spread if spread > 0 else raw),
        ("min-max", "each map's minimum was subtracted; divide by the maximum only, so that zero stays zero.", _min_max(a) - _min_max(b)),
        ("reduction", "only the positive parts were kept; take absolute values, then sum over the channels.", positive_a - positive_b),
        ("reduction", "the channels were summed before taking absolute values; take |values| first, then sum.", summed_a - summed_b),
        ("not subtracted", "the answer is S_A alone, scaled; subtract the scaled S_B.", _by_max(a)),
        ("zero", "the answer is zero everywhere: was a map subtracted from itself? Use S_A for class A and S_B for class B.", np.zeros_like(expected)),
    ]
    return mistakes


def _channel_sum(saliency: MapLike, positive: bool = False) -> npt.NDArray[np.float64]:
    """The map's values (their positive parts if ``positive``) summed over channels, without ``|.|``."""
    if isinstance(saliency, torch.Tensor):
        values = saliency.detach().to("cpu", torch.float64).numpy()
    else:
        values = np.asarray(saliency, dtype=np.float64)
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    values = np.maximum(values, 0.0) if positive else values
    return values.sum(axis=0) if values.ndim == 3 else values


def _min_max(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    spread = float(np.ptp(values))
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


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
    utils.discriminativity.AnswerCheckError: Not yet right (sign): the answer is S_B - S_A: ...
    """
    verdict = diagnose_discriminativity_map(answer, s_a, s_b)
    text = f"{label}: {verdict.message}" if label else verdict.message
    if not verdict.passed:
        raise AnswerCheckError(text)
    print(text)
    return verdict
