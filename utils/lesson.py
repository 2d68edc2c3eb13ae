"""A lesson's set-up: a photo as the model sees it, its marked regions, the prediction; and its claims.

Every lesson starts the same way (lesson 00 explains each step): load the model, preprocess a
photo with the model's own transforms, keep the picture the model sees for overlays, and ask for
the prediction. ``open_photo`` does exactly that, so that a lesson's first cells can be about the
lesson's own subject.

A lesson's sentences about what a map shows are numbers measured on one model: the offline
SqueezeNet 1.1, which CI runs. ``claim_checker`` checks them as claims: on that model a claim
that fails stops the lesson (an ``AssertionError``), so the prose cannot drift from the numbers;
on any other model (VGG16, the article's) it prints the learner's number beside the range verified
on the offline model, and the lesson goes on. What holds for every model by construction (equal
to Captum, no hook left) stays a plain ``assert``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import torch

from utils.categories import describe
from utils.datasets import SAMPLE_IMAGES, deprocess_imagenet_image, preprocess_imagenet_image, sample_image_path
from utils.models import OFFLINE_MODEL, LoadedModel
from utils.regions import has_regions, region_masks

__all__ = ["VERIFIED_MODEL", "ClaimChecker", "LessonPhoto", "claim_checker", "open_photo"]

#: The model whose numbers every lesson's claims were measured on (CI runs it).
VERIFIED_MODEL = OFFLINE_MODEL
_MODEL_TITLES = {"squeezenet1_1": "SqueezeNet 1.1", "vgg16": "VGG16"}


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


# --- claims -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimChecker:
    """Checks a lesson's measured claims: asserts on ``VERIFIED_MODEL``, reports on any other model.

    Call it with what the claim is about, the measured value, and the range verified on the
    offline model (``low``/``high``, either may be left out), or with a ``bool`` that must be
    true. On the verified model a value outside the range raises ``AssertionError`` naming the
    claim, the value and the range; inside it, nothing is printed (the lesson prints its own
    numbers). On another model one line is printed, the learner's value beside the verified range,
    and the call returns, so that a lesson runs to its end on VGG16 too. It returns nothing, so a
    claim at the end of a notebook cell adds no output.

    >>> claim = ClaimChecker("squeezenet1_1")
    >>> claim("share", 0.52, 0.4, 0.6)
    >>> claim("share", 0.7, 0.4, 0.6)
    Traceback (most recent call last):
    ...
    AssertionError: claim 'share' does not hold: 0.7 is not between 0.4 and 0.6 (verified on SqueezeNet 1.1).
    >>> ClaimChecker("vgg16")("share", 0.7, 0.4, 0.6)
    claim 'share': verified on SqueezeNet 1.1: between 0.4 and 0.6; yours (VGG16): 0.7, outside that range
    >>> ClaimChecker("vgg16")("peak inside the outline", True)
    claim 'peak inside the outline': verified on SqueezeNet 1.1: true; yours (VGG16): true, as verified
    """

    model_name: str
    detail: str = ""

    @property
    def verifies(self) -> bool:
        """Whether a failing claim stops the lesson: only on the model the claims were measured on."""
        return self.model_name == VERIFIED_MODEL and not self.detail

    def __call__(self, what: str, value: float | bool, low: float | None = None, high: float | None = None) -> None:
        expected = _expected(what, value, low, high)
        held = bool(value) if isinstance(value, (bool, np.bool_)) else _within(float(value), low, high)
        verified = f"verified on {_MODEL_TITLES[VERIFIED_MODEL]}"
        if self.verifies:
            if not held:
                found = "it is false" if expected == "true" else f"{_shown(value)} is not {expected}"
                raise AssertionError(f"claim {what!r} does not hold: {found} ({verified}).")
            return
        yours = _MODEL_TITLES.get(self.model_name, self.model_name) + (f", {self.detail}" if self.detail else "")
        verdict = (
            "as verified"
            if held
            else "outside that range"
            if low is not None or high is not None
            else "not as verified"
        )
        print(f"claim {what!r}: {verified}: {expected}; yours ({yours}): {_shown(value)}, {verdict}")


def claim_checker(loaded: LoadedModel) -> ClaimChecker:
    """The claim checker for ``loaded``'s model (see ``ClaimChecker``): it asserts on the offline model only.

    >>> from utils.models import load_model
    >>> claim_checker(load_model("squeezenet1_1", device="cpu")).verifies
    True
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(
            f"loaded must be the LoadedModel that utils.models.load_model() returns, not {describe(loaded)}."
        )
    random_weights = bool(getattr(loaded, "random_weights", False))
    return ClaimChecker(loaded.name, "random weights" if random_weights else "")


def _expected(what: str, value: object, low: float | None, high: float | None) -> str:
    if not isinstance(what, str) or not what.strip():
        raise ValueError(f"a claim needs a short description of what it checks, not {describe(what)}.")
    if isinstance(value, (bool, np.bool_)):
        if low is not None or high is not None:
            raise ValueError(f"claim {what!r}: a true/false value takes no range; give a number or leave low/high out.")
        return "true"
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, complex):
        raise TypeError(f"claim {what!r}: the value must be a number or a bool, not {describe(value)}.")
    if low is None and high is None:
        raise ValueError(f"claim {what!r}: give the verified range (low, high or both) for a number.")
    for bound in (low, high):
        if bound is not None and not (
            isinstance(bound, (int, float, np.integer, np.floating)) and math.isfinite(bound)
        ):
            raise ValueError(f"claim {what!r}: a bound must be a finite number, not {describe(bound)}.")
    if low is not None and high is not None:
        if low >= high:
            raise ValueError(f"claim {what!r}: low ({low}) is not below high ({high}); no value lies strictly between.")
        return f"between {_shown(low)} and {_shown(high)}"
    return f"above {_shown(low)}" if high is None else f"below {_shown(high)}"


def _within(value: float, low: float | None, high: float | None) -> bool:
    return math.isfinite(value) and (low is None or value > low) and (high is None or value < high)


def _shown(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return f"{float(value):.3g}"  # type: ignore[arg-type]
