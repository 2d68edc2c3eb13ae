"""The test of discriminativity: does a saliency method tell two classes apart?

For classes A and B in one picture, compute the maps ``S_A`` and ``S_B``, scale each to [0, 1]
and look at ``S_A - S_B`` with a diverging colormap centred on zero (red = A, blue = B). A
class-discriminative method paints the two objects in two colours; a method that shows the
same thing for any class leaves the picture near white, the two maps' values cancelling.

* ``paired_maps`` computes the two classes' maps for Guided Backpropagation, Grad-CAM
  (upsampled to the input size) and Guided Grad-CAM from one forward pass.
* ``scale_01`` and ``discriminativity_map`` are the test's picture; ``map_correlation`` compares two maps.
* ``discriminativity_score`` turns it into numbers (``DiscriminativityReport``): how much of
  the two maps differs (``separation``), whether the difference lies on the right objects
  (``localisation``, when their regions are known) and how alike the maps are (``correlation``).

A map is reduced to one value per pixel the same way everywhere here: absolute values,
summed over the colour channels (a Grad-CAM map has one channel and no negative values).

**Scaling.** The article scales each map to [0, 1] by dividing by its maximum
(``clip_percentile=None``). Gradient maps are heavy-tailed: a few pixels are many times larger
than the rest, so after that division most pixels sit near 0 and the picture looks pale, and a
single extreme pixel decides the scale of the whole map. ``clip_percentile=p`` divides by the
``p``-th percentile of the map instead and clips above it (the same robust scaling as the
figures' ``utils.visualise.GRADIENT_CLIP_PERCENTILE``). The picture keeps the article's scaling by
default; the score uses the robust one by default, so that a few outlier pixels cannot fool it.
Lesson 04's exercise checker lives in ``utils.exercises.discriminativity``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from utils.categories import category_index, imagenet_categories
from utils.regions import as_mask
from utils.saliency import MapLike, magnitude, saliency_maps, upsample_cam
from utils.sanity import magnitude_pair
from utils.visualise import GRADIENT_CLIP_PERCENTILE

__all__ = [
    "METHODS",
    "METHOD_TITLES",
    "DiscriminativityReport",
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
    >>> paired_maps(net, "1", torch.rand(3, 8, 8), "cup", 1, categories=("cat", "cup"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: class_a 'cup' and class_b 1 are the same class ('cup', index 1); the test compares two ...
    """
    if categories is not None and (
        isinstance(categories, (str, torch.Tensor))
        or not isinstance(categories, Sequence)
        or not all(isinstance(name, str) for name in categories)
    ):
        raise TypeError(
            "categories must be a sequence of class names (str), e.g. loaded.categories, "
            f"not {type(categories).__name__}."
        )
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


def _checked_percentile(clip_percentile: float | None) -> float | None:
    if clip_percentile is None:
        return None
    if isinstance(clip_percentile, bool) or not isinstance(clip_percentile, (int, float, np.integer, np.floating)):
        raise TypeError(f"clip_percentile must be a number in (0, 100] or None, not {type(clip_percentile).__name__}.")
    if not 0 < clip_percentile <= 100:
        raise ValueError(
            f"clip_percentile must be in (0, 100], e.g. utils.visualise.GRADIENT_CLIP_PERCENTILE, or None for the "
            f"article's division by the maximum; got {clip_percentile!r}."
        )
    return float(clip_percentile)


def _to_unit(values: npt.NDArray[np.float64], clip_percentile: float | None) -> npt.NDArray[np.float64]:
    """``values`` (>= 0) divided by their maximum, or by their ``clip_percentile``-th percentile and clipped to 1.

    A percentile of 0 (a sparse map: most pixels zero) falls back to the maximum, so every map
    that is not all zero reaches 1; an all-zero map stays zero.
    """
    top = float(values.max())
    if clip_percentile is not None:
        top = float(np.percentile(values, clip_percentile)) or top
    return np.clip(values / top, 0.0, 1.0) if top > 0 else values


def scale_01(saliency: MapLike, clip_percentile: float | None = None) -> npt.NDArray[np.float64]:
    """The map scaled to [0, 1]: ``|saliency|`` summed over channels, divided by its maximum.

    ``saliency`` is ``H x W``, ``C x H x W`` or ``1 x C x H x W`` (a tensor or an array; it is
    not changed); the result is a new ``H x W`` float64 array whose maximum is 1. An all-zero
    map stays all zero (never NaN). With ``clip_percentile=p`` the map is divided by its
    ``p``-th percentile instead and clipped at 1 (robust to a few extreme pixels; a map whose
    percentile is 0 is divided by its maximum).

    >>> scale_01(torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]]]))  # 2 channels, 1 x 2: |.| sums to 4 and 2.5
    array([[1.   , 0.625]])
    >>> scale_01(np.array([[1.0, 2.0, 100.0]]), clip_percentile=50)  # the median, 2, becomes 1
    array([[0.5, 1. , 1. ]])
    >>> scale_01(np.zeros((1, 2)))
    array([[0., 0.]])
    """
    return _to_unit(magnitude(saliency, "saliency"), _checked_percentile(clip_percentile))


def _scaled_pair(
    s_a: MapLike, s_b: MapLike, clip_percentile: float | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    percentile = _checked_percentile(clip_percentile)
    a, b = magnitude_pair(s_a, s_b, ("s_a", "s_b"))
    return _to_unit(a, percentile), _to_unit(b, percentile)


def discriminativity_map(
    s_a: MapLike, s_b: MapLike, *, clip_percentile: float | None = None
) -> npt.NDArray[np.float64]:
    """``scale_01(s_a) - scale_01(s_b)``: the test's picture, ``H x W`` in [-1, 1].

    Positive (red with ``DIVERGING_CMAP``) where class A's map is relatively stronger, negative
    (blue) where class B's is. Both maps must be on the same grid (a ``ValueError`` says how to
    upsample Grad-CAM otherwise). ``clip_percentile`` as in ``scale_01``: ``None`` (default) is
    the article's division by the maximum; ``GRADIENT_CLIP_PERCENTILE`` gives a readable picture
    of heavy-tailed gradient maps.

    >>> discriminativity_map(np.array([[4.0, 1.0, 0.0]]), np.array([[0.0, 5.0, 10.0]]))
    array([[ 1.  , -0.25, -1.  ]])
    """
    a, b = _scaled_pair(s_a, s_b, clip_percentile)
    return a - b


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


def discriminativity_score(
    s_a: MapLike,
    s_b: MapLike,
    masks: Masks | None = None,
    *,
    clip_percentile: float | None = GRADIENT_CLIP_PERCENTILE,
) -> DiscriminativityReport:
    """Score the test of discriminativity for one method: a ``DiscriminativityReport``.

    With ``a = scale_01(s_a, clip_percentile)``, ``b = scale_01(s_b, clip_percentile)`` and the
    picture ``D = a - b``:

    * ``separation = sum|D| / sum(a + b)``: the share of the two maps' mass that does not
      cancel in the picture. 0 when the maps are the same up to a factor, however small or
      large they are (a picture rescaled to its own range would turn their tiny differences
      into full-range noise); 1 when they never overlap. By default each map is divided by
      its ``GRADIENT_CLIP_PERCENTILE``-th percentile and clipped at 1, so that one extreme
      pixel cannot rescale a whole map and fake a difference; ``clip_percentile=None`` gives
      the article's division by the maximum, which such a pixel fools.
    * ``localisation = (sum of D > 0 inside mask A + sum of |D < 0| inside mask B) / sum|D|``:
      the share of the picture's red that lies on object A and of its blue on object B.
      ``masks = (mask_a, mask_b)`` are ``H x W`` boolean (or 0/1) arrays or tensors on the
      maps' grid, marking two objects that do not overlap; without them the location part is
      skipped (``None``).
    * ``score = separation * localisation`` (``= separation`` without masks): the share of the
      maps' mass that shows up in the picture on the right object, red on A and blue on B.
    * ``correlation``: Pearson's correlation of the scaled maps ``a`` and ``b`` (so clipped
      like them); reported beside the score, not part of it.

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
    a, b = _scaled_pair(s_a, s_b, clip_percentile)
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
        score=_unit(score),
        separation=_unit(separation),
        localisation=None if localisation is None else _unit(localisation),
        correlation=_correlation(a, b),
    )


def _unit(value: float) -> float:
    """``value`` clipped to [0, 1] (only rounding error lies outside) and rounded to 12 decimals."""
    return float(round(min(max(value, 0.0), 1.0), 12))


def _checked_masks(masks: Masks, shape: tuple[int, ...]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    if not (isinstance(masks, (tuple, list)) and len(masks) == 2):
        raise ValueError(f"masks must be a pair (mask_a, mask_b) of H x W boolean arrays, got {type(masks).__name__}.")
    mask_a, mask_b = as_mask(masks[0], shape, "mask_a"), as_mask(masks[1], shape, "mask_b")
    shared = int((mask_a & mask_b).sum())
    if shared:
        raise ValueError(
            f"mask_a and mask_b overlap ({shared} pixels are in both); mark each object's own pixels, so that a "
            "colour on a shared pixel cannot count as placed right for either class."
        )
    return mask_a, mask_b


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
    a, b = _scaled_pair(s_a, s_b, None)
    if mask is None:
        return _correlation(a, b)
    inside = as_mask(mask, a.shape, "mask")
    return _correlation(a[inside], b[inside])
