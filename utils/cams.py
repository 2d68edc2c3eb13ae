"""The CAM family a practitioner meets next: Grad-CAM++, HiResCAM, Score-CAM and LayerCAM.

Each is a few lines from its paper's equation on top of what Grad-CAM already computes, the
target layer's activations ``A`` (N x C x h x w) and the class score's gradient there
(``utils.saliency.layer_gradients``). All four take ``grad_cam``'s arguments
``(model, layer, x, target)`` with its checks, return an N x 1 x h x w map at the layer's
resolution, ReLU applied, not normalised (``upsample=True`` or a mode resizes it to the input),
and leave the model and ``x`` as they were. They give the same maps as pytorch-grad-cam 1.5.7
(``GradCAMPlusPlus``, ``HiResCAM``, ``ScoreCAM``, ``LayerCAM``) once that library's
normalisation is applied (tests/test_cams.py):

* **Grad-CAM** (Selvaraju et al., 2017, https://arxiv.org/abs/1610.02391, Eq. 1-2):
  ``ReLU(sum_k mean_ij(g_k) A_k)``, the gradient averaged over the grid.
* **Grad-CAM++** (Chattopadhyay et al., 2018, https://arxiv.org/abs/1710.11063; ``alpha`` is the
  closed form pytorch-grad-cam cites as the paper's Eq. 19):
  each gradient cell weighted by ``alpha = g^2 / (2 g^2 + sum_ab A_ab g^3)`` before the
  positive gradients are summed: ``w_k = sum_ij alpha_ij ReLU(g_ij)``. The closed form assumes
  an exponential of the score; the exponential's factor is the same for every cell and
  channel, so it only scales the map.
* **HiResCAM** (Draelos and Carin, 2020, https://arxiv.org/abs/2011.08891):
  ``ReLU(sum_k g_k * A_k)``, element-wise, without the average. Where the class score is a
  linear function of the layer (the paper's case: the feature maps flattened into one fully
  connected layer), its map before the ReLU sums to the class score less the bias: it shows
  where the score comes from, which Grad-CAM's averaged weights do not. With a global average
  before that one layer, the gradient is the same in every cell and the two maps are equal.
* **LayerCAM** (Jiang et al., 2021, https://doi.org/10.1109/TIP.2021.3089943):
  ``ReLU(sum_k ReLU(g_k) * A_k)``, element-wise with the positive gradients only.
* **Score-CAM** (Wang et al., 2020, https://arxiv.org/abs/1910.01279): no gradient.
  Each channel, upsampled (bilinear) and scaled to [0, 1], masks the input; the class scores of
  the masked inputs, through a softmax over the channels, weigh the channels:
  ``ReLU(sum_k softmax_k(y_c(x * M_k)) A_k)``. One forward pass per channel: 512 for the
  course's models (seconds on SqueezeNet, minutes on VGG16 on a CPU); ``batch_size`` bounds
  the memory. The paper's baseline score ``y_c(x_b)`` is left out: a softmax ignores a shift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from utils.categories import category_names, check_count, describe
from utils.saliency import (
    INTERPOLATE_MODES,
    Target,
    class_indices,
    eval_with_frozen_parameters,
    grad_cam,
    layer_gradients,
    upsample_cam,
)

__all__ = [
    "CAM_METHODS",
    "GRAD_CAM_PLUS_PLUS_EPS",
    "grad_cam_plus_plus",
    "hires_cam",
    "layer_cam",
    "score_cam",
]

GRAD_CAM_PLUS_PLUS_EPS = 1e-6
"""pytorch-grad-cam's guard in Grad-CAM++'s denominator. The closed form (pytorch-grad-cam cites it as the paper's
Eq. 19) has none: pass ``eps=0`` for it.
It is not negligible where gradients are small (below about 1e-3 it is a large share of ``2 g^2``)."""


def _cam(
    x: torch.Tensor, upsample: bool | str, weighted: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], **kwargs
) -> torch.Tensor:
    """Sum ``weighted(A, g)`` over channels, keep the positive part, upsample as asked."""
    mode = _upsample_mode(upsample)
    activations, gradients, _ = layer_gradients(x=x, **kwargs)
    cam = F.relu(weighted(activations, gradients).sum(dim=1, keepdim=True))
    return cam if mode is None else upsample_cam(cam, x.shape[-2:], mode)


def _upsample_mode(upsample: object) -> str | None:
    """``upsample`` as ``grad_cam`` takes it: False (the layer's grid), True (nearest) or a mode's name."""
    if upsample is False or upsample is True:
        return "nearest" if upsample else None
    if isinstance(upsample, str) and upsample in INTERPOLATE_MODES:
        return upsample
    raise ValueError(
        f"upsample={describe(upsample)}; use False, True (nearest) or a mode: {', '.join(INTERPOLATE_MODES)}."
    )


def grad_cam_plus_plus(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    upsample: bool | str = False,
    categories: Sequence[str] | None = None,
    eps: float = GRAD_CAM_PLUS_PLUS_EPS,
) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhyay et al., 2018): N x 1 x h x w, ReLU applied, not normalised.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> grad_cam_plus_plus(net, "1", torch.rand(3, 8, 8), 1).shape
    torch.Size([1, 1, 6, 6])
    """
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 <= eps < 1:
        raise ValueError(f"eps must be a small number >= 0 (0 for the paper's formula), not {describe(eps)}.")

    def weighted(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        a_sum = a.sum(dim=(2, 3), keepdim=True)
        denominator = 2 * g**2 + a_sum * g**3 + eps
        alpha = torch.where((g != 0) & (denominator != 0), g**2 / denominator.where(denominator != 0, 1.0), 0.0)
        weights = (alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True)  # w_k = sum_ij alpha_ij ReLU(g_ij)
        return weights * a

    return _cam(x, upsample, weighted, model=model, layer=layer, target=target, categories=categories)


def hires_cam(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    upsample: bool | str = False,
    categories: Sequence[str] | None = None,
) -> torch.Tensor:
    """HiResCAM (Draelos and Carin, 2020): ``ReLU(sum_k g_k * A_k)``, N x 1 x h x w, not normalised.

    Grad-CAM with one change: the gradient multiplies the activations cell by cell instead of
    being averaged over the grid first.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> hires_cam(net, "1", torch.rand(3, 8, 8), 1, upsample="bilinear").shape
    torch.Size([1, 1, 8, 8])
    """
    return _cam(x, upsample, torch.mul, model=model, layer=layer, target=target, categories=categories)


def layer_cam(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    upsample: bool | str = False,
    categories: Sequence[str] | None = None,
) -> torch.Tensor:
    """LayerCAM (Jiang et al., 2021): ``ReLU(sum_k ReLU(g_k) * A_k)``, N x 1 x h x w, not normalised.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> layer_cam(net, "1", torch.rand(2, 3, 8, 8), [0, 1]).shape
    torch.Size([2, 1, 6, 6])
    """
    return _cam(x, upsample, lambda a, g: F.relu(g) * a, model=model, layer=layer, target=target, categories=categories)


def score_cam(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    upsample: bool | str = False,
    categories: Sequence[str] | None = None,
    batch_size: int = 32,
) -> torch.Tensor:
    """Score-CAM (Wang et al., 2020): channels weighted by the scores of the input they mask, N x 1 x h x w.

    One forward pass per channel of ``layer``, ``batch_size`` masked images at a time.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> score_cam(net, "1", torch.rand(3, 8, 8), 1).shape
    torch.Size([1, 1, 6, 6])
    """
    mode = _upsample_mode(upsample)
    batch_size = check_count(batch_size, "batch_size")
    activations, _, logits = layer_gradients(model, layer, x, target, categories=categories)  # checks x and target
    image = x.to_dense() if x.layout != torch.strided else x
    image = image if image.ndim == 4 else image.unsqueeze(0)
    names = None if categories is None else category_names(categories)
    classes = class_indices(target, image.shape[0], names)
    masks = F.interpolate(activations, size=image.shape[-2:], mode="bilinear", align_corners=True)
    low = masks.amin(dim=(2, 3), keepdim=True)
    high = masks.amax(dim=(2, 3), keepdim=True)
    masks = (masks - low) / (high - low + 1e-8)  # each channel scaled to [0, 1], as pytorch-grad-cam
    n, channels = masks.shape[:2]
    scores = torch.empty(n, channels, dtype=logits.dtype, device=logits.device)
    with torch.no_grad(), eval_with_frozen_parameters(model):
        for i in range(n):
            for start in range(0, channels, batch_size):
                chunk = masks[i, start : start + batch_size, None] * image[i : i + 1]  # B x C_in x H x W
                scores[i, start : start + batch_size] = model(chunk)[:, classes[i]]
    weights = torch.softmax(scores, dim=1)[:, :, None, None]
    cam = F.relu((weights * activations).sum(dim=1, keepdim=True))
    return cam if mode is None else upsample_cam(cam, image.shape[-2:], mode)


CAM_METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "grad_cam": grad_cam,
    "grad_cam_plus_plus": grad_cam_plus_plus,
    "hires_cam": hires_cam,
    "layer_cam": layer_cam,
    "score_cam": score_cam,
}
"""The CAM family by name, each called as ``method(model, layer, x, target, upsample=..., categories=...)``."""
