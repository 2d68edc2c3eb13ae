"""From model outputs and attributions to things a learner can read: top-5 lists, maps, figures.

* ``display_imagenet_output`` prints a model's top classes with their probabilities.
* ``process_attributions`` (the article's ``process_grads``) turns a raw attribution into an
  array ready for ``imshow``; ``overlay_heatmap`` lays a map over a picture.
* ``show_image`` / ``show_heatmap`` / ``show_diverging`` / ``draw_regions`` draw on axes you
  pass in. Nothing here touches global pyplot state or rcParams. Arrays and tensors are drawn
  as they are (never rounded to 8 bits or sent back through the image loader); files and PIL
  images go through ``utils.datasets.load_image``.

Under the test switch ``XAI_MODEL=vgg16 XAI_RANDOM_WEIGHTS=1`` (``utils.models.random_weights_switch``)
every panel drawn by ``show_image``, ``show_heatmap`` and ``show_diverging`` carries a red "random
weights" mark, so that no figure of such a run can pass for the article's model.

One colormap per quantity, so every lesson shows the same quantity the same way:
``HEATMAP_CMAP`` for Grad-CAM heatmaps and overlays, ``GRADIENT_CMAP`` for grayscale gradient
maps (Guided Backpropagation, Guided Grad-CAM), ``DIVERGING_CMAP`` for signed maps centred on
zero (red = positive, blue = negative).
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from matplotlib import colormaps, patheffects
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize, is_color_like
from matplotlib.figure import Figure  # noqa: F401 -- the doctests draw on a Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from utils.categories import category_names, check_flag, check_real, describe
from utils.datasets import ImageSource, load_image
from utils.models import random_weights_switch
from utils.saliency import MapLike, as_float_array, drop_leading_ones

__all__ = [
    "DIVERGING_CMAP",
    "GRADIENT_CLIP_PERCENTILE",
    "GRADIENT_CMAP",
    "HEATMAP_CMAP",
    "display_imagenet_output",
    "draw_regions",
    "overlay_heatmap",
    "process_attributions",
    "process_grads",
    "show_diverging",
    "show_heatmap",
    "show_image",
]

HEATMAP_CMAP = "jet"
"""Grad-CAM heatmaps and their overlays (the article's choice)."""
GRADIENT_CMAP = "gray"
"""Grayscale gradient maps: Guided Backpropagation and Guided Grad-CAM magnitudes."""
GRADIENT_CLIP_PERCENTILE = 99.5
"""Gradient maps are heavy-tailed: figures divide them by this percentile of |map| (not the maximum) and clip."""
DIVERGING_CMAP = "bwr"
"""Signed maps centred on zero, e.g. class A minus class B: red = positive (A), blue = negative (B)."""

Mode = Literal["abs", "relu", "none"]
# Float pictures may overshoot [0, 1] by rounding error this small; they are clipped.
_FLOAT_SLACK = 1e-4

# What each ``mode`` of ``process_attributions`` does to the raw values, elementwise.
_MODES: dict[str, Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]] = {
    "abs": np.abs,
    "relu": lambda a: np.maximum(a, 0.0),
    "none": lambda a: a,
}


# --- model outputs ----------------------------------------------------------------------------


def display_imagenet_output(
    output: torch.Tensor | npt.NDArray[Any],
    n: int = 5,
    categories: Sequence[str] | None = None,
) -> int:
    """Print the top-``n`` classes with their softmax probabilities; return the top class index.

    ``output`` holds the logits of one image: ``1 x K`` or ``K`` (a tensor on any device or an
    array; it is not changed). A batch of more than one image raises a ``ValueError``: pass one
    row, e.g. ``output[i:i + 1]``. ``categories`` defaults to the 1000 ImageNet names. Ties keep
    the lower index first.

    >>> display_imagenet_output(torch.tensor([[1.0, 3.0, 2.0]]), n=2, categories=("cat", "dog", "car"))
    1. dog  66.52%  (class 1)
    2. car  24.47%  (class 2)
    1
    """
    names = category_names(categories)
    logits = _logits(output, len(names))
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {describe(n)}.")
    probabilities = torch.softmax(logits, dim=0)
    top = torch.argsort(probabilities, descending=True, stable=True)[: min(int(n), len(names))].tolist()
    name_width = max(len(names[i]) for i in top)
    rank_width = len(str(len(top)))
    for rank, index in enumerate(top, start=1):
        probability = probabilities[index].item()
        print(f"{rank:>{rank_width}}. {names[index]:<{name_width}} {probability:>7.2%}  (class {index})")
    return int(top[0])


def _logits(output: torch.Tensor | npt.NDArray[Any], num_classes: int) -> torch.Tensor:
    """A new 1-D float64 CPU copy of one image's logits, checked against ``num_classes``."""
    if not isinstance(output, (torch.Tensor, np.ndarray)):
        raise TypeError(f"output must be the model's logits, a tensor or an array, not {type(output).__name__}.")
    scores = torch.from_numpy(as_float_array(output, "output"))
    shape = tuple(scores.shape)
    if scores.ndim == 2 and scores.shape[0] != 1:
        raise ValueError(f"output holds a batch of {scores.shape[0]} images; pass one row, e.g. output[i:i + 1].")
    scores = scores.reshape(-1) if scores.ndim == 2 else scores
    if scores.ndim != 1:
        raise ValueError(f"output must be 1 x K or K logits, got shape {shape}.")
    if scores.numel() != num_classes:
        raise ValueError(
            f"output has {scores.numel()} scores but there are {num_classes} category names; "
            "pass the model's categories (LoadedModel.categories)."
        )
    if not torch.isfinite(scores).all():
        raise ValueError("output contains NaN or infinite logits; check the model's forward pass.")
    return scores


# --- attributions -----------------------------------------------------------------------------


def process_attributions(
    attr: MapLike,
    *,
    mode: Mode = "abs",
    normalise: bool = True,
    gamma: float | None = None,
    grayscale: bool = False,
    cmap: str | Colormap | None = None,
    clip_percentile: float | None = None,
) -> npt.NDArray[np.float32]:
    """Turn a raw attribution into a new float32 array ready for ``imshow``; ``attr`` is unchanged.

    ``attr`` is ``H x W``, ``C x H x W``, ``1 x C x H x W`` or ``1 x 1 x H x W`` (channels
    first), a tensor (any device, may require grad) or an array. A single channel gives an
    ``H x W`` map; three channels give ``H x W x 3`` (channels last).

    The steps, in order:

    1. ``mode``: ``"abs"`` keeps magnitudes, ``"relu"`` keeps positive evidence only,
       ``"none"`` keeps the signs.
    2. ``grayscale=True`` sums the channels (as Captum's ``visualize_image_attr`` does), giving
       ``H x W``; it is needed for more than three channels.
    3. ``normalise=True`` divides by the largest magnitude over the whole map (one scale for
       all channels, so colours keep their balance), so zero stays at zero: ``"abs"`` and
       ``"relu"`` land in [0, 1]. ``clip_percentile`` (e.g. 99.5) divides by that percentile
       of the magnitudes instead and clips above it, so a few extreme pixels do not leave the
       rest of a gradient map black (Captum's ``outlier_perc`` does the same); a map so sparse
       that the percentile is 0 is divided by its maximum instead, so [0, 1] always holds.
       With ``"none"`` the map lands in [-1, 1] and is then shifted
       to [0, 1] so that **zero sits at 0.5**, the centre of a diverging colormap such as
       ``DIVERGING_CMAP``. An all-zero map stays all zeros (0.5 for ``"none"``): never NaN.
    4. ``gamma`` skews the magnitudes, ``|a| ** gamma`` keeping the sign (applied before the
       shift of step 3): below 1 brings out faint values, above 1 keeps only the strongest.
    5. ``cmap`` (a name from ``matplotlib.colormaps`` or a ``Colormap``) colours an ``H x W``
       map, giving ``H x W x 3`` RGB (alpha dropped); values outside [0, 1] take the ends.

    >>> attr = torch.tensor([[[-2.0, 0.0], [1.0, 4.0]]])  # 1 x 2 x 2: one channel
    >>> process_attributions(attr)
    array([[0.5 , 0.  ],
           [0.25, 1.  ]], dtype=float32)
    >>> process_attributions(attr, mode="none")
    array([[0.25 , 0.5  ],
           [0.625, 1.   ]], dtype=float32)
    >>> process_attributions(torch.zeros(1, 3, 4, 4), grayscale=True, cmap="gray").shape
    (4, 4, 3)
    >>> process_attributions(np.array([[0.0, 1.0], [3.0, 100.0]]), clip_percentile=50)
    array([[0. , 0.5],
           [1. , 1. ]], dtype=float32)
    """
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"Unknown mode {describe(mode)}; valid modes: {', '.join(_MODES)}.")
    if gamma is not None and not check_real(gamma, "gamma") > 0:
        raise ValueError(f"gamma must be positive (e.g. 0.5 to bring out faint values), got {describe(gamma)}.")
    if clip_percentile is not None and not 0 < check_real(clip_percentile, "clip_percentile") <= 100:
        raise ValueError(f"clip_percentile must be in (0, 100], e.g. 99.5; got {describe(clip_percentile)}.")
    normalise, grayscale = check_flag(normalise, "normalise"), check_flag(grayscale, "grayscale")
    values = _MODES[mode](_map_array(attr, "attr"))
    if values.ndim == 3:
        channels = values.shape[0]
        if not grayscale and channels != 3:
            raise ValueError(f"attr has {channels} channels; pass grayscale=True to sum them into one map.")
        values = values.sum(axis=0) if grayscale else np.moveaxis(values, 0, -1)
    magnitudes = np.abs(values)
    scale = float(magnitudes.max())
    if clip_percentile is not None and float(np.percentile(magnitudes, clip_percentile)) > 0:
        scale = float(np.percentile(magnitudes, clip_percentile))  # else a sparse map: the maximum scales it
    if normalise and scale > 0:
        with np.errstate(over="ignore"):  # a tiny scale overflows to inf, which the clip takes to +-1
            values = np.clip(values / scale, -1.0, 1.0)
    if gamma is not None:
        values = np.sign(values) * np.abs(values) ** gamma
    if normalise and mode == "none":
        values = (values + 1.0) / 2.0
    if cmap is not None:
        if values.ndim != 2:
            raise ValueError("cmap colours a single-channel map; pass grayscale=True as well.")
        values = _colormap(cmap)(values)[..., :3]
    return values.astype(np.float32)


process_grads = process_attributions
"""The article's name for ``process_attributions``."""


def _map_array(data: MapLike, what: str) -> npt.NDArray[np.float64]:
    """A new float64 ``H x W`` or ``C x H x W`` copy of ``data`` to draw, leading size-1 dimensions dropped.

    ``utils.saliency.one_map`` does the same conversion for maps that are only reduced (summed,
    ranked); this one differs on purpose, for a figure: a batch is named as a batch, and an
    ``H x W x 1`` or ``H x W x 3`` array (a picture, channels last) is refused with that hint,
    where ``one_map`` would read its rows as channels.
    """
    array = as_float_array(data, what)
    shape = array.shape
    array = drop_leading_ones(array)
    if array.ndim == 4:
        raise ValueError(f"{what} holds a batch of {shape[0]} maps (shape {shape}); pass one, e.g. {what}[i:i + 1].")
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(f"{what} must be H x W, C x H x W, 1 x C x H x W or 1 x 1 x H x W, got shape {shape}.")
    if array.ndim == 3 and array.shape[0] not in (1, 3) and array.shape[-1] in (1, 3):
        raise ValueError(f"{what} of shape {shape} looks channels-last; pass it channels first (C x H x W).")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or infinite values; check the method that produced it.")
    return array


def _map_2d(data: MapLike, what: str) -> npt.NDArray[np.float64]:
    """A new float64 ``H x W`` copy of a single-channel map."""
    array = _map_array(data, what)
    if array.ndim != 2:
        raise ValueError(
            f"{what} must be a single-channel H x W map, got shape {tuple(np.shape(data))}; reduce the channels "
            "with process_attributions(..., grayscale=True), or draw an RGB picture with show_image."
        )
    return array


def _colormap(cmap: str | Colormap) -> Colormap:
    """The ``Colormap`` named ``cmap`` (from ``matplotlib.colormaps``), or ``cmap`` itself."""
    if isinstance(cmap, Colormap):
        return cmap
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be a colormap name (see matplotlib.colormaps) or a Colormap, not {describe(cmap)}.")
    try:
        return colormaps[cmap]
    except KeyError:
        close = ", ".join(repr(c) for c in difflib.get_close_matches(str(cmap), list(colormaps), n=3)) or "none"
        raise ValueError(f"Unknown colormap {describe(cmap)}; closest: {close} (see matplotlib.colormaps).") from None


def overlay_heatmap(
    image: ImageSource,
    heatmap: MapLike,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = HEATMAP_CMAP,
    normalise: bool = True,
) -> npt.NDArray[np.float32]:
    """Blend a coloured heatmap over a picture: a new ``H x W x 3`` float32 array in [0, 1].

    ``image`` is a picture as ``show_image`` takes it, e.g. ``deprocess_imagenet_image(x)``
    (used as it is: ``alpha=0`` gives the picture back exactly); ``heatmap`` is a
    single-channel map (e.g. a Grad-CAM map, ``cam[0, 0]``) at any resolution: a coarse map is
    upsampled to the image size with bilinear interpolation, which is for display only. With
    ``normalise=True`` the map is scaled as ``process_attributions(heatmap, mode="relu")``
    scales it: negative values (which Grad-CAM's ReLU removes) become 0 and the maximum becomes
    1, so each map fills the colormap. To compare maps at one scale, divide them by a shared
    maximum and pass ``normalise=False`` (values must then lie in [0, 1]). Each pixel is
    ``(1 - alpha) * image + alpha * cmap(heatmap)``.

    >>> picture = np.zeros((4, 4, 3))
    >>> blended = overlay_heatmap(picture, np.full((2, 2), 7.0), alpha=0.5, cmap="gray")
    >>> blended.shape, float(blended.min()), float(blended.max())
    ((4, 4, 3), 0.5, 0.5)
    """
    if not 0.0 <= check_real(alpha, "alpha") <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (0 = picture only, 1 = heatmap only), got {describe(alpha)}.")
    picture = _picture(image, "image")
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=-1)
    heat = _map_2d(heatmap, "heatmap")
    if check_flag(normalise, "normalise"):
        heat = process_attributions(heat, mode="relu").astype(np.float64)
    low, high = float(heat.min()), float(heat.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"heatmap values must lie in [0, 1] with normalise=False, these span [{low:.3g}, {high:.3g}]; "
            "pass normalise=True, or divide the map by its maximum first."
        )
    if heat.shape != picture.shape[:2]:
        upsampled = F.interpolate(
            torch.from_numpy(heat)[None, None], size=picture.shape[:2], mode="bilinear", align_corners=False
        )
        heat = upsampled[0, 0].numpy()
    colours = _colormap(cmap)(heat)[..., :3]
    return ((1.0 - alpha) * picture + alpha * colours).astype(np.float32)


def _picture(image: ImageSource, what: str) -> npt.NDArray[np.float64]:
    """A new float64 picture in [0, 1] to draw: ``H x W`` (one channel) or ``H x W x 3``.

    Float arrays and tensors are used as they are (no 8-bit rounding), channels last for arrays
    and channels first for tensors; RGBA is composited on white, as ``load_image`` does. Files,
    bytes, PIL images and integer pixels go through ``load_image`` (exact for 8-bit pixels).
    """
    is_tensor = isinstance(image, torch.Tensor)
    floating = image.is_floating_point() if is_tensor else isinstance(image, np.ndarray) and image.dtype.kind == "f"
    if not floating:
        rgb = np.asarray(load_image(image), dtype=np.float64) / 255.0
        if not isinstance(image, (np.ndarray, torch.Tensor)):
            return rgb
        channels = image.shape[0] if is_tensor else image.shape[-1]
        return rgb[..., 0] if image.ndim == 2 or channels == 1 else rgb
    array = as_float_array(image, what)  # type: ignore[arg-type]
    shape = array.shape
    if is_tensor and array.ndim == 3 and array.shape[0] in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or array.size == 0:
        layout = "a tensor C x H x W" if is_tensor else "an array H x W x C"
        raise ValueError(f"{what} of shape {shape} is not a picture; pass H x W or {layout} with C = 1, 3 or 4.")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or infinite values, so it cannot be drawn.")
    low, high = float(array.min()), float(array.max())
    if low < -_FLOAT_SLACK or high > 1 + _FLOAT_SLACK:
        raise ValueError(
            f"{what} values must lie in [0, 1] to be drawn as a picture, these span [{low:.3g}, {high:.3g}]; "
            "scale it first (process_attributions(..., normalise=True), deprocess_imagenet_image for a model input), "
            "or draw a signed map with show_diverging."
        )
    array = np.clip(array, 0.0, 1.0)
    if array.ndim == 3 and array.shape[-1] == 4:  # transparent pixels show as white
        array = array[..., :3] * array[..., 3:] + (1.0 - array[..., 3:])
    return array


# --- figures ----------------------------------------------------------------------------------


def show_image(ax: Axes, image: ImageSource, title: str | None = None, *, cmap: str | Colormap | None = None) -> Axes:
    """Draw a picture on ``ax``, axes off, with a title.

    ``image`` is an ``H x W (x 3)`` array (floats in [0, 1] or 8-bit), a ``(3 x) H x W`` tensor,
    a PIL image or a file; float pixels are drawn as they are. A single-channel picture is
    coloured with ``cmap`` on a fixed [0, 1] scale, e.g. ``GRADIENT_CMAP`` for a grayscale
    gradient map from ``process_attributions``; without it, in gray. Values outside [0, 1]
    raise a ``ValueError`` saying how to scale them.

    >>> ax = Figure().add_subplot()
    >>> show_image(ax, np.zeros((2, 2, 3)), "black").get_title(), ax.axison
    ('black', False)
    >>> show_image(ax, np.eye(2), cmap="gray").images[-1].get_cmap().name
    'gray'
    """
    _check_axes(ax)
    picture = _picture(image, "image")
    if picture.ndim == 2:
        ax.imshow(picture, cmap=_colormap(GRADIENT_CMAP if cmap is None else cmap), vmin=0.0, vmax=1.0)
    elif cmap is not None:
        raise ValueError(f"cmap colours single-channel pictures; this one has shape {tuple(np.shape(image))}.")
    else:
        ax.imshow(picture)
    ax.set_title(_title(title))
    _hide_axes(ax)
    _mark_random_weights(ax)
    return ax


RANDOM_WEIGHTS_MARK = "random weights"
"""The text on every panel drawn under the test switch ``XAI_RANDOM_WEIGHTS=1`` (VGG16 with random weights)."""


def _mark_random_weights(ax: Axes) -> None:
    """Under the test switch, write ``RANDOM_WEIGHTS_MARK`` in red in the panel's corner (once per panel)."""
    if random_weights_switch() and not any(text.get_text() == RANDOM_WEIGHTS_MARK for text in ax.texts):
        ax.text(
            0.02,
            0.02,
            RANDOM_WEIGHTS_MARK,
            transform=ax.transAxes,
            fontsize=7,
            color="red",
            ha="left",
            va="bottom",
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
        )


def _hide_axes(ax: Axes) -> None:
    """Axes off, with no ticks: matplotlib then lays out no tick labels nobody sees.

    With the axes merely off, placing a title still lays out a full set of tick labels on the y axis
    (``Axes._update_title_position``), about a third of the time of drawing a picture panel. A
    figure that wants labels under a picture turns the axes on and sets its own ticks (lesson 05).
    """
    ax.set_axis_off()
    for axis, shared in ((ax.xaxis, ax.get_shared_x_axes()), (ax.yaxis, ax.get_shared_y_axes())):
        if len(shared.get_siblings(ax)) == 1:  # an axis shared with a plot keeps the plot's ticks
            axis.set_ticks([])


def _check_axes(ax: object) -> Axes:
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be matplotlib Axes to draw on (e.g. figure.add_subplot()), not {describe(ax)}.")
    return ax


def _title(title: object) -> str:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be text (a str) or None, not {describe(title)}.")
    return title or ""


def show_heatmap(
    ax: Axes,
    heatmap: MapLike,
    title: str | None = None,
    cmap: str | Colormap = HEATMAP_CMAP,
    colorbar: bool = True,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar_label: str | None = None,
) -> Axes:
    """Draw a single-channel map on ``ax`` with ``cmap`` and, by default, a colour bar.

    ``vmin`` / ``vmax`` fix the colour scale (default: the map's range), e.g. 0 and 1 to
    compare normalised maps across panels; ``colorbar_label`` says what the colours measure
    (e.g. ``"|gradient| / its 99.5th percentile"``).

    >>> ax = Figure().add_subplot()
    >>> ax = show_heatmap(ax, np.array([[0.0, 1.0]]), "cam", vmin=0, vmax=1)
    >>> ax.images[0].get_cmap().name, ax.images[0].get_clim(), ax.images[0].colorbar is not None
    ('jet', (0.0, 1.0), True)
    """
    _check_axes(ax)
    low, high = (None if v is None else check_real(v, name) for v, name in ((vmin, "vmin"), (vmax, "vmax")))
    bar = _colour_bar_label(colorbar, colorbar_label)
    drawn = ax.imshow(_map_2d(heatmap, "heatmap"), cmap=_colormap(cmap), vmin=low, vmax=high)
    _finish_map(ax, drawn, title, bar)
    return ax


def show_diverging(
    ax: Axes,
    diff: MapLike,
    title: str | None = None,
    cmap: str | Colormap = DIVERGING_CMAP,
    colorbar: bool = True,
    *,
    limit: float | None = None,
    colorbar_label: str | None = None,
) -> Axes:
    """Draw a signed map on ``ax`` with a diverging colormap centred on zero.

    The colour scale is symmetric, ``vmin = -vmax`` with ``vmax = limit`` (default: the largest
    magnitude in ``diff``), so zero is white and equal magnitudes get equal colour strength on
    both sides; with ``DIVERGING_CMAP``, red = positive (e.g. class A), blue = negative (class B).
    (A ``TwoSlopeNorm`` with unequal ends would stretch the weaker side and exaggerate it.)

    >>> ax = show_diverging(Figure().add_subplot(), np.array([[-1.0, 3.0]]), "A - B")
    >>> ax.images[0].get_clim()
    (-3.0, 3.0)
    """
    _check_axes(ax)
    values = _map_2d(diff, "diff")
    if limit is not None and not check_real(limit, "limit") > 0:
        raise ValueError(f"limit must be positive, got {describe(limit)}.")
    bound = float(limit) if limit is not None else float(np.abs(values).max()) or 1.0
    if not np.isfinite(2.0 * bound):
        raise ValueError(f"The colour scale reaches {bound:.3g}, too large to draw; scale the map (or limit) down.")
    bar = _colour_bar_label(colorbar, colorbar_label)
    drawn = ax.imshow(values, cmap=_colormap(cmap), norm=Normalize(vmin=-bound, vmax=bound))
    _finish_map(ax, drawn, title, bar)
    return ax


def _colour_bar_label(colorbar: object, label: object) -> str | None:
    """The colour bar's label ("" for none), or None for no colour bar; checked before anything is drawn."""
    if label is not None and not isinstance(label, str):
        raise TypeError(f"colorbar_label must be text (a str) or None, not {describe(label)}.")
    if not check_flag(colorbar, "colorbar"):
        if label:
            raise ValueError("colorbar_label labels the colour bar; pass colorbar=True (the default) or no label.")
        return None
    return label or ""


def _finish_map(ax: Axes, drawn: Any, title: str | None, colorbar_label: str | None) -> None:
    ax.set_title(_title(title))
    _hide_axes(ax)
    _mark_random_weights(ax)
    if colorbar_label is not None:
        ax.figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04, label=colorbar_label)


REGION_COLOURS: tuple[str, ...] = ("white", "black", "magenta", "cyan")
"""Outline colours of marked regions, in order: white and black read on the jet and gray heatmaps; on a diverging
map, whose zero is white, pass ``REGION_COLOURS[1:]`` (as lessons 04 and 06 do)."""


def draw_regions(
    ax: Axes,
    masks: Mapping[str, MapLike] | Sequence[MapLike],
    *,
    colours: Sequence[str] = REGION_COLOURS,
    linewidth: float = 1.5,
    legend: bool = True,
) -> Axes:
    """Outline each marked region on ``ax`` (a contour at the mask's edge), over what is drawn there.

    ``masks`` is ``{label: mask}`` (as ``utils.regions.region_masks`` returns) or a sequence of
    masks: ``H x W`` boolean (or 0/1) arrays or tensors on the grid of the picture below. Each
    region gets the next colour of ``colours``; with ``legend`` and labels, a legend below the axes
    (outside the picture, up to three names a row) names them.
    A region that reaches the picture's edge is outlined along that edge too (e.g. the left half
    of a picture gets a closed frame), and the axes' limits stay those of the picture.

    >>> ax = Figure().add_subplot()
    >>> _ = draw_regions(ax, {"left": np.array([[1, 1, 0, 0]] * 4)})
    >>> len(ax.collections), ax.get_legend().get_texts()[0].get_text()
    (1, 'left')
    """
    _check_axes(ax)
    if isinstance(masks, (np.ndarray, torch.Tensor)) and masks.ndim >= 2:
        masks = [masks] if masks.ndim == 2 else list(masks)
    if not isinstance(masks, (Mapping, list, tuple)):
        raise TypeError(f"masks must be {{label: mask}} or a list of H x W masks, not {describe(masks)}.")
    labelled = list(masks.items()) if isinstance(masks, Mapping) else [("", m) for m in masks]
    if not labelled:
        raise ValueError("draw_regions needs at least one mask.")
    listed = isinstance(colours, Sequence) and not isinstance(colours, str) and len(colours) > 0
    if not listed or not all(map(is_color_like, colours)):
        raise ValueError(
            f"colours must be a non-empty list of colours, e.g. ('white', 'black'); got {describe(colours)}."
        )
    if not check_real(linewidth, "linewidth") > 0 or not math.isfinite(linewidth):
        raise ValueError(f"linewidth must be a positive number of points, got {describe(linewidth)}.")
    check_flag(legend, "legend")
    handles = []
    limits = (ax.get_xlim(), ax.get_ylim())
    for (label, mask), colour in zip(labelled, itertools.cycle(colours)):
        values = _map_2d(mask, f"mask {label!r}" if label else "mask")
        if min(values.shape) < 2:
            raise ValueError(f"mask {label!r} of shape {values.shape} is too thin to outline; H and W must be >= 2.")
        # A border of "outside" around the mask closes the contour along the picture's edges (at -0.5 and W - 0.5,
        # where imshow's pixels end).
        padded = np.pad(values > 0.5, 1)
        rows, columns = np.arange(-1, values.shape[0] + 1), np.arange(-1, values.shape[1] + 1)
        outline = ax.contour(columns, rows, padded, levels=[0.5], colors=[colour], linewidths=linewidth)
        if ax.images:  # clipped a little outside the view, so that a line along the picture's edge shows whole
            outline.set_clip_path(_view_with_margin(ax, limits))
        # A gray edge keeps a white (or black) outline's swatch visible in the legend, on any page colour.
        edge = [patheffects.withStroke(linewidth=linewidth + 2, foreground="0.5")]
        handles.append(Line2D([], [], color=colour, linewidth=linewidth, label=label, path_effects=edge))
    if ax.images:  # the picture keeps its frame: the outlines' border must not widen the view
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    if legend and any(label for label, _ in labelled):
        # Below the axes, centred, so that it never hides part of the picture (a legend inside covered a cat's chin).
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=min(len(handles), 3),
            fontsize="small",
            frameon=False,
            borderaxespad=0.2,
            handlelength=1.5,
            columnspacing=1.0,
        )
    _mark_random_weights(ax)  # a picture drawn with ax.imshow (lesson 03's article code) is outlined here
    return ax


def _view_with_margin(
    ax: Axes, limits: tuple[tuple[float, float], tuple[float, float]], margin: float = 0.02
) -> Rectangle:
    """The view ``limits`` of ``ax``, widened by ``margin`` of their size on every side: a clip path in data units."""
    (x0, x1), (y0, y1) = limits
    width, height = abs(x1 - x0), abs(y1 - y0)
    corner = (min(x0, x1) - margin * width, min(y0, y1) - margin * height)
    return Rectangle(corner, (1 + 2 * margin) * width, (1 + 2 * margin) * height, transform=ax.transData)
