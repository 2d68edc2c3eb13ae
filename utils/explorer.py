"""The saliency explorer: choose an image, a class, a method, a layer and an opacity, and look.

Small pure pieces under a thin widget layer:

* ``image_from_upload`` turns uploaded bytes into a picture (``utils.datasets.decode_image``
  with the explorer's size limits), or raises ``ImageLoadError`` with one readable line (not
  an image, damaged, too big).
* ``ImageAnalysis`` is one image through one model: its input, its picture, its top-k
  predictions, and a cache of saliency maps. Maps come from ``utils.saliency.saliency_maps``:
  one forward pass per layer gives all three methods for all top-k classes, so changing the
  method, the opacity or the class (among the top-k) computes nothing new. SmoothGrad and
  Integrated Gradients (Captum) cost a batch of many images each: ``attribution(method, class)``
  computes one only when it is asked for, and keeps it. The maps kept are bounded
  (``MAP_BYTES_KEPT``); SmoothGrad's and IG's images go through the model in batches whose
  memory is bounded (``CAPTUM_BATCH_BYTES``) whatever the model.
* ``View`` says what to show; ``render_figure`` / ``render_png`` draw it.
* ``SaliencyExplorer(loaded).widget`` is the ipywidgets tool; its controls are attributes
  (``explorer.method.value = "guided_backprop"``) so a notebook or a test can drive it. While
  SmoothGrad or Integrated Gradients is computed, ``progress`` (a label) says so. What it keeps
  is bounded: the last ``UPLOADS_KEPT`` uploads (their analyses, never the decoded upload), the
  maps of the image shown only, ``TYPED_CLASSES_KEPT`` typed classes, ``PICTURES_KEPT`` pictures
  of at most ``PICTURE_BYTES_KEPT`` bytes; ``message`` says when it drops something.
"""

from __future__ import annotations

import html
import io
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import ipywidgets as widgets
import numpy as np
import numpy.typing as npt
import torch
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from utils.cams import grad_cam_plus_plus, hires_cam, layer_cam, score_cam
from utils.categories import as_class_index, category_index, check_count, check_real, describe
from utils.datasets import (
    SAMPLE_IMAGES,
    ImageLoadError,
    ImageSource,
    decode_image,
    deprocess_imagenet_image,
    preprocess_imagenet_image,
    sample_image_path,
)
from utils.discriminativity import discriminativity_map
from utils.models import LoadedModel
from utils.random_state import preserved_rng
from utils.saliency import ZeroGradCamWarning, conv_layers, eval_with_frozen_parameters, saliency_maps, upsample_cam
from utils.visualise import (
    GRADIENT_CLIP_PERCENTILE,
    GRADIENT_CMAP,
    HEATMAP_CMAP,
    overlay_heatmap,
    process_attributions,
    show_diverging,
    show_image,
)

__all__ = [
    "BASE_METHODS",
    "CAPTUM_BATCH_BYTES",
    "CAPTUM_METHODS",
    "CAM_FAMILY",
    "IG_STEPS",
    "MAP_BYTES_KEPT",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "METHODS",
    "PICTURES_KEPT",
    "PICTURE_BYTES_KEPT",
    "TYPED_CLASSES_KEPT",
    "UPLOADS_KEPT",
    "SMOOTHGRAD_NOISE",
    "SMOOTHGRAD_SAMPLES",
    "SMOOTHGRAD_SEED",
    "ImageAnalysis",
    "Prediction",
    "SaliencyExplorer",
    "View",
    "image_from_upload",
    "render_figure",
    "render_png",
]

METHODS: Mapping[str, str] = {
    "grad_cam": "Grad-CAM",
    "guided_backprop": "Guided Backprop",
    "guided_grad_cam": "Guided Grad-CAM",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "Integrated Gradients",
    "grad_cam_plus_plus": "Grad-CAM++",
    "hires_cam": "HiResCAM",
    "layer_cam": "LayerCAM",
    "score_cam": "Score-CAM",
    "discriminativity": "Discriminativity (A - B)",
}
"""Method key -> label. The first three are keys of ``saliency_maps``, the next two ``CAPTUM_METHODS``, then the
``CAM_FAMILY`` of lesson 10; the last compares two classes."""
CAM_FAMILY: Mapping[str, Callable[..., torch.Tensor]] = {
    "grad_cam_plus_plus": grad_cam_plus_plus,
    "hires_cam": hires_cam,
    "layer_cam": layer_cam,
    "score_cam": score_cam,
}
"""Lesson 10's CAMs (``utils.cams``), drawn as Grad-CAM is, at the chosen layer. Score-CAM runs the model once per
channel of the layer (512 images at SqueezeNet's and VGG16's target layers: seconds on SqueezeNet, minutes on VGG16
on a CPU)."""
CAPTUM_METHODS: tuple[str, ...] = ("smoothgrad", "integrated_gradients")
"""The methods computed with Captum, one class at a time, each from a batch of many images (see ``ImageAnalysis``)."""
BASE_METHODS: tuple[str, ...] = ("grad_cam", "guided_backprop", "guided_grad_cam", *CAPTUM_METHODS)
"""The maps a discriminativity map can compare (every map of one class; a Captum map of class B costs its batch)."""
SMOOTHGRAD_SAMPLES = 8
"""SmoothGrad's noisy copies, one batch on SqueezeNet (about a second on a 2-core CPU). Smilkov et al. (2017) use 50:
raise it (``utils.explorer.SMOOTHGRAD_SAMPLES = 50`` before building the explorer) for smoother maps on a faster
machine; the copies then go through the model in batches of bounded memory (``CAPTUM_BATCH_BYTES``)."""
SMOOTHGRAD_NOISE = 0.15
"""SmoothGrad's noise: standard deviation as a share of the input's value range (the paper's 10 to 20%)."""
SMOOTHGRAD_SEED = 0
"""The seed of SmoothGrad's noise, so the same image and class always give the same map."""
IG_STEPS = 8
"""Integrated Gradients' points on the path from the baseline, one batch on SqueezeNet. Sundararajan et al. (2017) use
20 to 300: raise it (``utils.explorer.IG_STEPS = 32``) for a smaller completeness error on a faster machine; the
points then go through the model in batches of bounded memory (``CAPTUM_BATCH_BYTES``)."""
CAPTUM_BATCH_BYTES = 256 * 2**20
"""Memory for one batch of SmoothGrad's noisy copies or IG's path points (256 MiB). An image's cost is taken as the
bytes of every layer's output for one image, measured during the prediction's forward pass (the graph that the
backward pass keeps is about that size): SqueezeNet 1.1 takes 21.3 MiB (batches of 11), VGG16 109 MiB (batches of 2)."""
MAX_UPLOAD_BYTES = 25_000_000
"""Uploads larger than this (25 MB) are refused before decoding."""
MAX_UPLOAD_PIXELS = 50_000_000
"""Uploads with more pixels than this (50 megapixels) are refused before decoding."""
PICTURES_KEPT = 32
"""The explorer keeps its last 32 pictures (PNGs of 0.1 to 0.5 MB each): switching back to one shows it at once."""
PICTURE_BYTES_KEPT = 16 * 2**20
"""... and at most 16 MiB of them: the oldest go first."""
MAP_BYTES_KEPT = 64 * 2**20
"""The maps an ``ImageAnalysis`` keeps (64 MiB: on SqueezeNet or VGG16, about 50 classes' three maps); the least
recently used go first, never the last two asked for (a view's class A and class B)."""
UPLOADS_KEPT = 8
"""The explorer keeps its last 8 uploads (each about 1.3 MB once analysed; the decoded upload is not kept): an older
one leaves the image menu, and the message says so."""
TYPED_CLASSES_KEPT = 8
"""Classes typed into the class box stay in the class menu, the last 8 of them beside the top-k."""


# --- the pure core ----------------------------------------------------------------------------


def image_from_upload(
    content: bytes | memoryview, name: str, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> Image.Image:
    """``utils.datasets.decode_image`` with the explorer's upload limits (``MAX_UPLOAD_BYTES``, ``MAX_UPLOAD_PIXELS``).

    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (4, 3)).save(buffer, format="PNG")
    >>> image_from_upload(buffer.getvalue(), "tiny.png").size
    (4, 3)
    >>> image_from_upload(b"hello", "notes.txt")
    Traceback (most recent call last):
    ...
    utils.datasets.ImageLoadError: Cannot load image 'notes.txt': it is not an image PIL can read (PNG, JPEG, ...).
    """
    return decode_image(content, name, max_bytes=max_bytes, max_pixels=max_pixels)


@dataclass(frozen=True)
class Prediction:
    """One of the model's top classes for an image."""

    index: int
    name: str
    probability: float

    def label(self) -> str:
        """The name and probability, e.g. for a menu.

        >>> Prediction(282, "tiger cat", 0.4523).label(), Prediction(967, "espresso", 0.00002).label()
        ('tiger cat (45.2%)', 'espresso (<0.1%)')
        """
        return f"{self.name} ({self.probability:.1%})" if self.probability >= 0.0005 else f"{self.name} (<0.1%)"


def _smoothgrad(model: nn.Module, x: torch.Tensor, target: int, batch_size: int) -> torch.Tensor:
    """SmoothGrad (Smilkov et al., 2017, "SmoothGrad: removing noise by adding noise"): the mean gradient of
    ``SMOOTHGRAD_SAMPLES`` copies of ``x`` with Gaussian noise, ``batch_size`` copies per pass (Captum's
    ``NoiseTunnel`` over ``Saliency``). The noise is drawn from torch's generators seeded with ``SMOOTHGRAD_SEED``
    inside ``preserved_rng``: the same map every time, and every device's random state is left as it was."""
    from captum.attr import NoiseTunnel, Saliency  # here: importing captum.attr loads pyplot, importing us must not

    stdev = SMOOTHGRAD_NOISE * float(x.max() - x.min())
    with preserved_rng():
        torch.manual_seed(SMOOTHGRAD_SEED)
        return NoiseTunnel(Saliency(model)).attribute(
            x,
            target=target,
            abs=False,
            nt_type="smoothgrad",
            nt_samples=SMOOTHGRAD_SAMPLES,
            nt_samples_batch_size=min(batch_size, SMOOTHGRAD_SAMPLES),
            stdevs=stdev,
        )


def _integrated_gradients(model: nn.Module, x: torch.Tensor, target: int, batch_size: int) -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks"): the gradient
    averaged over ``IG_STEPS`` points on the straight path from the baseline to ``x`` (Captum's Gauss-Legendre
    rule), times ``x - baseline``, ``batch_size`` points per pass. The baseline is all zeros in the model's input
    space: after ImageNet normalisation, the data set's mean colour everywhere."""
    from captum.attr import IntegratedGradients  # here: importing captum.attr loads pyplot, importing us must not

    baseline = torch.zeros_like(x)
    attribute = IntegratedGradients(model).attribute
    return attribute(x, baseline, target=target, n_steps=IG_STEPS, internal_batch_size=min(batch_size, IG_STEPS))


_CAPTUM: dict[str, Callable[[nn.Module, torch.Tensor, int, int], torch.Tensor]] = {
    "smoothgrad": _smoothgrad,
    "integrated_gradients": _integrated_gradients,
}


def _method_detail(method: str) -> str:
    """How many images a Captum method's map costs (for titles and the progress label); ``""`` for the others.

    >>> _method_detail("smoothgrad"), _method_detail("integrated_gradients"), _method_detail("grad_cam")
    ('8 samples', '8 steps', '')
    """
    details = {"smoothgrad": f"{SMOOTHGRAD_SAMPLES} samples", "integrated_gradients": f"{IG_STEPS} steps"}
    return details.get(method, "")


def _tensor_bytes(maps: Mapping[str, torch.Tensor]) -> int:
    return sum(m.numel() * m.element_size() for m in maps.values())


@contextmanager
def _output_bytes(model: nn.Module) -> Iterator[list[int]]:
    """Count the bytes of every leaf module's output during the block's forward pass; hooks removed on exit."""
    total = [0]

    def count(module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules() if next(m.children(), None) is None]
    try:
        yield total
    finally:
        for handle in handles:
            handle.remove()


def _check_top_k(top_k: object, classes: int) -> int:
    whole = isinstance(top_k, (int, np.integer)) and not isinstance(top_k, (bool, np.bool_))
    if not (whole and 1 <= top_k <= classes):  # type: ignore[operator]
        raise ValueError(f"top_k must be an integer from 1 to {classes}, got {describe(top_k)}.")
    return int(top_k)  # type: ignore[call-overload]


def _check_class(index: object, what: str, classes: int) -> int:
    """A class index of the model, or one line naming the valid range."""
    index = as_class_index(index, what)
    if not 0 <= index < classes:
        raise ValueError(
            f"{what} is class {index}, but the model has {classes} classes: give an index from 0 to {classes - 1}."
        )
    return index


class ImageAnalysis:
    """One image through one model: its input, picture, top-k predictions and cached saliency maps.

    Building it runs one forward pass (the prediction). ``maps(layer, target)`` runs
    ``saliency_maps`` once per layer, for the target and every top-k class together (one more
    forward pass), and caches the result: later calls for those classes compute nothing. A
    class outside the top-k costs one forward pass the first time. ``attribution(method, target)``
    computes a SmoothGrad or Integrated Gradients map (``SMOOTHGRAD_SAMPLES`` or ``IG_STEPS`` images,
    in batches of ``captum_batch_size``, one forward pass counted) the first time it is asked for,
    and caches it by method and class: it does not depend on a layer. ``forward_passes`` counts the
    passes. The cache holds at most ``max_bytes`` (``MAP_BYTES_KEPT``): the least recently used maps
    go first, never the last two asked for; ``dropped`` counts them, ``forget()`` drops them all.
    The model is not changed: ``saliency_maps`` restores everything it touches, and the Captum
    methods run with the parameters frozen for the duration (restored after) and need no hooks.
    They need no prepared copy either: plain gradients flow through SqueezeNet's and VGG16's
    in-place ReLUs (only Captum's rules that replace a ReLU's backward pass, as in GBP and DeepLIFT,
    need ReLUs that are not in place; see lesson 07).
    """

    def __init__(self, loaded: LoadedModel, image: ImageSource, *, top_k: int = 5, name: str = "image") -> None:
        if not isinstance(loaded, LoadedModel):
            raise TypeError(f"loaded must be a LoadedModel (from utils.models.load_model()), not {describe(loaded)}.")
        top_k = _check_top_k(top_k, len(loaded.categories))
        self.loaded = loaded
        self.name = name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)  # e.g. "the image is only 20x20 pixels"
            self.x = preprocess_imagenet_image(image, loaded.transforms, device=loaded.device)
        self.notes: list[str] = [str(w.message) for w in caught]
        self.photo: npt.NDArray[np.float32] = deprocess_imagenet_image(self.x, loaded.transforms)
        with torch.no_grad(), _output_bytes(loaded.model) as measured:
            logits = loaded.model(self.x)
        self.activation_bytes = max(1, measured[0])
        """The bytes of every layer's output for this image: the memory one image takes in a Captum batch."""
        self.forward_passes = 1
        self.probabilities = torch.softmax(logits[0].detach().to("cpu", torch.float64), dim=0)
        top = torch.argsort(self.probabilities, descending=True, stable=True)[:top_k].tolist()
        self.top: tuple[Prediction, ...] = tuple(self.prediction(i) for i in top)
        self.max_bytes = MAP_BYTES_KEPT
        self.dropped = 0
        self._cache: OrderedDict[tuple[str, str, int], dict[str, torch.Tensor]] = OrderedDict()
        self._recent: list[tuple[str, str, int]] = []  # the last two keys asked for: never dropped
        self._blank: dict[tuple[str, int], bool] = {}  # whether Grad-CAM is zero everywhere: kept when maps are not

    @property
    def captum_batch_size(self) -> int:
        """Images per pass for SmoothGrad and IG: as many as ``CAPTUM_BATCH_BYTES`` holds, at least one."""
        return max(1, CAPTUM_BATCH_BYTES // self.activation_bytes)

    @property
    def cached_bytes(self) -> int:
        """The bytes of the maps kept."""
        return sum(_tensor_bytes(maps) for maps in self._cache.values())

    def prediction(self, index: int) -> Prediction:
        """The class ``index`` with its name and probability for this image."""
        index = _check_class(index, "class", len(self.loaded.categories))
        return Prediction(index, self.loaded.categories[index], float(self.probabilities[index]))

    def is_cached(self, layer: str, target: int) -> bool:
        """Whether ``maps(layer, target)`` is ready without a forward pass."""
        return ("maps", layer, target) in self._cache

    def maps(self, layer: str, target: int) -> dict[str, torch.Tensor]:
        """``{"grad_cam", "guided_backprop", "guided_grad_cam"}`` maps for class ``target`` at ``layer``."""
        target = _check_class(target, "target", len(self.loaded.categories))
        key = ("maps", layer, target)
        if key not in self._cache:
            wanted = [target] + [p.index for p in self.top if not self.is_cached(layer, p.index) and p.index != target]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ZeroGradCamWarning)  # ``_notes`` reports blank maps
                computed = saliency_maps(self.loaded.model, layer, self.x, wanted, categories=self.loaded.categories)
            self.forward_passes += 1
            for c in reversed(wanted):  # the target last: the most recently used
                self._cache[("maps", layer, c)] = computed[c]
                self._blank[(layer, c)] = not bool(computed[c]["grad_cam"].any())
        return self._kept(key)

    def grad_cam_is_blank(self, layer: str, target: int) -> bool:
        """Whether Grad-CAM for ``target`` at ``layer`` is zero everywhere (remembered after ``forget``)."""
        if (layer, target) not in self._blank:
            self.maps(layer, target)
        return self._blank[(layer, target)]

    def has_attribution(self, method: str, target: int) -> bool:
        """Whether ``attribution(method, target)`` is ready without a forward pass."""
        return ("captum", method, target) in self._cache

    def attribution(self, method: str, target: int) -> torch.Tensor:
        """The ``1 x 3 x H x W`` map of a ``CAPTUM_METHODS`` method for class ``target``, computed once, then cached."""
        if not isinstance(method, str) or method not in _CAPTUM:
            raise ValueError(f"Unknown Captum method {describe(method)}; valid: {', '.join(CAPTUM_METHODS)}.")
        target = as_class_index(target, "target")
        if not 0 <= target < len(self.loaded.categories):
            raise ValueError(f"target must be a class index from 0 to {len(self.loaded.categories) - 1}, got {target}.")
        key = ("captum", method, target)
        if key not in self._cache:
            with eval_with_frozen_parameters(self.loaded.model), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # Captum: "the input did not require gradients"
                x = self.x.detach().clone()
                computed = _CAPTUM[method](self.loaded.model, x, target, self.captum_batch_size)
            self.forward_passes += 1
            self._cache[key] = {"map": computed.detach()}
        return self._kept(key)["map"]

    def has_cam(self, method: str, layer: str, target: int) -> bool:
        """Whether ``cam(method, layer, target)`` is ready without a forward pass."""
        return ("cam", f"{method}@{layer}", target) in self._cache

    def cam(self, method: str, layer: str, target: int) -> torch.Tensor:
        """The ``1 x 1 x h x w`` map of a ``CAM_FAMILY`` method for class ``target`` at ``layer``, computed once."""
        if not isinstance(method, str) or method not in CAM_FAMILY:
            raise ValueError(f"Unknown CAM method {describe(method)}; valid: {', '.join(CAM_FAMILY)}.")
        target = _check_class(target, "target", len(self.loaded.categories))
        key = ("cam", f"{method}@{layer}", target)
        if key not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ZeroGradCamWarning)
                computed = CAM_FAMILY[method](self.loaded.model, layer, self.x, target)
            self.forward_passes += 1
            self._cache[key] = {"map": computed.detach()}
        return self._kept(key)["map"]

    def _kept(self, key: tuple[str, str, int]) -> dict[str, torch.Tensor]:
        """The cached entry ``key``, marked as the most recently used; then the cache trimmed to ``max_bytes``."""
        self._cache.move_to_end(key)
        self._recent = [key, *(k for k in self._recent if k != key)][:2]
        found = self._cache[key]
        while self.cached_bytes > self.max_bytes:
            oldest = next((k for k in self._cache if k not in self._recent), None)
            if oldest is None:
                break
            del self._cache[oldest]
            self.dropped += 1
        return found

    def forget(self) -> None:
        """Drop every cached map (the explorer does this for the images not shown); they are computed again if asked."""
        self._cache.clear()


@dataclass(frozen=True)
class View:
    """What the explorer shows: a method for a class (and for discriminativity, a second class).

    ``layer`` ``None`` means the model's target layer; ``other`` is class B and ``base`` the
    compared map, for ``method="discriminativity"`` only.

    >>> View(282, method="guided_backprop").uses_layer
    False
    >>> View(282, method="discriminativity", other=281, base="guided_grad_cam").map_kind
    'guided_grad_cam'
    >>> View(282, method="discriminativity", other=281, base="smoothgrad").captum_maps
    (('smoothgrad', 282), ('smoothgrad', 281))
    """

    target: int
    method: str = "grad_cam"
    layer: str | None = None
    opacity: float = 0.5
    other: int | None = None
    base: str = "grad_cam"

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", as_class_index(self.target, "target"))
        if self.other is not None:
            object.__setattr__(self, "other", as_class_index(self.other, "class B (other)"))
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ValueError(f"Unknown method {describe(self.method)}; valid: {', '.join(METHODS)}.")
        if not isinstance(self.base, str) or self.base not in BASE_METHODS:
            raise ValueError(f"Unknown base map {describe(self.base)}; valid: {', '.join(BASE_METHODS)}.")
        if self.layer is not None and not isinstance(self.layer, str):
            raise TypeError(
                f"layer must be a layer's dotted name or None (the target layer), not {describe(self.layer)}."
            )
        if not 0.0 <= check_real(self.opacity, "opacity") <= 1.0:
            raise ValueError(
                f"opacity must lie in [0, 1] (0 = picture only, 1 = map only), got {describe(self.opacity)}."
            )
        if self.method == "discriminativity" and self.other is None:
            raise ValueError("The discriminativity map compares two classes; give the second one as other=.")

    @property
    def map_kind(self) -> str:
        """The ``saliency_maps`` key the view draws (for discriminativity, the one it compares)."""
        return self.base if self.method == "discriminativity" else self.method

    @property
    def uses_layer(self) -> bool:
        """Whether the layer matters: not for Guided Backprop, SmoothGrad and IG, which never look at a layer."""
        return self.map_kind not in ("guided_backprop", *CAPTUM_METHODS)

    @property
    def captum_maps(self) -> tuple[tuple[str, int], ...]:
        """The ``(method, class)`` Captum maps the view draws (``ImageAnalysis.attribution``); empty for the others."""
        if self.map_kind not in CAPTUM_METHODS:
            return ()
        classes = (self.target, self.other) if self.method == "discriminativity" else (self.target,)
        return tuple((self.map_kind, c) for c in classes)  # type: ignore[misc]

    @property
    def uses_opacity(self) -> bool:
        """Whether the map is laid over the picture (the discriminativity map is drawn on its own)."""
        return self.method != "discriminativity"


def _gradient_overlay(
    photo: npt.NDArray[np.float32], saliency: torch.Tensor, opacity: float
) -> npt.NDArray[np.float32]:
    gray = process_attributions(saliency, mode="abs", grayscale=True, clip_percentile=GRADIENT_CLIP_PERCENTILE)
    return overlay_heatmap(photo, gray, alpha=opacity, cmap=GRADIENT_CMAP, normalise=False)


def _title(analysis: ImageAnalysis, view: View, layer: str) -> str:
    at = f" at {layer}" if view.uses_layer else ""
    if view.method == "discriminativity":
        a, b = analysis.prediction(view.target), analysis.prediction(view.other)  # type: ignore[arg-type]
        return (
            f"{METHODS[view.base]}{at}: '{a.name}' (red) - '{b.name}' (blue)\n"
            f"each map divided by its {GRADIENT_CLIP_PERCENTILE:g}th percentile of |map|, clipped at 1"
        )
    title = f"{METHODS[view.method]}{at}: '{analysis.prediction(view.target).label()}'"
    if view.method in CAPTUM_METHODS:  # drawn as the other gradient maps are; say so, and what it cost
        title += (
            f"\n{_method_detail(view.method)}; |map| in gray, clipped at the {GRADIENT_CLIP_PERCENTILE:g}th percentile"
        )
    return title


def _map_of(analysis: ImageAnalysis, kind: str, layer: str, target: int) -> torch.Tensor:
    """The map of one method for one class: from Captum (cached per method and class) or ``saliency_maps``."""
    if kind in CAPTUM_METHODS:
        return analysis.attribution(kind, target)
    if kind in CAM_FAMILY:
        return analysis.cam(kind, layer, target)
    return analysis.maps(layer, target)[kind]


def _draw_map(ax: Axes, analysis: ImageAnalysis, view: View, layer: str) -> None:
    title = _title(analysis, view, layer)
    saliency = _map_of(analysis, view.map_kind, layer, view.target)
    if view.method == "discriminativity":
        other = _map_of(analysis, view.map_kind, layer, view.other)  # type: ignore[arg-type]
        if view.map_kind == "grad_cam":  # on the input's grid, as lesson 04 draws it and scores it
            saliency, other = (upsample_cam(m, analysis.x.shape[-2:], "bilinear") for m in (saliency, other))
        # Lesson 04's readable scaling: a few extreme pixels would otherwise leave every gradient map pale.
        picture = discriminativity_map(saliency, other, clip_percentile=GRADIENT_CLIP_PERCENTILE)
        scale = f"A - B, each / its {GRADIENT_CLIP_PERCENTILE:g}th percentile"
        show_diverging(ax, picture, title, limit=1.0, colorbar_label=scale)
    elif view.method == "grad_cam" or view.method in CAM_FAMILY:
        show_image(ax, overlay_heatmap(analysis.photo, saliency[0, 0], alpha=view.opacity), title)
        _colour_bar(ax, HEATMAP_CMAP, f"{METHODS[view.method]} / its maximum")
    else:
        show_image(ax, _gradient_overlay(analysis.photo, saliency, view.opacity), title)
        _colour_bar(ax, GRADIENT_CMAP, f"|map| / its {GRADIENT_CLIP_PERCENTILE:g}th percentile")


def _colour_bar(ax: Axes, cmap: str, label: str) -> None:
    """The overlay's colour scale, [0, 1], beside ``ax`` (the same size as ``show_diverging``'s)."""
    ax.figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=ax, fraction=0.046, pad=0.04, label=label)


def _check_view(analysis: object, view: object) -> None:
    if not isinstance(analysis, ImageAnalysis):
        raise TypeError(f"analysis must be an ImageAnalysis, not {describe(analysis)}.")
    if not isinstance(view, View):
        raise TypeError(f"view must be a View (what to show), not {describe(view)}.")
    classes = len(analysis.loaded.categories)
    _check_class(view.target, "The view's target", classes)
    if view.other is not None:
        _check_class(view.other, "The view's class B (other)", classes)


def render_figure(analysis: ImageAnalysis, view: View, *, panel_size: float = 4.5) -> Figure:
    """The picture the model sees, and next to it the view's map (overlaid with ``view.opacity``).

    Grad-CAM is drawn with ``HEATMAP_CMAP`` over the picture, divided by its maximum; Guided
    Backprop, Guided Grad-CAM, SmoothGrad and Integrated Gradients as grayscale magnitudes summed
    over the colour channels (``GRADIENT_CMAP``), divided by their ``GRADIENT_CLIP_PERCENTILE``-th
    percentile and clipped at 1; each overlay has a colour bar naming that scaling. The
    discriminativity map is drawn with ``show_diverging`` on a fixed [-1, 1] scale, red for class
    A, from maps on the input's grid (Grad-CAM upsampled, bilinear). ``view.layer`` ``None`` means
    the model's target layer. A SmoothGrad or IG map not computed yet is computed here
    (``ImageAnalysis.attribution``).
    """
    _check_view(analysis, view)
    if not 0.5 <= check_real(panel_size, "panel_size") <= 50:
        raise ValueError(f"panel_size must be a size in inches from 0.5 to 50, got {describe(panel_size)}.")
    layer = view.layer or analysis.loaded.target_layer_name
    figure = Figure(figsize=(2.4 * panel_size, panel_size), layout="constrained")
    ax_photo, ax_map = figure.subplots(1, 2)
    show_image(ax_photo, analysis.photo, f"{analysis.name}: the model says '{analysis.top[0].label()}'")
    _draw_map(ax_map, analysis, view, layer)
    return figure


def render_png(analysis: ImageAnalysis, view: View, *, dpi: int = 80) -> bytes:
    """``render_figure`` as PNG bytes (what the explorer shows)."""
    _check_view(analysis, view)
    if not 10 <= check_count(dpi, "dpi") <= 600:
        raise ValueError(f"dpi must be from 10 to 600 for a figure on screen (80 is the explorer's), got {int(dpi)}.")
    buffer = io.BytesIO()
    # The fastest zlib level: the same pixels (PNG is lossless), drawn again at every change of a control.
    render_figure(analysis, view).savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _notes(analysis: ImageAnalysis, view: View, layer: str) -> list[str]:
    """Things worth knowing about this view: a tiny image, a Grad-CAM map that is zero everywhere."""
    notes = list(analysis.notes)
    classes = [view.target] + ([view.other] if view.method == "discriminativity" else [])
    if view.uses_layer:
        for c in classes:
            if analysis.grad_cam_is_blank(layer, c):  # type: ignore[arg-type]
                notes.append(
                    f"Grad-CAM for '{analysis.prediction(c).name}' at {layer} is zero everywhere: no region of this "  # type: ignore[arg-type]
                    "layer raises the class score, so the map is blank. Try a more likely class."
                )
    if view.method == "discriminativity" and view.other == view.target:
        notes.append(
            "Class B is class A: a map minus itself is zero everywhere, so the picture is blank. "
            "Choose another class B."
        )
    return notes


# --- the widget layer -------------------------------------------------------------------------


class SaliencyExplorer:
    """The explorer as ipywidgets: ``SaliencyExplorer(load_model()).widget`` in a notebook cell.

    Controls (set ``.value`` to drive it from code): ``image_choice``, ``upload``, ``target``,
    ``class_name`` (type a category), ``method``, ``base`` and ``other`` (discriminativity:
    which map, which class B), ``layer``, ``opacity``. ``image`` shows the PNG, ``message``
    any problem or note. Every change re-renders from ``ImageAnalysis``'s cache (a view shown
    among the last ``PICTURES_KEPT`` is not even drawn again); only a new
    image, a new layer, a class outside the top-k, or a SmoothGrad or Integrated Gradients
    map not yet computed for this image and class runs the model again. While such a map is
    computed, ``progress`` (a label, hidden otherwise) says what is being computed. Uploads over
    ``max_upload_bytes`` or ``max_upload_pixels`` (attributes) are refused with a message.

    Memory stays bounded however long a class uses it: an upload is kept as its analysis (the
    model's input, the picture, the predictions), never as the decoded file, and only the last
    ``uploads_kept`` (``UPLOADS_KEPT``) stay in the menu; only the image shown keeps its maps
    (at most ``MAP_BYTES_KEPT``); the class menu keeps ``TYPED_CLASSES_KEPT`` typed classes; the
    pictures kept are bounded by count and bytes. Whenever a limit drops something, ``message``
    says which limit and what was dropped.
    """

    def __init__(
        self, loaded: LoadedModel, *, top_k: int = 5, samples: Mapping[str, ImageSource] | None = None
    ) -> None:
        if not isinstance(loaded, LoadedModel):
            raise TypeError(f"loaded must be a LoadedModel (from utils.models.load_model()), not {describe(loaded)}.")
        self.loaded = loaded
        self.top_k = _check_top_k(top_k, len(loaded.categories))
        if samples is not None and not isinstance(samples, Mapping):
            raise TypeError(f"samples must be a dict {{name: image}}, not {describe(samples)}.")
        self._sources: dict[str, ImageSource] = dict(
            samples if samples is not None else {name: sample_image_path(name) for name in SAMPLE_IMAGES}
        )
        if not self._sources:
            raise ValueError("samples is empty; give at least one image, e.g. {'cat': sample_image_path('cat')}.")
        if not all(isinstance(name, str) for name in self._sources):
            raise TypeError("samples must name each image by a string, e.g. {'cat': sample_image_path('cat')}.")
        self._analyses: dict[str, ImageAnalysis] = {}
        self._uploads: list[str] = []  # the uploads' keys, oldest first
        self._pictures: OrderedDict[tuple[str, View], bytes] = OrderedDict()  # the last renders
        self._limit_notes: list[str] = []  # what a limit dropped, shown with the next picture
        self._quiet = False
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.max_upload_pixels = MAX_UPLOAD_PIXELS
        self.uploads_kept = UPLOADS_KEPT
        layers = [name for name, _ in conv_layers(loaded.model)]
        if loaded.target_layer_name not in layers:
            layers.append(loaded.target_layer_name)

        self.image_choice = widgets.Dropdown(options=list(self._sources), description="image")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.target = widgets.Dropdown(description="class")
        self.class_name = widgets.Combobox(
            options=list(loaded.categories),
            placeholder="or type a category",
            ensure_option=False,
            continuous_update=False,
            description="",
        )
        self.method = widgets.Dropdown(options=[(label, key) for key, label in METHODS.items()], description="method")
        self.base = widgets.Dropdown(options=[(METHODS[k], k) for k in BASE_METHODS], description="map of")
        self.other = widgets.Dropdown(description="class B")
        self.layer = widgets.Dropdown(options=layers, value=loaded.target_layer_name, description="layer")
        self.opacity = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="opacity")
        self.image = widgets.Image(format="png")
        self.message = widgets.HTML()
        self.progress = widgets.HTML(layout=widgets.Layout(display="none"))
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.image_choice, self.upload]),
                widgets.HBox([self.target, self.class_name]),
                widgets.HBox([self.method, self.base, self.other]),
                widgets.HBox([self.layer, self.opacity]),
                self.progress,
                self.message,
                self.image,
            ]
        )

        self.image_choice.observe(self._on_image, "value")
        self.upload.observe(self._on_upload, "value")
        self.class_name.observe(self._on_class_name, "value")
        for control in (self.target, self.method, self.base, self.other, self.layer, self.opacity):
            control.observe(self._on_control, "value")
        self._select_image(self.image_choice.value)

    # what the controls say

    @property
    def analysis(self) -> ImageAnalysis:
        """The analysis of the image shown."""
        key = self.image_choice.value
        if key not in self._analyses:
            raise ValueError(f"No analysis of the image {describe(key)}: it could not be loaded; choose another image.")
        return self._analyses[key]

    @property
    def view(self) -> View:
        """The ``View`` the controls describe."""
        return View(
            target=self.target.value,
            method=self.method.value,
            layer=self.layer.value,
            opacity=self.opacity.value,
            other=self.other.value,
            base=self.base.value,
        )

    @property
    def forward_passes(self) -> int:
        """Forward passes run so far, over the images kept (see ``ImageAnalysis``)."""
        return sum(a.forward_passes for a in self._analyses.values())

    @property
    def cached_bytes(self) -> int:
        """The bytes the explorer keeps: every analysis's input, picture and maps, and the pictures kept."""
        analyses = sum(
            a.cached_bytes + a.x.numel() * a.x.element_size() + a.photo.nbytes for a in self._analyses.values()
        )
        return analyses + sum(len(png) for png in self._pictures.values())

    # reacting to the controls

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """Change several controls and re-render once, at the end."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _on_control(self, change: Mapping[str, Any]) -> None:
        if not self._quiet:
            self.refresh()

    def _on_image(self, change: Mapping[str, Any]) -> None:
        if not self._quiet:
            self._select_image(change["new"])

    def _select_image(self, key: str) -> None:
        if key not in self._analyses:
            try:
                self._analyses[key] = ImageAnalysis(self.loaded, self._sources[key], top_k=self.top_k, name=key)
            except (ImageLoadError, ValueError, TypeError) as error:
                self._show_problem(str(error))
                return
        for other_key, other in self._analyses.items():
            if other_key != key:
                other.forget()  # only the image shown keeps its maps at full size
        top = [(f"{rank}. {p.label()}", p.index) for rank, p in enumerate(self._analyses[key].top, start=1)]
        with self._batch():
            self.target.options = self.other.options = top
            self.target.value = top[0][1]
            self.other.value = top[min(1, len(top) - 1)][1]
            self.class_name.value = ""
        self.refresh()

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[0]
        name = str(upload.get("name") or "upload")
        try:
            limits = {"max_bytes": self.max_upload_bytes, "max_pixels": self.max_upload_pixels}
            picture = image_from_upload(upload["content"], name, **limits)
            key = self._new_key(f"upload: {name}")
            analysis = ImageAnalysis(self.loaded, picture, top_k=self.top_k, name=key)
            del picture  # the analysis holds what the explorer needs; the decoded upload is not kept
        except Exception as error:  # noqa: BLE001 -- an upload must never break the widget; say what happened
            reason = str(error) if isinstance(error, (ValueError, TypeError)) else f"{type(error).__name__}: {error}"
            self._show_problem(reason, "That upload could not be used; the explorer still shows the previous image.")
            return
        finally:
            with self._batch():
                self.upload.value = ()  # ready for the next upload, and the bytes are not kept twice
        self._analyses[key] = analysis
        self._uploads.append(key)
        self._drop_old_uploads()
        with self._batch():
            self.image_choice.options = [*self._sources, *self._uploads]
            self.image_choice.value = key
        self._select_image(key)

    def _drop_old_uploads(self) -> None:
        kept = max(1, check_count(self.uploads_kept, "uploads_kept"))
        while len(self._uploads) > kept:
            dropped = self._uploads.pop(0)
            del self._analyses[dropped]
            for picture_key in [k for k in self._pictures if k[0] == dropped]:
                del self._pictures[picture_key]
            self._limit_notes.append(
                f"The explorer keeps the last {kept} uploads: '{dropped}' was dropped (upload it again to see it)."
            )

    def _new_key(self, key: str) -> str:
        unique, n = key, 2
        while unique in self._sources or unique in self._uploads:
            unique, n = f"{key} ({n})", n + 1
        return unique

    def _on_class_name(self, change: Mapping[str, Any]) -> None:
        typed = str(change["new"]).strip()
        if self._quiet or not typed:
            return
        try:
            index = category_index(typed, self.loaded.categories)
            analysis = self.analysis
        except (ValueError, TypeError) as error:
            self._show_problem(str(error))
            return
        if index not in [value for _, value in self.target.options]:
            extra = (analysis.prediction(index).label(), index)
            with self._batch():
                other = self.other.value
                self.target.options = self._bounded_classes([*self.target.options, extra], index, other)
                self.other.options = self.target.options
                self.other.value = other
        if self.target.value != index:
            self.target.value = index  # re-renders
        else:
            self.refresh()

    def _bounded_classes(self, options: list[tuple[str, int]], new: int, other: int) -> list[tuple[str, int]]:
        """The class menu with at most ``TYPED_CLASSES_KEPT`` typed classes: the oldest (not class B) dropped."""
        top = len(self.analysis.top)
        typed = options[top:]
        while len(typed) > TYPED_CLASSES_KEPT:
            oldest = next(option for option in typed if option[1] not in (new, other))
            typed.remove(oldest)
            self._limit_notes.append(
                f"The class menu keeps the last {TYPED_CLASSES_KEPT} typed classes: '{oldest[0]}' was dropped "
                "(type it again to see it)."
            )
        return [*options[:top], *typed]

    def refresh(self) -> None:
        """Render the view the controls describe; a problem is shown in ``message``, never raised."""
        try:
            analysis = self.analysis
            view = self.view
            self.layer.disabled = not view.uses_layer
            self.opacity.disabled = not view.uses_opacity
            self.base.disabled = self.other.disabled = view.method != "discriminativity"
            dropped = analysis.dropped
            self.image.value = self._picture(view)
            layer = view.layer or self.loaded.target_layer_name
            notes = _notes(analysis, view, layer)
            if analysis.dropped > dropped:
                notes.append(
                    f"The explorer keeps at most {analysis.max_bytes / 2**20:.0f} MiB of maps per image: "
                    f"{analysis.dropped - dropped} older map sets were dropped (they are computed again if needed)."
                )
            notes, self._limit_notes = self._limit_notes + notes, []
            self.message.value = "".join(f"<p>{html.escape(note)}</p>" for note in notes)
        except Exception as error:  # the widget must survive anything a learner does; say what happened
            self._show_problem(f"{type(error).__name__}: {error}")

    def _picture(self, view: View) -> bytes:
        """``render_png`` of the view, kept for the last ``PICTURES_KEPT`` views (``PICTURE_BYTES_KEPT`` at most)."""
        key = (self.image_choice.value, replace(view, layer=view.layer or self.loaded.target_layer_name))
        if key in self._pictures:
            self._pictures.move_to_end(key)
            return self._pictures[key]
        self._compute_captum_maps(view)
        picture = self._pictures[key] = render_png(self.analysis, view)
        while len(self._pictures) > 1 and (
            len(self._pictures) > PICTURES_KEPT or sum(map(len, self._pictures.values())) > PICTURE_BYTES_KEPT
        ):
            self._pictures.popitem(last=False)
        return picture

    def _compute_captum_maps(self, view: View) -> None:
        """Compute the SmoothGrad or IG maps the view needs and the cache lacks, with ``progress`` shown meanwhile."""
        missing = [(m, c) for m, c in view.captum_maps if not self.analysis.has_attribution(m, c)]
        for method, target in missing:
            name = self.analysis.prediction(target).name
            batches = -(
                -(SMOOTHGRAD_SAMPLES if method == "smoothgrad" else IG_STEPS) // self.analysis.captum_batch_size
            )
            how = "in one batch" if batches == 1 else f"in {batches} batches"
            self.progress.value = (
                f"<p><i>Computing {METHODS[method]} for '{html.escape(name)}' "
                f"({_method_detail(method)} {how})..."
                " It is kept: showing it again for this image and class is instant.</i></p>"
            )
            self.progress.layout.display = None  # shown now: ipywidgets sends the change before the work starts
            try:
                self.analysis.attribution(method, target)
            finally:
                self.progress.layout.display = "none"
                self.progress.value = ""
        layer = view.layer or self.loaded.target_layer_name
        if view.method == "score_cam" and not self.analysis.has_cam("score_cam", layer, view.target):
            name = self.analysis.prediction(view.target).name
            self.progress.value = (
                f"<p><i>Computing Score-CAM for '{html.escape(name)}' at {html.escape(layer)} (one forward pass per "
                "channel of the layer)... It is kept: showing it again for this image and class is instant.</i></p>"
            )
            self.progress.layout.display = None
            try:
                self.analysis.cam("score_cam", layer, view.target)
            finally:
                self.progress.layout.display = "none"
                self.progress.value = ""

    def _show_problem(self, text: str, after: str = "") -> None:
        extra = f" {html.escape(after)}" if after else ""
        self.message.value = f'<p style="color:#b00020"><b>Problem:</b> {html.escape(text)}{extra}</p>'
