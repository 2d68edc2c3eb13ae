"""Images in, model-ready tensors out: loading (files, bytes, PIL images, arrays, tensors) and ImageNet preprocessing.

``load_image`` turns a file, a PIL image, an array or a tensor into an RGB PIL image, refusing
bad input with one line that names the file and the problem (``ImageLoadError``).
``preprocess_imagenet_image`` turns any of those into the model's ``1 x 3 x 224 x 224`` input
with the model's own ``transforms`` (resize the shorter side to 256, centre-crop 224, normalise),
and ``deprocess_imagenet_image`` goes back to an ``H x W x 3`` picture that lines up pixel for
pixel with that input, for overlays. ``decode_image`` reads an image file's bytes (an upload).
Category names live in ``utils.categories``.
"""

from __future__ import annotations

import copy
import errno
import io
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Union

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.models import VGG16_Weights
from torchvision.transforms.functional import pil_modes_mapping

# Category names moved to utils.categories; re-exported here for the modules that still import them from datasets.
from utils.categories import category_index, check_count, check_flag, check_real, describe, imagenet_categories

__all__ = [
    "DATA_DIR",
    "SAMPLE_IMAGES",
    "ImageLoadError",
    "ImageSource",
    "TwoClassImage",
    "category_index",
    "decode_image",
    "default_transforms",
    "deprocess_imagenet_image",
    "imagenet_categories",
    "load_image",
    "preprocess_imagenet_image",
    "resize_crop_geometry",
    "sample_image_path",
    "two_class_image",
]

ImageSource = Union[str, os.PathLike, bytes, Image.Image, npt.NDArray[np.generic], torch.Tensor]
"""What ``load_image`` accepts: a path, a file's bytes, a PIL image, an ``H x W (x C)`` array or a ``(C x) H x W``
tensor."""

DATA_DIR: Path = Path(__file__).resolve().parent.parent / "data"
"""The course's ``data/`` folder, found from this package (not from the current directory)."""

SAMPLE_IMAGES: Mapping[str, str] = MappingProxyType(
    {"cat": "cat.png", "coffee": "coffee.png", "squirrel": "squirrel.jpg", "fruits": "fruits.jpg"}
)
"""Sample photo name -> file name in ``DATA_DIR``; ``data/README.md`` gives source and licence."""

# A 16-bit value v becomes round(v * 255 / 65535), i.e. round(v / 257): 65535 -> 255, not clipped.
_MAX_16BIT = 65535
# Images whose shorter side is upscaled more than this many times get a warning.
_TINY_UPSCALE = 4
# Big JPEGs are decoded at 1/2, 1/4 or 1/8 size as long as the shorter side stays >= this many
# times the resize target, so the final antialiased resize still averages >= 2 x 2 pixels.
_DRAFT_MARGIN = 2
# Float inputs may overshoot [0, 1] by rounding error this small; they are clipped.
_FLOAT_SLACK = 1e-4
# Images whose longer side is more than this many times the shorter are cropped before resizing.
_CROP_FIRST_ASPECT = 4


class ImageLoadError(ValueError):
    """An image could not be loaded; the one-line message names the image and the fix."""


# --- sample images ----------------------------------------------------------------------------


def sample_image_path(name: str) -> Path:
    """The path of the sample photo ``name`` (see ``SAMPLE_IMAGES``), inside ``DATA_DIR``.

    >>> sample_image_path("cat").name
    'cat.png'
    >>> sample_image_path("dog")
    Traceback (most recent call last):
    ...
    ValueError: Unknown sample image 'dog'; valid names: cat, coffee, squirrel, fruits.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in SAMPLE_IMAGES:
        raise ValueError(f"Unknown sample image {describe(name)}; valid names: {', '.join(SAMPLE_IMAGES)}.")
    path = DATA_DIR / SAMPLE_IMAGES[key]
    if not path.is_file():
        raise FileNotFoundError(f"Sample image {path} is missing; it ships in the course repository's data/ folder.")
    return path


# --- loading ----------------------------------------------------------------------------------


def load_image(source: ImageSource, *, min_side: int | None = None) -> Image.Image:
    """Load ``source`` as an 8-bit RGB PIL image; the caller's object is never changed.

    Accepted sources:

    * a path (``str`` / ``Path``) to any image PIL reads; EXIF rotation is applied
      (``ImageOps.exif_transpose``), as a photo viewer would show it (a URL is refused:
      download the file first);
    * the bytes of an image file (``bytes``, ``bytearray``, ``memoryview``), see ``decode_image``;
    * a PIL image (EXIF rotation applied too; a new image is returned);
    * a numpy array, channels last: ``H x W``, ``H x W x 1``, ``H x W x 3`` or ``H x W x 4``;
    * a torch tensor, channels first: ``H x W``, ``1 x H x W``, ``3 x H x W`` or ``4 x H x W``
      (a picture, not a normalised model input: use ``deprocess_imagenet_image`` for those).

    Array and tensor values: ``uint8`` as is; floats in ``[0, 1]``; 16-bit unsigned integers
    (either byte order) as 16-bit (0-65535); other integer types in 0-255. Conversions:
    grayscale, palette and CMYK become RGB (CMYK with PIL's formula, ignoring any ICC profile);
    16-bit images are scaled to 8 bits (65535 -> 255, not clipped); anything with transparency
    (RGBA, LA, palette or RGB with a transparent colour) is composited on white, so transparent
    pixels show as white. Drawing code does not need this: ``utils.visualise`` draws arrays and
    tensors directly.

    ``min_side`` lets a big JPEG be decoded at 1/2, 1/4 or 1/8 scale (``Image.draft``, before
    decoding) while its shorter side stays at least ``min_side``: much faster for camera photos.
    Other formats are decoded at full size.

    Bad input raises ``ImageLoadError`` (a ``ValueError``) with one line naming the image and
    the problem; PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is reported
    the same way.

    >>> load_image(np.zeros((2, 3), dtype=np.uint8)).size, load_image(torch.ones(3, 2, 3)).mode
    ((3, 2), 'RGB')
    >>> load_image("no/such/file.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    utils.datasets.ImageLoadError: Cannot load image 'no/such/file.png': no such file; ...
    """
    if min_side is not None and (
        isinstance(min_side, (bool, np.bool_)) or not isinstance(min_side, (int, np.integer)) or min_side <= 0
    ):
        raise ValueError(f"min_side must be a positive number of pixels or None, got {describe(min_side)}.")
    side = None if min_side is None else int(min_side)
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source, side)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(source, f"bytes ({memoryview(source).nbytes} of them)", min_side=side)
    if isinstance(source, Image.Image):
        filename = getattr(source, "filename", "")
        name = f"'{filename}'" if filename else f"PIL image ({source.mode}, {source.width}x{source.height})"
        if filename:
            return _open_failures(name, lambda: _to_rgb(ImageOps.exif_transpose(source), name))
        try:  # an image made in memory: nothing was decoded from a file, so nothing can be damaged
            return _to_rgb(ImageOps.exif_transpose(source), name)
        except (OSError, SyntaxError, EOFError, ValueError) as error:
            reason = str(error).splitlines()[0].rstrip(".") if str(error) else type(error).__name__
            raise ImageLoadError(
                f"Cannot load image {name}: PIL cannot convert it to RGB ({reason}); convert it first, "
                "e.g. image.convert('RGBA') or image.convert('RGB')."
            ) from None
    if isinstance(source, torch.Tensor):
        return _from_tensor(source)
    if isinstance(source, np.ndarray):
        name = f"array of shape {source.shape}"
        if source.ndim == 3 and source.shape[0] in (1, 3, 4) and source.shape[-1] > 4:
            raise ImageLoadError(
                f"Cannot load image {name}: arrays are channels last (H x W x C); use np.moveaxis(image, 0, -1)."
            )
        return _from_array(source, name)
    raise TypeError(
        f"Cannot load an image from a {type(source).__name__}; pass a path, the file's bytes, a PIL image, "
        "an array or a tensor."
    )


def decode_image(
    content: bytes | bytearray | memoryview,
    name: str = "image bytes",
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    min_side: int | None = None,
) -> Image.Image:
    """Decode the bytes of an image file (an upload, a download) into an RGB picture, by ``load_image``'s rules.

    ``name`` (e.g. the uploaded file's name) appears in every message. ``max_bytes`` and
    ``max_pixels`` are checked before the pixels are decoded, so a huge file is refused
    quickly; every failure is an ``ImageLoadError`` with one line.

    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (4, 3)).save(buffer, format="PNG")
    >>> decode_image(buffer.getvalue(), "tiny.png").size
    (4, 3)
    >>> decode_image(b"hello", "notes.txt")
    Traceback (most recent call last):
    ...
    utils.datasets.ImageLoadError: Cannot load image 'notes.txt': it is not an image PIL can read (PNG, JPEG, ...).
    """
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise TypeError(f"content must be the file's bytes (bytes or memoryview), not {type(content).__name__}.")
    label = repr(str(name))
    max_bytes = None if max_bytes is None else check_count(max_bytes, "max_bytes")
    max_pixels = None if max_pixels is None else check_count(max_pixels, "max_pixels")
    min_side = None if min_side is None else check_count(min_side, "min_side")
    size = memoryview(content).nbytes
    if size == 0:
        raise ImageLoadError(f"Cannot load image {label}: the file is empty.")
    if max_bytes is not None and size > max_bytes:
        raise ImageLoadError(
            f"Cannot load image {label}: it is {size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.0f} MB; "
            "downscale it first."
        )
    try:
        with warnings.catch_warnings():
            if max_pixels is not None:  # the pixel limit below decides
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(bytes(content)))
    except UnidentifiedImageError:
        raise ImageLoadError(f"Cannot load image {label}: it is not an image PIL can read (PNG, JPEG, ...).") from None
    except Image.DecompressionBombError:
        raise ImageLoadError(f"Cannot load image {label}: it has far too many pixels; downscale it first.") from None
    except (OSError, SyntaxError, EOFError, ValueError) as error:  # a damaged header
        raise ImageLoadError(_undecodable(label, error)) from None
    with opened:
        width, height = opened.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageLoadError(
                f"Cannot load image {label}: {width}x{height} pixels is over the limit of "
                f"{max_pixels / 1e6:.0f} megapixels; downscale it first."
            )
        if min_side is not None and opened.format == "JPEG":
            opened.draft(opened.mode, _draft_size(opened.size, min_side))
        return _open_failures(label, lambda: _to_rgb(ImageOps.exif_transpose(opened), label))


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _load_path(source: str | os.PathLike[str], min_side: int | None) -> Image.Image:
    text = os.fspath(source)
    if isinstance(text, str) and _URL.match(text):
        raise ImageLoadError(
            f"Cannot load image {text!r}: it is a URL, and nothing is downloaded here; download it first "
            "(e.g. urllib.request.urlretrieve(url, 'photo.jpg')) and pass the file's path."
        )
    path = Path(text if isinstance(text, str) else os.fsdecode(text))
    name = f"'{path}'"
    if path.is_symlink() and not path.exists():
        what = "a loop of symbolic links" if _is_link_loop(path) else "a symbolic link to a missing file"
        raise ImageLoadError(
            f"Cannot load image {name}: it is {what}; point the link at an image, or pass the file itself."
        )
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative paths start at {Path.cwd()})"
        raise ImageLoadError(f"Cannot load image {name}: no such file; check the path{where}.")
    if path.is_dir():
        raise ImageLoadError(f"Cannot load image {name}: it is a directory; pass an image file inside it.")
    try:
        with Image.open(path) as image:
            if min_side is not None and image.format == "JPEG":
                image.draft(image.mode, _draft_size(image.size, min_side))
            return _open_failures(name, lambda: _to_rgb(ImageOps.exif_transpose(image), name))
    except UnidentifiedImageError:
        suffix = path.suffix or "image"
        raise ImageLoadError(
            f"Cannot load image {name}: PIL cannot read it as an image; is it really a {suffix} file?"
        ) from None
    except Image.DecompressionBombError as error:
        reason = str(error).rstrip(".")
        raise ImageLoadError(
            f"Cannot load image {name}: it is over PIL's decompression-bomb limit ({reason}); downscale it, "
            "or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        ) from None
    except (SyntaxError, EOFError, ValueError) as error:  # a damaged header, found while opening
        if isinstance(error, ImageLoadError):
            raise
        raise ImageLoadError(_undecodable(name, error)) from None
    except OSError as error:  # permission denied and the like, when opening
        raise ImageLoadError(f"Cannot load image {name}: {error.strerror or error}.") from None


def _is_link_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def _undecodable(name: str, error: BaseException) -> str:
    reason = str(error).splitlines()[0].rstrip(".") if str(error) else type(error).__name__
    return (
        f"Cannot load image {name}: PIL cannot decode it ({reason}); the file may be damaged: re-download or "
        "re-export it."
    )


def _open_failures(name: str, convert: Callable[[], Image.Image]) -> Image.Image:
    """Run ``convert`` (which decodes the pixels), turning decoder errors into one line."""
    try:
        return convert()
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, EOFError, ValueError) as error:
        raise ImageLoadError(_undecodable(name, error)) from None


def _draft_size(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    """The smallest (width, height) with the image's aspect ratio and shorter side ``min_side``."""
    scale = min_side / min(size)
    return (math.ceil(size[0] * scale), math.ceil(size[1] * scale))


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """A new 8-bit RGB image from any PIL mode (see ``load_image`` for the rules)."""
    if image.mode.startswith("I"):  # I;16, I;16B, I (how PIL opens 16-bit grayscale PNGs, and 32-bit TIFFs)
        return _from_array(np.asarray(image), name, sixteen_bit=True, thirty_two_bit=image.mode == "I")
    if image.mode == "F":
        return _from_array(np.asarray(image), name)
    if image.mode == "La":  # premultiplied alpha: PIL converts it only to "LA" (straight alpha)
        image = image.convert("LA")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _from_tensor(source: torch.Tensor) -> Image.Image:
    """An RGB image from a channels-first ``(C x) H x W`` tensor (any device, layout or byte order)."""
    name = f"tensor of shape {tuple(source.shape)}"
    pixels = source.detach()
    if pixels.layout != torch.strided:
        pixels = pixels.to_dense()
    pixels = pixels.cpu()
    if pixels.is_complex():
        raise ImageLoadError(
            f"Cannot load image {name}: pixel type {pixels.dtype} is not supported; use uint8 or float."
        )
    array = (pixels.double() if pixels.is_floating_point() else pixels).numpy()
    if array.ndim == 4:
        raise ImageLoadError(f"Cannot load image {name}: it is a batch; pass one image, e.g. image[0].")
    if array.ndim == 3:
        if array.shape[0] not in (1, 3, 4):
            raise ImageLoadError(f"Cannot load image {name}: tensors are channels first (C x H x W, C = 1, 3 or 4).")
        array = np.moveaxis(array, 0, -1)
    return _from_array(array, name)


def _from_array(
    array: npt.NDArray[np.generic], name: str, *, sixteen_bit: bool = False, thirty_two_bit: bool = False
) -> Image.Image:
    """A new RGB image from an ``H x W`` or ``H x W x C`` (C = 1, 3, 4) array."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or array.size == 0:
        raise ImageLoadError(f"Cannot load image {name}: expected H x W or H x W x C with C = 1, 3 or 4.")
    is_uint16 = array.dtype.kind == "u" and array.dtype.itemsize == 2  # either byte order ('<u2', '>u2')
    pixels = _to_uint8(array, name, sixteen_bit or is_uint16, thirty_two_bit)
    return _to_rgb(Image.fromarray(pixels), name)  # uint8: L, RGB or RGBA by shape


def _to_uint8(
    array: npt.NDArray[np.generic], name: str, sixteen_bit: bool, thirty_two_bit: bool = False
) -> npt.NDArray[np.uint8]:
    """A new ``uint8`` copy of ``array``; floats in [0, 1], 16-bit in 0-65535, other ints in 0-255."""
    if array.dtype == np.uint8:
        return np.array(array, copy=True, order="C")
    if array.dtype.kind not in "uif":
        raise ImageLoadError(
            f"Cannot load image {name}: pixel type {array.dtype} is not supported; use uint8 or float."
        )
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageLoadError(f"Cannot load image {name}: it contains NaN or infinite values.")
    low, high = float(values.min()), float(values.max())
    if array.dtype.kind == "f":
        if low < -_FLOAT_SLACK or high > 1 + _FLOAT_SLACK:
            raise ImageLoadError(
                f"Cannot load image {name}: float pixels must lie in [0, 1], these span [{low:.3g}, {high:.3g}]; "
                "for a normalised model input use deprocess_imagenet_image."
            )
        values = np.clip(values, 0.0, 1.0) * 255.0
    elif sixteen_bit:
        if low < 0 or high > _MAX_16BIT:
            what = "32-bit integer pixels (PIL mode 'I') are read as 16-bit and" if thirty_two_bit else "16-bit pixels"
            raise ImageLoadError(
                f"Cannot load image {name}: {what} must lie in 0-65535, these span {low:.0f}-{high:.0f}; "
                "save the image with 8 or 16 bits per channel."
            )
        values = values * (255.0 / _MAX_16BIT)
    elif low < 0 or high > 255:
        raise ImageLoadError(
            f"Cannot load image {name}: integer pixels must lie in 0-255, these span {low:.0f}-{high:.0f}; "
            "convert to uint8 or to floats in [0, 1]."
        )
    return np.round(values).astype(np.uint8)


# --- ImageNet preprocessing -------------------------------------------------------------------


def default_transforms() -> Callable[..., torch.Tensor]:
    """VGG16's own preprocessing: the default of ``preprocess_imagenet_image``, ``deprocess_imagenet_image`` and
    ``utils.regions.region_masks``; a fresh object each call, so no caller can change a shared one.

    ``VGG16_Weights.IMAGENET1K_V1.transforms()``: resize the shorter side to 256 (bilinear,
    antialiased), centre-crop 224 x 224, scale to [0, 1], normalise with the ImageNet mean and std.

    >>> chosen = default_transforms()
    >>> chosen.resize_size, chosen.crop_size, chosen is default_transforms()
    ([256], [224], False)
    """
    return VGG16_Weights.IMAGENET1K_V1.transforms()


def resize_crop_geometry(
    size: tuple[int, int], short_side: int, crop: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where torchvision's resize (shorter side) then centre crop take a picture: ``((width, height), (left, top))``.

    ``size`` is the picture's ``(width, height)``, as PIL's ``Image.size``; its shorter side is
    resized to ``short_side`` and a ``crop`` = ``(width, height)`` window is cut from the middle.
    The resized picture is ``(width, height)``; the window's top-left pixel lies at ``(left, top)``
    in it. The arithmetic is torchvision's, so masks and crops built from it line up with the model
    input pixel for pixel: ``resize`` makes the longer side ``int(short_side * long / short)`` and
    ``center_crop`` offsets by ``int(round((side - crop) / 2))`` (Python's round: half to even).
    It holds for a window no larger than the resized picture (torchvision pads a larger one first).

    >>> resize_crop_geometry((640, 480), 256, (224, 224))  # 58.5 rounds to 58
    ((341, 256), (58, 16))
    """
    width, height = _whole_pair(size, "size")
    crop_w, crop_h = _whole_pair(crop, "crop")
    short_side = check_count(short_side, "short_side")
    if width <= height:
        new_w, new_h = short_side, int(short_side * height / width)
    else:
        new_w, new_h = int(short_side * width / height), short_side
    return (new_w, new_h), (int(round((new_w - crop_w) / 2.0)), int(round((new_h - crop_h) / 2.0)))


def _whole_pair(value: object, name: str) -> tuple[int, int]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise TypeError(f"{name} must be a pair (width, height) of whole numbers of pixels, not {describe(value)}.")
    return check_count(value[0], f"{name}'s width"), check_count(value[1], f"{name}'s height")


def _squashing(transforms: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A copy of an ``ImageClassification`` transform that resizes to ``crop x crop``, ignoring aspect."""
    crop = getattr(transforms, "crop_size", None)
    if crop is None or not hasattr(transforms, "resize_size"):
        raise ValueError(
            f"keep_aspect=False needs a torchvision ImageClassification transform (with crop_size and resize_size), "
            f"not {type(transforms).__name__}; pass keep_aspect=True."
        )
    squash = copy.deepcopy(transforms)
    squash.resize_size = [crop[0], crop[0]]
    return squash


def _resize_side(transforms: Callable[..., torch.Tensor]) -> int | None:
    """The size the transform resizes the shorter side to, when it says (``ImageClassification`` does)."""
    size = getattr(transforms, "resize_size", None)
    return int(min(size)) if size else None


def preprocess_imagenet_image(
    image: ImageSource,
    transforms: Callable[..., torch.Tensor] | None = None,
    *,
    keep_aspect: bool = True,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The model input for ``image``: a new ``1 x 3 x 224 x 224`` normalised float tensor.

    ``image`` is anything ``load_image`` accepts; every input goes through it, so a file, its
    PIL image and its array give the same tensor. ``transforms`` is the model's own
    preprocessing (``LoadedModel.transforms``); by default VGG16's,
    ``VGG16_Weights.IMAGENET1K_V1.transforms()``: resize the shorter side to 256 (bilinear,
    antialiased), centre-crop 224 x 224, scale to [0, 1], normalise with the ImageNet mean and
    std. ``keep_aspect=False`` squashes the whole image to 224 x 224 instead (the same
    transform with its resize set to 224 x 224), so nothing is cropped but shapes are distorted.

    A JPEG path more than twice the resize size is decoded at reduced scale (``load_image``'s
    ``min_side``), which is much faster for camera photos and differs from a full-size decode
    by a few grey levels at most. An image upscaled more than 4x gives a ``UserWarning``. An
    image more than 4 times longer than wide (or wider than tall) is cut to the part the centre
    crop keeps before it is resized, so a thin strip never becomes a huge intermediate picture
    (the result matches the plain transform within one grey level).

    >>> x = preprocess_imagenet_image(sample_image_path("cat"))
    >>> x.shape, x.dtype
    (torch.Size([1, 3, 224, 224]), torch.float32)
    """
    target = _device(device)
    if transforms is not None and not callable(transforms):
        raise TypeError(
            f"transforms must be the model's preprocessing, a function from a PIL image to a tensor "
            f"(e.g. loaded.transforms), or None for VGG16's; not {describe(transforms)}."
        )
    chosen = default_transforms() if transforms is None else transforms
    if not check_flag(keep_aspect, "keep_aspect"):
        chosen = _squashing(chosen)
    side = _resize_side(chosen)
    is_path = isinstance(image, (str, os.PathLike))
    picture = load_image(image, min_side=_DRAFT_MARGIN * side if side and is_path else None)
    if side and min(picture.size) * _TINY_UPSCALE < side:
        warnings.warn(
            f"The image is only {picture.width}x{picture.height} pixels; resizing it to {side} upscales it "
            f"{side / min(picture.size):.0f}x, so the model sees a blur.",
            UserWarning,
            stacklevel=2,
        )
    if keep_aspect and max(picture.size) > _CROP_FIRST_ASPECT * min(picture.size):
        picture, chosen = _crop_first(picture, chosen)
    tensor = chosen(picture)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
        raise TypeError(
            f"transforms must turn a PIL image into a C x H x W tensor; it returned {type(tensor).__name__}."
        )
    return _to_device(tensor.unsqueeze(0), target, device)


def _crop_first(
    picture: Image.Image, transforms: Callable[..., torch.Tensor]
) -> tuple[Image.Image, Callable[..., torch.Tensor]]:
    """What of ``picture`` survives the centre crop, resized straight to ``crop x crop``; and the rest of the transform.

    Resizing the shorter side first would build a huge picture for a thin strip (1 x 20000
    becomes 256 x 5,120,000); PIL's ``resize(box=...)`` samples the same source positions as
    resize-then-crop (the same scale and pixel centres), so the result matches the plain transform
    up to rounding (at most one grey level). A transform that is not torchvision's
    ``ImageClassification`` (shorter side ``resize_size``, ``crop_size``) is left alone.
    """
    resize, crop = getattr(transforms, "resize_size", None), getattr(transforms, "crop_size", None)
    resample = pil_modes_mapping.get(getattr(transforms, "interpolation", None))
    if not resize or len(resize) != 1 or not crop or resample is None or int(resize[0]) < int(max(crop)):
        return picture, transforms
    crop_h, crop_w = int(crop[0]), int(crop[-1])
    width, height = picture.size
    (new_w, new_h), (left, top) = resize_crop_geometry(picture.size, int(resize[0]), (crop_w, crop_h))
    scale_x, scale_y = width / new_w, height / new_h
    box = (left * scale_x, top * scale_y, (left + crop_w) * scale_x, (top + crop_h) * scale_y)
    return picture.resize((crop_w, crop_h), resample, box=box), _squashing(transforms)


def _device(device: str | torch.device | None) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device {describe(device)} is not a torch device;"
            " use 'cpu', 'cuda' or 'mps' (utils.models.choose_device picks one)."
        ) from None


def _to_device(tensor: torch.Tensor, target: torch.device | None, given: object) -> torch.Tensor:
    if target is None:
        return tensor
    try:
        return tensor.to(target)
    except (RuntimeError, AssertionError) as error:
        reason = str(error).splitlines()[0].rstrip(".") if str(error) else type(error).__name__
        raise ValueError(
            f"device {describe(given)} is not available here ({reason}); use utils.models.choose_device() or 'cpu'."
        ) from None


def deprocess_imagenet_image(
    tensor: torch.Tensor, transforms: Callable[..., torch.Tensor] | None = None
) -> npt.NDArray[np.float32]:
    """Undo the normalisation: an ``H x W x 3`` float32 array in [0, 1], ready for ``imshow``.

    ``tensor`` is a model input, ``1 x 3 x H x W`` or ``3 x H x W``, on any device (it is not
    changed). The mean and std come from ``transforms`` (default: VGG16's); the result is
    clipped to [0, 1], which only removes rounding error for a real image.

    >>> x = preprocess_imagenet_image(np.full((64, 64, 3), 0.5), keep_aspect=False)
    >>> picture = deprocess_imagenet_image(x)
    >>> picture.shape, bool(np.allclose(picture, 128 / 255, atol=1e-6))
    ((224, 224, 3), True)
    """
    chosen = default_transforms() if transforms is None else transforms
    mean, std = getattr(chosen, "mean", None), getattr(chosen, "std", None)
    if mean is None or std is None:
        raise ValueError(
            f"transforms must have mean and std (as torchvision's ImageClassification has), "
            f"not {type(chosen).__name__}."
        )
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"Expected a torch tensor (the model input), not {type(tensor).__name__}.")
    image = tensor.detach()
    image = (image.to_dense() if image.layout != torch.strided else image).to("cpu")
    if image.is_complex() or image.dtype == torch.bool:
        raise TypeError(f"Expected a real-valued model input, got a {image.dtype} tensor.")
    image = image.to(torch.float64)
    if not torch.isfinite(image).all():
        raise ValueError("The tensor contains NaN or infinite values, so it is not a picture; check the model input.")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != len(mean):
        raise ValueError(
            f"Expected a model input of shape 1 x {len(mean)} x H x W or {len(mean)} x H x W, "
            f"got {tuple(tensor.shape)}."
        )
    mean_t = torch.tensor(mean, dtype=torch.float64).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float64).view(-1, 1, 1)
    picture = (image * std_t + mean_t).clamp(0.0, 1.0)
    return picture.permute(1, 2, 0).numpy().astype(np.float32)


# --- two objects in one picture (lesson 04) ---------------------------------------------------


@dataclass(frozen=True)
class TwoClassImage:
    """Two photos side by side in one model-ready picture, and the region each one fills.

    ``image`` is a ``size x size`` RGB picture; ``masks`` is ``(left, right)``: read-only
    ``size x size`` boolean arrays, True where the left (right) photo lies.
    """

    image: Image.Image
    masks: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]


def two_class_image(
    left: ImageSource,
    right: ImageSource,
    *,
    size: int = 224,
    crop_at: tuple[float, float] = (0.5, 0.5),
) -> TwoClassImage:
    """``left`` and ``right`` (anything ``load_image`` accepts) side by side in a ``size x size`` picture.

    Each photo fills one half, ``size // 2`` (left) and ``size - size // 2`` (right) pixels
    wide and ``size`` tall: the largest window of the half's shape that fits in the photo
    is cut out and resized into it (bilinear), so nothing is squashed. ``crop_at`` says where
    each window sits across its photo, 0 = at the left edge, 0.5 = centred, 1 = at the right
    edge (a photo taller than the window is cut around its middle). The masks mark the two
    halves, so they line up with the model input exactly when the picture goes through
    ``preprocess_imagenet_image(image, transforms, keep_aspect=False)`` (for the course's
    models, whose crop is 224, that changes no pixel's place). The photos are not changed.

    >>> pair = two_class_image(np.zeros((30, 40, 3)), np.ones((30, 40, 3)), size=8)
    >>> pair.image.size, pair.masks[0].shape, int(pair.masks[0].sum()), bool((pair.masks[0] ^ pair.masks[1]).all())
    ((8, 8), (8, 8), 32, True)
    >>> np.asarray(pair.image)[0, :, 0].tolist()
    [0, 0, 0, 0, 255, 255, 255, 255]
    """
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(
            f"size must be a whole number of pixels, at least 2 (224 for the course's models), got {describe(size)}."
        )
    if not (isinstance(crop_at, (tuple, list)) and len(crop_at) == 2):
        raise ValueError(
            f"crop_at must be a pair (left photo, right photo) of positions in [0, 1], got {describe(crop_at)}."
        )
    for side, at in zip(("left", "right"), crop_at):
        if not 0.0 <= check_real(at, f"crop_at for the {side} photo") <= 1.0:
            raise ValueError(f"crop_at for the {side} photo must lie in [0, 1] (0.5 = centred), got {describe(at)}.")
    size = int(size)
    widths = (size // 2, size - size // 2)
    picture = Image.new("RGB", (size, size))
    for offset, (source, width, at) in zip((0, widths[0]), zip((left, right), widths, crop_at)):
        picture.paste(_window(load_image(source), width, size, float(at)), (offset, 0))
    left_mask = np.zeros((size, size), dtype=bool)
    left_mask[:, : widths[0]] = True
    masks = (left_mask, ~left_mask)
    for mask in masks:
        mask.setflags(write=False)
    return TwoClassImage(image=picture, masks=masks)


def _window(photo: Image.Image, width: int, height: int, at: float) -> Image.Image:
    """The largest ``width:height`` window of ``photo``, ``at`` across it (centred vertically), resized."""
    scale = min(photo.width / width, photo.height / height)
    box_w, box_h = width * scale, height * scale
    x0, y0 = at * (photo.width - box_w), (photo.height - box_h) / 2
    return photo.resize((width, height), Image.Resampling.BILINEAR, box=(x0, y0, x0 + box_w, y0 + box_h))
