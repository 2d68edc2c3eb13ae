"""One line of set-up for a lesson: a photo as the model sees it, its marked regions and the prediction.

Every lesson starts the same way (lesson 00 explains each step): load the model, preprocess a
photo with the model's own transforms, keep the picture the model sees for overlays, and ask for
the prediction. ``open_photo`` does exactly that, so that a lesson's first cells can be about the
lesson's own subject.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import torch

from utils.categories import describe
from utils.datasets import SAMPLE_IMAGES, deprocess_imagenet_image, preprocess_imagenet_image, sample_image_path
from utils.models import LoadedModel
from utils.regions import has_regions, region_masks

__all__ = ["LessonPhoto", "open_photo"]


@dataclass(frozen=True)
class LessonPhoto:
    """A photo ready for a lesson.

    ``x``: the model input, ``1 x 3 x 224 x 224`` on the model's device; ``picture``: what the
    model sees, ``224 x 224 x 3`` in [0, 1], for overlays; ``masks``: ``{label: mask}`` of the
    marked objects on the same grid (empty when none are marked); ``logits``: the model's
    ``1 x K`` class scores (detached); ``categories``: the model's class names.
    """

    name: str
    x: torch.Tensor
    picture: npt.NDArray[np.float32]
    masks: Mapping[str, npt.NDArray[np.bool_]]
    logits: torch.Tensor
    categories: tuple[str, ...]

    @property
    def top_class(self) -> int:
        """The index of the model's top class."""
        return int(self.logits[0].argmax())

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The model's ``k`` most probable classes as ``(name, probability)``, most probable first."""
        probabilities = torch.softmax(self.logits[0].double(), dim=0)
        values, indices = probabilities.topk(min(k, len(self.categories)))
        return [(self.categories[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def open_photo(image: str | os.PathLike[str], loaded: LoadedModel) -> LessonPhoto:
    """``image`` (a sample name such as ``"squirrel"``, or a path) ready for ``loaded``'s model.

    >>> from utils.models import load_model
    >>> photo = open_photo("fruits", load_model("squeezenet1_1", device="cpu"))
    >>> tuple(photo.x.shape), sorted(photo.masks), photo.top(2)[0][0]
    ((1, 3, 224, 224), ['lemon', 'orange'], 'lemon')
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(
            f"loaded must be the LoadedModel that utils.models.load_model() returns, not {describe(loaded)}."
        )
    is_sample = isinstance(image, str) and image.strip().lower() in SAMPLE_IMAGES
    path = sample_image_path(image) if is_sample else image  # type: ignore[arg-type]
    x = preprocess_imagenet_image(path, loaded.transforms, device=loaded.device)
    with torch.no_grad():
        logits = loaded.model(x).detach()
    masks = region_masks(path, loaded.transforms) if has_regions(path) else {}
    name = image.strip().lower() if is_sample else os.fspath(image)  # type: ignore[union-attr]
    return LessonPhoto(
        name=name,
        x=x,
        picture=deprocess_imagenet_image(x, loaded.transforms),
        masks=MappingProxyType(dict(masks)),
        logits=logits,
        categories=loaded.categories,
    )
