"""Lesson 01's exercise: Grad-CAM at any layer, written by the learner, checked against ``utils.saliency``.

The learner writes ``my_grad_cam(model, layer, x, target)``: the Grad-CAM map (Selvaraju et al.,
2017, Eq. 1-2) of class ``target`` at ``layer`` (a dotted name such as ``"features.7"``), as
``1 x 1 x h x w`` at the layer's own resolution, ReLU applied, not normalised, not upsampled.
``diagnose_grad_cam`` compares it with ``utils.saliency.grad_cam`` and, when it differs, names the
usual mistake: no ReLU, the maximum or the sum of the gradients instead of their mean, gradients
times activations without pooling, absolute gradients, the softmax instead of the class score, a
normalised or upsampled map, the wrong layer, the target ignored.

The reference is computed first, on the untouched model; the learner's function then runs on a
deep copy, and an answer that changes that copy (weights, dtype, ``requires_grad``, train/eval,
hooks, ``.grad`` left by ``.backward()``) or torch's global state (gradient mode, global hooks)
is refused with one line saying what changed. The lesson's model is never changed, and the
global state is put back.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.categories import check_model
from utils.exercises import Verdict, answer_tensor, call_answer, check_image, correct, report, wrong
from utils.exercises._model_guard import UNCHANGED, copy_for_learner, global_state_kept, model_change
from utils.saliency import ZeroGradCamWarning, conv_layers, grad_cam, resolve_layer, upsample_cam

__all__ = ["check_grad_cam", "diagnose_grad_cam"]

TOLERANCE = 1e-4
"""A correct map matches the reference to this fraction of the reference's maximum."""

GradCamAnswer = Callable[[nn.Module, str, torch.Tensor, int], Any]


@contextmanager
def _recorded(layer: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """The output of ``layer`` during the block (cloned: later in-place ReLUs must not change it)."""
    seen: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        seen["A"] = output.clone()
        return seen["A"]

    handle = layer.register_forward_hook(keep)
    try:
        yield seen
    finally:
        handle.remove()


def _parts(model: nn.Module, layer: str, x: torch.Tensor, target: int) -> dict[str, torch.Tensor]:
    """The layer's activations ``A`` and the gradients of the logit and of the softmax probability."""
    image = x.detach().clone().requires_grad_(True)  # so that A has a gradient even when the parameters are frozen
    with torch.enable_grad(), _recorded(resolve_layer(model, layer)[1]) as seen:
        logits = model(image)
        A = seen["A"]
        (grad,) = torch.autograd.grad(logits[0, target], A, retain_graph=True)
        (grad_p,) = torch.autograd.grad(logits.softmax(dim=1)[0, target], A)
    return {"A": A.detach().double()[0], "grad": grad.double()[0], "grad_p": grad_p.double()[0]}


def _mistakes(model: nn.Module, layer: str, x: torch.Tensor, target: int) -> list[tuple[str, str, torch.Tensor]]:
    """The usual wrong answers at ``layer``: (reason, advice, the h x w map that mistake gives)."""
    p = _parts(model, layer, x, target)
    A, grad = p["A"], p["grad"]
    mean = grad.mean(dim=(1, 2), keepdim=True)

    def weighted(alpha: torch.Tensor, activations: torch.Tensor = A) -> torch.Tensor:
        return (alpha * activations).sum(dim=0)

    return [
        (
            "no ReLU",
            "the map has negative values: apply a ReLU to the weighted sum, keeping only evidence for the class.",
            weighted(mean),
        ),
        (
            "max instead of mean",
            "the channel weights are the maximum of the gradients; average them over the grid (Eq. 1).",
            F.relu(weighted(grad.amax(dim=(1, 2), keepdim=True))),
        ),
        (
            "sum instead of mean",
            "the map is h*w times too large: the weights must be the *mean* of the gradients, not their sum.",
            F.relu(weighted(grad.sum(dim=(1, 2), keepdim=True))),
        ),
        (
            "no pooling",
            "the gradients were multiplied with the activations pixel by pixel; average each channel's "
            "gradients over the grid first, one weight per channel.",
            F.relu((grad * A).sum(dim=0)),
        ),
        (
            "absolute gradients",
            "the weights are means of |gradient|; keep the signs, so that channels that lower "
            "the score count against the class.",
            F.relu(weighted(grad.abs().mean(dim=(1, 2), keepdim=True))),
        ),
        (
            "no weights",
            "the channels were summed without weights; weight each by its mean gradient (Eq. 1-2).",
            F.relu(A.sum(dim=0)),
        ),
        (
            "softmax",
            "the gradients are those of the softmax probability; use the class score y_c, the logit "
            "before the softmax.",
            F.relu(weighted(p["grad_p"].mean(dim=(1, 2), keepdim=True))),
        ),
    ]


def _close(got: torch.Tensor, wanted: torch.Tensor) -> bool:
    scale = float(wanted.abs().max()) or 1.0
    return got.shape == wanted.shape and bool(torch.allclose(got, wanted, rtol=0.0, atol=TOLERANCE * scale))


def _same_up_to_scale(got: torch.Tensor, wanted: torch.Tensor) -> bool:
    top, peak = float(wanted.max()), float(got.max())
    return top > 0 and peak > 0 and _close(got / peak, wanted / top)


def _other_layer(model: nn.Module, layer: str, x: torch.Tensor, target: int, got: torch.Tensor) -> str | None:
    """The name of another layer whose Grad-CAM equals ``got``, if any."""
    for name, _ in conv_layers(model):
        if name == layer:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ZeroGradCamWarning)  # a blank map at some layer is no news here
                other = grad_cam(model, name, x, target)[0, 0].double().cpu()
        except ValueError:
            continue
        if _close(got, other):
            return name
    return None


def diagnose_grad_cam(
    answer: GradCamAnswer | Any, model: nn.Module, layer: str, x: torch.Tensor, target: int
) -> Verdict:
    """Compare ``answer(model, layer, x, target)`` with ``utils.saliency.grad_cam(model, layer, x, target)``.

    ``answer`` is the learner's function (or its result, a tensor or array); ``x`` is one image,
    ``1 x 3 x H x W``; ``target`` a class index. The answer must be the map at the layer's
    resolution (``1 x 1 x h x w`` or ``h x w``), ReLU applied, not normalised. A wrong answer is
    matched against the usual mistakes. The function runs on a copy of ``model``; one that changes
    it (or torch's global state) is wrong even when its map is right, and the verdict says what
    changed (reasons ``"modules"``, ``"dtype"``, ``"weights"``, ``"requires_grad"``,
    ``"train mode"``, ``"hooks left"``, ``"grad left"``, ``"grad mode"``, ``"default dtype"``,
    ``"global hooks"``).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> x = torch.rand(1, 3, 8, 8)
    >>> diagnose_grad_cam(lambda m, l, x, t: grad_cam(m, l, x, t), net, "1", x, 1).status
    'correct'
    >>> diagnose_grad_cam(lambda m, l, x, t: grad_cam(m, l, x, t) * 36, net, "1", x, 1).reason
    'sum instead of mean'
    """
    check_model(model)
    check_image(x)
    weights = next((p.dtype for p in model.parameters() if p.is_floating_point()), x.dtype)
    if weights != x.dtype and x.dtype == torch.float32:
        return wrong(
            "dtype",
            f"the model's weights are {weights} but the image is {x.dtype}: model.double() (or .half()) converted "
            "the lesson's model itself. Run the cell that loads the model again; to compute in float64, convert a "
            "copy inside your function: copy.deepcopy(model).double().",
        )
    if weights != x.dtype:
        raise TypeError(f"x has dtype {x.dtype} but the model's weights are {weights}; give x.to({weights}).")
    expected = grad_cam(model, layer, x, target)[0, 0].double().cpu()  # first, on the untouched model
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
        shape = tuple(got.shape)
        return wrong("shape", f"the answer has shape {shape}; return one map, 1 x 1 x {h} x {w} (sum the channels).")
    if not torch.isfinite(got).all():
        return wrong("not finite", "the answer contains NaN or infinite values; do not divide by the map's maximum.")
    if _close(got, expected):
        return correct(f"your Grad-CAM at {layer} ({h} x {w}) equals utils.saliency.grad_cam.")
    if got.shape == tuple(x.shape[-2:]) and got.shape != expected.shape:
        for mode in ("nearest", "bilinear"):
            up = upsample_cam(expected[None, None], got.shape, mode)[0, 0]
            if _close(got, up) or _same_up_to_scale(got, up):
                return wrong(
                    "upsampled",
                    f"the map was upsampled to {tuple(got.shape)}; return it at the layer's own "
                    f"grid, {h} x {w} (upsampling is for display).",
                )
    if got.shape != expected.shape:
        other = _other_layer(model, layer, x, target, got)
        where = f"; it is Grad-CAM at {other!r}. Use the layer you are given" if other else ""
        text = f"the answer has shape {tuple(got.shape)}, expected {h} x {w} at {layer!r}{where}."
        return wrong("wrong layer" if other else "shape", text)
    if float(expected.max()) > 0 and _close(got, expected / float(expected.max())):
        return wrong("normalised", "the map was divided by its maximum; return it as it is (scale only to draw it).")
    for reason, text, candidate in _mistakes(model, layer, x, target):
        if _close(got, candidate):
            return wrong(reason, text)
    if float(got.min()) < 0:
        lowest = float(got.min())
        return wrong("no ReLU", f"the map has negative values (down to {lowest:.3g}); Grad-CAM ends with a ReLU.")
    other = _other_layer(model, layer, x, target, got)
    if other is not None:
        return wrong("wrong layer", f"the answer is Grad-CAM at {other!r}, not at {layer!r}; hook the layer given.")
    with torch.no_grad():
        top = int(model(x.detach()).argmax(dim=1)[0])
    if top != target and _close(got, grad_cam(model, layer, x, top)[0, 0].double().cpu()):
        return wrong(
            "target ignored",
            f"the answer is the map of the top class ({top}), not of target {target}; "
            "use the score of the class you are given.",
        )
    row, col = np.unravel_index(int((got - expected).abs().argmax()), (h, w))
    return wrong(
        "values",
        f"the largest difference is at cell ({row}, {col}): expected {float(expected[row, col]):.4g}, got "
        f"{float(got[row, col]):.4g}; check each step: gradients of the logit, their mean per channel, the weighted "
        "sum, the ReLU.",
    )


def check_grad_cam(
    answer: GradCamAnswer | Any, model: nn.Module, layer: str, x: torch.Tensor, target: int, *, label: str | None = None
) -> Verdict:
    """Lesson 01's checker: print the verdict; raise ``AnswerCheckError`` unless ``answer`` is correct.

    Arguments as ``diagnose_grad_cam``; ``label`` starts the printed line.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> check_grad_cam(lambda m, l, x, t: grad_cam(m, l, x, t), net, "1", torch.rand(1, 3, 8, 8), 0, label="toy").passed
    toy: Correct: your Grad-CAM at 1 (6 x 6) equals utils.saliency.grad_cam.
    True
    """
    return report(diagnose_grad_cam(answer, model, layer, x, target), label)
