"""Saliency maps from scratch: Grad-CAM, Guided Backpropagation and Guided Grad-CAM.

The three methods of the course, written so that the code reads like the papers and gives the
same values as Captum 0.9 (``LayerGradCam``, ``GuidedBackprop``, ``GuidedGradCam``):

* **Grad-CAM** (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", Eq. 1-2). A forward hook keeps the activations ``A`` of the
  chosen layer; ``torch.autograd.grad`` gives the gradient of the class score ``y_c`` with
  respect to them. Channel weights are the spatial mean of the gradients,
  ``alpha_k = mean_ij dy_c/dA_k[i, j]``, and the map is ``ReLU(sum_k alpha_k A_k)``, at the
  layer's resolution and not normalised.
* **Guided Backpropagation** (Springenberg et al., 2015, "Striving for Simplicity: The All
  Convolutional Net", Section 3.4). The gradient of ``y_c`` with respect to the input, where
  every ``nn.ReLU`` passes back only positive gradients, and only where its forward input was
  positive: ``R_in = (x > 0) * (R_out > 0) * R_out``. The ReLU's own backward already applies
  ``(x > 0)``; a tensor hook on the ReLU's output applies ``(R_out > 0)``. Hooking the output
  tensor, not the module's backward, is what makes in-place ReLUs (VGG16, SqueezeNet) safe:
  no module backward hook, no change to any ``inplace`` flag. Captum clones each ReLU's input
  instead and clamps after the ReLU's backward; both give ``relu(R_out * (x > 0))``.
* **Guided Grad-CAM** (Selvaraju et al., 2017, Section 3.2): Guided Backpropagation times the
  Grad-CAM map upsampled to the input size (nearest by default, as Captum; the paper uses
  bilinear).

``saliency_maps`` computes all three for several classes from ONE forward pass: the graph is
kept (``retain_graph``) and the guided rule is switched on and off between backward passes.

The layer for Grad-CAM is a module or its dotted name (``"features.29"``); ``conv_layers`` lists
the sensible choices and ``last_conv_layer`` picks the usual one. A class ("target") is an index,
a category name (case-insensitive) or one of those per image.

The checks every map starts with are public, for the modules that run a model on the same
terms (``utils.faithfulness``, ``utils.shortcuts``, ``utils.explorer``): ``as_batch`` (the input),
``class_index`` / ``class_indices`` (the classes), ``class_scores`` and ``check_class_range`` (the
model's output), ``eval_with_frozen_parameters`` (the model's state) and ``one_map`` (a map).

Every call leaves the model and the input as it found them: hooks live in a context manager and
are removed on every path; parameters' ``requires_grad`` and every module's train/eval flag are
restored exactly. A model in training mode is computed with eval semantics (dropout off,
batch-norm running statistics), as the lessons need; its mode is restored afterwards.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Union

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from utils.categories import (
    as_class_index,
    category_index,
    category_names,
    check_count,
    check_flag,
    check_model,
    describe,
)

__all__ = [
    "INTERPOLATE_MODES",
    "PLAIN_CONTAINERS",
    "MapLike",
    "ZeroGradCamWarning",
    "as_batch",
    "as_float_array",
    "channel_sum",
    "check_class_range",
    "class_index",
    "class_indices",
    "class_scores",
    "conv_layers",
    "drop_leading_ones",
    "eval_with_frozen_parameters",
    "forward_sized",
    "grad_cam",
    "guided_backprop",
    "guided_grad_cam",
    "guided_grad_cam_factors",
    "last_conv_layer",
    "layer_gradients",
    "magnitude",
    "one_map",
    "resolve_layer",
    "saliency_maps",
    "upsample_cam",
]

Class = Union[int, str]
MapLike = Union[npt.NDArray[Any], torch.Tensor]
"""A saliency map: ``H x W``, ``C x H x W`` or ``1 x C x H x W``, a numpy array or a torch tensor."""
Target = Union[int, str, Sequence[Class], torch.Tensor]
INTERPOLATE_MODES: tuple[str, ...] = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")

# Modules that keep a convolutional feature map a feature map (listed when they follow one).
_MODEL_EXAMPLE = "e.g. load_model().model"  # how a message about a bad model says what to pass
_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardtanh,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.InstanceNorm2d,
)
PLAIN_CONTAINERS: tuple[type[nn.Module], ...] = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
"""Containers that only hold layers: never a layer (or a block) of their own."""
_HEAD_NAMES = ("classifier", "fc", "head")


class ZeroGradCamWarning(UserWarning):
    """A Grad-CAM map is zero everywhere (no region of the layer raises the class score)."""


# --- layers -------------------------------------------------------------------------------------


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers whose output is a convolutional feature map: sensible Grad-CAM layers.

    In forward order (as registered), with dotted names. Listed are: every ``nn.Conv2d``; an
    activation or normalisation that follows one inside an ``nn.Sequential`` (VGG16's
    ``features.29``, the ReLU after the last convolution); and every *block*, a container that
    is not a plain ``nn.Sequential`` and holds convolutions but no classifier (SqueezeNet's Fire
    modules, ResNet's residual blocks). Modules inside a block are not listed: their outputs are
    partial (one branch of a Fire module, a residual before the skip is added).

    >>> from torchvision.models import squeezenet1_1
    >>> [name for name, _ in conv_layers(squeezenet1_1())]  # doctest: +NORMALIZE_WHITESPACE
    ['features.0', 'features.1', 'features.3', 'features.4', 'features.6', 'features.7',
     'features.9', 'features.10', 'features.11', 'features.12', 'classifier.1', 'classifier.2']
    """
    found: list[tuple[str, nn.Module]] = []
    _collect_conv_layers(check_model(model, _MODEL_EXAMPLE), "", found)
    return found


def _collect_conv_layers(parent: nn.Module, prefix: str, found: list[tuple[str, nn.Module]]) -> None:
    after_feature_map = False
    for name, child in parent.named_children():
        full = prefix + name
        listed = (
            isinstance(child, nn.Conv2d)
            or _is_block(child)
            or (after_feature_map and isinstance(parent, nn.Sequential) and isinstance(child, _ELEMENTWISE))
        )
        if listed:
            found.append((full, child))
        else:
            _collect_conv_layers(child, full + ".", found)
        after_feature_map = listed


def _is_block(module: nn.Module) -> bool:
    if type(module) in PLAIN_CONTAINERS or not any(True for _ in module.children()):
        return False
    inside = list(module.named_modules())[1:]
    has_conv = any(isinstance(m, nn.Conv2d) for _, m in inside)
    is_classifier = any(isinstance(m, nn.Linear) or n.split(".")[-1] in _HEAD_NAMES for n, m in inside)
    return has_conv and not is_classifier


def last_conv_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The last of ``conv_layers(model)`` outside the classifier head: the usual Grad-CAM layer.

    The head is a top-level child named ``classifier``, ``fc`` or ``head`` (SqueezeNet's
    classifier holds a convolution whose maps are class scores, not features).

    >>> from torchvision.models import squeezenet1_1
    >>> last_conv_layer(squeezenet1_1())[0]
    'features.12'
    >>> last_conv_layer(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten()))[0]
    '1'
    """
    outside_head = [(n, m) for n, m in conv_layers(model) if n.split(".")[0] not in _HEAD_NAMES]
    if not outside_head:
        raise ValueError(f"{type(model).__name__} has no convolutional layer (nn.Conv2d); Grad-CAM needs one.")
    return outside_head[-1]


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of ``layer``, given as a module of ``model`` or its dotted name.

    A name or module not in the model raises a ``ValueError`` listing the candidate layers.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten())
    >>> resolve_layer(net, "1")
    ('1', ReLU())
    >>> resolve_layer(net, "3")
    Traceback (most recent call last):
    ...
    ValueError: Layer '3' is not in Sequential; convolutional layers: '0', '1' (the last, '1', is the usual choice).
    """
    check_model(model, _MODEL_EXAMPLE)
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer and layer in modules:
            return layer, modules[layer]
        close = difflib.get_close_matches(layer, [n for n in modules if n], n=3, cutoff=0.6)
        hint = f" Closest names: {', '.join(map(repr, close))}." if close else ""
        raise ValueError(f"Layer {layer!r} is not in {type(model).__name__}; {_candidates(model)}.{hint}")
    if isinstance(layer, nn.Module):
        if layer is model:
            raise ValueError(f"The layer is the whole model, whose output is class scores; {_candidates(model)}.")
        for name, module in model.named_modules():
            if module is layer and name:
                return name, module
        raise ValueError(f"The layer {type(layer).__name__} is not a module of this model; {_candidates(model)}.")
    raise TypeError(f"A layer must be a module of the model or its dotted name, not {describe(layer)}.")


def _candidates(model: nn.Module, sentence: bool = False) -> str:
    names = [n for n, _ in conv_layers(model)]
    outside_head = [n for n in names if n.split(".")[0] not in _HEAD_NAMES]
    usual = f" (the last, {outside_head[-1]!r}, is the usual choice)" if outside_head else ""
    text = f"convolutional layers: {', '.join(map(repr, names))}{usual}" if names else "it has no convolutional layers"
    return text[0].upper() + text[1:] if sentence else text


# --- inputs and classes -----------------------------------------------------------------------


def as_batch(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` as an ``N x C x H x W`` batch that ``model`` can take (a ``C x H x W`` image becomes ``N = 1``).

    Refused, each with one line that names the fix: not a tensor, not 3-D or 4-D, an empty batch,
    integer pixels, another device or dtype than the model's weights, a channel count the model's
    first convolution does not take (with a hint when ``x`` looks channels-last), NaN or infinity.
    A sparse tensor is made dense. ``x`` itself is never changed: the result is ``x``, a view of it
    or a dense copy, so detach and clone it before writing to it.

    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3))
    >>> as_batch(net, torch.zeros(3, 8, 8)).shape
    torch.Size([1, 3, 8, 8])
    >>> as_batch(net, torch.zeros(8, 8, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: x has 8 channels (shape (1, 8, 8, 3)) but ... (channels last? use x.permute(0, 3, 1, 2)); ...
    """
    check_model(model, _MODEL_EXAMPLE)
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"x must be a torch.Tensor (an image C x H x W or a batch N x C x H x W), not {type(x).__name__}."
        )
    if x.layout != torch.strided:
        x = x.to_dense()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected an image C x H x W or a batch N x C x H x W.")
    if not x.is_floating_point():
        raise ValueError(f"x has dtype {x.dtype}; preprocess the image into a float tensor (the model's transforms).")
    weight = next(iter(model.parameters()), None)
    if weight is not None and weight.device != x.device:
        raise ValueError(
            f"x is on {x.device} but the model is on {weight.device}; move one, e.g. x.to('{weight.device}')."
        )
    if weight is not None and weight.dtype != x.dtype:
        raise ValueError(f"x has dtype {x.dtype} but the model's weights are {weight.dtype}; use x.to({weight.dtype}).")
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None and x.shape[1] != first_conv.in_channels:
        hint = " (channels last? use x.permute(0, 3, 1, 2))" if x.shape[-1] == first_conv.in_channels else ""
        raise ValueError(
            f"x has {x.shape[1]} channels (shape {tuple(x.shape)}) but the model's first convolution takes "
            f"{first_conv.in_channels}{hint}; preprocess the image with the model's transforms."
        )
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values; check the image and its preprocessing.")
    return x


def class_index(target: object, categories: Sequence[str] | None = None) -> int:
    """One class as an index: a category name (any case) becomes its index in ``categories`` (default: ImageNet's).

    An index (a Python or numpy integer, or a 0-D integer tensor) is kept as it is: whether the
    model has that many outputs is known only after the forward pass (``check_class_range``).

    >>> class_index("Tiger Cat"), class_index(torch.tensor(3)), class_index("dog", categories=["cat", "dog"])
    (282, 3, 1)
    """
    if isinstance(target, str):
        return category_index(target, categories)
    return as_class_index(target)


def class_indices(target: Target, n: int, categories: Sequence[str] | None = None) -> list[int]:
    """The class index of each of ``n`` images: ``target`` is one class for all, or one per image.

    One per image is a list, a tuple, a 1-D tensor or a 1-D array of ``n`` classes; each class is
    read by ``class_index``. A set or a dict (no order) and a list of the wrong length are refused.

    >>> class_indices("tiger cat", 2), class_indices(torch.tensor([1, 0]), 2)
    ([282, 282], [1, 0])
    >>> class_indices(["dog", 0], 2, categories=["cat", "dog"])
    [1, 0]
    """
    n = check_count(n, "n")
    if isinstance(target, torch.Tensor) and target.ndim == 1:
        target = list(target.unbind())  # 0-D tensors, so that booleans and floats are still refused
    if isinstance(target, np.ndarray) and target.ndim == 1:
        target = list(target)
    if isinstance(target, (set, frozenset, dict)):
        raise TypeError(
            "target must be one class or a list of classes (one per image), not a "
            f"{type(target).__name__}: it has no order."
        )
    if isinstance(target, (list, tuple)):
        if len(target) != n:
            raise ValueError(f"Got {len(target)} targets for a batch of {n} images; give one class, or one per image.")
        return [class_index(t, categories) for t in target]
    if isinstance(target, torch.Tensor) and target.ndim > 1:
        raise ValueError(f"A target tensor must be 0-D or 1-D (one class per image), not shape {tuple(target.shape)}.")
    if isinstance(target, np.ndarray) and target.ndim > 1:
        raise ValueError(f"A target array must be 1-D (one class per image), not shape {target.shape}.")
    return [class_index(target, categories)] * n


def check_class_range(classes: Sequence[int], given: object, num_classes: int) -> None:
    """Refuse a class index that the model, with ``num_classes`` outputs, does not have.

    ``classes`` are indices (from ``class_index`` or ``class_indices``); ``given`` is the class as
    the caller wrote it, so that a name is quoted in the message next to the index it became.

    >>> check_class_range([0, 1], 1, num_classes=2)
    >>> check_class_range([5], "cat", num_classes=2)
    Traceback (most recent call last):
    ...
    ValueError: Class 'cat' is index 5, which is out of range; valid: 0-1 (the model has 2 outputs).
    """
    num_classes = check_count(num_classes, "num_classes")
    if not isinstance(classes, (list, tuple)):
        raise TypeError(f"classes must be a list of class indices (see class_indices), not {describe(classes)}.")
    for index in map(as_class_index, classes):
        if not 0 <= index < num_classes:
            named = f"Class {given!r} is index {index}, which" if isinstance(given, str) else f"Class index {index}"
            raise ValueError(
                f"{named} is out of range; valid: 0-{num_classes - 1} (the model has {num_classes} outputs)."
            )


def _label(given: object, classes: list[int], categories: Sequence[str] | None) -> str:
    if isinstance(given, str):
        return repr(given)
    unique = dict.fromkeys(classes)
    names = [repr(categories[c]) if categories is not None and c < len(categories) else str(c) for c in unique]
    return ", ".join(names)


# --- hooks and model state --------------------------------------------------------------------


@dataclass
class _Recorder:
    """What the hooks share with the caller: the guided-rule switch and the layer's activations."""

    guided: bool = False
    activations: list[Any] = field(default_factory=list)


def _guided_rule(recorder: _Recorder, grad_out: torch.Tensor) -> torch.Tensor | None:
    # Springenberg et al.: pass back only positive gradients (the ReLU's backward then keeps x > 0).
    return F.relu(grad_out) if recorder.guided else None


def _guide_relu(recorder: _Recorder, module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    if isinstance(output, torch.Tensor) and output.requires_grad:
        output.register_hook(partial(_guided_rule, recorder))


def _record_activation(recorder: _Recorder, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
    recorder.activations.append(output)
    if not isinstance(output, torch.Tensor):
        return None
    if not output.requires_grad:
        output.requires_grad_(True)
    return output.clone()  # later in-place ops (e.g. ReLU(inplace=True)) must not touch A


@contextmanager
def _saliency_hooks(model: nn.Module, layer: nn.Module | None, guided: bool) -> Iterator[_Recorder]:
    """Hooks for one call, removed on every path: the guided rule at every ``nn.ReLU``, the layer's output."""
    recorder = _Recorder()
    handles = []
    try:
        if guided:
            relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
            handles += [m.register_forward_hook(partial(_guide_relu, recorder)) for m in relus]
        if layer is not None:
            handles.append(layer.register_forward_hook(partial(_record_activation, recorder)))
        yield recorder
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def eval_with_frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Inside ``with``: eval semantics (dropout off, batch-norm running statistics) and frozen parameters.

    Every module's train/eval flag and every parameter's ``requires_grad`` are restored exactly on
    exit, on every path: the caller's model is left as it was found.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> with eval_with_frozen_parameters(net):
    ...     net.training, net[0].weight.requires_grad
    (False, False)
    >>> net.training, net[0].weight.requires_grad
    (True, True)
    """
    check_model(model, _MODEL_EXAMPLE)
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, training in modes:
            m.training = training


# --- the maths --------------------------------------------------------------------------------


def _interpolation(mode: object) -> str:
    """``mode`` if it is one of ``INTERPOLATE_MODES``; the one place modes are checked."""
    if not isinstance(mode, str) or mode not in INTERPOLATE_MODES:
        raise ValueError(f"Unknown interpolation mode {describe(mode)}; valid: {', '.join(INTERPOLATE_MODES)}.")
    return mode


def upsample_cam(cam: torch.Tensor, size: Sequence[int], mode: str = "nearest") -> torch.Tensor:
    """Upsample an N x 1 x h x w Grad-CAM map to ``size`` (H, W), as Captum's ``LayerAttribution.interpolate``.

    >>> upsample_cam(torch.tensor([[[[0.0, 1.0]]]]), (2, 4)).tolist()
    [[[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]]]
    """
    _interpolation(mode)
    if not isinstance(cam, torch.Tensor) or cam.ndim != 4 or not cam.is_floating_point() or cam.numel() == 0:
        raise ValueError(f"cam must be an N x 1 x h x w float tensor (what grad_cam returns), got {describe(cam)}.")
    if cam.layout != torch.strided:
        cam = cam.to_dense()
    if not torch.isfinite(cam).all():
        raise ValueError("cam contains NaN or infinite values; check the method that produced it.")
    try:
        out = tuple(check_count(s, "size") for s in size)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"size must be two positive sizes (H, W), e.g. x.shape[-2:], got {describe(size)}.")
    return F.interpolate(cam, size=out, mode=mode)


def as_float_array(data: MapLike, name: str = "map") -> npt.NDArray[np.float64]:
    """A new float64 numpy copy of an array or a tensor (any device or layout, may require grad); nothing else.

    >>> as_float_array(torch.tensor([1, 2], dtype=torch.uint8)), as_float_array(np.array([True]))
    (array([1., 2.]), array([1.]))
    >>> as_float_array([1.0, 2.0])
    Traceback (most recent call last):
    ...
    TypeError: map must be a numpy array or a torch tensor, not list.
    """
    if isinstance(data, torch.Tensor):
        tensor = data.detach()
        tensor = tensor.to_dense() if tensor.layout != torch.strided else tensor
        if tensor.is_complex():
            raise TypeError(f"{name} must hold real numbers, not {tensor.dtype}.")
        return tensor.to("cpu", torch.float64).numpy().copy()
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, not {data.dtype}.")
        return np.array(data, dtype=np.float64, copy=True)
    raise TypeError(f"{name} must be a numpy array or a torch tensor, not {type(data).__name__}.")


def drop_leading_ones(array: npt.NDArray[Any], keep: int = 2) -> npt.NDArray[Any]:
    """``array`` without its leading size-1 dimensions, keeping at least ``keep`` (a view, not a copy).

    >>> drop_leading_ones(np.zeros((1, 1, 4, 5))).shape, drop_leading_ones(np.zeros((1, 3, 4, 5))).shape
    ((4, 5), (3, 4, 5))
    """
    if not isinstance(array, (np.ndarray, torch.Tensor)):
        raise TypeError(f"array must be a numpy array or a torch tensor, not {describe(array)}.")
    keep = check_count(keep, "keep", minimum=0)
    while array.ndim > keep and array.shape[0] == 1:
        array = array[0]
    return array


def one_map(saliency: MapLike, name: str = "map") -> npt.NDArray[np.float64]:
    """A new float64 ``H x W`` or ``C x H x W`` copy of one finite map, leading size-1 dimensions dropped.

    What ``magnitude`` and ``channel_sum`` reduce, and what ranks pixels for the faithfulness
    curves: any number of channels is kept, the first dimension read as channels (they are
    reduced, never drawn). The drawing functions of ``utils.visualise`` convert maps their own
    way, on purpose: they also refuse a channels-last picture (``H x W x 3``) and name a batch as
    one. ``name`` is how errors refer to the argument.

    >>> one_map(torch.zeros(1, 4, 2, 3)).shape, one_map(np.zeros((1, 1, 2, 3))).shape
    ((4, 2, 3), (2, 3))
    """
    array = as_float_array(saliency, name)
    shape = array.shape
    array = drop_leading_ones(array)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(
            f"{name} must be H x W, C x H x W or 1 x C x H x W, got shape {shape}; pass one map, e.g. maps[i:i + 1]."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the method that produced it.")
    return array


def magnitude(saliency: MapLike, name: str = "map") -> npt.NDArray[np.float64]:
    """The ``H x W`` magnitude of one saliency map: ``|map|``, summed over channels for ``C x H x W``.

    Leading size-1 dimensions are dropped (``1 x 3 x H x W`` -> ``H x W``); the result is a new
    float64 array, so the caller's map is never changed. Lessons 04 and 05 compare maps this way:
    by absolute value, so that a sign flip does not count as a change. ``name`` is how errors
    refer to the argument.

    >>> magnitude(torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]]]))  # 2 channels, 1 x 2
    array([[4. , 2.5]])
    """
    array = np.abs(one_map(saliency, name))
    return array.sum(axis=0) if array.ndim == 3 else array


def channel_sum(saliency: MapLike, name: str = "map", *, positive: bool = False) -> npt.NDArray[np.float64]:
    """The ``H x W`` sum of one map over its channels, signs kept (``magnitude`` without the ``|.|``).

    ``positive=True`` sums only the positive parts. The same checks and copies as ``magnitude``.

    >>> channel_sum(torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]]])), channel_sum(np.array([[1.0, -2.0]]), positive=True)
    (array([[-2. , -1.5]]), array([[1., 0.]]))
    """
    array = one_map(saliency, name)
    array = np.maximum(array, 0.0) if check_flag(positive, "positive") else array
    return array.sum(axis=0) if array.ndim == 3 else array


def _grad_cam_from(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Selvaraju et al. 2017, Eq. 1-2: ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` = mean of dy/dA_k."""
    alpha = torch.mean(gradients, dim=(2, 3), keepdim=True)  # Eq. 1: global-average-pooled gradients
    weighted = torch.sum(alpha * activations, dim=1, keepdim=True)  # Eq. 2: sum_k alpha_k A_k
    return F.relu(weighted)  # Eq. 2: keep what raises the class score


def _warn_if_zero(cam: torch.Tensor, label: str, layer_name: str) -> None:
    blank = [i for i, zero in enumerate((cam.flatten(1) == 0).all(1).tolist()) if zero]
    if blank:
        which = "" if cam.shape[0] == 1 else f" on image{'s' * (len(blank) > 1)} {', '.join(map(str, blank))}"
        warnings.warn(
            f"Grad-CAM for class {label}{which} is zero everywhere: no region of layer {layer_name!r} "
            "increases the score of this class, so the map (and Guided Grad-CAM) is blank. "
            "The class is probably absent from the image; try the top class.",
            ZeroGradCamWarning,
            stacklevel=4,  # the learner's call
        )


def _compute(
    model: nn.Module,
    layer: nn.Module | str | None,
    x: torch.Tensor,
    targets: Sequence[object],
    *,
    gbp: bool,
    categories: Sequence[str] | None,
    per_image: bool,
) -> list[dict[str, torch.Tensor]]:
    """One forward pass, then per target a backward pass to the layer (Grad-CAM) and/or a guided one to x."""
    batch = as_batch(model, x)
    categories = None if categories is None else category_names(categories)
    n = batch.shape[0]
    classes = [class_indices(t, n, categories) if per_image else [class_index(t, categories)] * n for t in targets]
    layer_name, module = resolve_layer(model, layer) if layer is not None else ("", None)
    kinds = (["grad_cam"] if module is not None else []) + (["guided_backprop"] if gbp else [])
    passes = [(i, kind) for i in range(len(targets)) for kind in kinds]
    results: list[dict[str, torch.Tensor]] = [{} for _ in targets]
    with _attribution_mode(model, module, guided=gbp) as recorder:
        image = batch.detach().clone().requires_grad_(gbp)  # our own leaf: the caller's x is never touched
        logits = class_scores(forward_sized(model, image), n)
        for given, cls in zip(targets, classes):
            check_class_range(cls, given, logits.shape[1])
        activations = _layer_activations(model, recorder, layer_name) if module is not None else image
        for step, (i, kind) in enumerate(passes):
            recorder.guided = kind == "guided_backprop"  # the guided rule, on for this pass only
            score = logits.gather(1, torch.tensor(classes[i], device=logits.device)[:, None])[:, 0]  # y_c per image
            wrt = image if recorder.guided else activations
            last = step == len(passes) - 1
            grad = None  # a score that does not depend on anything with a gradient: reported below
            if score.requires_grad:
                (grad,) = torch.autograd.grad(
                    score, wrt, torch.ones_like(score), retain_graph=not last, allow_unused=True
                )
            if grad is None and kind == "guided_backprop":
                raise ValueError("The class score does not depend on the input x; check that the model uses its input.")
            if grad is None:
                raise ValueError(f"The class score does not depend on layer {layer_name!r}; {_candidates(model)}.")
            if kind == "grad_cam":
                results[i]["grad_cam"] = cam = _grad_cam_from(activations.detach(), grad)
                _warn_if_zero(cam, _label(targets[i], classes[i], categories), layer_name)
            else:
                results[i]["guided_backprop"] = grad
    return results


@contextmanager
def _attribution_mode(model: nn.Module, layer: nn.Module | None, guided: bool) -> Iterator[_Recorder]:
    """Gradients on (even inside ``no_grad``), eval semantics, frozen parameters and hooks; all undone on exit."""
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        stack.enter_context(eval_with_frozen_parameters(model))
        yield stack.enter_context(_saliency_hooks(model, layer, guided))


def forward_sized(model: nn.Module, image: torch.Tensor) -> object:
    """``model(image)``; an input too small for the model's pooling is named with the smallest size that works.

    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(4), nn.Flatten())
    >>> forward_sized(net, torch.zeros(1, 3, 2, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: x is 2 x 2 pixels, too small for Sequential: it needs at least 6 x 6 pixels (...).
    """
    image = as_batch(model, image)  # the input's own checks first (a cheap pass next to the model's)
    try:
        return model(image)
    except RuntimeError:
        height, width = image.shape[-2:]
        smallest = _smallest_input(model, image)
        if smallest is None or smallest <= min(height, width):
            raise  # not a question of size: the model's own error
        raise ValueError(
            f"x is {height} x {width} pixels, too small for {type(model).__name__}: it needs at least {smallest} x "
            f"{smallest} pixels (the course's models take 224 x 224 from preprocess_imagenet_image)."
        ) from None


def _smallest_input(model: nn.Module, image: torch.Tensor, limit: int = 1024) -> int | None:
    """The smallest square input side the model runs on (doubling, then bisection; None past ``limit``)."""

    def runs(side: int) -> bool:
        probe = torch.zeros((1, image.shape[1], side, side), dtype=image.dtype, device=image.device)
        try:
            with torch.no_grad():
                model(probe)
        except RuntimeError:
            return False
        return True

    low = max(1, int(min(image.shape[-2:])))
    if runs(low):  # the square of the shorter side runs: the input failed for another reason (e.g. not square)
        return low
    high = 2 * low
    while not runs(high):  # double until a size works, then bisect
        low, high = high, 2 * high
        if high > limit:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if runs(middle) else (middle, high)
    return high


def class_scores(logits: object, n: int) -> torch.Tensor:
    """``logits``, a model's output, when it is a tensor of class scores for ``n`` images (``n x classes``).

    Anything else (a tuple, a feature map, another batch size) is refused with one line that says
    what the model returned.

    >>> class_scores(torch.zeros(2, 10), 2).shape
    torch.Size([2, 10])
    >>> class_scores(torch.zeros(2, 8, 3, 3), 2)
    Traceback (most recent call last):
    ...
    ValueError: The model returned (2, 8, 3, 3); saliency maps need class scores of shape N x classes (2 x K).
    """
    n = check_count(n, "n")
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != n:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"The model returned {shape}; saliency maps need class scores of shape N x classes ({n} x K).")
    return logits


def _layer_activations(model: nn.Module, recorder: _Recorder, layer_name: str) -> torch.Tensor:
    seen = recorder.activations
    if len(seen) != 1:
        how = "did not run in the forward pass" if not seen else f"ran {len(seen)} times in one forward pass"
        raise ValueError(
            f"Layer {layer_name!r} {how}; choose a layer that runs once. {_candidates(model, sentence=True)}."
        )
    activation = seen[0]
    if not isinstance(activation, torch.Tensor) or activation.ndim != 4:
        shape = tuple(activation.shape) if isinstance(activation, torch.Tensor) else type(activation).__name__
        raise ValueError(
            f"Layer {layer_name!r} outputs {shape}, not an N x C x h x w feature map; {_candidates(model)}."
        )
    if activation.shape[2] * activation.shape[3] == 1:
        raise ValueError(
            f"Layer {layer_name!r} outputs {tuple(activation.shape)}: a 1 x 1 map shows no region; "
            f"choose a layer before the global pooling (or a larger input). {_candidates(model, sentence=True)}."
        )
    return activation


def _require_layer(layer: object) -> None:
    if layer is None:
        raise TypeError(
            "layer is None; Grad-CAM needs a layer: a module of the model or its dotted name (see conv_layers)."
        )


def _upsample_mode(upsample: bool | str) -> str | None:
    if upsample is True:
        return "nearest"
    if upsample is False:
        return None
    try:
        return _interpolation(upsample)
    except ValueError:
        raise ValueError(
            f"upsample={describe(upsample)}; use False, True (nearest) or a mode: {', '.join(INTERPOLATE_MODES)}."
        ) from None


# --- public entry points ------------------------------------------------------------------------


def grad_cam(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    upsample: bool | str = False,
    categories: Sequence[str] | None = None,
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017): N x 1 x h x w at ``layer``'s resolution, ReLU applied, not normalised.

    Equal to Captum's ``LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)``.
    ``upsample=True`` (nearest) or a mode name (e.g. ``"bilinear"``) resizes it to the input's
    H x W. ``target``: an index, a category name, or one per image; ``categories``: the model's
    own names (default: ImageNet). A map that is zero everywhere warns (``ZeroGradCamWarning``).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> grad_cam(net, "1", torch.rand(3, 8, 8), 1).shape
    torch.Size([1, 1, 6, 6])
    >>> grad_cam(net, "1", torch.rand(2, 3, 8, 8), [0, 1], upsample="bilinear").shape
    torch.Size([2, 1, 8, 8])
    """
    mode = _upsample_mode(upsample)
    _require_layer(layer)
    cam = _compute(model, layer, x, [target], gbp=False, categories=categories, per_image=True)[0]["grad_cam"]
    return cam if mode is None else upsample_cam(cam, x.shape[-2:], mode)


def layer_gradients(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    categories: Sequence[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A, dy/dA, logits)``: the layer's activations, the class score's gradient there, the scores; one pass.

    What every method of the CAM family starts from (Grad-CAM averages the gradient over the grid,
    HiResCAM multiplies it element-wise, ...; see ``utils.cams``): ``A`` and ``dy/dA`` are both
    N x C x h x w, detached; ``logits`` is N x K, detached. The same checks, hooks and model state
    as ``grad_cam``: nothing of the model or of ``x`` changes.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> x = torch.rand(2, 3, 8, 8)
    >>> A, dA, logits = layer_gradients(net, "1", x, [0, 1])
    >>> tuple(A.shape), tuple(dA.shape), tuple(logits.shape)
    ((2, 4, 6, 6), (2, 4, 6, 6), (2, 2))
    >>> cam = (dA.mean((2, 3), keepdim=True) * A).sum(1, keepdim=True).relu()  # Grad-CAM's Eq. 1-2
    >>> bool(torch.allclose(cam, grad_cam(net, "1", x, [0, 1])))
    True
    """
    _require_layer(layer)
    batch = as_batch(model, x)
    categories = None if categories is None else category_names(categories)
    n = batch.shape[0]
    classes = class_indices(target, n, categories)
    layer_name, module = resolve_layer(model, layer)
    with _attribution_mode(model, module, guided=False) as recorder:
        logits = class_scores(forward_sized(model, batch.detach().clone()), n)
        check_class_range(classes, target, logits.shape[1])
        activations = _layer_activations(model, recorder, layer_name)
        score = logits.gather(1, torch.tensor(classes, device=logits.device)[:, None])[:, 0]
        grad = None
        if score.requires_grad:
            (grad,) = torch.autograd.grad(score, activations, torch.ones_like(score), allow_unused=True)
        if grad is None:
            raise ValueError(f"The class score does not depend on layer {layer_name!r}; {_candidates(model)}.")
    return activations.detach(), grad, logits.detach()


def guided_backprop(
    model: nn.Module, x: torch.Tensor, target: Target, *, categories: Sequence[str] | None = None
) -> torch.Tensor:
    """Guided Backpropagation (Springenberg et al., 2015): N x C x H x W, like the input.

    Equal to Captum's ``GuidedBackprop(model).attribute(x, target)``. The rule acts at every
    ``nn.ReLU`` module (a ReLU written as ``F.relu`` in ``forward`` is not guided, as in Captum).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> guided_backprop(net, torch.rand(3, 8, 8), 0).shape
    torch.Size([1, 3, 8, 8])
    """
    return _compute(model, None, x, [target], gbp=True, categories=categories, per_image=True)[0]["guided_backprop"]


def guided_grad_cam_factors(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    categories: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """The two factors of Guided Grad-CAM from one forward pass: ``{"grad_cam": ..., "guided_backprop": ...}``.

    The same values as ``grad_cam`` (N x 1 x h x w, not upsampled) and ``guided_backprop``
    (N x C x H x W), with the same ``target`` (one class per image allowed) and ``categories``;
    ``guided_grad_cam`` is their product once Grad-CAM is upsampled. For callers that upsample
    Grad-CAM their own way, or that need both maps, without a second forward pass.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> {k: tuple(v.shape) for k, v in guided_grad_cam_factors(net, "1", torch.rand(2, 3, 8, 8), [0, 1]).items()}
    {'grad_cam': (2, 1, 6, 6), 'guided_backprop': (2, 3, 8, 8)}
    """
    _require_layer(layer)
    return _compute(model, layer, x, [target], gbp=True, categories=categories, per_image=True)[0]


def guided_grad_cam(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    target: Target,
    *,
    interpolate_mode: str = "nearest",
    categories: Sequence[str] | None = None,
) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al., 2017): Guided Backpropagation x upsampled Grad-CAM, N x C x H x W.

    Equal to Captum's ``GuidedGradCam(model, layer).attribute(x, target, interpolate_mode=...)``;
    ``"nearest"`` by default as Captum, ``"bilinear"`` as the paper. One forward pass.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> guided_grad_cam(net, "1", torch.rand(2, 3, 8, 8), 1, interpolate_mode="bilinear").shape
    torch.Size([2, 3, 8, 8])
    """
    _interpolation(interpolate_mode)  # reject a bad mode before any work
    _require_layer(layer)
    maps = _compute(model, layer, x, [target], gbp=True, categories=categories, per_image=True)[0]
    return maps["guided_backprop"] * upsample_cam(maps["grad_cam"], x.shape[-2:], interpolate_mode)


def saliency_maps(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    targets: Class | Sequence[Class] | torch.Tensor,
    *,
    interpolate_mode: str = "nearest",
    categories: Sequence[str] | None = None,
) -> dict[Any, dict[str, torch.Tensor]]:
    """All three maps for every class in ``targets``, from one forward pass.

    Returns ``{target: {"grad_cam": N x 1 x h x w, "guided_backprop": N x C x H x W,
    "guided_grad_cam": N x C x H x W}}``, the same values as ``grad_cam`` (at the layer's
    resolution: overlay it with ``upsample_cam(cam, x.shape[-2:])``), ``guided_backprop`` and
    ``guided_grad_cam``. Each target is one class for every image. Keys are the targets exactly
    as given (``"tiger cat"`` stays ``"tiger cat"``, ``282`` stays ``282``; a tensor's entries
    become ints); a single class counts as a list of one, and each class is computed once even
    when it is given twice (``["tiger cat", 282]``: both keys hold the same maps).

    The forward pass is kept (``retain_graph``); parameters are frozen for the call; each class
    then takes one backward pass to the layer (Grad-CAM) and one, with the guided rule on, to
    the input (Guided Backpropagation).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> maps = saliency_maps(net, "1", torch.rand(3, 8, 8), [0, 1])
    >>> {t: {k: tuple(v.shape) for k, v in m.items()} for t, m in maps.items()}[1]
    {'grad_cam': (1, 1, 6, 6), 'guided_backprop': (1, 3, 8, 8), 'guided_grad_cam': (1, 3, 8, 8)}
    """
    _interpolation(interpolate_mode)
    _require_layer(layer)
    if isinstance(targets, torch.Tensor):
        if targets.ndim > 1 or targets.is_floating_point():
            raise ValueError(
                f"targets as a tensor must be 0-D or 1-D integers, not {targets.dtype} {tuple(targets.shape)}."
            )
        targets = targets.reshape(-1).tolist()
    if isinstance(targets, np.ndarray):
        targets = list(targets.reshape(-1)) if targets.ndim <= 1 else targets.tolist()
    if isinstance(targets, (set, frozenset, dict)):
        raise TypeError(
            f"targets must be a class or a list of classes, not a {type(targets).__name__}: it has no order."
        )
    given = [targets] if isinstance(targets, str) or not isinstance(targets, Sequence) else list(targets)
    if not given:
        raise ValueError("targets is empty; give at least one class (an index or a category name).")
    several = (list, tuple, set, dict, np.ndarray)
    if any(isinstance(t, several) or (isinstance(t, torch.Tensor) and t.ndim > 0) for t in given):
        raise ValueError(
            "Each target in saliency_maps is one class for all images; for one per image use guided_grad_cam."
        )
    keys = list(dict.fromkeys(as_class_index(t) if isinstance(t, (torch.Tensor, np.integer)) else t for t in given))
    first_spelling: dict[int, Any] = {}  # class index -> the first key naming it: one set of backward passes each
    for key in keys:
        first_spelling.setdefault(class_index(key, categories), key)
    spellings = list(first_spelling.values())
    computed = _compute(model, layer, x, spellings, gbp=True, categories=categories, per_image=False)
    for m in computed:
        m["guided_grad_cam"] = m["guided_backprop"] * upsample_cam(m["grad_cam"], x.shape[-2:], interpolate_mode)
    by_class = dict(zip(first_spelling, computed))
    return {key: dict(by_class[class_index(key, categories)]) for key in keys}
