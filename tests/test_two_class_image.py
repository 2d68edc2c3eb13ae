"""utils.datasets.two_class_image: two photos side by side, masks that line up with the model input.

Geometry is checked with small synthetic photos (solid colours, ramps); the lesson's picture of the
sample cat and coffee is checked against the offline model, which must see both objects.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import SqueezeNet1_1_Weights, VGG16_Weights

from utils.datasets import (
    TwoClassImage,
    deprocess_imagenet_image,
    preprocess_imagenet_image,
    sample_image_path,
    two_class_image,
)
from utils.models import load_model

RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(colour: tuple[int, int, int], width: int = 40, height: int = 30) -> np.ndarray:
    return np.tile(np.array(colour, dtype=np.uint8), (height, width, 1))


def ramp(width: int = 300, height: int = 100) -> np.ndarray:
    """A photo whose red channel says the column: 0 at the left edge, 255 at the right."""
    row = np.linspace(0, 255, width).round().astype(np.uint8)
    picture = np.zeros((height, width, 3), dtype=np.uint8)
    picture[..., 0] = row
    return picture


# --- geometry -----------------------------------------------------------------------------------


def test_each_photo_fills_its_half_and_the_masks_mark_the_halves():
    pair = two_class_image(solid(RED), solid(BLUE), size=10)
    pixels = np.asarray(pair.image)
    left, right = pair.masks
    assert isinstance(pair, TwoClassImage) and pair.image.size == (10, 10) and pair.image.mode == "RGB"
    assert left.shape == right.shape == (10, 10) and left.dtype == right.dtype == np.bool_
    assert left[:, :5].all() and not left[:, 5:].any(), "the left mask is exactly the left half"
    assert np.array_equal(right, ~left), "the right mask is the rest"
    assert (pixels[left] == RED).all() and (pixels[right] == BLUE).all()


def test_odd_sizes_give_the_right_photo_the_extra_column():
    pair = two_class_image(solid(RED), solid(BLUE), size=7)
    assert pair.masks[0].sum(axis=1).tolist() == [3] * 7
    assert pair.masks[1].sum(axis=1).tolist() == [4] * 7


def test_masks_are_read_only_and_the_result_is_frozen():
    pair = two_class_image(solid(RED), solid(BLUE), size=8)
    with pytest.raises(ValueError, match="read-only"):
        pair.masks[0][0, 0] = False
    with pytest.raises(AttributeError):
        pair.image = None  # type: ignore[misc]


@pytest.mark.parametrize("at, low, high", [(0.0, 0, 43), (0.5, 106, 150), (1.0, 212, 255)])
def test_crop_at_moves_the_window_across_a_wide_photo(at, low, high):
    # A 300 x 100 ramp (column c has red 255 c / 299) in a 50 x 100 half: a 50-column window, left, centre or right.
    pair = two_class_image(ramp(), ramp(), size=100, crop_at=(at, 0.5))
    reds = np.asarray(pair.image)[..., 0][pair.masks[0]]
    assert low <= reds.min() and reds.max() <= high, f"crop_at={at}: columns {reds.min()}..{reds.max()}"


def test_a_tall_photo_is_cut_around_its_middle_without_squashing():
    tall = np.zeros((400, 50, 3), dtype=np.uint8)
    tall[:100], tall[100:300], tall[300:] = RED, BLUE, RED  # blue is the middle half of the height
    pair = two_class_image(tall, tall, size=20)  # each half 10 x 20: the window is 50 x 100, rows 150..250
    assert (np.asarray(pair.image)[pair.masks[0]] == BLUE).all()


def test_photos_are_not_changed_and_any_image_source_works():
    array = solid(RED)
    kept = array.copy()
    picture = Image.fromarray(solid(BLUE))
    pair = two_class_image(array, picture, size=8)
    assert np.array_equal(array, kept) and picture.size == (40, 30) and picture.getpixel((0, 0)) == BLUE
    assert (np.asarray(pair.image)[pair.masks[1]] == BLUE).all()
    from_tensor = two_class_image(torch.ones(3, 30, 40), sample_image_path("coffee"), size=8)
    assert (np.asarray(from_tensor.image)[from_tensor.masks[0]] == 255).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 1}, r"size must be a whole number of pixels, at least 2 .*got 1"),
        ({"size": 224.0}, r"size must be a whole number .*got 224\.0"),
        ({"crop_at": (0.5, 1.5)}, r"crop_at for the right photo must lie in \[0, 1\] .*got 1\.5"),
        ({"crop_at": (-0.1, 0.5)}, r"crop_at for the left photo must lie in \[0, 1\]"),
        ({"crop_at": 0.5}, r"crop_at must be a pair \(left photo, right photo\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        two_class_image(solid(RED), solid(BLUE), **kwargs)


def test_a_photo_that_cannot_be_loaded_is_named():
    with pytest.raises(ValueError, match="no/such.png"):
        two_class_image("no/such.png", solid(BLUE))


# --- the model sees the picture as it is ------------------------------------------------------------


@pytest.mark.parametrize(
    "weights", [VGG16_Weights.IMAGENET1K_V1, SqueezeNet1_1_Weights.IMAGENET1K_V1], ids=["vgg16", "squeezenet"]
)
def test_the_model_input_is_the_picture_pixel_for_pixel(weights):
    pair = two_class_image(sample_image_path("cat"), sample_image_path("coffee"))
    transforms = weights.transforms()
    seen = deprocess_imagenet_image(preprocess_imagenet_image(pair.image, transforms, keep_aspect=False), transforms)
    assert seen.shape == (224, 224, 3)
    assert np.abs(seen - np.asarray(pair.image) / 255.0).max() < 1e-5, "keep_aspect=False must not move any pixel"


def test_the_offline_model_sees_a_cat_on_the_left_and_an_espresso_on_the_right():
    """The lesson's picture: each half's own top class ranks in the whole picture's top 5."""
    loaded = load_model("squeezenet1_1", device="cpu")
    pair = two_class_image(sample_image_path("cat"), sample_image_path("coffee"), crop_at=(0.5, 0.25))
    x = preprocess_imagenet_image(pair.image, loaded.transforms, keep_aspect=False)
    with torch.no_grad():
        left, right, whole = (loaded.model(part)[0] for part in (x[..., :112], x[..., 112:], x))
    class_a, class_b = int(left.argmax()), int(right.argmax())
    assert (loaded.categories[class_a], loaded.categories[class_b]) == ("Egyptian cat", "espresso")
    top5 = whole.topk(5).indices.tolist()
    assert class_a in top5 and class_b in top5, [loaded.categories[i] for i in top5]
