"""Sanity checks for saliency maps: does a map change when the model it explains is destroyed?

The model-parameter randomisation test of Adebayo et al. (2018, "Sanity Checks for Saliency
Maps", NeurIPS, Fig. 2): re-initialise the model's layers and measure how similar
each saliency map stays to the map of the trained model. A map that stays the same while the
weights it claims to explain are gone does not explain those weights.

* ``randomisation_order`` lists the layers in the order they are randomised, output first.
  ``cascading_randomisation`` yields a copy of the model randomised one more layer per step (the
  paper's *cascading* randomisation); ``independent_randomisation`` yields, per layer, a fresh
  copy with only that layer randomised (the paper's *independent* randomisation). The caller's
  model is never touched, and the global random state is left as it was.
* The paper's four similarity measures, each comparing two maps of the same size:
  ``rank_correlation`` (Spearman, of absolute values, or of signed values with
  ``absolute=False``), ``ssim`` (structural similarity) and ``hog_correlation`` (Pearson
  correlation of HOG features). A 3-channel map is reduced to one channel first: absolute
  values summed over channels (``magnitude_pair``), or, with ``absolute=False``, the channels
  summed with their signs. ``SIMILARITY_MEASURES`` names the four as the paper computes them on
  ImageNet (Section 2.2: Spearman with and without absolute values, SSIM and HOG without).
* ``is_blank``: whether a map is constant (a randomised model can give an all-zero map, which
  has no ranking and no edges: a sanity check must count it apart, not as "changed").
* ``edge_map``: a Sobel edge detector, standing in for the edge detector of the paper's Fig. 1
  (which the paper does not name). It needs no model, yet its picture looks like an explanation.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from utils.categories import check_flag, check_model, describe
from utils.random_state import preserved_rng
from utils.saliency import PLAIN_CONTAINERS, MapLike, as_float_array, channel_sum, magnitude, resolve_layer

__all__ = [
    "SIMILARITY_MEASURES",
    "ConstantMapWarning",
    "cascading_randomisation",
    "edge_map",
    "hog_correlation",
    "independent_randomisation",
    "is_blank",
    "magnitude_pair",
    "randomisation_order",
    "rank_correlation",
    "sobel_magnitude",
    "ssim",
]

_SSIM_WINDOW = 7  # skimage's default window side; smaller maps get the largest odd side that fits
_HOG_CELL, _HOG_BLOCK = 8, 3  # skimage's defaults: 8 x 8 pixels per cell, 3 x 3 cells per block
_REMEMBERED = 8  # ranks and HOG features kept for this many recent maps (about 3 MB for 224 x 224 maps)


def _remembered(
    compute: Callable[[npt.NDArray[np.float64]], np.ndarray],
) -> Callable[[npt.NDArray[np.float64]], np.ndarray]:
    """``compute(array)``, remembered for the last ``_REMEMBERED`` arrays by their content (shape, dtype, bytes).

    A sanity check compares one trained map with the map of every randomisation step, so the
    trained map's ranks and HOG features are asked for again and again: an array equal to one
    seen recently gets the (read-only) result computed then, whatever object holds it.
    """
    cache: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()

    @functools.wraps(compute)
    def remembered(array: npt.NDArray[np.float64]) -> np.ndarray:
        content = np.ascontiguousarray(array)
        key = (content.shape, content.dtype.str, hashlib.blake2b(content.tobytes(), digest_size=16).digest())
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        result = compute(content)
        result.flags.writeable = False
        cache[key] = result
        while len(cache) > _REMEMBERED:
            cache.popitem(last=False)
        return result

    return remembered


@_remembered
def _ranks(values: npt.NDArray[np.float64]) -> np.ndarray:
    """Average ranks from 1 (ties share their mean rank), as Spearman's correlation uses them.

    What ``scipy.stats.rankdata(values.ravel())`` returns (tests/test_sanity.py compares them,
    ties included), written out because importing scipy.stats takes most of a second of a lesson.

    >>> _ranks(np.array([[10.0, 30.0], [20.0, 10.0]])).tolist()
    [1.5, 4.0, 3.0, 1.5]
    """
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # where each run of equal values begins
    counts = np.diff(np.r_[starts, flat.size])
    ranks = np.empty(flat.size)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)  # a run at 0-based s..s+n-1 has mean rank s+(n+1)/2
    return ranks


@_remembered
def _hog(values: npt.NDArray[np.float64]) -> np.ndarray:
    """``skimage.feature.hog`` at its defaults (9 orientations, 8 x 8 pixels per cell, 3 x 3 cells per block)."""
    from skimage.feature import hog

    return hog(values, pixels_per_cell=(_HOG_CELL, _HOG_CELL), cells_per_block=(_HOG_BLOCK, _HOG_BLOCK))


class ConstantMapWarning(UserWarning):
    """A map is constant (e.g. all zero), so a correlation with it is undefined; see ``rank_correlation``."""


# --- comparing maps ---------------------------------------------------------------------------


def magnitude_pair(
    a: MapLike, b: MapLike, names: tuple[str, str] = ("a", "b")
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The ``H x W`` magnitudes (``utils.saliency.magnitude``) of two maps that must share one grid.

    ``names`` are how a ``ValueError`` refers to the two arguments.

    >>> first, second = magnitude_pair(np.ones((1, 3, 2, 2)), -np.ones((2, 2)))
    >>> first.tolist(), second.tolist()
    ([[3.0, 3.0], [3.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]])
    >>> magnitude_pair(np.ones((2, 2)), np.ones((4, 4)), ("s_a", "s_b"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: s_a is 2 x 2 but s_b is 4 x 4; compare maps on the same grid (...upsample_cam(cam, x.shape[-2:])).
    """
    if not (isinstance(names, (tuple, list)) and len(names) == 2 and all(isinstance(n, str) for n in names)):
        raise TypeError(f"names must be a pair of strings, e.g. ('s_a', 's_b'), not {describe(names)}.")
    return _on_one_grid(magnitude(a, names[0]), magnitude(b, names[1]), names)


def _on_one_grid(
    first: npt.NDArray[np.float64], second: npt.NDArray[np.float64], names: tuple[str, str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Both ``H x W`` maps, when they share one grid; else a ``ValueError`` naming them and the fix."""
    if first.shape != second.shape:
        raise ValueError(
            f"{names[0]} is {first.shape[0]} x {first.shape[1]} but {names[1]} is "
            f"{second.shape[0]} x {second.shape[1]}; "
            "compare maps on the same grid (upsample a Grad-CAM map to the input size with "
            "utils.saliency.upsample_cam(cam, x.shape[-2:]))."
        )
    return first, second


def _if_constant(first: npt.NDArray[np.float64], second: npt.NDArray[np.float64], what: str) -> float | None:
    """1.0 (both constant) or 0.0 (one constant), with a ``ConstantMapWarning``; None if neither is constant."""
    constant = [name for name, m in (("a", first), ("b", second)) if np.ptp(m) == 0]
    if not constant:
        return None
    value = 1.0 if len(constant) == 2 else 0.0
    which = "both maps are" if len(constant) == 2 else f"map {constant[0]} is"
    warnings.warn(
        f"{which} constant (e.g. all zero), so the {what} is undefined; returning {value}.",
        ConstantMapWarning,
        stacklevel=3,
    )
    return value


def rank_correlation(a: MapLike, b: MapLike, *, absolute: bool = True) -> float:
    """Spearman rank correlation of two maps, in [-1, 1]; Adebayo et al. report it with and without ``|.|``.

    With ``absolute=True`` (default) the maps are compared by magnitude (``magnitude``: absolute
    values summed over channels), so a sign flip is no change; with ``absolute=False`` the
    channels are summed with their signs. 1 means the pixels are ranked in the same order by
    both maps, 0 no relation. A constant map (e.g. a blank Grad-CAM) has no ranking, so
    Spearman's formula gives NaN; here two constant maps give 1.0 (both rank every pixel
    equally), one constant map gives 0.0 (nothing of the other map's ranking survives), and a
    ``ConstantMapWarning`` says so.

    >>> rank_correlation(np.array([[1.0, 2.0, 3.0]]), np.array([[-10.0, 20.0, 30.0]]))
    1.0
    >>> rank_correlation(np.array([[1.0, 2.0, 3.0]]), np.array([[-10.0, 20.0, 30.0]]), absolute=False)
    1.0
    >>> rank_correlation(np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 2.0, 1.0]]))
    -1.0
    """
    if check_flag(absolute, "absolute"):
        first, second = magnitude_pair(a, b)
    else:  # the same checks and messages, on the channels summed with their signs
        first, second = _on_one_grid(channel_sum(a, "a"), channel_sum(b, "b"), ("a", "b"))
    defined = _if_constant(first, second, "rank correlation")
    if defined is not None:
        return defined
    return float(np.corrcoef(_ranks(first), _ranks(second))[0, 1])  # Pearson's r of the ranks: Spearman's rho


def _scaled_pair(
    a: MapLike, b: MapLike, absolute: bool = True
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Both maps divided by their own largest |value|: magnitudes in [0, 1], or signed maps in [-1, 1].

    With ``absolute=True`` the magnitudes (``magnitude_pair``), else the channels summed with
    their signs; an all-zero map stays zero.
    """
    if check_flag(absolute, "absolute"):
        first, second = magnitude_pair(a, b)
    else:
        first, second = _on_one_grid(channel_sum(a, "a"), channel_sum(b, "b"), ("a", "b"))
    return tuple(m / np.abs(m).max() if np.abs(m).max() > 0 else m for m in (first, second))  # type: ignore[return-value]


def ssim(a: MapLike, b: MapLike, *, absolute: bool = True) -> float:
    """Structural similarity (SSIM, Wang et al. 2004) between two maps.

    With ``absolute=True`` (default) the magnitudes (see ``magnitude``) are compared, each
    divided by its own maximum so both lie in [0, 1]; with ``absolute=False`` the channels are
    summed with their signs and each map is divided by its largest |value|, so both lie in
    [-1, 1], as Adebayo et al. (2018, Section 2.2) compute SSIM on ImageNet: without absolute
    values. ``skimage.metrics.structural_similarity`` compares them with ``data_range`` the
    range the two scaled maps span together (1 for two non-negative maps, so that a map without
    negative values gives the same SSIM either way). Its 7 x 7 window shrinks to the largest odd
    size that fits a smaller map; maps smaller than 3 x 3 raise a ``ValueError``. 1 means
    identical.

    >>> ramp = np.arange(64.0).reshape(8, 8)
    >>> ssim(ramp, 2 * ramp), round(ssim(ramp, ramp.T), 2), ssim(ramp, ramp.T, absolute=False) == ssim(ramp, ramp.T)
    (1.0, 0.25, True)
    >>> noise = np.random.default_rng(0).normal(size=(16, 16))  # signed: a sign flip changes the signed map only
    >>> ssim(noise, -noise), ssim(noise, -noise, absolute=False) < 0.5
    (1.0, True)
    """
    first, second = _scaled_pair(a, b, absolute)
    side = min(first.shape)
    window = min(_SSIM_WINDOW, side if side % 2 else side - 1)
    if window < 3:
        raise ValueError(f"SSIM needs maps of at least 3 x 3 pixels, got {first.shape}; upsample them first.")
    from skimage.metrics import structural_similarity  # here: it imports scipy.ndimage, 0.2 s of every lesson

    # the range the two scaled maps span together, zero included: 1 for magnitudes (and any non-negative maps), up to 2
    span = max(first.max(), second.max(), 0.0) - min(first.min(), second.min(), 0.0)
    return float(structural_similarity(first, second, data_range=float(span) or 1.0, win_size=window))


def hog_correlation(a: MapLike, b: MapLike, *, absolute: bool = True) -> float:
    """Pearson correlation of the HOG features (Dalal and Triggs 2005) of two maps, in [-1, 1].

    The fourth measure of Adebayo et al. (2018): it compares where the maps have edges and in
    which direction they run, not their pixel values. Each map, its magnitude (``absolute=True``,
    default) or its channels summed with their signs (``absolute=False``, as the paper computes
    HOG on ImageNet, Section 2.2), is divided by its largest |value| and described with
    ``skimage.feature.hog`` at its defaults (9 orientations, 8 x 8 pixels per cell, 3 x 3 cells
    per block), so maps need at least 24 x 24 pixels (upsample a Grad-CAM map first). HOG's
    orientations ignore the direction of a gradient, so a map and its negative give 1 either way.
    A map without any edge (constant) gives HOG features that are all zero; then, as in
    ``rank_correlation``, the result is 1.0 or 0.0 with a ``ConstantMapWarning``.

    >>> ramp = np.add.outer(np.arange(32.0), np.arange(32.0) ** 2)
    >>> hog_correlation(ramp, 3 * ramp), hog_correlation(ramp, ramp.T) < 0.5
    (1.0, True)
    >>> hog_correlation(ramp, -ramp, absolute=False)
    1.0
    """
    first, second = _scaled_pair(a, b, absolute)
    smallest = _HOG_CELL * _HOG_BLOCK
    if min(first.shape) < smallest:
        raise ValueError(
            f"HOG features need maps of at least {smallest} x {smallest} pixels, got {first.shape}; "
            "upsample them first "
            "(utils.saliency.upsample_cam for a Grad-CAM map)."
        )
    features = [_hog(m) for m in (first, second)]
    defined = _if_constant(*features, "HOG correlation")
    if defined is not None:
        return defined
    return float(round(np.clip(np.corrcoef(*features)[0, 1], -1.0, 1.0), 12))


SIMILARITY_MEASURES: Mapping[str, Callable[[MapLike, MapLike], float]] = MappingProxyType(
    {
        "Spearman |.|": rank_correlation,
        "Spearman": lambda a, b: rank_correlation(a, b, absolute=False),
        "SSIM": lambda a, b: ssim(a, b, absolute=False),
        "HOG": lambda a, b: hog_correlation(a, b, absolute=False),
    }
)
"""The four measures of Adebayo et al. (2018), by the name a table gives them, computed as the paper does on
ImageNet (Section 2.2): Spearman with and without absolute values, SSIM and HOG without."""


def is_blank(saliency: MapLike) -> bool:
    """Whether a map is constant, e.g. all zero: it ranks no pixel above another and has no edge.

    A randomised model can give such a map (its class score does not reach the input at all),
    and the similarity measures then have nothing to compare: ``rank_correlation`` returns 0.0
    with a ``ConstantMapWarning``. A sanity check counts those steps apart (this function says
    which), instead of reading that 0.0 as "the map changed".

    >>> is_blank(np.zeros((1, 3, 4, 4))), is_blank(np.full((4, 4), 2.0)), is_blank(np.eye(4))
    (True, True, False)
    """
    values = channel_sum(saliency, "saliency")
    return bool(np.ptp(values) == 0 and np.ptp(magnitude(saliency, "saliency")) == 0)


def edge_map(picture: npt.NDArray[np.floating] | torch.Tensor) -> npt.NDArray[np.float64]:
    """A Sobel edge detector, standing in for the edge detector of Adebayo et al. (2018, Fig. 1), which the paper
    does not name. It needs no model.

    ``picture`` is ``H x W x 3`` (channels last, as ``LessonPhoto.picture``) or ``H x W``; it
    is turned gray by the mean of its channels, and the result is the ``H x W`` gradient
    magnitude ``sqrt(gx**2 + gy**2)`` of ``scipy.ndimage.sobel`` along the columns (``gx``) and
    the rows (``gy``), borders reflected.

    >>> step = np.zeros((4, 4)); step[:, 2:] = 1.0
    >>> edge_map(step)[0].tolist()
    [0.0, 4.0, 4.0, 0.0]
    """
    values = picture.detach().to("cpu", torch.float64).numpy() if isinstance(picture, torch.Tensor) else picture
    if not isinstance(values, np.ndarray) or not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise TypeError(
            f"picture must be a real numpy array or torch tensor, H x W x 3 or H x W, not {type(picture).__name__}."
        )
    if not (values.ndim == 2 or (values.ndim == 3 and values.shape[-1] == 3)) or min(values.shape[:2]) < 3:
        raise ValueError(
            f"picture must be H x W x 3 (channels last) or H x W, at least 3 x 3, got shape {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError("picture contains NaN or infinite values.")
    gray = values.astype(np.float64).mean(axis=-1) if values.ndim == 3 else values.astype(np.float64)
    return sobel_magnitude(gray)


def sobel_magnitude(gray: MapLike) -> npt.NDArray[np.float64]:
    """``sqrt(gx**2 + gy**2)`` of ``scipy.ndimage.sobel`` along the columns and the rows of an ``H x W`` array.

    Borders reflected. The one Sobel filter of the course: ``edge_map`` applies it to a gray
    picture (lesson 05), ``utils.faithfulness.edge_map`` to each channel of a model input
    (lesson 07). scikit-image's ``filters.sobel`` is the same map divided by ``4 * sqrt(2)``.

    >>> step = np.zeros((3, 4)); step[:, 2:] = 1.0
    >>> sobel_magnitude(step)[1].tolist()
    [0.0, 4.0, 4.0, 0.0]
    """
    from scipy import ndimage  # here, not at the top: a quarter of a second to import, for the edge maps only

    values = as_float_array(gray, "gray")
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"gray must be one non-empty H x W array, got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError("gray contains NaN or infinite values.")
    return np.hypot(ndimage.sobel(values, axis=1), ndimage.sobel(values, axis=0))


# --- randomising a model ----------------------------------------------------------------------


def randomisation_order(model: nn.Module) -> list[str]:
    """The model's layers with weights, as dotted names, in the order the test randomises them.

    Output first: the reverse of registration order (forward order for models built from
    ``nn.Sequential``). A layer is a module with parameters that is not a plain container
    (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``): a convolution, a linear or
    normalisation layer, or a block as a whole (SqueezeNet's Fire modules, ResNet's residual
    blocks), as Adebayo et al. randomised Inception v3 block by block. Parameters registered on
    the model itself, outside any child module, are not listed.

    >>> from torchvision.models import squeezenet1_1
    >>> randomisation_order(squeezenet1_1())  # doctest: +NORMALIZE_WHITESPACE
    ['classifier.1', 'features.12', 'features.11', 'features.10', 'features.9', 'features.7',
     'features.6', 'features.4', 'features.3', 'features.0']
    """
    check_model(model, "the classifier to randomise")
    found: list[str] = []
    for name, module in model.named_modules():  # parents come before their children
        inside_a_layer = any(name.startswith(f"{layer}.") for layer in found)
        has_weights = any(True for _ in module.parameters())
        if name and not inside_a_layer and not isinstance(module, PLAIN_CONTAINERS) and has_weights:
            found.append(name)
    return found[::-1]


def _check_seed(seed: object) -> None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, e.g. 0, not {type(seed).__name__}.")
    if abs(int(seed)) > 2**62:  # torch's generators take 64 bits, and each step adds its index
        raise ValueError(f"seed must lie between -2**62 and 2**62, got {int(seed)}.")


def _checked_order(model: nn.Module, layer_order: Sequence[str | nn.Module] | None) -> list[str]:
    """The layers' dotted names, each checked to be a layer of ``model`` that can be re-initialised."""
    check_model(model, "the classifier to randomise")
    if layer_order is None:
        names = randomisation_order(model)
    elif isinstance(layer_order, (str, nn.Module)) or not isinstance(layer_order, Sequence):
        example = repr(layer_order) if isinstance(layer_order, str) else "model.features[12]"
        raise TypeError(
            f"layer_order must be a list of layers (names or modules), not a {type(layer_order).__name__}; "
            f"for one layer pass a list of one, e.g. [{example}]."
        )
    else:
        names = [_layer_name(model, layer) for layer in layer_order]
    for name in names:
        _check_resettable(name, model.get_submodule(name))
    return names


def _layer_name(model: nn.Module, layer: str | nn.Module) -> str:
    try:
        return resolve_layer(model, layer)[0]
    except (ValueError, TypeError):
        what = repr(layer) if isinstance(layer, str) else f"The {type(layer).__name__} given"
        raise ValueError(
            f"{what} is not a layer of {type(model).__name__}; layers with weights, output first: "
            f"{', '.join(map(repr, randomisation_order(model)))}."
        ) from None


def _check_resettable(name: str, layer: nn.Module) -> None:
    """Every parameter of ``layer`` must belong to a module that can re-initialise it."""
    if not any(True for _ in layer.parameters()):
        raise ValueError(f"Layer {name!r} has no parameters to randomise; choose one from randomisation_order(model).")
    for part_name, part in layer.named_modules():
        own = list(part.parameters(recurse=False))
        if own and not callable(getattr(part, "reset_parameters", None)):
            where = f"{name}.{part_name}" if part_name else name
            raise ValueError(
                f"Module {where!r} ({type(part).__name__}) has parameters but no reset_parameters(), "
                "so it cannot be re-initialised; leave it out of layer_order or give it that method."
            )


def _reinitialise(model: nn.Module, name: str, seed: int) -> None:
    """Re-initialise layer ``name`` of ``model`` in place with its own ``reset_parameters()`` under ``seed``."""
    layer = model.get_submodule(name)
    with preserved_rng():  # every device's generator: manual_seed seeds them all
        torch.manual_seed(seed)
        fresh = copy.deepcopy(layer).to("cpu")  # drawn on the CPU: the same weights on every device
        for module in fresh.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
    layer.load_state_dict(fresh.state_dict())


def cascading_randomisation(
    model: nn.Module, layer_order: Sequence[str | nn.Module] | None = None, *, seed: int = 0
) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer name, randomised copy)`` with one more layer re-initialised at each step.

    ``model`` is deep-copied once and never changed. Step ``i`` (from 0) re-initialises the
    parameters of layer ``layer_order[i]`` in that copy with its own ``reset_parameters()``
    (PyTorch's default initialisation; batch-norm statistics are reset too) under
    ``torch.manual_seed(seed + i)``, inside ``torch.random.fork_rng``: the same seed gives the
    same weights on every run and every device, and the global random state is untouched.
    ``layer_order`` (a list of names or modules of ``model``) defaults to
    ``randomisation_order(model)``, the classifier first. The copy keeps the model's train/eval
    mode and device.

    Every step yields the **same** copy, randomised further: use it inside the loop, or
    ``copy.deepcopy`` it to keep one step.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> [name for name, _ in cascading_randomisation(net)]
    ['2', '0']
    """
    names = _checked_order(model, layer_order)
    _check_seed(seed)
    return _cascade(copy.deepcopy(model), names, int(seed))


def _cascade(randomised: nn.Module, names: list[str], seed: int) -> Iterator[tuple[str, nn.Module]]:
    for step, name in enumerate(names):
        _reinitialise(randomised, name, seed + step)
        yield name, randomised


def independent_randomisation(
    model: nn.Module, layer_order: Sequence[str | nn.Module] | None = None, *, seed: int = 0
) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer name, copy)`` where only that layer is re-initialised: one layer at a time.

    The paper's independent randomisation (Adebayo et al. 2018): unlike
    ``cascading_randomisation``, every step starts again from the trained weights, so the
    similarity at a step measures what that layer alone contributes to the map. Step ``i``
    draws layer ``layer_order[i]`` exactly as cascading step ``i`` does (seed ``seed + i``), on
    a fresh deep copy of ``model``, which is never changed. Arguments as in
    ``cascading_randomisation``.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> copies = list(independent_randomisation(net))
    >>> [name for name, _ in copies], torch.equal(copies[1][1][2].weight, net[2].weight)
    (['2', '0'], True)
    """
    names = _checked_order(model, layer_order)
    _check_seed(seed)
    return _one_at_a_time(model, names, int(seed))


def _one_at_a_time(model: nn.Module, names: list[str], seed: int) -> Iterator[tuple[str, nn.Module]]:
    for step, name in enumerate(names):
        randomised = copy.deepcopy(model)
        _reinitialise(randomised, name, seed + step)
        yield name, randomised
