"""ROAD, "Remove And Debias": a deletion test whose removed pixels do not give themselves away.

Rong et al. (2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods", ICML,
https://arxiv.org/abs/2202.00449) show that a deletion or insertion curve is moved by *where*
pixels were removed, not only by what they carried: a blurred or black region has the shape of the
map, and the model can read that shape ("information leakage"). ROAD fills each removed pixel
from its neighbours instead, by **noisy linear imputation**: every removed value is the weighted
mean of its eight neighbours (1/6 for the four beside it, 1/12 for the four diagonal ones), which
is one sparse linear system for all removed pixels at once, and a little Gaussian noise (0.01 on
the model's input scale) is added to what was filled in. The authors' code
(https://github.com/tleemann/road_evaluation, ``imputations.py``) is what pytorch-grad-cam ships as
``pytorch_grad_cam.metrics.road``; ``noisy_linear_imputation`` gives the same images (tested).

Two orders, as in the paper: **MoRF** removes the most relevant pixels first (a faithful map makes
the class probability fall fast: a low curve is good) and **LeRF** the least relevant first (the
probability should stay: a high curve is good). Each point of a curve removes a share of the
pixels chosen by a percentile threshold of the map, as pytorch-grad-cam's ``ROADMostRelevantFirst``
and ``ROADLeastRelevantFirst`` do, and the summary ``(LeRF - MoRF) / 2`` of the mean probabilities
is its ``ROADCombined`` (a larger value is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from utils.categories import check_count, describe
from utils.saliency import (
    MapLike,
    as_batch,
    check_class_range,
    class_index,
    class_scores,
    eval_with_frozen_parameters,
    magnitude,
)

__all__ = [
    "NEIGHBOUR_WEIGHTS",
    "ROAD_NOISE",
    "ROAD_ORDERS",
    "ROAD_PERCENTAGES",
    "RoadCurves",
    "noisy_linear_imputation",
    "removed_pixels",
    "road",
]

NEIGHBOUR_WEIGHTS: dict[tuple[int, int], float] = {
    (-1, 0): 1 / 6,
    (1, 0): 1 / 6,
    (0, -1): 1 / 6,
    (0, 1): 1 / 6,
    (-1, -1): 1 / 12,
    (-1, 1): 1 / 12,
    (1, -1): 1 / 12,
    (1, 1): 1 / 12,
}
"""(row, column) offset -> weight of that neighbour in a removed pixel's value (the authors' choice)."""
ROAD_NOISE = 0.01
"""The standard deviation of the noise added to imputed values, on the model's (normalised) input scale."""
ROAD_PERCENTAGES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
"""The shares of pixels removed, in percent: pytorch-grad-cam's ROAD averages over these."""
ROAD_ORDERS: tuple[str, ...] = ("morf", "lerf")
"""ROAD's two orders: most relevant first, least relevant first (``road`` computes both by default)."""
MAX_NOISE = 1e3  # far beyond any input scale; larger values would overflow float32 images
_TIE_SEED = 0  # tied values are removed in a fixed random order (as utils.faithfulness ranks them)


def noisy_linear_imputation(
    image: torch.Tensor, removed: npt.NDArray[np.bool_], *, noise: float = ROAD_NOISE, seed: int | None = 0
) -> torch.Tensor:
    """``image`` (C x H x W) with its ``removed`` pixels (H x W, True = removed) filled from their neighbours.

    Each removed value is the weighted mean of its neighbours inside the image (``NEIGHBOUR_WEIGHTS``,
    renormalised at the border), removed neighbours included: one sparse system, solved exactly.
    Then ``noise`` x N(0, 1) is added to the filled values, drawn from ``seed`` (``None``: the global
    RNG, as pytorch-grad-cam). A new tensor; ``image`` is left as it is.

    >>> image = torch.tensor([[[0.0, 0.0, 0.0], [3.0, 9.0, 3.0], [6.0, 6.0, 6.0]]])
    >>> removed = np.zeros((3, 3), bool); removed[1, 1] = True
    >>> noisy_linear_imputation(image, removed, noise=0.0)[0, 1, 1].item()  # (0 + 6 + 3 + 3) / 6 + (0 + 0 + 6 + 6) / 12
    3.0
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        raise ValueError(f"image must be a float tensor C x H x W, not {describe(image)}.")
    if isinstance(removed, torch.Tensor):
        if removed.is_meta:
            raise ValueError("removed is a meta tensor (a shape without values); give the boolean H x W mask itself.")
        removed = removed.detach().to_dense().cpu().numpy()
    mask = np.asarray(removed)
    if mask.dtype != np.bool_ or mask.shape != tuple(image.shape[-2:]):
        raise ValueError(
            f"removed must be a boolean H x W array of the image's size {tuple(image.shape[-2:])}, "
            f"not {describe(removed)}."
        )
    if mask.all():
        raise ValueError("every pixel is removed: noisy linear imputation needs at least one pixel to fill from.")
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise <= MAX_NOISE:
        raise ValueError(
            f"noise must be a number from 0 to {MAX_NOISE:g} (the authors' code: 0.01), not {describe(noise)}."
        )
    height, width = mask.shape
    unknown = np.flatnonzero(mask)
    if unknown.size == 0:
        return image.clone()
    index = np.full(height * width, -1)
    index[unknown] = np.arange(unknown.size)
    rows, cols = np.divmod(unknown, width)
    values = image.detach().reshape(image.shape[0], -1).double().cpu().numpy()  # C x HW
    diagonal = np.zeros(unknown.size)
    rhs = np.zeros((unknown.size, image.shape[0]))
    entries: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float]] = []
    for (dr, dc), weight in NEIGHBOUR_WEIGHTS.items():
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        me, there = np.flatnonzero(inside), (r * width + c)[inside]
        diagonal[me] += weight  # the weights of the neighbours that exist: this pixel = their weighted mean
        known = ~mask.reshape(-1)[there]
        rhs[me[known]] += weight * values[:, there[known]].T
        entries.append((me[~known], index[there[~known]], weight))
    row_ids = np.concatenate([np.arange(unknown.size)] + [e[0] for e in entries])
    col_ids = np.concatenate([np.arange(unknown.size)] + [e[1] for e in entries])
    data = np.concatenate([diagonal] + [np.full(e[0].size, -e[2]) for e in entries])
    system = coo_matrix((data, (row_ids, col_ids)), shape=(unknown.size, unknown.size))
    solved = np.asarray(spsolve(system.tocsc(), rhs)).reshape(unknown.size, -1)  # N x C
    filled = torch.tensor(solved.T, dtype=image.dtype)  # C x N, the order pytorch-grad-cam draws its noise in
    if noise:
        generator = None if seed is None else torch.Generator().manual_seed(check_count(seed, "seed", minimum=0))
        filled = filled + noise * torch.randn(filled.shape, generator=generator, dtype=filled.dtype)
    result = image.detach().clone().reshape(image.shape[0], -1)
    result[:, torch.from_numpy(unknown).to(result.device)] = filled.to(result.device)
    return result.reshape(image.shape)


def removed_pixels(saliency: MapLike, percent: float, order: str = "morf") -> npt.NDArray[np.bool_]:
    """The pixels ROAD removes at ``percent``: the map's top share (``"morf"``) or its bottom share (``"lerf"``).

    The map is ranked by magnitude (``|map|`` summed over channels). As many pixels go as
    pytorch-grad-cam's percentile threshold removes from a map without ties (``np.percentile``'s
    linear rule: 231 of 2,304 at 10%); tied values, such as the zeros of a Grad-CAM map, are
    ranked in a fixed random order instead of going out all together, so that a share is a share.

    >>> removed_pixels(np.arange(10.0).reshape(2, 5), 20).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 1, 1]])
    >>> removed_pixels(np.arange(10.0).reshape(2, 5), 20, "lerf").astype(int)
    array([[1, 1, 0, 0, 0],
           [0, 0, 0, 0, 0]])
    >>> int(removed_pixels(np.zeros((4, 4)), 50).sum())  # a blank map: half of the pixels, in a random order
    8
    """
    values = magnitude(saliency, "saliency")
    if not isinstance(percent, (int, float)) or isinstance(percent, bool) or not 0 < percent < 100:
        raise ValueError(
            f"percent must be a share of the pixels between 0 and 100 (exclusive), not {describe(percent)}."
        )
    if order not in ("morf", "lerf"):
        raise ValueError(
            f"order must be 'morf' (most relevant first) or 'lerf' (least relevant first), not {describe(order)}."
        )
    n = values.size
    # pytorch-grad-cam keeps the pixels below np.percentile(map, 100 - percent) in both orders (LeRF on 1 - map)
    count = n - math.ceil((100 - percent) / 100 * (n - 1))
    ties = np.random.default_rng(_TIE_SEED).permutation(n)
    ranked = np.lexsort((ties, values.ravel()))  # ascending by value, ties in a fixed random order
    chosen = ranked[n - count :] if order == "morf" else ranked[:count]
    removed = np.zeros(n, dtype=bool)
    removed[chosen] = True
    return removed.reshape(values.shape)


@dataclass(frozen=True)
class RoadCurves:
    """ROAD's two curves for one map: the class probability with ``percentages`` of the pixels imputed.

    ``morf``: most relevant first (lower is better); ``lerf``: least relevant first (higher is
    better); ``original``: the probability before anything is removed. ``combined`` is
    ``(mean(lerf) - mean(morf)) / 2``, pytorch-grad-cam's ``ROADCombined`` on probabilities. An
    order that ``road`` was asked not to compute (``orders=("morf",)``) is an empty array, and
    ``combined`` then says so instead of returning a number.
    """

    percentages: tuple[float, ...]
    morf: npt.NDArray[np.float64]
    lerf: npt.NDArray[np.float64]
    original: float

    @property
    def combined(self) -> float:
        missing = [name for name, curve in (("MoRF", self.morf), ("LeRF", self.lerf)) if curve.size == 0]
        if missing:
            raise ValueError(
                f"ROAD's combined score needs both orders, and {missing[0]} was not computed: "
                'call road with orders=("morf", "lerf") (the default).'
            )
        return float((self.lerf.mean() - self.morf.mean()) / 2)


def _orders(orders: object) -> tuple[str, ...]:
    if (
        not isinstance(orders, (tuple, list))
        or not orders
        or not all(isinstance(order, str) and order in ROAD_ORDERS for order in orders)
        or len(set(orders)) != len(orders)
    ):
        raise ValueError(
            'orders must be ("morf", "lerf"), ("morf",) or ("lerf",): the orders to compute, each once, '
            f"not {describe(orders)}."
        )
    return tuple(orders)


def road(
    model: nn.Module,
    x: torch.Tensor,
    saliency: MapLike,
    target: int | str,
    *,
    percentages: tuple[float, ...] = ROAD_PERCENTAGES,
    noise: float = ROAD_NOISE,
    seed: int = 0,
    categories: tuple[str, ...] | list[str] | None = None,
    orders: tuple[str, ...] = ROAD_ORDERS,
) -> RoadCurves:
    """ROAD for one image ``x`` (C x H x W or 1 x C x H x W) and one map on its grid: both orders (or those asked).

    All imputed images go through the model in one batch (the number of shares per order), in eval mode
    with frozen parameters; the model and ``x`` are left as they were. The noise of each imputed
    image is drawn from ``seed`` plus its position (MoRF's shares first, then LeRF's), so a call
    is repeatable. ``orders=("morf",)`` computes MoRF only, with the same values as a call with
    both (half the sparse solves, the slow part); the curve left out is empty.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> curves = road(net, torch.rand(3, 8, 8), torch.rand(8, 8), 1, percentages=(25, 50))
    >>> curves.morf.shape, curves.lerf.shape, 0 < curves.original < 1
    ((2,), (2,), True)
    """
    batch = as_batch(model, x)
    if batch.shape[0] != 1:
        raise ValueError(f"road takes one image, not a batch of {batch.shape[0]}; call it once per image.")
    cls = class_index(target, categories)
    seed = check_count(seed, "seed", minimum=0)
    if not isinstance(percentages, (tuple, list)) or not percentages:
        raise ValueError(
            "percentages must be a non-empty tuple of shares in percent, e.g. ROAD_PERCENTAGES, "
            f"not {describe(percentages)}."
        )
    shares = tuple(percentages)
    wanted = _orders(orders)
    n = len(shares)
    # (position, mask): the position in the full call, MoRF then LeRF, seeds the image's noise
    masks = [
        (k * n + i, removed_pixels(saliency, p, order))
        for k, order in enumerate(ROAD_ORDERS)
        if order in wanted
        for i, p in enumerate(shares)
    ]
    if masks[0][1].shape != tuple(batch.shape[-2:]):
        raise ValueError(
            f"the map is {masks[0][1].shape[0]} x {masks[0][1].shape[1]} but the image "
            f"{batch.shape[-2]} x {batch.shape[-1]}; upsample the map to the image's grid first."
        )
    image = batch[0].detach()
    imputed = [noisy_linear_imputation(image, m, noise=noise, seed=seed + i) for i, m in masks]
    with torch.no_grad(), eval_with_frozen_parameters(model):
        logits = class_scores(model(torch.stack([image, *imputed])), 1 + len(imputed))
    check_class_range([cls], target, logits.shape[1])
    p = torch.softmax(logits.double(), dim=1)[:, cls].cpu().numpy()
    curves = {order: np.empty(0) for order in ROAD_ORDERS}
    for k, order in enumerate(order for order in ROAD_ORDERS if order in wanted):  # the masks' order
        curves[order] = p[1 + k * n : 1 + (k + 1) * n]
    return RoadCurves(percentages=shares, morf=curves["morf"], lerf=curves["lerf"], original=float(p[0]))
