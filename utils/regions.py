"""Where the objects are: hand-drawn outlines of the course photos, as masks on the model's input grid.

A claim such as "Grad-CAM puts its mass on the squirrel" can only be checked when the squirrel's
place is known. ``data/regions.json`` holds polygons drawn by hand around the objects of the
course photos, in the photo's own pixels; ``region_masks`` maps them through the same resize and
centre crop as ``utils.datasets.preprocess_imagenet_image``, so each mask lines up pixel for pixel
with the model input, and ``mass_share`` measures how much of a map lies inside a mask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import torch
from matplotlib.path import Path as PolygonPath

from utils.categories import check_flag, describe
from utils.datasets import DATA_DIR, SAMPLE_IMAGES, default_transforms, load_image, resize_crop_geometry
from utils.saliency import MapLike, as_float_array, drop_leading_ones, magnitude

__all__ = [
    "REGIONS_FILE",
    "Region",
    "as_mask",
    "has_regions",
    "image_regions",
    "marked_images",
    "mass_share",
    "region_masks",
]

REGIONS_FILE: Path = DATA_DIR / "regions.json"
"""The hand-drawn regions of the course photos (see ``data/README.md``)."""

Mask = npt.NDArray[np.bool_]
Polygon = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Region:
    """One marked object: its ImageNet ``category`` and its outline, one or more polygons.

    Vertices are ``(x, y)`` in the photo's own pixels: x to the right, y down, ``(0, 0)`` the
    top-left corner of the top-left pixel.
    """

    category: str
    polygons: tuple[Polygon, ...]


# --- the data file ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _read_regions(path: Path) -> Mapping[str, Mapping[str, Region]]:
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
    except FileNotFoundError:
        raise ValueError(f"Regions file {path} is missing; the course's own ships in its data/ folder.") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"Regions file {path} is not valid ({error}); expected {{'images': {{file: {{label: ...}}}}}}."
        ) from None
    return MappingProxyType(
        {
            file: MappingProxyType({label: _region(path, file, label, spec) for label, spec in regions.items()})
            for file, regions in images.items()
        }
    )


def _region(path: Path, file: str, label: str, spec: object) -> Region:
    try:
        polygons = tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in spec["polygons"])  # type: ignore[index]
        category = str(spec["category"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"Regions file {path}: region {label!r} of {file!r} needs a category and polygons of (x, y) pairs."
        ) from None
    if not polygons or any(len(polygon) < 3 for polygon in polygons):
        raise ValueError(f"Regions file {path}: region {label!r} of {file!r} needs polygons of at least 3 vertices.")
    return Region(category=category, polygons=polygons)


def _file_name(image: str | os.PathLike[str], regions_path: Path) -> str | None:
    """The file name under which ``regions_path`` marks ``image``, or None: the regions file describes the photos in
    its own folder, so a sample name (``"fruits"``) or a path to a photo in that folder has one; a photo elsewhere
    (a learner's own ``fruits.jpg``) has none, whatever its name.
    """
    if isinstance(image, str) and image.strip().lower() in SAMPLE_IMAGES:
        return SAMPLE_IMAGES[image.strip().lower()]
    if isinstance(image, (str, os.PathLike)):
        photo = Path(image)
        return photo.name if photo.resolve().parent == regions_path.resolve().parent else None
    raise TypeError(f"image must be a sample name or a path, not {type(image).__name__}.")


def _regions_path(regions_file: object) -> Path:
    if not isinstance(regions_file, (str, os.PathLike)):
        raise TypeError(f"regions_file must be the path of a regions JSON file, not {describe(regions_file)}.")
    return Path(regions_file)


def marked_images(regions_file: str | os.PathLike[str] = REGIONS_FILE) -> tuple[str, ...]:
    """The file names of the photos that have marked regions.

    >>> marked_images()
    ('squirrel.jpg', 'fruits.jpg')
    """
    return tuple(_read_regions(_regions_path(regions_file)))


def has_regions(image: str | os.PathLike[str], regions_file: str | os.PathLike[str] = REGIONS_FILE) -> bool:
    """Whether ``image`` (a sample name or a path) has marked regions: a photo in the regions file's folder only.

    >>> has_regions("fruits"), has_regions(DATA_DIR / "fruits.jpg"), has_regions("elsewhere/fruits.jpg")
    (True, True, False)
    """
    return _file_name(image, _regions_path(regions_file)) in marked_images(regions_file)


def image_regions(
    image: str | os.PathLike[str], regions_file: str | os.PathLike[str] = REGIONS_FILE
) -> Mapping[str, Region]:
    """The marked regions of ``image`` (a sample name such as ``"fruits"``, or the path of a photo in the regions
    file's own folder; a photo elsewhere has none, whatever its file name).

    >>> {label: region.category for label, region in image_regions("fruits").items()}
    {'orange': 'orange', 'lemon': 'lemon'}
    >>> image_regions("cat")
    Traceback (most recent call last):
    ...
    ValueError: No regions are marked for 'cat.png' in regions.json; marked: squirrel.jpg, fruits.jpg.
    """
    path = _regions_path(regions_file)
    marked = _read_regions(path)
    name = _file_name(image, path)
    if name is None:
        raise ValueError(
            f"No regions are marked for {os.fspath(image)!r}: {path.name} marks only photos in its own folder "
            f"({path.resolve().parent}); marked: {', '.join(marked)}."
        )
    if name not in marked:
        raise ValueError(f"No regions are marked for {name!r} in {path.name}; marked: {', '.join(marked)}.")
    return marked[name]


# --- onto the model's input grid ----------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """How a photo's pixel coordinates land on the model input: scale, then subtract the crop offset."""

    scale_x: float
    scale_y: float
    left: int
    top: int
    height: int
    width: int


def _input_grid(size: tuple[int, int], transforms: Callable[..., torch.Tensor], keep_aspect: bool) -> _Grid:
    """The geometry of torchvision's ``Resize`` (shorter side) then ``CenterCrop``, for a photo of ``size`` (w, h).

    ``utils.datasets.resize_crop_geometry`` does the arithmetic; ``keep_aspect=False`` squashes the
    photo to the crop instead, as ``preprocess_imagenet_image`` does.
    """
    resize, crop = getattr(transforms, "resize_size", None), getattr(transforms, "crop_size", None)
    if not resize or not crop:
        raise ValueError(
            f"Masks need a torchvision ImageClassification transform (with resize_size and crop_size), "
            f"not {type(transforms).__name__}."
        )
    width, height = size
    side = int(crop[0])
    if check_flag(keep_aspect, "keep_aspect"):
        (new_w, new_h), (left, top) = resize_crop_geometry(size, int(resize[0]), (side, side))
    else:
        (new_w, new_h), (left, top) = (side, side), (0, 0)
    return _Grid(scale_x=new_w / width, scale_y=new_h / height, left=left, top=top, height=side, width=side)


def _rasterise(polygons: Sequence[Polygon], grid: _Grid) -> Mask:
    """True where the centre of an input pixel lies inside any of ``polygons`` (photo coordinates)."""
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    centres = np.stack(
        [(cols.ravel() + grid.left + 0.5) / grid.scale_x, (rows.ravel() + grid.top + 0.5) / grid.scale_y], axis=1
    )
    inside = np.zeros(len(centres), dtype=bool)
    for polygon in polygons:
        inside |= PolygonPath(np.asarray(polygon, dtype=np.float64), closed=False).contains_points(centres)
    return inside.reshape(grid.height, grid.width)


def region_masks(
    image: str | os.PathLike[str],
    transforms: Callable[..., torch.Tensor] | None = None,
    *,
    keep_aspect: bool = True,
    regions_file: str | os.PathLike[str] = REGIONS_FILE,
) -> dict[str, Mask]:
    """``{label: mask}`` for the marked objects of ``image``, on the model input's grid.

    ``image`` and ``transforms`` are what you pass to ``preprocess_imagenet_image``
    (``transforms`` defaults to VGG16's, like there; the offline model uses the same resize and
    crop). Each mask is a read-only ``crop x crop`` boolean array, True on the pixels whose
    centre lies inside the object's outline after the same resize and centre crop as the
    image. Parts of an object cropped away simply do not appear.

    >>> masks = region_masks("fruits")
    >>> {label: (mask.shape, round(float(mask.mean()), 2)) for label, mask in masks.items()}
    {'orange': ((224, 224), 0.46), 'lemon': ((224, 224), 0.13)}
    """
    regions = image_regions(image, regions_file)
    path = (
        image
        if not (isinstance(image, str) and image.strip().lower() in SAMPLE_IMAGES)
        else DATA_DIR / SAMPLE_IMAGES[image.strip().lower()]
    )
    grid = _input_grid(load_image(path).size, default_transforms() if transforms is None else transforms, keep_aspect)
    masks = {}
    for label, region in regions.items():
        mask = _rasterise(region.polygons, grid)
        mask.setflags(write=False)
        masks[label] = mask
    return masks


# --- how much of a map lies on an object --------------------------------------------------------


def as_mask(mask: MapLike, shape: tuple[int, ...], name: str = "mask") -> Mask:
    """A new boolean ``H x W`` copy of ``mask`` (boolean or 0/1, leading size-1 dimensions allowed), of ``shape``.

    >>> as_mask(np.array([[[1, 0]]]), (1, 2)).tolist()
    [[True, False]]
    >>> as_mask(np.array([[0.5, 0.0]]), (1, 2))
    Traceback (most recent call last):
    ...
    ValueError: mask must be boolean (True on the object) or 0/1, got values other than 0 and 1.
    """
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and not isinstance(s, bool) for s in shape)):
        raise TypeError(f"shape must be a tuple of whole numbers, e.g. (224, 224), not {describe(shape)}.")
    values = as_float_array(mask, name)
    given = values.shape
    values = drop_leading_ones(values)
    if values.shape != shape:
        raise ValueError(
            f"{name} has shape {given} but the maps are {' x '.join(map(str, shape))}; build masks on the model "
            "input's grid (region_masks and two_class_image do)."
        )
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"{name} must be boolean (True on the object) or 0/1, got values other than 0 and 1.")
    if not values.any():
        raise ValueError(f"{name} is empty (no True pixel); it must mark where the object is.")
    return values == 1.0


def mass_share(saliency: MapLike, mask: MapLike) -> float:
    """The share of a map's mass inside ``mask``: ``sum(|map| on mask) / sum(|map|)``, in [0, 1].

    ``saliency`` is ``H x W``, ``C x H x W`` or ``1 x C x H x W`` (reduced like ``magnitude``:
    absolute values summed over channels); ``mask`` is ``H x W`` boolean (or 0/1) on the same
    grid. Compare it with the mask's own share of the image, ``mask.mean()``: a map that ignores
    where the object is puts about that share of its mass on it. An all-zero map places no mass
    anywhere, so it raises a ``ValueError`` instead of returning a share.

    >>> mass_share(np.array([[3.0, 1.0], [0.0, 0.0]]), np.array([[True, False], [False, False]]))
    0.75
    """
    values = magnitude(saliency, "saliency")
    inside = as_mask(mask, values.shape)
    peak = float(values.max())
    if peak == 0:
        raise ValueError("The map is zero everywhere, so it places no mass anywhere; check the class and the method.")
    values = values / peak  # shares do not depend on the scale; this keeps huge values from overflowing the sum
    return float(values[inside].sum() / values.sum())
