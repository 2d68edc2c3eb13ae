"""Judging saliency methods against models whose answer we know.

Lesson 09 trains two small networks on the same crops: a *shortcut* model that learned the corner
tag (moving the tag flips its predictions) and a *fixed* model trained with the tag on a random half
of the images, which cannot use it (removing the tag barely moves its probabilities). Which of the
two looks at the tag is known, by intervention, not by a map: that is ground truth for the maps.

* ``saliency_methods``: every method of the course, from one place, as ``(model, x, classes) -> maps``
  on the input's grid (``utils.faithfulness.Method``): the gradient, Guided Backpropagation, Grad-CAM,
  Guided Grad-CAM, SmoothGrad, Integrated Gradients, DeepLIFT, and the CAM family of ``utils.cams``.
* ``tag_evidence``: what each map says about the tag on a batch of tagged images: the share of its
  mass inside the tag's box and whether its brightest pixel lies on the tag.
* ``separation``: how well the box share tells the shortcut model's maps from the fixed model's, as
  the area under the ROC curve (1: every shortcut map has more mass on the tag than every fixed one;
  0.5: no better than a coin).
* ``tag_effect``: the ground truth itself, the mean change of the predicted class's probability when
  the tag is removed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from utils.cams import grad_cam_plus_plus, hires_cam, layer_cam, score_cam
from utils.categories import check_count, describe
from utils.random_state import preserved_rng
from utils.saliency import (
    MapLike,
    ZeroGradCamWarning,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    magnitude,
)
from utils.shortcuts import Box, TaggedImages, box_shares, predict, retag

__all__ = [
    "METHOD_NAMES",
    "TagEvidence",
    "saliency_methods",
    "separation",
    "tag_effect",
    "tag_evidence",
]

Method = Callable[[nn.Module, torch.Tensor, list[int]], torch.Tensor]

METHOD_NAMES: dict[str, str] = {
    "gradient": "Gradient",
    "guided_backprop": "GBP",
    "grad_cam": "Grad-CAM",
    "guided_grad_cam": "Guided Grad-CAM",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "Integrated Gradients",
    "deeplift": "DeepLIFT",
    "grad_cam_plus_plus": "Grad-CAM++",
    "hires_cam": "HiResCAM",
    "score_cam": "Score-CAM",
    "layer_cam": "LayerCAM",
}
"""Every method ``saliency_methods`` returns, by key, with the name a table shows."""


def saliency_methods(
    layer: str,
    *,
    smoothgrad_samples: int = 8,
    smoothgrad_noise: float = 0.15,
    ig_steps: int = 16,
    seed: int = 0,
) -> dict[str, Method]:
    """Every method of the course as ``(model, x, classes) -> N x C x H x W`` (or ``N x 1 x H x W``) maps on x's grid.

    ``layer`` is the Grad-CAM layer for the CAM family (upsampled bilinear, as the paper). The
    gradient is Captum's ``Saliency`` without absolute value; SmoothGrad averages
    ``smoothgrad_samples`` gradients of noisy copies (noise: ``smoothgrad_noise`` times the input's
    range, drawn from ``seed`` without touching the global RNG); Integrated Gradients and DeepLIFT
    start from an all-zero baseline, IG with ``ig_steps`` steps. Captum is imported on first use.

    >>> sorted(saliency_methods("relu3")) == sorted(METHOD_NAMES)
    True
    """
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"layer must be the Grad-CAM layer's dotted name, such as 'relu3', not {describe(layer)}.")
    samples = check_count(smoothgrad_samples, "smoothgrad_samples")
    steps = check_count(ig_steps, "ig_steps", minimum=2)
    seed = check_count(seed, "seed", minimum=0)
    if not isinstance(smoothgrad_noise, (int, float)) or isinstance(smoothgrad_noise, bool) or not smoothgrad_noise > 0:
        raise ValueError(
            f"smoothgrad_noise must be a positive share of the input's range, not {describe(smoothgrad_noise)}."
        )

    def captum(name: str) -> Method:
        def method(model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
            from captum.attr import DeepLift, IntegratedGradients, NoiseTunnel, Saliency

            x = x.detach().clone()
            with warnings.catch_warnings():  # Captum's notes on setting requires_grad and hooks: expected here
                warnings.simplefilter("ignore", UserWarning)
                if name == "gradient":
                    return Saliency(model).attribute(x, target=classes, abs=False).detach()
                if name == "integrated_gradients":
                    return (
                        IntegratedGradients(model)
                        .attribute(x, torch.zeros_like(x), target=classes, n_steps=steps)
                        .detach()
                    )
                if name == "deeplift":
                    return DeepLift(model).attribute(x, torch.zeros_like(x), target=classes).detach()
                with preserved_rng():  # manual_seed reseeds every device; Captum draws on the input's
                    torch.manual_seed(seed)
                    stdev = smoothgrad_noise * float(x.max() - x.min())
                    return (
                        NoiseTunnel(Saliency(model))
                        .attribute(x, nt_type="smoothgrad", nt_samples=samples, stdevs=stdev, target=classes, abs=False)
                        .detach()
                    )

        return method

    def cam(function: Callable[..., torch.Tensor]) -> Method:
        def method(model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
            with warnings.catch_warnings():  # a class with no evidence gives a blank map: that is its answer
                warnings.simplefilter("ignore", ZeroGradCamWarning)
                return function(model, layer, x, classes, upsample="bilinear")

        return method

    def guided(model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZeroGradCamWarning)
            return guided_grad_cam(model, layer, x, classes, interpolate_mode="bilinear")

    return {
        "gradient": captum("gradient"),
        "guided_backprop": lambda model, x, classes: guided_backprop(model, x, classes),
        "grad_cam": cam(grad_cam),
        "guided_grad_cam": guided,
        "smoothgrad": captum("smoothgrad"),
        "integrated_gradients": captum("integrated_gradients"),
        "deeplift": captum("deeplift"),
        "grad_cam_plus_plus": cam(grad_cam_plus_plus),
        "hires_cam": cam(hires_cam),
        "score_cam": cam(score_cam),
        "layer_cam": cam(layer_cam),
    }


@dataclass(frozen=True)
class TagEvidence:
    """What a method's maps say about the tag, one entry per image.

    ``shares``: the share of each map's mass (``|map|`` summed over channels) inside the tag's box;
    ``peaks``: whether each map's brightest pixel lies within ``margin`` pixels of the box;
    ``blank``: maps that are zero everywhere (a class with no evidence at all), counted with share 0
    and no peak on the tag.
    """

    shares: npt.NDArray[np.float64]
    peaks: npt.NDArray[np.bool_]
    blank: npt.NDArray[np.bool_]

    @property
    def share(self) -> float:
        """The mean share of mass in the box."""
        return float(self.shares.mean())

    @property
    def peak_rate(self) -> float:
        """The share of images whose map peaks on the tag."""
        return float(self.peaks.mean())


def tag_evidence(maps: MapLike, box: Box, *, margin: int = 1) -> TagEvidence:
    """``TagEvidence`` of a batch of maps (N x C x H x W or N x H x W, on the box's image grid).

    A map that is zero everywhere has no mass and no brightest pixel: it is marked ``blank`` and
    counts as share 0, peak off the tag.

    >>> box = Box(top=2, left=2, height=2, width=2, image_size=(6, 6))
    >>> maps = np.zeros((3, 6, 6)); maps[0, 3, 3] = 1.0; maps[1, 0, 0] = 1.0; maps[1, 3, 3] = 0.5
    >>> evidence = tag_evidence(maps, box)
    >>> evidence.shares.round(2).tolist(), evidence.peaks.tolist(), evidence.blank.tolist()
    ([1.0, 0.33, 0.0], [True, False, False], [False, False, True])
    """
    margin = check_count(margin, "margin", minimum=0)
    if not isinstance(box, Box):
        raise TypeError(f"box must be a Box (such as a TaggedImages' .box), not {describe(box)}.")
    if not isinstance(maps, (torch.Tensor, np.ndarray)) or maps.ndim not in (3, 4) or maps.shape[0] == 0:
        raise ValueError(f"maps must be a batch N x C x H x W or N x H x W, got {describe(maps)}.")
    n = maps.shape[0]
    shares, peaks, blank = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for i in range(n):
        values = magnitude(maps[i], "maps")
        if values.max() <= 0:
            blank[i] = True
            continue
        shares[i] = box_shares(values[None], box)[0]
        row, col = np.unravel_index(int(values.argmax()), values.shape)
        peaks[i] = (
            box.top - margin <= row < box.top + box.height + margin
            and box.left - margin <= col < box.left + box.width + margin
        )
    return TagEvidence(shares=shares, peaks=peaks, blank=blank)


def separation(shortcut: npt.ArrayLike, fixed: npt.ArrayLike) -> float:
    """The area under the ROC curve of telling ``shortcut`` values from ``fixed`` ones by size (ties count half).

    1.0: every shortcut value is above every fixed one; 0.5: a coin; 0.0: the wrong way round.

    >>> separation([0.9, 0.8], [0.1, 0.2]), separation([0.5, 0.5], [0.5, 0.5]), separation([0.1], [0.2, 0.05])
    (1.0, 0.5, 0.5)
    """
    try:
        a, b = np.asarray(shortcut, dtype=np.float64).ravel(), np.asarray(fixed, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(
            f"separation needs two sequences of numbers, not {describe(shortcut)} and {describe(fixed)}."
        ) from None
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("separation needs finite values for both models, at least one each.")
    above = (a[:, None] > b[None, :]).mean()
    ties = (a[:, None] == b[None, :]).mean()
    return float(above + ties / 2)


def tag_effect(model: nn.Module, data: TaggedImages) -> float:
    """The ground truth: the mean absolute change of the predicted class's probability when the tag is removed.

    ``data`` holds the images with the tag on every one (``retag(test, "all")``); the prediction on
    each tagged image is compared with the same image without the tag.
    """
    if not isinstance(data, TaggedImages):
        raise TypeError(f"data must be TaggedImages (from tagged_dataset or retag), not {describe(data)}.")
    with_tag = predict(model, retag(data, "all"))
    without = predict(model, retag(data, "none"))
    chosen = with_tag.argmax(1, keepdim=True)
    return float((with_tag.gather(1, chosen) - without.gather(1, chosen)).abs().mean())
