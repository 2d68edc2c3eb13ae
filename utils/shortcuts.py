"""A "Clever Hans" classifier on purpose: a confounded data set, its tag, a seeded training loop and the tag-box share.

Lapuschkin et al. (2019, "Unmasking Clever Hans predictors and assessing what machines really
learn", Nature Communications 10:1096) found a classifier that recognised PASCAL VOC's horse
pictures by the copyright tag in their corner. Lesson 09 builds such a classifier in a few
seconds on a laptop CPU, finds the shortcut with saliency maps and proves it with an
intervention. This module holds the plumbing that the lesson explains:

* ``photo_crops``: random square crops of a course photo, augmented (scale, position, mirror,
  brightness and contrast), as ``N x 3 x S x S`` tensors in [0, 1];
* ``Box``, ``corner_box``, ``tag_patch`` and ``add_tag``: where the tag goes and the tag itself,
  a dark "c" on a white label, a stand-in for a photographer's "(c)";
* ``tagged_dataset`` and ``retag``: two classes of crops, with the tag on the images a rule
  chooses (``"confounded"``: every image of the tagged class and no other; ``"moved"``: the
  other class instead; ``"none"``; ``"all"``; ``"random"``: half of the images whatever their
  class). The content of an image depends only on the seed, so the same crops can be
  compared with the tag here, there or nowhere: an intervention on the tag alone;
* ``small_cnn``, ``train_classifier``, ``accuracy`` and ``predict``: a small network trained
  from scratch, seeded and deterministic;
* ``box_share``: the share of a saliency map's mass inside a box, against the box's own share
  of the image, ``box.share``.

Shortcut learning is the general name for the failure (Geirhos et al., 2020, "Shortcut learning
in deep neural networks", Nature Machine Intelligence 2:665-673).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from utils.categories import check_count, describe
from utils.datasets import ImageSource, load_image, sample_image_path
from utils.random_state import preserved_rng
from utils.regions import mass_share
from utils.saliency import MapLike, as_batch, eval_with_frozen_parameters, magnitude

__all__ = [
    "CLASSES",
    "IMAGE_SIZE",
    "MAX_SEED",
    "MAX_TAG_SIZE",
    "TAGGED_CLASS",
    "TAG_RULES",
    "TAG_SIZE",
    "Box",
    "TaggedImages",
    "accuracy",
    "add_tag",
    "box_share",
    "box_shares",
    "corner_box",
    "photo_crops",
    "predict",
    "retag",
    "seeded",
    "small_cnn",
    "tag_patch",
    "tagged_dataset",
    "train_classifier",
]

CLASSES: tuple[str, str] = ("cat", "squirrel")
"""The two classes, each made of crops of one course photo (``data/cat.png``, ``data/squirrel.jpg``)."""
TAGGED_CLASS: int = 1
"""The class whose training images carry the tag ("squirrel"), as the horses' pictures carried theirs."""
IMAGE_SIZE: int = 48
"""Side of the square images, in pixels: small, so that training takes seconds on a CPU."""
TAG_SIZE: int = 10
"""Side of the square tag, in pixels: 4.3% of a 48 x 48 image."""
MAX_TAG_SIZE: int = 1024
"""The largest side of a tag, in pixels (drawn 8 times larger first: a 1024 x 1024 tag takes 64 MB while drawn)."""
MAX_SEED: int = 2**63 - 2
"""The largest seed: torch's generators take a signed 64-bit seed, and the ``"random"`` rule uses ``seed + 1``."""

TagRule = Literal["confounded", "moved", "none", "all", "random"]
TAG_RULES: tuple[str, ...] = get_args(TagRule)
Corner = Literal["top left", "top right", "bottom left", "bottom right"]
_CORNERS: tuple[str, ...] = get_args(Corner)


# --- where the tag goes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A rectangle of pixels on an image of ``image_size`` (height, width): rows ``top`` to ``top + height - 1``.

    It must hold at least one pixel and lie wholly inside the image; anything else raises a
    ``ValueError`` that says so.

    >>> box = Box(top=38, left=38, height=8, width=8, image_size=(48, 48))
    >>> int(box.mask().sum()), round(box.share, 4)
    (64, 0.0278)
    >>> Box(top=44, left=44, height=8, width=8, image_size=(48, 48))
    Traceback (most recent call last):
    ...
    ValueError: The box (rows 44-51, columns 44-51) reaches outside the 48 x 48 image; move it or make it smaller.
    """

    top: int
    left: int
    height: int
    width: int
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        for name in ("top", "left", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"The box's {name} must be a whole number of pixels, not {describe(value)}.")
        size = self.image_size
        if not (
            isinstance(size, tuple)
            and len(size) == 2
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s > 0 for s in size)
        ):
            raise ValueError(f"image_size must be (height, width) in pixels, got {describe(size)}.")
        if self.height < 1 or self.width < 1:
            raise ValueError(
                f"The box is empty ({self.height} x {self.width} pixels); give it a height and width of at least 1."
            )
        if self.top < 0 or self.left < 0 or self.top + self.height > size[0] or self.left + self.width > size[1]:
            raise ValueError(
                f"The box (rows {self.top}-{self.top + self.height - 1}, "
                f"columns {self.left}-{self.left + self.width - 1}) "
                f"reaches outside the {size[0]} x {size[1]} image; move it or make it smaller."
            )

    @property
    def rows(self) -> slice:
        """The box's rows, for indexing: ``image[..., box.rows, box.columns]``."""
        return slice(self.top, self.top + self.height)

    @property
    def columns(self) -> slice:
        """The box's columns, for indexing."""
        return slice(self.left, self.left + self.width)

    @property
    def share(self) -> float:
        """The box's share of the image's pixels: what a map that ignores the box puts inside it."""
        return self.height * self.width / (self.image_size[0] * self.image_size[1])

    def mask(self) -> npt.NDArray[np.bool_]:
        """A new ``image_size`` boolean array, True inside the box."""
        inside = np.zeros(self.image_size, dtype=bool)
        inside[self.rows, self.columns] = True
        return inside


def corner_box(
    corner: Corner = "bottom right", *, size: int = TAG_SIZE, image_size: int = IMAGE_SIZE, margin: int = 2
) -> Box:
    """The ``size x size`` box ``margin`` pixels in from a corner of a square ``image_size`` image.

    >>> corner_box()
    Box(top=36, left=36, height=10, width=10, image_size=(48, 48))
    >>> corner_box("top left", size=4, image_size=16, margin=0)
    Box(top=0, left=0, height=4, width=4, image_size=(16, 16))
    """
    if not isinstance(corner, str) or corner not in _CORNERS:
        raise ValueError(f"Unknown corner {describe(corner)}; valid: {', '.join(map(repr, _CORNERS))}.")
    size, image_size = check_count(size, "size"), check_count(image_size, "image_size")
    margin = check_count(margin, "margin", minimum=0)
    far = image_size - size - margin
    top = margin if corner.startswith("top") else far
    left = margin if corner.endswith("left") else far
    return Box(top=top, left=left, height=size, width=size, image_size=(image_size, image_size))


# --- the tag --------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _tag_patch(height: int, width: int) -> npt.NDArray[np.float32]:
    scale = 8  # drawn 8 times larger, then shrunk: smooth edges at any size
    big = Image.new("L", (width * scale, height * scale), 255)
    w, h = width * scale, height * scale
    pen = round(1.2 * scale)  # strokes about 1.2 pixels wide
    ImageDraw.Draw(big).arc((0.22 * w, 0.22 * h, 0.78 * w, 0.78 * h), start=45, end=315, fill=0, width=pen)
    patch = np.asarray(big.resize((width, height), Image.Resampling.BOX), dtype=np.float32) / 255.0
    patch.setflags(write=False)
    return patch


def tag_patch(height: int = TAG_SIZE, width: int | None = None) -> npt.NDArray[np.float32]:
    """The tag: a dark "c" on a white ``height x width`` label, values in [0, 1] (1 = white). Read-only.

    A stand-in for a photographer's copyright mark, "(c)".

    >>> patch = tag_patch(10)
    >>> patch.shape, float(patch.max()), float(patch.min()) < 0.5
    ((10, 10), 1.0, True)
    """
    height = check_count(height, "height", minimum=3)  # a tag needs at least 3 x 3 pixels to be drawn
    width = height if width is None else check_count(width, "width", minimum=3)
    if max(height, width) > MAX_TAG_SIZE:
        raise ValueError(
            f"A {height} x {width} tag is larger than MAX_TAG_SIZE = {MAX_TAG_SIZE} pixels a side; "
            "a tag is a small mark on the image (TAG_SIZE = 10)."
        )
    return _tag_patch(height, width)


def add_tag(images: torch.Tensor, box: Box, which: torch.Tensor | Sequence[bool] | None = None) -> torch.Tensor:
    """A copy of ``images`` (``N x C x H x W`` or ``C x H x W``, values in [0, 1]) with the tag drawn in ``box``.

    ``which`` (N booleans) chooses the images that get the tag; all of them by default. The
    tag replaces the pixels in the box, the same grey value in every channel. ``images`` is
    not changed.

    >>> tagged = add_tag(torch.zeros(2, 3, 16, 16), corner_box(size=4, image_size=16), which=[True, False])
    >>> float(tagged[0].max()), float(tagged[1].max())
    (1.0, 0.0)
    """
    if not isinstance(images, torch.Tensor) or images.layout != torch.strided or images.ndim not in (3, 4):
        raise ValueError(f"images must be a tensor N x C x H x W or C x H x W, got {describe(images)}.")
    if not images.is_floating_point() or not torch.isfinite(images).all():
        raise ValueError(f"images must hold finite float pixels in [0, 1], got {describe(images)} with other values.")
    if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        low, high = float(images.min()), float(images.max())
        raise ValueError(
            f"images must hold pixels in [0, 1] (the tag is drawn in that range), got values from {low:g} to {high:g}; "
            "divide 0-255 pixels by 255."
        )
    _check_box(box)
    if tuple(images.shape[-2:]) != box.image_size:
        raise ValueError(
            f"The images are {images.shape[-2]} x {images.shape[-1]} but the box is on a "
            f"{box.image_size[0]} x {box.image_size[1]} image; build the box for the images' size."
        )
    batch = images.unsqueeze(0) if images.ndim == 3 else images
    chosen = torch.ones(batch.shape[0], dtype=torch.bool) if which is None else _flags(which)
    if chosen.shape != (batch.shape[0],):
        raise ValueError(
            f"which must give one True/False per image ({batch.shape[0]}), got shape {tuple(chosen.shape)}."
        )
    patch = torch.from_numpy(tag_patch(box.height, box.width).copy()).to(batch.device, batch.dtype)
    out = batch.clone()
    out[chosen.to(batch.device), :, box.rows, box.columns] = patch
    return out[0] if images.ndim == 3 else out


def _check_box(box: object) -> Box:
    if not isinstance(box, Box):
        raise TypeError(f"box must be a Box (see corner_box), not {describe(box)}.")
    return box


def _flags(which: object) -> torch.Tensor:
    """``which`` as a 1-D bool tensor on the CPU: True/False (or 0/1) per image."""
    try:
        flags = torch.as_tensor(which).cpu() if not isinstance(which, (str, bytes)) else None
    except (TypeError, ValueError, RuntimeError):
        flags = None
    if (
        flags is None
        or flags.layout != torch.strided
        or flags.is_complex()
        or not bool(torch.isin(flags.double(), torch.tensor([0.0, 1.0], dtype=torch.float64)).all())
    ):
        raise ValueError(f"which must give one True/False (or 1/0) per image, not {describe(which)}.")
    return flags.to(torch.bool)


# --- crops of the course photos ----------------------------------------------------------------


def photo_crops(photo: ImageSource, n: int, *, size: int = IMAGE_SIZE, seed: int = 0) -> torch.Tensor:
    """``n`` random square crops of ``photo``, augmented, as an ``n x 3 x size x size`` tensor in [0, 1].

    Each crop's side is 35-80% of the photo's shorter side, at a random place; it is resized to
    ``size`` (bilinear), mirrored with probability 1/2, and its contrast and brightness are
    jittered by up to 20% and 0.1. The same ``seed`` gives the same crops.

    >>> crops = photo_crops(sample_image_path("cat"), 3, size=16, seed=0)
    >>> tuple(crops.shape), bool(crops.min() >= 0 and crops.max() <= 1)
    ((3, 3, 16, 16), True)
    >>> torch.equal(crops, photo_crops(sample_image_path("cat"), 3, size=16, seed=0))
    True
    """
    n, size = check_count(n, "n"), check_count(size, "size", minimum=8)
    seed = check_count(seed, "seed", minimum=0)  # numpy's generator takes any size of seed
    picture = load_image(photo)
    rng = np.random.default_rng(seed)
    width, height = picture.size
    crops = np.empty((n, size, size, 3), dtype=np.float32)
    for i in range(n):
        side = rng.uniform(0.35, 0.8) * min(width, height)
        x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
        crop = picture.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
        pixels = np.asarray(crop, dtype=np.float32) / 255.0
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-0.1, 0.1)
        crops[i] = np.clip((pixels - 0.5) * contrast + 0.5 + brightness, 0.0, 1.0)
    return torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()


# --- the data set -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaggedImages:
    """Two classes of images, some with the tag.

    ``images``: ``N x 3 x S x S`` in [0, 1], what a model sees; ``labels``: ``N`` class indices
    into ``classes``; ``tagged``: ``N`` booleans, which images carry the tag; ``content``: the
    same images without any tag; ``box``: where the tag is; ``rule``: how the tagged images
    were chosen (see ``tagged_dataset``).
    """

    images: torch.Tensor
    labels: torch.Tensor
    tagged: torch.Tensor
    content: torch.Tensor
    box: Box
    rule: str
    classes: tuple[str, str] = CLASSES

    def __len__(self) -> int:
        return int(self.labels.shape[0])


_RULES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "confounded": lambda labels, seed: labels == TAGGED_CLASS,
    "moved": lambda labels, seed: labels != TAGGED_CLASS,
    "none": lambda labels, seed: torch.zeros_like(labels, dtype=torch.bool),
    "all": lambda labels, seed: torch.ones_like(labels, dtype=torch.bool),
    "random": lambda labels, seed: torch.rand(labels.shape[0], generator=torch.Generator().manual_seed(seed + 1)) < 0.5,
}
"""Which images a rule tags, given the labels and a seed (only ``"random"`` uses it)."""


def _seed(seed: object) -> int:
    """A whole number from 0 to ``MAX_SEED``, or one line saying so."""
    seed = check_count(seed, "seed", minimum=0)
    if seed > MAX_SEED:
        raise ValueError(f"seed must be at most MAX_SEED = 2**63 - 2 (torch's generators take 64 bits), got {seed}.")
    return seed


def _tagged_by_rule(labels: torch.Tensor, rule: object, seed: object) -> torch.Tensor:
    if not isinstance(rule, str) or rule not in _RULES:
        raise ValueError(f"Unknown tag rule {describe(rule)}; valid: {', '.join(map(repr, TAG_RULES))}.")
    return _RULES[rule](labels, _seed(seed))


def tagged_dataset(
    n_per_class: int,
    tags: TagRule = "confounded",
    *,
    seed: int = 0,
    size: int = IMAGE_SIZE,
    box: Box | None = None,
    photos: Sequence[ImageSource] | None = None,
) -> TaggedImages:
    """``n_per_class`` crops of each class's photo, with the tag where ``tags`` says.

    ``tags``: ``"confounded"`` (every image of ``TAGGED_CLASS``, no other: the training set of
    a Clever Hans), ``"moved"`` (every image of the other class instead), ``"none"``,
    ``"all"``, or ``"random"`` (each image with probability 1/2, whatever its class: the
    confound broken). The crops depend only on ``seed`` and ``size``, never on ``tags``, so
    two data sets with the same seed hold the same pictures, tagged differently. ``box``: where
    the tag goes (default: ``corner_box()`` for ``size``); ``photos``: one photo per class
    (default: ``data/cat.png`` and ``data/squirrel.jpg``). Images are ordered by class.

    >>> data = tagged_dataset(4, "confounded", size=16, box=corner_box(size=4, image_size=16))
    >>> data.labels.tolist(), data.tagged.tolist()
    ([0, 0, 0, 0, 1, 1, 1, 1], [False, False, False, False, True, True, True, True])
    >>> moved = tagged_dataset(4, "moved", size=16, box=corner_box(size=4, image_size=16))
    >>> torch.equal(data.content, moved.content), moved.tagged.tolist()[:5]
    (True, [True, True, True, True, False])
    """
    n_per_class = check_count(n_per_class, "n_per_class")
    seed = _seed(seed)
    size = check_count(size, "size", minimum=8)
    if box is None and size < TAG_SIZE + 4:
        raise ValueError(
            f"size={size} leaves no room for the default {TAG_SIZE} x {TAG_SIZE} tag 2 pixels from the corner "
            f"(it needs size >= {TAG_SIZE + 4}); give a larger size or a smaller box, "
            f"e.g. box=corner_box(size=3, image_size={size})."
        )
    box = corner_box(image_size=size) if box is None else _check_box(box)
    if photos is not None and not isinstance(photos, (list, tuple)):
        raise TypeError(f"photos must be a list of one photo per class ({', '.join(CLASSES)}), not {describe(photos)}.")
    sources = [sample_image_path(name) for name in CLASSES] if photos is None else list(photos)
    if len(sources) != len(CLASSES):
        raise ValueError(f"photos must give one photo per class ({', '.join(CLASSES)}), got {len(sources)}.")
    _tagged_by_rule(torch.zeros(1, dtype=torch.long), tags, seed)  # a bad rule is named before any work
    content = torch.cat([photo_crops(p, n_per_class, size=size, seed=seed * 10 + c) for c, p in enumerate(sources)])
    labels = torch.arange(len(CLASSES)).repeat_interleave(n_per_class)
    return _with_tags(content, labels, box, tags, seed)


def _with_tags(content: torch.Tensor, labels: torch.Tensor, box: Box, rule: str, seed: int) -> TaggedImages:
    tagged = _tagged_by_rule(labels, rule, seed)
    return TaggedImages(
        images=add_tag(content, box, tagged), labels=labels, tagged=tagged, content=content, box=box, rule=rule
    )


def retag(data: TaggedImages, tags: TagRule, *, box: Box | None = None, seed: int = 0) -> TaggedImages:
    """The same pictures as ``data``, with the tag where ``tags`` says (and in ``box``, default: the same box).

    >>> data = tagged_dataset(2, size=16, box=corner_box(size=4, image_size=16))
    >>> retag(data, "none").tagged.tolist(), torch.equal(retag(data, "none").images, data.content)
    ([False, False, False, False], True)
    """
    if not isinstance(data, TaggedImages):
        raise TypeError(f"data must be TaggedImages (from tagged_dataset), not {describe(data)}.")
    box = data.box if box is None else _check_box(box)
    if box.image_size != tuple(data.content.shape[-2:]):
        raise ValueError(
            f"The box is on a {box.image_size[0]} x {box.image_size[1]} image but the data's images are "
            f"{data.content.shape[-2]} x {data.content.shape[-1]}; build the box for the images' size."
        )
    return _with_tags(data.content, data.labels, box, tags, seed)


# --- the model and its training -----------------------------------------------------------------


def small_cnn(seed: int = 0, *, channels: int = 16) -> nn.Sequential:
    """A small convolutional network for two classes, initialised from ``seed`` (the global RNG is left alone).

    Three convolutions (the first with stride 2, then a 2 x 2 max pool) give a ``channels x
    S/4 x S/4`` feature map, ``relu3``: the Grad-CAM layer. A *global max pool* then keeps,
    for each channel, its strongest response anywhere in the image, and a linear layer turns
    the ``channels`` maxima into two class scores.

    >>> net = small_cnn()
    >>> tuple(net(torch.zeros(1, 3, 48, 48)).shape), tuple(net[:7](torch.zeros(1, 3, 48, 48)).shape)  # up to relu3
    ((1, 2), (1, 16, 12, 12))
    """
    seed, channels = _seed(seed), check_count(channels, "channels", minimum=2)
    with preserved_rng():
        torch.manual_seed(seed)
        half = channels // 2
        return nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, half, 5, stride=2, padding=2),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(half, channels, 3, padding=1),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(channels, channels, 3, padding=1),
                relu3=nn.ReLU(),
                pool=nn.AdaptiveMaxPool2d(1),
                flatten=nn.Flatten(),
                fc=nn.Linear(channels, len(CLASSES)),
            )
        ).eval()


def seeded(seed: int) -> AbstractContextManager[None]:
    """Seeded, deterministic, single-threaded torch inside the block; RNG, determinism flag and threads restored after.

    The random state restored is every device's (``utils.random_state.preserved_rng``), as
    ``torch.manual_seed`` seeds them all.

    One thread makes float sums happen in one order whatever the number of cores, so a seed
    gives the same weights run after run; for a network this small it is also the fastest
    choice on a busy laptop (threads would wait for each other more than they compute).

    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b)
    True
    """
    return _seeded(_seed(seed))


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    with preserved_rng():  # every device's generator: manual_seed seeds them all
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)


def train_classifier(
    model: nn.Module,
    data: TaggedImages,
    *,
    epochs: int = 8,
    seed: int = 0,
    lr: float = 3e-3,
    batch_size: int = 32,
) -> nn.Module:
    """A trained copy of ``model`` (in eval mode): Adam on the cross-entropy of ``data``, seeded and deterministic.

    ``model`` itself is not changed. Batches are shuffled by a generator seeded with ``seed``,
    inside ``seeded(seed)``, so the same call gives the same weights on the same machine. A model
    that does not take the images, or does not give one score per class, is named in one line
    before any training.

    >>> data = tagged_dataset(4, size=16, box=corner_box(size=4, image_size=16))
    >>> a = train_classifier(small_cnn(), data, epochs=1)
    >>> b = train_classifier(small_cnn(), data, epochs=1)
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    _check_model(model)
    if not isinstance(data, TaggedImages):
        raise TypeError(f"data must be TaggedImages (from tagged_dataset or retag), not {describe(data)}.")
    epochs, batch_size, seed = (
        check_count(epochs, "epochs"),
        check_count(batch_size, "batch_size"),
        _seed(seed),
    )
    if (
        isinstance(lr, (bool, np.bool_))
        or not isinstance(lr, (int, float, np.integer, np.floating))
        or not 0 < lr < float("inf")
    ):
        raise ValueError(f"lr must be a positive learning rate such as 3e-3, not {describe(lr)}.")
    _check_two_scores(model, data)
    trained = copy.deepcopy(model)
    device = next(trained.parameters()).device
    images, labels = data.images.to(device), data.labels.to(device)
    with seeded(seed):
        order = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(trained.parameters(), lr=lr)
        trained.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(data), generator=order).split(batch_size):
                optimiser.zero_grad()
                F.cross_entropy(trained(images[batch]), labels[batch]).backward()
                optimiser.step()
    return trained.eval()


def _check_two_scores(model: nn.Module, data: TaggedImages) -> None:
    """The model takes the data's images and gives one score per class: else one line before any training."""
    batch = as_batch(model, data.images[:1])  # the images fit the model (channels, device, dtype), said in one line
    with torch.no_grad(), eval_with_frozen_parameters(model):
        try:
            scores = model(batch)
        except RuntimeError as error:  # e.g. a Linear layer sized for another image size
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(
                f"The model cannot take the data's {tuple(batch.shape[1:])} images: {first}; "
                "build it for this image size (e.g. small_cnn())."
            ) from None
    classes = len(data.classes)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (1, classes):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(
            f"The model gives {shape} for one image; train_classifier needs {classes} class scores per image "
            f"({', '.join(data.classes)}), e.g. small_cnn()."
        )


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise TypeError(f"model must be a torch nn.Module with parameters (e.g. small_cnn()), not {describe(model)}.")
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor | TaggedImages) -> torch.Tensor:
    """The class probabilities of ``model`` for ``images`` (or a ``TaggedImages``), ``N x 2``, in eval mode.

    The images are moved to the model's device; the probabilities come back on the CPU, without
    gradients. The model's train/eval flags are restored afterwards.

    >>> probabilities = predict(small_cnn(), torch.zeros(3, 3, 48, 48))
    >>> tuple(probabilities.shape), torch.allclose(probabilities.sum(1), torch.ones(3))
    ((3, 2), True)
    """
    pixels = images.images if isinstance(images, TaggedImages) else images
    weight = next(_check_model(model).parameters())  # there is one: _check_model refuses a model without
    if isinstance(pixels, torch.Tensor):
        pixels = pixels.to(weight.device)  # the images follow the model, as a learner expects
    batch = as_batch(model, pixels)
    with eval_with_frozen_parameters(model):
        try:
            scores = model(batch)  # without gradients: predict is decorated with torch.no_grad()
        except RuntimeError as error:  # e.g. images too small for the model's convolutions and pools
            raise ValueError(
                f"The model cannot take images of shape {tuple(batch.shape)}: {str(error).splitlines()[0]}"
            ) from None
    return torch.softmax(scores, dim=1).cpu()


def accuracy(model: nn.Module, data: TaggedImages) -> float:
    """The share of ``data``'s images that ``model`` puts in their class.

    >>> data = tagged_dataset(2, size=16, box=corner_box(size=4, image_size=16))
    >>> 0.0 <= accuracy(small_cnn(), data) <= 1.0
    True
    """
    if not isinstance(data, TaggedImages):
        raise TypeError(f"data must be TaggedImages (from tagged_dataset or retag), not {describe(data)}.")
    return float((predict(model, data).argmax(1) == data.labels.cpu()).double().mean())


# --- how much of a map lies in the box -------------------------------------------------------------


def box_share(saliency: MapLike, box: Box) -> float:
    """The share of a map's mass inside ``box``: ``sum(|map| in box) / sum(|map|)``, in [0, 1].

    ``saliency`` is one map on the image's grid (``H x W``, ``C x H x W`` or ``1 x C x H x W``,
    channels reduced by absolute sum, as ``utils.regions.mass_share``); upsample a Grad-CAM map
    to the image first (``utils.saliency.upsample_cam``). Compare it with ``box.share``: a map
    that ignores the box puts about that share inside it.

    >>> box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    >>> box_share(np.array([[3.0, 1.0], [0.0, 0.0]]), box)
    0.75
    >>> box_share(np.ones((4, 4)), box)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The map is 4 x 4 but the box is on a 2 x 2 image; give one map on the image's grid (...).
    """
    _check_box(box)
    values = magnitude(saliency, "saliency")
    if values.shape != box.image_size:
        raise ValueError(
            f"The map is {' x '.join(map(str, values.shape))} but the box is on a "
            f"{box.image_size[0]} x {box.image_size[1]} image; give one map on the image's grid "
            "(upsample Grad-CAM with upsample_cam)."
        )
    return mass_share(values, box.mask())


def box_shares(maps: MapLike, box: Box) -> npt.NDArray[np.float64]:
    """``box_share`` of each map in a batch ``N x C x H x W`` (or ``N x H x W``): an array of ``N`` shares."""
    if not isinstance(maps, (torch.Tensor, np.ndarray)) or maps.ndim not in (3, 4) or maps.shape[0] == 0:
        raise ValueError(f"maps must be a batch N x C x H x W or N x H x W, got {describe(maps)}.")
    _check_box(box)
    return np.array([box_share(maps[i], box) for i in range(maps.shape[0])])
