"""Lesson 03's exercise: Guided Grad-CAM with bilinear upsampling, as the Grad-CAM paper computes it.

The learner writes ``my_guided_grad_cam(gbp, cam)``: Guided Backpropagation (``1 x 3 x H x W``)
times the Grad-CAM map (``1 x 1 x h x w``, at the target layer's grid) upsampled to ``H x W`` with
``F.interpolate(..., mode="bilinear")`` (Selvaraju et al., 2017, Section 3.2; Captum upsamples
with nearest neighbour instead). ``diagnose_guided_grad_cam`` compares it with the reference and
names the usual mistake: another interpolation mode, ``align_corners=True``, no upsampling, a
normalised Grad-CAM or product, a sum instead of a product, one channel instead of three, |.|.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from utils.exercises import Verdict, answer_tensor, article, call_answer, correct, report, wrong
from utils.saliency import upsample_cam

__all__ = ["check_guided_grad_cam", "diagnose_guided_grad_cam", "guided_grad_cam_bilinear"]

TOLERANCE = 1e-5
"""A correct map matches the reference to this fraction of the reference's maximum."""

GuidedGradCamAnswer = Callable[[torch.Tensor, torch.Tensor], Any]


def guided_grad_cam_bilinear(gbp: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """The reference: ``gbp * F.interpolate(cam, size=gbp's H x W, mode="bilinear")``, a new tensor.

    >>> guided_grad_cam_bilinear(torch.ones(1, 3, 2, 4), torch.tensor([[[[0.0, 4.0]]]]))[0, 0]
    tensor([[0., 1., 3., 4.],
            [0., 1., 3., 4.]])
    """
    _check_inputs(gbp, cam)
    return gbp.detach() * upsample_cam(cam.detach(), gbp.shape[-2:], "bilinear")


def _check_inputs(gbp: torch.Tensor, cam: torch.Tensor) -> None:
    if not isinstance(gbp, torch.Tensor) or gbp.ndim != 4:
        raise ValueError(f"gbp must be a 1 x C x H x W tensor (Guided Backpropagation), got {_shape(gbp)}.")
    if not isinstance(cam, torch.Tensor) or cam.ndim != 4 or cam.shape[1] != 1:
        raise ValueError(f"cam must be a 1 x 1 x h x w tensor (Grad-CAM at the layer's grid), got {_shape(cam)}.")
    for name, value in (("gbp", gbp), ("cam", cam)):
        if value.layout != torch.strided or not value.is_floating_point() or not torch.isfinite(value).all():
            raise ValueError(f"{name} must hold finite real numbers (a float tensor without NaN or infinity).")


def _shape(value: object) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else article(type(value).__name__)


def _mistakes(gbp: torch.Tensor, cam: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
    """The usual wrong answers: (reason, advice, the map that mistake gives)."""
    size = gbp.shape[-2:]
    bilinear = upsample_cam(cam, size, "bilinear")
    top = float(cam.max()) or 1.0
    product = gbp * bilinear
    peak = float(product.abs().max()) or 1.0
    found = [
        (
            mode,
            f'Grad-CAM was upsampled with mode={mode!r}; the paper\'s figure uses mode="bilinear".',
            gbp * upsample_cam(cam, size, mode),
        )
        for mode in ("nearest", "nearest-exact", "bicubic", "area")
    ]
    corners = torch.nn.functional.interpolate(cam, size=tuple(size), mode="bilinear", align_corners=True)
    return found + [
        (
            "align_corners",
            "align_corners=True moves the coarse cells' centres to the image's corners; leave it at its "
            "default (False), as utils.saliency and Captum do.",
            gbp * corners,
        ),
        (
            "normalised Grad-CAM",
            "Grad-CAM was divided by its maximum; Guided Grad-CAM multiplies by the map itself "
            "(scale only the picture you draw).",
            gbp * bilinear / top,
        ),
        (
            "normalised product",
            "the product was divided by its maximum; return it unscaled (scale only the picture you draw).",
            product / peak,
        ),
        (
            "sum instead of product",
            "GBP and Grad-CAM were added; Guided Grad-CAM multiplies them pixel by pixel.",
            gbp + bilinear,
        ),
        (
            "absolute value",
            "the answer is |GBP x Grad-CAM|; keep the signs (a picture may take |.| later).",
            product.abs(),
        ),
        ("Grad-CAM only", "the answer is the upsampled Grad-CAM alone; multiply it with GBP.", bilinear.expand_as(gbp)),
        ("GBP only", "the answer is GBP alone; multiply it with the upsampled Grad-CAM.", gbp),
    ]


def _close(got: torch.Tensor, wanted: torch.Tensor) -> bool:
    scale = float(wanted.abs().max()) or 1.0
    return got.shape == wanted.shape and bool(torch.allclose(got, wanted, rtol=0.0, atol=TOLERANCE * scale))


def diagnose_guided_grad_cam(answer: GuidedGradCamAnswer | Any, gbp: torch.Tensor, cam: torch.Tensor) -> Verdict:
    """Compare ``answer(gbp, cam)`` with ``guided_grad_cam_bilinear(gbp, cam)``.

    ``gbp``: Guided Backpropagation, ``1 x C x H x W``; ``cam``: Grad-CAM at the layer's grid,
    ``1 x 1 x h x w``. The function is called on copies, so it cannot change them.

    >>> gbp, cam = torch.rand(1, 3, 8, 8), torch.rand(1, 1, 2, 2)
    >>> diagnose_guided_grad_cam(guided_grad_cam_bilinear, gbp, cam).status
    'correct'
    >>> diagnose_guided_grad_cam(lambda g, c: g * upsample_cam(c, (8, 8)), gbp, cam).reason
    'nearest'
    """
    _check_inputs(gbp, cam)
    gbp64, cam64 = gbp.detach().to("cpu", torch.float64), cam.detach().to("cpu", torch.float64)
    result = call_answer(answer, gbp.detach().clone(), cam.detach().clone())
    if isinstance(result, Verdict):
        return result
    got = answer_tensor(result, "a torch tensor shaped like gbp", squeeze=False)
    if isinstance(got, Verdict):
        return got
    expected = gbp64 * upsample_cam(cam64, gbp.shape[-2:], "bilinear")
    if not torch.isfinite(got).all():
        return wrong(
            "not finite", "the answer contains NaN or infinite values; do not divide by a maximum that may be 0."
        )
    if _close(got, expected):
        return correct("your Guided Grad-CAM equals GBP x bilinear-upsampled Grad-CAM.")
    if got.numel() == expected[:, :1].numel() and got.shape[-2:] == expected.shape[-2:]:
        return wrong(
            "channels",
            f"the answer has one channel (shape {tuple(got.shape)}); keep GBP's {gbp.shape[1]} "
            "channels "
            "(the one-channel Grad-CAM broadcasts over them).",
        )
    if got.shape != expected.shape:
        small = got.ndim >= 2 and tuple(got.shape[-2:]) != tuple(expected.shape[-2:])
        hint = ' Upsample Grad-CAM to GBP\'s size first, with F.interpolate(cam, size=..., mode="bilinear").'
        hint = hint if small else ""
        return wrong("shape", f"the answer has shape {tuple(got.shape)}, expected {tuple(expected.shape)}.{hint}")
    for reason, text, candidate in _mistakes(gbp64, cam64):
        if _close(got, candidate):
            return wrong(reason, text)
    index = np.unravel_index(int((got - expected).abs().argmax()), tuple(expected.shape))
    where = tuple(int(i) for i in index)
    return wrong(
        "values",
        f"the largest difference is at {where}: expected {float(expected[index]):.4g}, got "
        f'{float(got[index]):.4g}; compute gbp * F.interpolate(cam, size=gbp.shape[-2:], mode="bilinear").',
    )


def check_guided_grad_cam(
    answer: GuidedGradCamAnswer | Any, gbp: torch.Tensor, cam: torch.Tensor, *, label: str | None = None
) -> Verdict:
    """Lesson 03's checker: print the verdict; raise ``AnswerCheckError`` unless ``answer`` is right.

    >>> gbp, cam = torch.rand(1, 3, 8, 8), torch.rand(1, 1, 2, 2)
    >>> check_guided_grad_cam(guided_grad_cam_bilinear, gbp, cam, label="toy").passed
    toy: Correct: your Guided Grad-CAM equals GBP x bilinear-upsampled Grad-CAM.
    True
    """
    return report(diagnose_guided_grad_cam(answer, gbp, cam), label)
