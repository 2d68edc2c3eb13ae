"""Lesson 10's exercise: HiResCAM from lesson 01's Grad-CAM, written by the learner, checked against ``utils.cams``.

The learner writes ``my_hires_cam(model, layer, x, target)``: HiResCAM (Draelos and Carin, 2020)
of class ``target`` at ``layer``, ``ReLU(sum_k g_k * A_k)``, as ``1 x 1 x h x w`` at the layer's
own resolution, not normalised, not upsampled. ``diagnose_hires_cam`` compares it with
``utils.cams.hires_cam`` and, when it differs, names the usual mistake: Grad-CAM's averaged
gradient (the line HiResCAM changes), LayerCAM's positive gradients only, no ReLU, absolute
gradients, the gradient of another score than the class's logit (its softmax probability, its
log-probability, a cross-entropy loss, or the sum of every logit), the ReLU taken per channel
before the sum (the same as LayerCAM where a ReLU follows the layer), a mean over channels instead
of the sum, a map divided by its maximum or min-max scaled, one multiplied by some other constant,
an upsampled map, another layer, or the top class instead of ``target``.

As lesson 01's checker: the reference is computed first, on the untouched model; the learner's
function runs on a deep copy, and an answer that changes that copy or torch's global state is
refused with one line saying what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.cams import hires_cam
from utils.categories import check_model
from utils.exercises import Verdict, answer_tensor, call_answer, check_image, correct, report, wrong
from utils.exercises._model_guard import UNCHANGED, copy_for_learner, global_state_kept, model_change
from utils.saliency import conv_layers, layer_gradients, resolve_layer, upsample_cam

__all__ = ["check_hires_cam", "diagnose_hires_cam"]

TOLERANCE = 1e-4
"""A correct map matches the reference to this fraction of the reference's maximum."""

HiResCamAnswer = Callable[[nn.Module, str, torch.Tensor, int], Any]


def _mistakes(model: nn.Module, layer: str, x: torch.Tensor, target: int) -> list[tuple[str, str, torch.Tensor]]:
    """The usual wrong answers at ``layer``: (reason, advice, the h x w map that mistake gives)."""
    A, g, _ = (t.double()[0].cpu() for t in layer_gradients(model, layer, x, target))
    scores = {
        "softmax": lambda logits: torch.softmax(logits, dim=1)[0, target],
        "log-softmax": lambda logits: torch.log_softmax(logits, dim=1)[0, target],
        "summed logits": lambda logits: logits[0].sum(),
        "cross-entropy loss": lambda logits: -torch.log_softmax(logits, dim=1)[0, target],
    }
    gradients = _gradients_of(model, layer, x, scores)
    return [
        (
            "Grad-CAM",
            "the gradient was averaged over the grid, one weight per channel: that is Grad-CAM. HiResCAM "
            "multiplies the gradient with the activations cell by cell, without the average.",
            F.relu((g.mean(dim=(1, 2), keepdim=True) * A).sum(0)),
        ),
        (
            "LayerCAM",
            "only the positive products were kept (a ReLU on the gradient, or on each channel's product before the "
            "sum): that is LayerCAM. Keep the gradient's sign; the ReLU comes once, after the sum over channels.",
            F.relu((F.relu(g) * A).sum(0)),
        ),
        (
            "no ReLU",
            "the map has negative values: apply a ReLU to the sum over channels.",
            (g * A).sum(0),
        ),
        (
            "ReLU per channel",
            "the ReLU was applied to each channel's product before the sum; sum over channels first, then ReLU.",
            F.relu(g * A).sum(0),  # the same as LayerCAM where the activations are >= 0 (after a ReLU)
        ),
        (
            "absolute gradients",
            "the map uses |gradient|; keep the signs, so that cells that lower the score count against the class.",
            F.relu((g.abs() * A).sum(0)),
        ),
        (
            "softmax",
            "the gradient is the softmax probability's; use the class score y_c, the logit before the softmax.",
            F.relu((gradients["softmax"] * A).sum(0)),
        ),
        (
            "log-softmax",
            "the gradient is the log-probability's (log_softmax, or a cross-entropy loss); use the class score y_c, "
            "the logit itself.",
            F.relu((gradients["log-softmax"] * A).sum(0)),
        ),
        (
            "cross-entropy loss",
            "the gradient is a loss's (cross-entropy: minus the log-probability), so its sign is flipped; "
            "HiResCAM takes the gradient of the class score y_c, the logit itself.",
            F.relu((gradients["cross-entropy loss"] * A).sum(0)),
        ),
        (
            "summed logits",
            "the gradient is that of the sum of every class's score (backward from all the logits); take the "
            "logit of the target class only.",
            F.relu((gradients["summed logits"] * A).sum(0)),
        ),
        (
            "mean over channels",
            "the products were averaged over the channels; HiResCAM sums them (a mean divides the map by the "
            f"number of channels, {A.shape[0]}).",
            F.relu((g * A).sum(0)) / A.shape[0],
        ),
    ]


def _gradients_of(
    model: nn.Module, layer: str, x: torch.Tensor, scores: dict[str, Callable[[torch.Tensor], torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """The gradient of each ``score(logits)`` at ``layer``'s output (C x h x w): one copy of the model, one forward."""
    spare = copy_for_learner(model).eval()
    module = resolve_layer(spare, layer)[1]
    seen: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        seen["A"] = output
        return output.clone()  # later in-place ReLUs must not change A

    handle = module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = spare(x.detach().clone().requires_grad_(True))
            gradients = {
                name: torch.autograd.grad(score(logits), seen["A"], retain_graph=True)[0]
                for name, score in scores.items()
            }
    finally:
        handle.remove()
    return {name: gradient.double()[0].cpu() for name, gradient in gradients.items()}


def _close(got: torch.Tensor, wanted: torch.Tensor) -> bool:
    scale = float(wanted.abs().max()) or 1.0
    return got.shape == wanted.shape and bool(torch.allclose(got, wanted, rtol=0.0, atol=TOLERANCE * scale))


def _same_up_to_scale(got: torch.Tensor, wanted: torch.Tensor) -> bool:
    top, peak = float(wanted.max()), float(got.max())
    return top > 0 and peak > 0 and _close(got / peak, wanted / top)


def _other_layer(model: nn.Module, layer: str, x: torch.Tensor, target: int, got: torch.Tensor) -> str | None:
    for name, _ in conv_layers(model):
        if name == layer:
            continue
        try:
            other = hires_cam(model, name, x, target)[0, 0].double().cpu()
        except ValueError:
            continue
        if _close(got, other):
            return name
    return None


def diagnose_hires_cam(
    answer: HiResCamAnswer | Any, model: nn.Module, layer: str, x: torch.Tensor, target: int
) -> Verdict:
    """Compare ``answer(model, layer, x, target)`` with ``utils.cams.hires_cam(model, layer, x, target)``.

    ``x`` is one image, ``1 x C x H x W``; ``target`` a class index. The answer must be the map at
    the layer's resolution (``1 x 1 x h x w`` or ``h x w``), ReLU applied, not normalised. A wrong
    answer is matched against the usual mistakes; one that changes the model (on the copy it ran
    on) or torch's global state is wrong even when its map is right.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> x = torch.rand(1, 3, 8, 8)
    >>> diagnose_hires_cam(lambda m, l, x, t: hires_cam(m, l, x, t), net, "1", x, 1).status
    'correct'
    """
    check_model(model)
    check_image(x)
    if x.shape[0] != 1:
        raise ValueError(f"x must be one image, 1 x C x H x W, not a batch of {x.shape[0]}.")
    expected = hires_cam(model, layer, x, target)[0, 0].double().cpu()  # first, on the untouched model
    used = copy_for_learner(model)
    with global_state_kept() as changed:
        result = call_answer(answer, used, layer, x.detach().clone(), target)
    if isinstance(result, Verdict):
        return result
    change = changed[0] if changed else model_change(model, used)
    if change is not None:
        return wrong(change[0], f"{change[1]} {UNCHANGED}")
    got = answer_tensor(result, "the map as a torch tensor (1 x 1 x h x w)")
    if isinstance(got, Verdict):
        return got
    return _compare(got, expected, model, layer, x, target)


def _compare(
    got: torch.Tensor, expected: torch.Tensor, model: nn.Module, layer: str, x: torch.Tensor, target: int
) -> Verdict:
    h, w = expected.shape
    if got.ndim != 2:
        return wrong("shape", f"the answer has shape {tuple(got.shape)}; return one map, 1 x 1 x {h} x {w}.")
    if not torch.isfinite(got).all():
        return wrong("not finite", "the answer contains NaN or infinite values; do not divide by the map's maximum.")
    if _close(got, expected):
        return correct(f"your HiResCAM at {layer} ({h} x {w}) equals utils.cams.hires_cam.")
    if got.shape == tuple(x.shape[-2:]) and got.shape != expected.shape:
        for mode in ("nearest", "bilinear"):
            up = upsample_cam(expected[None, None], got.shape, mode)[0, 0]
            if _close(got, up) or _same_up_to_scale(got, up):
                return wrong(
                    "upsampled",
                    f"the map was upsampled to {tuple(got.shape)}; return it at the layer's own grid, {h} x {w}.",
                )
    if got.shape != expected.shape:
        other = _other_layer(model, layer, x, target, got)
        where = f"; it is HiResCAM at {other!r}. Use the layer you are given" if other else ""
        return wrong(
            "wrong layer" if other else "shape", f"the answer has shape {tuple(got.shape)}, expected {h} x {w}{where}."
        )
    top, bottom = float(expected.max()), float(expected.min())
    if top > 0 and (
        _close(got, expected / top) or (top > bottom and _close(got, (expected - bottom) / (top - bottom)))
    ):
        return wrong("normalised", "the map was scaled to [0, 1] (by its maximum, or min-max); return it as it is.")
    for reason, text, candidate in _mistakes(model, layer, x, target):
        if _close(got, candidate) and not _close(candidate, expected):
            return wrong(reason, text)
    if top > 0 and _same_up_to_scale(got, expected):
        factor = float(got.max()) / top
        return wrong(
            "scaled",
            f"the map is HiResCAM times {factor:.4g}; compute the plain sum over channels of gradient x activation, "
            "with no factor (not a mean over cells, not a percentage).",
        )
    if float(got.min()) < 0:
        return wrong("no ReLU", f"the map has negative values (down to {float(got.min()):.3g}); end with a ReLU.")
    other = _other_layer(model, layer, x, target, got)
    if other is not None:
        return wrong("wrong layer", f"the answer is HiResCAM at {other!r}, not at {layer!r}; hook the layer given.")
    with torch.no_grad():
        top = int(model(x.detach()).argmax(dim=1)[0])
    if top != target and _close(got, hires_cam(model, layer, x, top)[0, 0].double().cpu()):
        return wrong(
            "target ignored",
            f"the answer is the map of the top class ({top}), not of target {target}; use the class you are given.",
        )
    row, col = np.unravel_index(int((got - expected).abs().argmax()), (h, w))
    return wrong(
        "values",
        f"the largest difference is at cell ({row}, {col}): expected {float(expected[row, col]):.4g}, got "
        f"{float(got[row, col]):.4g}; check each step: the logit's gradient at the layer, times the activations "
        "cell by cell, the sum over channels, the ReLU.",
    )


def check_hires_cam(
    answer: HiResCamAnswer | Any,
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    target: int,
    *,
    label: str | None = None,
) -> Verdict:
    """Lesson 10's checker: print the verdict; raise ``AnswerCheckError`` unless ``answer`` is correct.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> x = torch.rand(1, 3, 8, 8)
    >>> check_hires_cam(lambda m, l, x, t: hires_cam(m, l, x, t), net, "1", x, 0, label="toy").passed
    toy: Correct: your HiResCAM at 1 (6 x 6) equals utils.cams.hires_cam.
    True
    """
    return report(diagnose_hires_cam(answer, model, layer, x, target), label)
