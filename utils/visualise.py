"""From model outputs and attributions to things a learner can read: top-5 lists, maps, figures.

* ``display_imagenet_output`` prints a model's top classes with their probabilities.
* ``process_attributions`` (the article's ``process_grads``) turns a raw attribution into an
  array ready for ``imshow``; ``overlay_heatmap`` lays a map over a picture.
* ``show_image`` / ``show_heatmap`` / ``show_diverging`` draw on axes you pass in, and
  ``plot_panels`` draws a row of them. Nothing here touches global pyplot state or rcParams:
  figures are ``matplotlib.figure.Figure`` objects unless you ask for pyplot.

One colormap per quantity, so every lesson shows the same quantity the same way:
``HEATMAP_CMAP`` for Grad-CAM heatmaps and overlays, ``GRADIENT_CMAP`` for grayscale gradient
maps (Guided Backpropagation, Guided Grad-CAM), ``DIVERGING_CMAP`` for signed maps centred on
zero (red = positive, blue = negative).
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from utils.datasets import ImageSource, imagenet_categories, load_image

__all__ = [
    "DIVERGING_CMAP",
    "GRADIENT_CLIP_PERCENTILE",
    "GRADIENT_CMAP",
    "HEATMAP_CMAP",
    "display_imagenet_output",
    "draw_regions",
    "overlay_heatmap",
    "plot_panels",
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
"""Gradient maps are heavy-tailed: figures scale them by this percentile of |map| (not the maximum) and clip above it."""
DIVERGING_CMAP = "bwr"
"""Signed maps centred on zero, e.g. class A minus class B: red = positive (A), blue = negative (B)."""

MapLike = Union[npt.NDArray[Any], torch.Tensor]
"""An attribution or heatmap: a numpy array or a torch tensor (any device, may require grad)."""
Mode = Literal["abs", "relu", "none"]
PanelKind = Literal["image", "heatmap", "diverging"]

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
    names = tuple(imagenet_categories() if categories is None else categories)
    logits = _logits(output, len(names))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    probabilities = torch.softmax(logits, dim=0)
    top = torch.argsort(probabilities, descending=True, stable=True)[: min(n, len(names))].tolist()
    name_width = max(len(names[i]) for i in top)
    rank_width = len(str(len(top)))
    for rank, index in enumerate(top, start=1):
        probability = probabilities[index].item()
        print(f"{rank:>{rank_width}}. {names[index]:<{name_width}} {probability:>7.2%}  (class {index})")
    return int(top[0])


def _logits(output: torch.Tensor | npt.NDArray[Any], num_classes: int) -> torch.Tensor:
    """A new 1-D float64 CPU copy of one image's logits, checked against ``num_classes``."""
    scores = output.detach() if isinstance(output, torch.Tensor) else torch.as_tensor(np.asarray(output))
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
    scores = scores.to("cpu", torch.float64).clone()
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
       rest of a gradient map black (Captum's ``outlier_perc`` does the same). With ``"none"`` the map lands in [-1, 1] and is then shifted
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
    if mode not in _MODES:
        raise ValueError(f"Unknown mode {mode!r}; valid modes: {', '.join(_MODES)}.")
    if gamma is not None and not gamma > 0:
        raise ValueError(f"gamma must be positive (e.g. 0.5 to bring out faint values), got {gamma!r}.")
    values = _MODES[mode](_map_array(attr, "attr"))
    if values.ndim == 3:
        channels = values.shape[0]
        if not grayscale and channels != 3:
            raise ValueError(f"attr has {channels} channels; pass grayscale=True to sum them into one map.")
        values = values.sum(axis=0) if grayscale else np.moveaxis(values, 0, -1)
    if clip_percentile is not None and not 0 < clip_percentile <= 100:
        raise ValueError(f"clip_percentile must be in (0, 100], e.g. 99.5; got {clip_percentile!r}.")
    magnitudes = np.abs(values)
    scale = float(magnitudes.max() if clip_percentile is None else np.percentile(magnitudes, clip_percentile))
    if normalise and scale > 0:
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
    """A new float64 ``H x W`` or ``C x H x W`` copy of ``data``, leading size-1 dimensions dropped."""
    if isinstance(data, torch.Tensor):
        array = np.array(data.detach().to("cpu", torch.float64).numpy(), copy=True)
    else:
        array = np.array(data, dtype=np.float64, copy=True)
    shape = array.shape
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
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
    try:
        return colormaps[cmap]
    except KeyError:
        close = ", ".join(repr(c) for c in difflib.get_close_matches(str(cmap), list(colormaps), n=3)) or "none"
        raise ValueError(f"Unknown colormap {cmap!r}; closest: {close} (see matplotlib.colormaps).") from None


def overlay_heatmap(
    image: ImageSource,
    heatmap: MapLike,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = HEATMAP_CMAP,
    normalise: bool = True,
) -> npt.NDArray[np.float32]:
    """Blend a coloured heatmap over a picture: a new ``H x W x 3`` float32 array in [0, 1].

    ``image`` is anything ``load_image`` accepts, e.g. ``deprocess_imagenet_image(x)``;
    ``heatmap`` is a single-channel map (e.g. a Grad-CAM map, ``cam[0, 0]``) at any
    resolution: a coarse map is upsampled to the image size with bilinear interpolation, which
    is for display only. With ``normalise=True`` the map is scaled as
    ``process_attributions(heatmap, mode="relu")`` scales it: negative values (which Grad-CAM's
    ReLU removes) become 0 and the maximum becomes 1, so each map fills the colormap. To compare
    maps at one scale, divide them by a shared maximum and pass ``normalise=False`` (values must
    then lie in [0, 1]). Each pixel is ``(1 - alpha) * image + alpha * cmap(heatmap)``.

    >>> picture = np.zeros((4, 4, 3))
    >>> blended = overlay_heatmap(picture, np.full((2, 2), 7.0), alpha=0.5, cmap="gray")
    >>> blended.shape, float(blended.min()), float(blended.max())
    ((4, 4, 3), 0.5, 0.5)
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (0 = picture only, 1 = heatmap only), got {alpha!r}.")
    picture = np.asarray(load_image(image), dtype=np.float64) / 255.0
    heat = _map_2d(heatmap, "heatmap")
    if normalise:
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


# --- figures ----------------------------------------------------------------------------------


def show_image(ax: Axes, image: ImageSource, title: str | None = None, *, cmap: str | Colormap | None = None) -> Axes:
    """Draw a picture (anything ``load_image`` accepts) on ``ax``, axes off, with a title.

    ``cmap`` colours a single-channel picture (``H x W``, floats in [0, 1] or ``uint8``), e.g.
    ``GRADIENT_CMAP`` for a grayscale gradient map from ``process_attributions``; without it
    a single-channel picture is drawn in gray.

    >>> ax = Figure().add_subplot()
    >>> show_image(ax, np.zeros((2, 2, 3)), "black").get_title(), ax.axison
    ('black', False)
    >>> show_image(ax, np.eye(2), cmap="gray").images[-1].get_cmap().name
    'gray'
    """
    picture = np.asarray(load_image(image))
    if cmap is None:
        ax.imshow(picture)
    elif _panel_kind(image) != "heatmap":
        raise ValueError(f"cmap colours single-channel pictures; this one has shape {tuple(np.shape(image))}.")
    else:
        ax.imshow(picture[..., 0], cmap=_colormap(cmap), vmin=0, vmax=255)
    ax.set_title(title or "")
    ax.set_axis_off()
    return ax


def show_heatmap(
    ax: Axes,
    heatmap: MapLike,
    title: str | None = None,
    cmap: str | Colormap = HEATMAP_CMAP,
    colorbar: bool = True,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Axes:
    """Draw a single-channel map on ``ax`` with ``cmap`` and, by default, a colour bar.

    ``vmin`` / ``vmax`` fix the colour scale (default: the map's range), e.g. 0 and 1 to
    compare normalised maps across panels.

    >>> ax = Figure().add_subplot()
    >>> ax = show_heatmap(ax, np.array([[0.0, 1.0]]), "cam", vmin=0, vmax=1)
    >>> ax.images[0].get_cmap().name, ax.images[0].get_clim(), ax.images[0].colorbar is not None
    ('jet', (0.0, 1.0), True)
    """
    drawn = ax.imshow(_map_2d(heatmap, "heatmap"), cmap=_colormap(cmap), vmin=vmin, vmax=vmax)
    _finish_map(ax, drawn, title, colorbar)
    return ax


def show_diverging(
    ax: Axes,
    diff: MapLike,
    title: str | None = None,
    cmap: str | Colormap = DIVERGING_CMAP,
    colorbar: bool = True,
    *,
    limit: float | None = None,
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
    values = _map_2d(diff, "diff")
    if limit is not None and not limit > 0:
        raise ValueError(f"limit must be positive, got {limit!r}.")
    bound = limit if limit is not None else float(np.abs(values).max()) or 1.0
    drawn = ax.imshow(values, cmap=_colormap(cmap), norm=Normalize(vmin=-bound, vmax=bound))
    _finish_map(ax, drawn, title, colorbar)
    return ax


def _finish_map(ax: Axes, drawn: Any, title: str | None, colorbar: bool) -> None:
    ax.set_title(title or "")
    ax.set_axis_off()
    if colorbar:
        ax.figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04)


REGION_COLOURS: tuple[str, ...] = ("white", "black", "magenta", "cyan")
"""Outline colours of marked regions, in order (white and black read on any heatmap)."""


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
    region gets the next colour of ``colours``; with ``legend`` and labels, a legend names them.

    >>> ax = Figure().add_subplot()
    >>> _ = draw_regions(ax, {"left": np.array([[1, 1, 0, 0]] * 4)})
    >>> len(ax.collections), ax.get_legend().get_texts()[0].get_text()
    (1, 'left')
    """
    labelled = list(masks.items()) if isinstance(masks, Mapping) else [("", m) for m in masks]
    if not labelled:
        raise ValueError("draw_regions needs at least one mask.")
    handles = []
    for (label, mask), colour in zip(labelled, itertools.cycle(colours)):
        values = _map_2d(mask, f"mask {label!r}" if label else "mask")
        ax.contour(values > 0.5, levels=[0.5], colors=[colour], linewidths=linewidth)
        handles.append(Line2D([], [], color=colour, linewidth=linewidth, label=label))
    if legend and any(label for label, _ in labelled):
        ax.legend(handles=handles, loc="lower left", fontsize="small", framealpha=0.7)
    return ax


_PANEL_DRAWERS: dict[str, Callable[[Axes, Any, str, str | Colormap, bool], Axes]] = {
    "image": lambda ax, panel, title, cmap, colorbar: show_image(ax, panel, title),
    "heatmap": lambda ax, panel, title, cmap, colorbar: show_heatmap(ax, panel, title, cmap, colorbar),
    "diverging": lambda ax, panel, title, cmap, colorbar: show_diverging(ax, panel, title, colorbar=colorbar),
}


def _panel_kind(panel: Any) -> str:
    """``"heatmap"`` for a map that is 2-D once leading size-1 dimensions go, else ``"image"``."""
    if isinstance(panel, Image.Image):
        return "image"
    shape = list(np.shape(panel))
    while len(shape) > 2 and shape[0] == 1:
        shape.pop(0)
    return "heatmap" if len(shape) == 2 else "image"


def plot_panels(
    panels: Sequence[ImageSource | MapLike],
    titles: Sequence[str] | None = None,
    *,
    kinds: Sequence[PanelKind] | None = None,
    cmap: str | Colormap = HEATMAP_CMAP,
    colorbar: bool = True,
    panel_size: float = 3.0,
    suptitle: str | None = None,
    axes: Sequence[Axes] | None = None,
    use_pyplot: bool = False,
) -> Figure:
    """Draw ``panels`` side by side, one titled panel each, and return the figure.

    Each panel's kind is ``"image"`` (``show_image``), ``"heatmap"`` (``show_heatmap`` with
    ``cmap``) or ``"diverging"`` (``show_diverging``, ``DIVERGING_CMAP``); by default a 2-D map is a heatmap and
    anything else (``H x W x 3``, a PIL image) an image. ``colorbar`` applies to maps only.
    The figure is a new ``matplotlib.figure.Figure`` (no global pyplot state; Jupyter shows it
    when it is a cell's last value), a pyplot figure with ``use_pyplot=True``, or the figure
    of the ``axes`` you pass, one per panel.

    >>> fig = plot_panels([np.zeros((4, 4, 3)), np.eye(4)], ["image", "map"])
    >>> [ax.get_title() for ax in fig.axes[:2]], len(fig.axes)  # two panels and a colour bar
    (['image', 'map'], 3)
    """
    count = len(panels)
    if count == 0:
        raise ValueError("plot_panels needs at least one panel.")
    names = list(titles) if titles is not None else [""] * count
    chosen = list(kinds) if kinds is not None else [_panel_kind(p) for p in panels]
    for label, given in (("titles", names), ("kinds", chosen)):
        if len(given) != count:
            raise ValueError(f"{label} has {len(given)} entries for {count} panels; give one per panel.")
    unknown = [k for k in chosen if k not in _PANEL_DRAWERS]
    if unknown:
        raise ValueError(f"Unknown panel kind {unknown[0]!r}; valid kinds: {', '.join(_PANEL_DRAWERS)}.")
    figure, targets = _figure_and_axes(count, panel_size, axes, use_pyplot)
    for ax, panel, title, kind in zip(targets, panels, names, chosen):
        _PANEL_DRAWERS[kind](ax, panel, title, cmap, colorbar)
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def _figure_and_axes(
    count: int, panel_size: float, axes: Sequence[Axes] | None, use_pyplot: bool
) -> tuple[Figure, list[Axes]]:
    if axes is not None:
        targets = list(axes)
        if len(targets) != count:
            raise ValueError(f"axes has {len(targets)} entries for {count} panels; give one per panel.")
        return targets[0].figure, targets  # type: ignore[return-value]
    size = (panel_size * count, panel_size)
    if use_pyplot:
        import matplotlib.pyplot as plt  # only here: pyplot picks a backend when imported

        figure = plt.figure(figsize=size, layout="constrained")
    else:
        figure = Figure(figsize=size, layout="constrained")
    return figure, list(figure.subplots(1, count, squeeze=False)[0])
