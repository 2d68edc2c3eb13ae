"""Faithfulness of saliency maps: does the prediction depend on the pixels a map ranks first?

The deletion and insertion curves of Petsiuk et al. (2018, "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC, Section 4.1):

* **deletion**: replace the pixels (or patches) the map ranks highest first, in ``steps`` equal
  steps, and follow the probability of the class. A faithful map makes it fall fast: a small
  area under the curve (``deletion_auc``).
* **insertion**: start from the replacement image and reveal the pixels in the same order. A
  faithful map makes the probability rise fast: a large area (``insertion_auc``).

What replaces a removed pixel is a design choice that changes the answer (lesson 07): ``"zero"``
(0 in the model's input space: after ImageNet normalisation, the data set's mean colour),
``"mean"`` (the image's own mean colour) or ``"blur"`` (the image blurred exactly as the RISE
authors' code blurs it, ``blur``: https://github.com/eclique/RISE, arXiv 1806.07421). Scattered
missing pixels are themselves unlike any training image, which the model may punish whatever
the map says; Rong et al. (2022, "A Consistent and Efficient Evaluation Strategy
for Attribution Methods", ICML: ROAD) study that leak and propose a remedy. Removing ``patch`` x
``patch`` squares instead of pixels is the other common choice.

The maps every method must beat (``random_map``, ``edge_map``, ``centre_map``), and the rows of the
lesson's report card (``attribution_maps``, ``report_card_rows``, ``summarise``) live here too.

Every function leaves the model and the inputs as it found them: no hooks, parameters and
train/eval flags restored, the caller's tensors and arrays never written.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import nn

from utils.categories import check_count, check_model
from utils.saliency import (
    MapLike,
    as_batch,
    check_class_range,
    class_index,
    class_indices,
    class_scores,
    eval_with_frozen_parameters,
    forward_sized,
    guided_grad_cam_factors,
    one_map,
    upsample_cam,
)
from utils.sanity import ConstantMapWarning, sobel_magnitude

__all__ = [
    "BASELINES",
    "BASELINE_MAPS",
    "BLUR_KERNEL",
    "BLUR_SIGMA",
    "COURSE_METHODS",
    "CPU_FORWARD_BATCH",
    "MAX_MAP_PIXELS",
    "MAX_STEPS",
    "AttributionMaps",
    "Curves",
    "FaithfulnessRow",
    "Method",
    "Summary",
    "attribution_maps",
    "blur",
    "blur_kernel",
    "centre_map",
    "edge_map",
    "forward_batch_for",
    "insertion_deletion",
    "random_map",
    "removal_ranks",
    "replacement",
    "report_card_rows",
    "summarise",
]

Class = Union[int, str]
Method = Callable[[nn.Module, torch.Tensor, list[int]], MapLike]
"""A saliency method for the report card: ``(model, x, class per image) -> N x C x H x W maps`` on ``x``'s grid."""

BASELINES: tuple[str, ...] = ("zero", "mean", "blur")
"""What replaces a removed pixel: 0 in input space, the image's mean colour, or the blurred image."""
BLUR_KERNEL: int = 11
"""Side of the blur's kernel, as in the RISE authors' evaluation notebook (``klen = 11``)."""
BLUR_SIGMA: float = 5.0
"""Sigma of the Gaussian smoothed into that kernel (``ksig = 5``), in pixels."""
MAX_STEPS: int = 1024
"""The most steps a curve may take: 2 x 1023 forward passes, a curve smoother than any plot shows. Finer steps cost
time and say nothing new (a 224 x 224 image has 50,176 pixels: pixel by pixel would be 100,350 passes)."""
MAX_MAP_PIXELS: int = 50_000_000
"""The largest model-free map (``random_map``, ``centre_map``) made, in pixels: 400 MB of float64, 7,000 x 7,000."""
COURSE_METHODS: tuple[str, ...] = ("grad_cam", "guided_backprop", "guided_grad_cam")
"""The course's methods, computed together from one forward pass by ``saliency_maps``."""
BASELINE_MAPS: tuple[str, ...] = ("random", "edges", "centre")
"""Maps that know nothing of the model: a method must beat them to claim faithfulness."""
CPU_FORWARD_BATCH: int = 8
"""Images per forward pass on a CPU when the caller leaves the batch size to the course (``None``): on the course's
2-core machine, 8 perturbed 224 x 224 images at a time run SqueezeNet about 1.9x faster than 128, whose activations
outgrow the caches (``benchmarks/report_card_speed.py`` prints the ratio). On an accelerator a larger batch is faster,
and each function's own default applies."""
ACCELERATOR_BATCH = 64  # perturbed images per forward pass on a GPU when the caller does not say
_TIE_SEED = 0  # tied pixels are removed in a fixed random order, not top row first
_clock: Callable[[], float] = time.perf_counter  # the report card's timer (a test replaces it by a fake clock)


# --- checking arguments -----------------------------------------------------------------------


def _shown(value: object) -> str:
    """A short, one-line description of a value for an error message."""
    if isinstance(value, (bool, int, float, str, np.generic)) or value is None:
        return repr(value)[:40]
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def _whole(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number, at least {minimum}, got {_shown(value)}.")
    return int(value)


def _checked_image(x: object, name: str = "x") -> torch.Tensor:
    """A dense, finite float tensor ``C x H x W`` or ``N x C x H x W`` (detached)."""
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
        what = "a sparse tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a dense torch.Tensor, C x H x W or N x C x H x W, not {what}.")
    if x.ndim not in (3, 4) or x.numel() == 0:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected an image C x H x W or a batch N x C x H x W.")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; preprocess the image into a float tensor.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the image and its preprocessing.")
    return x.detach()


# --- the curves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves of one map: class probabilities after each step.

    ``fractions[k]`` is the share of pixels (patches) removed, for deletion, or revealed, for
    insertion, after step ``k`` (from 0 to 1, ``steps + 1`` values); ``deletion[k]`` and
    ``insertion[k]`` are the class's probabilities then.
    """

    fractions: npt.NDArray[np.float64]
    deletion: npt.NDArray[np.float64]
    insertion: npt.NDArray[np.float64]
    target: int
    baseline: str
    patch: int

    @property
    def deletion_auc(self) -> float:
        """Area under the deletion curve (trapezoids), in [0, 1]: lower is more faithful."""
        return float(np.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        """Area under the insertion curve (trapezoids), in [0, 1]: higher is more faithful."""
        return float(np.trapezoid(self.insertion, self.fractions))


def blur_kernel() -> npt.NDArray[np.float64]:
    """The RISE authors' blur kernel, ``gkern(11, 5)``: an 11 x 11 delta smoothed by ``gaussian_filter``, sigma 5.

    Petsiuk et al. (2018, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
    BMVC, https://arxiv.org/abs/1806.07421), code at https://github.com/eclique/RISE
    (``evaluation.py``, ``gkern``; ``Evaluation.ipynb``: ``klen = 11``, ``ksig = 5``). The Gaussian
    is wider than the 11 x 11 array, and ``gaussian_filter`` reflects what falls outside back in:
    the kernel is much flatter than a sampled Gaussian of sigma 5 (a corner holds 0.88 of the
    centre's weight), and it sums to 1.

    >>> k = blur_kernel()
    >>> k.shape, round(float(k.sum()), 6), round(float(k[0, 0] / k[5, 5]), 2)
    ((11, 11), 1.0, 0.88)
    """
    delta = np.zeros((BLUR_KERNEL, BLUR_KERNEL))
    delta[BLUR_KERNEL // 2, BLUR_KERNEL // 2] = 1.0
    return gaussian_filter(delta, BLUR_SIGMA)


def blur(x: torch.Tensor) -> torch.Tensor:
    """``x`` blurred as the RISE authors blur it: each channel convolved with ``blur_kernel()``, zero padding.

    Their notebook's ``conv2d(x, kern, padding=klen // 2)`` on the model's input: the padding is 0
    in input space (after ImageNet normalisation, the data set's mean colour), so the border
    fades towards it. Channels are blurred one by one, as RISE's diagonal 3 x 3 kernel does. A new
    tensor shaped like ``x`` (``C x H x W`` or ``N x C x H x W``), for any image size.

    >>> corner = blur(torch.ones(1, 1, 12, 12))[0, 0]
    >>> round(float(corner[6, 6]), 3), bool(corner[0, 0] < 0.5)
    (1.0, True)
    """
    x = _checked_image(x)
    batch = x if x.ndim == 4 else x.unsqueeze(0)
    channels = batch.shape[1]
    kernel = torch.from_numpy(blur_kernel()).to(batch.device, batch.dtype)
    weight = kernel.expand(channels, 1, BLUR_KERNEL, BLUR_KERNEL)
    return F.conv2d(batch, weight, padding=BLUR_KERNEL // 2, groups=channels).reshape(x.shape)


def replacement(x: torch.Tensor, baseline: str | torch.Tensor = "blur") -> torch.Tensor:
    """The image whose pixels replace the removed ones: a new tensor shaped like ``x``.

    ``"zero"``: zeros (in the model's input space); ``"mean"``: every pixel the image's mean
    colour; ``"blur"``: ``blur(x)``, the RISE authors' blur. A tensor shaped like ``x`` is used as
    it is (copied).

    >>> x = torch.arange(8.0).reshape(1, 2, 2, 2)
    >>> replacement(x, "mean")[0, :, 0, 0].tolist(), replacement(x, "zero").abs().sum().item()
    ([1.5, 5.5], 0.0)
    """
    x = _checked_image(x)
    if isinstance(baseline, torch.Tensor):
        if baseline.shape != x.shape:
            raise ValueError(
                f"baseline has shape {tuple(baseline.shape)}; a baseline image must be shaped like x, {tuple(x.shape)}."
            )
        return _checked_image(baseline, "baseline").to(x.device, x.dtype).clone()
    if not isinstance(baseline, str) or baseline not in BASELINES:
        valid = ", ".join(map(repr, BASELINES))
        raise ValueError(f"Unknown baseline {_shown(baseline)}; use one of {valid} or an image shaped like x.")
    if baseline == "zero":
        return torch.zeros_like(x)
    if baseline == "mean":
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x).clone()
    return blur(x)


def _ranking_values(saliency: MapLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
    """``H x W`` values that rank the pixels: a 2-D map as it is (signed), channels as ``magnitude``."""
    one = one_map(saliency, "saliency")  # a new array; checks the type, the number of dimensions and NaN
    values = one if one.ndim == 2 else np.abs(one).sum(axis=0)  # as utils.saliency.magnitude
    if values.shape != shape:
        raise ValueError(
            f"saliency is {values.shape[0]} x {values.shape[1]} but x is {shape[0]} x {shape[1]}; "
            "give a map on x's grid "
            "(upsample a Grad-CAM map with utils.saliency.upsample_cam first)."
        )
    return values


def removal_ranks(saliency: MapLike, shape: tuple[int, int], patch: int = 1) -> tuple[npt.NDArray[np.int64], int]:
    """When each pixel goes: an ``H x W`` array of ranks (0 = removed first) and the number of units.

    A unit is a pixel (``patch=1``) or a ``patch x patch`` square (smaller at the right and bottom
    edges when ``patch`` does not divide the side), ranked by its mean value, highest first.
    A 2-D map ranks by its values (a signed map's negative pixels come last); a map with
    channels by their absolute values summed (``utils.saliency.magnitude``). Ties go in a fixed
    random order, so ``-map`` gives exactly the reverse order of ``map`` when no two units tie.

    >>> ranks, units = removal_ranks(np.array([[0.1, 0.9], [0.5, 0.2]]), (2, 2))
    >>> ranks.tolist(), units
    ([[3, 0], [1, 2]], 4)
    >>> removal_ranks(np.array([[1.0, 1.0, 0.0, 0.0]]), (1, 4), patch=2)[0].tolist()
    [[0, 0, 1, 1]]
    """
    if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
        raise ValueError(f"shape must be (height, width) of the image, got {_shown(shape)}.")
    height, width = _whole("height", shape[0]), _whole("width", shape[1])
    patch = _whole("patch", patch)
    values = _ranking_values(saliency, (height, width))
    rows, cols = -(-height // patch), -(-width // patch)
    unit = (np.arange(height)[:, None] // patch) * cols + np.arange(width)[None, :] // patch
    sums = np.bincount(unit.ravel(), weights=values.ravel(), minlength=rows * cols)
    means = sums / np.bincount(unit.ravel(), minlength=rows * cols)
    tiebreak = np.random.default_rng(_TIE_SEED).permutation(rows * cols)
    order = np.lexsort((tiebreak, -means))  # highest mean first; ties in a fixed random order
    rank_of_unit = np.empty(rows * cols, dtype=np.int64)
    rank_of_unit[order] = np.arange(rows * cols)
    return rank_of_unit[unit], rows * cols


def _counts(units: int, steps: int) -> npt.NDArray[np.int64]:
    """Units removed after each step: ``k * units / steps`` rounded half down past the middle, half up before it.

    The counts are symmetric (``counts[k] + counts[steps - k] == units``), so deleting in a
    map's order is exactly inserting in the reverse order: the deletion curve of ``map`` is the
    insertion curve of ``-map`` read backwards. Where ``k * units / steps`` ends in a half, the
    second half of the steps therefore rounds down where rounding half up (RISE-style code)
    rounds up: 8 steps over 196 patches give 122 and 171 at steps 5 and 7, not 123 and 172
    (an AUC differs by at most 1/steps times the change of probability of one patch).

    >>> _counts(196, 8).tolist()
    [0, 25, 49, 74, 98, 122, 147, 171, 196]
    """
    half = [(k * units + steps // 2) // steps for k in range(steps // 2 + 1)]
    return np.array(half + [units - c for c in reversed(half[: (steps + 1) // 2])], dtype=np.int64)


def _checked_settings(steps: object, patch: object, shape: tuple[int, int]) -> tuple[int, int]:
    steps, patch = _whole("steps", steps), _whole("patch", patch)
    if patch > min(shape):  # type: ignore[operator]
        raise ValueError(f"patch={patch} is larger than the image ({shape[0]} x {shape[1]}); use a smaller patch.")
    units = -(-shape[0] // patch) * -(-shape[1] // patch)  # type: ignore[operator]
    if steps > units:  # type: ignore[operator]
        raise ValueError(
            f"steps={steps} is more than the {units} pixels or patches there are to remove; use fewer steps."
        )
    if steps > MAX_STEPS:  # type: ignore[operator]
        raise ValueError(
            f"steps={steps} would run {2 * (steps - 1)} images through the model; "  # type: ignore[operator]
            f"at most {MAX_STEPS} steps give a smooth curve: use fewer steps."
        )
    return int(steps), int(patch)  # type: ignore[call-overload]


def forward_batch_for(device: torch.device | str, accelerator: int) -> int:
    """Images per forward pass when the caller does not say: ``CPU_FORWARD_BATCH`` on a CPU, ``accelerator`` on any
    other device (a GPU runs large batches faster; a CPU's caches do not hold them).

    >>> forward_batch_for(torch.device("cpu"), 64), forward_batch_for("cuda:0", 64)
    (8, 64)
    """
    accelerator = check_count(accelerator, "accelerator")
    if not isinstance(device, (torch.device, str)):
        raise TypeError(f"device must be a torch.device or its name (e.g. 'cpu'), not {_shown(device)}.")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a device torch knows; e.g. 'cpu' or 'cuda'.") from None
    return CPU_FORWARD_BATCH if kind == "cpu" else accelerator


def _checked_batch_size(batch_size: object, device: torch.device) -> int:
    if batch_size is None:
        return forward_batch_for(device, ACCELERATOR_BATCH)
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number, at least 1, or None, got {_shown(batch_size)}.")
    return int(batch_size)


def _warn_if_constant(values: npt.NDArray[np.float64], name: str) -> None:
    if np.ptp(values) == 0:
        warnings.warn(
            f"{name} is constant (e.g. all zero): it ranks no pixel above another, so its curves are those of a "
            "fixed random order (a random map's); check the class and the method.",
            ConstantMapWarning,
            stacklevel=4,
        )


def _perturbed(
    original: torch.Tensor, base: torch.Tensor, ranks: list[torch.Tensor], counts: list[torch.Tensor], batch_size: int
) -> Iterator[torch.Tensor]:
    """The images to score, ``batch_size`` at a time, each batch built only when it is asked for.

    In order: the image, its replacement, then for each map its ``steps - 1`` deletion images
    (the first ``counts`` units replaced) and its ``steps - 1`` insertion images (those units
    revealed on the replacement). Only one batch of masks and images exists at a time.
    """
    jobs = [(0, 0, False), (0, 0, True)]  # (map, count, replacement where not removed): the image, the replacement
    for m, inner in enumerate(counts):
        jobs += [(m, int(c), False) for c in inner] + [(m, int(c), True) for c in inner]
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        show_base = torch.stack([(ranks[m] < c) ^ inverted for m, c, inverted in chunk])[:, None]
        yield torch.where(show_base, base, original)


def _probabilities(
    model: nn.Module, batches: Iterator[torch.Tensor], target: int, given: Class
) -> npt.NDArray[np.float64]:
    """The class's probability for every image of every batch (the class checked on the first batch)."""
    out = []
    for i, chunk in enumerate(batches):
        scores = class_scores(forward_sized(model, chunk), chunk.shape[0])
        if i == 0:
            check_class_range([target], given, scores.shape[1])
        out.append(torch.softmax(scores.double(), dim=1)[:, target].cpu())
    return torch.cat(out).numpy()


def _curves(
    model: nn.Module,
    x: torch.Tensor,
    maps: Sequence[MapLike],
    target: Class,
    *,
    steps: int,
    baseline: str | torch.Tensor,
    patch: int,
    categories: Sequence[str] | None,
    batch_size: int | None,
    names: Sequence[str] = ("saliency",),
) -> list[Curves]:
    """The curves of several maps of one image, their perturbed images run through the model batch by batch."""
    batch = as_batch(check_model(model), x)
    if batch.shape[0] != 1:
        raise ValueError(f"x holds {batch.shape[0]} images; the curves explain one image: pass x[i:i + 1].")
    shape = (int(batch.shape[-2]), int(batch.shape[-1]))
    steps, patch = _checked_settings(steps, patch, shape)
    index = class_index(target, categories)
    batch_size = _checked_batch_size(batch_size, batch.device)
    ranked = [removal_ranks(m, shape, patch) for m in maps]  # every map is checked before any work
    for m, name in zip(maps, names):
        _warn_if_constant(_ranking_values(m, shape), name)
    original = batch.detach()
    base = replacement(original, baseline)
    ranks = [torch.from_numpy(r).to(original.device) for r, _ in ranked]
    counts = [torch.from_numpy(_counts(units, steps)[1:-1]) for _, units in ranked]
    with torch.no_grad(), eval_with_frozen_parameters(model):
        probabilities = _probabilities(model, _perturbed(original, base, ranks, counts, batch_size), index, target)
    p_image, p_base, inner = probabilities[0], probabilities[1], probabilities[2:].reshape(len(maps), 2, steps - 1)
    label = baseline if isinstance(baseline, str) else "image"
    found = []
    for (_, units), (deletion, insertion) in zip(ranked, inner):
        found.append(
            Curves(
                fractions=_counts(units, steps) / units,
                deletion=np.r_[p_image, deletion, p_base],
                insertion=np.r_[p_base, insertion, p_image],
                target=index,
                baseline=label,
                patch=patch,
            )
        )
    return found


def insertion_deletion(
    model: nn.Module,
    x: torch.Tensor,
    saliency: MapLike,
    target: Class,
    *,
    steps: int = 16,
    baseline: str | torch.Tensor = "blur",
    patch: int = 1,
    categories: Sequence[str] | None = None,
    batch_size: int | None = None,
) -> Curves:
    """Deletion and insertion curves of ``saliency`` for class ``target`` (Petsiuk et al., 2018).

    ``x``: one image, ``1 x C x H x W`` or ``C x H x W``; ``saliency``: a map on its grid (``H x W``,
    ``C x H x W`` or ``1 x C x H x W``; see ``removal_ranks`` for how it ranks the pixels);
    ``target``: an index or a category name of ``categories`` (default ImageNet's). In ``steps``
    equal steps, ``patch`` x ``patch`` squares are replaced by ``replacement(x, baseline)``
    (deletion) or revealed on it (insertion); step ``k`` removes ``k / steps`` of the units,
    rounded so that the curves are symmetric (8 steps over 196 patches: 122 and 171 at steps 5
    and 7, where RISE-style rounding half up gives 123 and 172; see ``_counts``). ``steps`` is at
    most the number of units and ``MAX_STEPS``. The ``2 * (steps - 1)`` perturbed images are built
    and go through the model ``batch_size`` at a time (None: ``CPU_FORWARD_BATCH`` on a CPU, 64 on
    an accelerator), with eval semantics and no gradients: the memory they take grows with
    ``batch_size``, not with ``steps``. A constant map (e.g. all
    zero) ranks nothing: it gets a ``utils.sanity.ConstantMapWarning`` and a random order's curves.
    An image too small for the model is named with the smallest size that works.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> curves = insertion_deletion(net, torch.rand(3, 8, 8), torch.rand(8, 8), 1, steps=4)
    >>> curves.fractions.tolist(), curves.deletion.shape, 0 <= curves.insertion_auc <= 1
    ([0.0, 0.25, 0.5, 0.75, 1.0], (5,), True)
    """
    return _curves(
        model,
        x,
        [saliency],
        target,
        steps=steps,
        baseline=baseline,
        patch=patch,
        categories=categories,
        batch_size=batch_size,
    )[0]


# --- maps a method must beat ------------------------------------------------------------------


def _check_map_size(height: int, width: int) -> None:
    if height * width > MAX_MAP_PIXELS:
        raise ValueError(
            f"A {height} x {width} map has more than MAX_MAP_PIXELS = {MAX_MAP_PIXELS:,} pixels; "
            "make it the size of the model's input (e.g. 224 x 224)."
        )


def random_map(height: int, width: int, *, seed: int = 0) -> npt.NDArray[np.float64]:
    """A map of uniform random values: it ranks the pixels in a random order, the same for a seed.

    >>> random_map(2, 3).shape, np.array_equal(random_map(4, 4, seed=1), random_map(4, 4, seed=1))
    ((2, 3), True)
    """
    height, width, seed = _whole("height", height), _whole("width", width), _whole("seed", seed, 0)
    _check_map_size(height, width)
    return np.random.default_rng(seed).random((height, width))


def edge_map(x: torch.Tensor) -> npt.NDArray[np.float64]:
    """The image's edges: the Sobel gradient magnitude of each channel of ``x``, summed; ``H x W``.

    Per channel (``utils.sanity.sobel_magnitude``), so that an edge between two colours of equal
    brightness counts too; lesson 05's ``utils.sanity.edge_map`` is a gray one (the paper does not name its detector).

    GBP is known to resemble an edge detector (Adebayo et al., 2018, "Sanity Checks for Saliency
    Maps", Fig. 1): this map says what edges alone achieve.

    >>> step = torch.zeros(1, 3, 4, 6); step[..., 3:] = 1.0
    >>> (edge_map(step)[1] > 0).astype(int).tolist()
    [0, 0, 1, 1, 0, 0]
    """
    image = _checked_image(x).to("cpu", torch.float64).numpy()
    while image.ndim > 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3:
        raise ValueError(f"x has shape {tuple(x.shape)}; edge_map takes one image, C x H x W or 1 x C x H x W.")
    return np.sum([sobel_magnitude(channel) for channel in image], axis=0)


def centre_map(height: int, width: int, *, sigma: float = 0.25) -> npt.NDArray[np.float64]:
    """A Gaussian centred on the image, ``sigma`` a fraction of each side: photographers' centre bias.

    >>> m = centre_map(5, 5)
    >>> float(m[2, 2]), bool(m[0, 0] < m[1, 1] < m[2, 2])
    (1.0, True)
    """
    height, width = _whole("height", height), _whole("width", width)
    _check_map_size(height, width)
    if isinstance(sigma, (bool, np.bool_)) or not isinstance(sigma, (int, float, np.number)) or not 0 < sigma < 1e6:
        raise ValueError(f"sigma must be a positive number (a fraction of the side, e.g. 0.25), got {_shown(sigma)}.")
    rows = (np.arange(height) - (height - 1) / 2) / (sigma * height)
    cols = (np.arange(width) - (width - 1) / 2) / (sigma * width)
    return np.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2))


# --- the report card --------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributionMaps:
    """``maps[method]``: detached ``N x C x H x W`` maps on ``x``'s grid, one per image (C = 1 or 3);
    ``seconds[method]``: the time per map on this machine; ``inputs``: the images they explain
    (``report_card_rows`` checks that reused maps explain its photos), or None if unknown."""

    maps: dict[str, torch.Tensor]
    seconds: dict[str, float]
    inputs: torch.Tensor | None = None

    def image(self, i: int) -> dict[str, torch.Tensor]:
        """``{method: 1 x C x H x W map}`` of image ``i``."""
        return {name: found[i : i + 1] for name, found in self.maps.items()}


def _as_maps(value: MapLike, name: str, n: int) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.array(value, dtype=np.float32))
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"Method {name!r} returned {type(value).__name__}; a method must return maps (a tensor or an array)."
        )
    value = value.detach().float().cpu()
    if value.ndim == 3 and n == 1:
        value = value.unsqueeze(0)
    if value.ndim != 4 or value.shape[0] != n:
        raise ValueError(
            f"Method {name!r} returned shape {tuple(value.shape)}; expected one map per image, {n} x C x H x W."
        )
    return value


def _model_free_maps(method: str, batch: torch.Tensor) -> torch.Tensor:
    height, width = int(batch.shape[-2]), int(batch.shape[-1])
    if method == "random":
        one = [random_map(height, width, seed=0)] * batch.shape[0]
    elif method == "edges":
        one = [edge_map(image) for image in batch]
    else:
        one = [centre_map(height, width)] * batch.shape[0]
    return torch.from_numpy(np.stack(one)[:, None].astype(np.float32))


def _course_maps(
    model: nn.Module, layer: nn.Module | str, batch: torch.Tensor, classes: list[int]
) -> dict[str, torch.Tensor]:
    """The course's three maps, Grad-CAM upsampled bilinearly, from one forward pass (one class per image)."""
    found = guided_grad_cam_factors(model, layer, batch, classes)
    cam, gbp = upsample_cam(found["grad_cam"], batch.shape[-2:], "bilinear"), found["guided_backprop"]
    return {
        "grad_cam": cam.detach().cpu(),
        "guided_backprop": gbp.detach().cpu(),
        "guided_grad_cam": (gbp * cam).detach().cpu(),
    }


def _named_methods(methods: object) -> dict[str, Method | str]:
    if isinstance(methods, Mapping):
        named = dict(methods)
    elif isinstance(methods, (list, tuple)) and all(isinstance(m, str) for m in methods):
        named = {m: m for m in methods}
    else:
        raise TypeError(f"methods must be a list of method names or a dict {{name: method}}, not {_shown(methods)}.")
    if not named or not all(isinstance(name, str) for name in named):
        raise ValueError("methods must name at least one method, each by a string.")
    return named


def attribution_maps(
    model: nn.Module,
    layer: nn.Module | str | None,
    x: torch.Tensor,
    targets: Class | Sequence[Class],
    methods: Sequence[str] | Mapping[str, Method | str],
    *,
    categories: Sequence[str] | None = None,
) -> AttributionMaps:
    """Every method's map of every image of ``x`` (``N x C x H x W``, or one image) for its class, timed.

    ``targets``: one class for all images, or one per image (indices or names of ``categories``).
    ``methods`` names the course's methods (``COURSE_METHODS``: all three from one
    ``saliency_maps`` pass on ``layer`` when every image has the same class, else from one Grad-CAM
    and one GBP pass; Grad-CAM upsampled bilinearly; they share the time) and the model-free
    ``BASELINE_MAPS``; a mapping ``{name: method}`` adds any other ``Method`` (e.g. a Captum
    attribution), called ONCE with the whole batch and the list of class indices, as Captum's
    ``attribute(x, target=[...])`` takes them.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> found = attribution_maps(net, "1", torch.rand(2, 3, 8, 8), [0, 1], ["grad_cam", "random"])
    >>> {m: tuple(v.shape) for m, v in found.maps.items()}, sorted(found.seconds)
    ({'grad_cam': (2, 1, 8, 8), 'random': (2, 1, 8, 8)}, ['grad_cam', 'random'])
    """
    named = _named_methods(methods)
    for name, method in named.items():
        if isinstance(method, str) and method not in COURSE_METHODS + BASELINE_MAPS:
            known = ", ".join(COURSE_METHODS + BASELINE_MAPS)
            raise ValueError(f"Unknown method {method!r}; name one of {known}, or pass a function.")
        if not isinstance(method, str) and not callable(method):
            raise TypeError(
                f"Method {name!r} must be a name or a function (model, x, classes) -> maps, "
                f"not {type(method).__name__}."
            )
    batch = as_batch(check_model(model), x).detach()
    n = batch.shape[0]
    classes = class_indices(targets, n, categories)
    maps: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    course = [name for name, m in named.items() if isinstance(m, str) and m in COURSE_METHODS]
    if course:
        if layer is None:
            names = ", ".join(course)
            raise ValueError(f"Methods {names} need the Grad-CAM layer; pass layer (e.g. loaded.target_layer).")
        start = _clock()
        found = _course_maps(model, layer, batch, classes)
        per_map = (_clock() - start) / (3 * n)
        for name in course:
            maps[name], seconds[name] = found[named[name]], per_map  # type: ignore[index]
    for name, method in named.items():
        if name in course:
            continue
        start = _clock()
        if isinstance(method, str):
            maps[name] = _model_free_maps(method, batch)
        else:
            maps[name] = _as_maps(method(model, batch.clone(), list(classes)), name, n)
        seconds[name] = (_clock() - start) / n
    return AttributionMaps(
        maps={name: maps[name] for name in named}, seconds={name: seconds[name] for name in named}, inputs=batch.clone()
    )


@dataclass(frozen=True)
class FaithfulnessRow:
    """One method on one photo: its deletion and insertion AUC and its seconds per map."""

    method: str
    photo: str
    target: int
    insertion_auc: float
    deletion_auc: float
    seconds: float


def report_card_rows(
    model: nn.Module,
    layer: nn.Module | str | None,
    photos: Mapping[str, tuple[torch.Tensor, Class]],
    methods: Sequence[str] | Mapping[str, Method | str],
    *,
    steps: int = 8,
    baseline: str = "blur",
    patch: int = 16,
    categories: Sequence[str] | None = None,
    batch_size: int | None = None,
    computed: AttributionMaps | None = None,
) -> list[FaithfulnessRow]:
    """The report card's faithfulness rows: every method on every ``{name: (x, class)}`` photo.

    The maps come from ONE ``attribution_maps`` call for all the photos (each method called once
    for the whole batch), or are the ``computed`` ones, image ``i`` for the ``i``-th photo. Per
    photo, the curves of all its maps are computed together, their perturbed images batched
    ``batch_size`` at a time (``insertion_deletion``'s settings: None, 8 on a CPU). Summarise the
    rows with ``summarise``.

    Rounding: step ``k`` of ``steps`` removes ``k / steps`` of the patches, rounded so that the
    curves are symmetric (``_counts``): the card's 8 steps over the 196 patches of 16 x 16 on a
    224 x 224 photo remove 0, 25, 49, 74, 98, 122, 147, 171, 196 patches, where code that rounds
    half up, as RISE-style implementations do, removes 123 and 172 at steps 5 and 7 (one patch
    more at two of the nine points of each curve). Reused ``computed`` maps must come
    from ``attribution_maps`` on these photos, in this order (checked when they say which images
    they explain).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> rows = report_card_rows(net, "1", {"a": (torch.rand(1, 3, 8, 8), 0)}, ["grad_cam", "random"], steps=2, patch=2)
    >>> [(r.method, r.photo) for r in rows]
    [('grad_cam', 'a'), ('random', 'a')]
    """
    if not isinstance(photos, Mapping):
        raise TypeError(f"photos must be a dict {{name: (x, class)}}, not {_shown(photos)}.")
    if not photos:
        raise ValueError("photos is an empty dict; give at least one photo, {name: (x, class)}.")
    if not all(isinstance(entry, (tuple, list)) and len(entry) == 2 for entry in photos.values()):
        raise TypeError("Each photo must be a pair (x, class): the model input and the class to explain.")
    if computed is not None and not isinstance(computed, AttributionMaps):
        raise TypeError(f"computed must be the AttributionMaps of attribution_maps, or None, not {_shown(computed)}.")
    images = [as_batch(check_model(model), x) for x, _ in photos.values()]
    if any(image.shape != images[0].shape or image.shape[0] != 1 for image in images):
        raise ValueError("photos must each be one image (1 x C x H x W) of the same size; resize them alike.")
    classes = [target for _, target in photos.values()]
    if computed is None:
        computed = attribution_maps(model, layer, torch.cat(images), classes, methods, categories=categories)
    else:
        _check_computed(computed, photos, images)
    rows = []
    for i, (photo, image, target) in enumerate(zip(photos, images, classes)):
        own = computed.image(i)
        curves = _curves(
            model,
            image,
            list(own.values()),
            target,
            steps=steps,
            baseline=baseline,
            patch=patch,
            categories=categories,
            batch_size=batch_size,
            names=[f"the {name!r} map of {photo!r}" for name in own],
        )
        for name, curve in zip(own, curves):
            seconds = computed.seconds[name]
            rows.append(FaithfulnessRow(name, photo, curve.target, curve.insertion_auc, curve.deletion_auc, seconds))
    return rows


def _check_computed(computed: AttributionMaps, photos: Mapping[str, object], images: list[torch.Tensor]) -> None:
    """Reused maps must hold one map per photo, on its grid, computed on that very photo (when ``inputs`` says)."""
    if any(found.shape[0] < len(images) for found in computed.maps.values()):
        raise ValueError(
            f"computed holds maps for fewer images than the {len(images)} photos; compute them for every photo."
        )
    if any(tuple(found.shape[-2:]) != tuple(images[0].shape[-2:]) for found in computed.maps.values()):
        raise ValueError(
            "computed's maps are not on the photos' grid; compute them with attribution_maps on the photos."
        )
    if computed.inputs is None:
        return
    if computed.inputs.shape[0] < len(images) or computed.inputs.shape[1:] != images[0].shape[1:]:
        raise ValueError("computed's maps explain other images than the photos; compute them on the photos.")
    for i, (photo, image) in enumerate(zip(photos, images)):
        if not torch.equal(computed.inputs[i].to(image.device, image.dtype), image[0].detach()):
            raise ValueError(
                f"computed's image {i} is not the photo {photo!r}: its maps explain another image; "
                "pass the photos in the order of the images given to attribution_maps."
            )


@dataclass(frozen=True)
class Summary:
    """A method's rows over the photos: means and standard deviations of the AUCs, mean seconds."""

    insertion_mean: float
    insertion_std: float
    deletion_mean: float
    deletion_std: float
    seconds: float
    photos: int


def summarise(rows: Sequence[FaithfulnessRow]) -> dict[str, Summary]:
    """``{method: Summary}`` over the photos, in the rows' order of methods.

    >>> rows = [FaithfulnessRow("m", p, 0, ins, 0.1, 0.5) for p, ins in (("a", 0.6), ("b", 0.8))]
    >>> s = summarise(rows)["m"]
    >>> round(s.insertion_mean, 3), round(s.insertion_std, 3), s.photos
    (0.7, 0.1, 2)
    """
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, FaithfulnessRow) for row in rows):
        raise TypeError(f"rows must be a list of FaithfulnessRow (what report_card_rows returns), not {_shown(rows)}.")
    by_method: dict[str, list[FaithfulnessRow]] = {}
    for row in rows:
        by_method.setdefault(row.method, []).append(row)
    return {
        method: Summary(
            insertion_mean=float(np.mean([r.insertion_auc for r in found])),
            insertion_std=float(np.std([r.insertion_auc for r in found])),
            deletion_mean=float(np.mean([r.deletion_auc for r in found])),
            deletion_std=float(np.std([r.deletion_auc for r in found])),
            seconds=float(np.mean([r.seconds for r in found])),
            photos=len(found),
        )
        for method, found in by_method.items()
    }
