"""Marked regions: the hand-drawn outlines land on the model input where the object is."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import numpy as np
import pytest
import skimage.draw
import torch
from PIL import Image, ImageDraw
from torchvision.models import SqueezeNet1_1_Weights
from torchvision.transforms._presets import ImageClassification

from utils.datasets import deprocess_imagenet_image, preprocess_imagenet_image
from utils.regions import as_mask, has_regions, image_regions, marked_images, mass_share, region_masks

RECTANGLE = [[60, 40], [180, 40], [180, 150], [60, 150]]


def _photo_with_rectangle(tmp_path: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    """A gray photo of ``size`` with a red rectangle, and a regions file that marks exactly that rectangle."""
    image = Image.new("RGB", size, (128, 128, 128))
    ImageDraw.Draw(image).rectangle([60, 40, 179, 149], fill=(255, 0, 0))  # pixels 60..179 x 40..149
    photo = tmp_path / "rect.png"
    image.save(photo)
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps({"images": {"rect.png": {"box": {"category": "red", "polygons": [RECTANGLE]}}}}))
    return photo, regions


def _red_pixels(x: torch.Tensor) -> np.ndarray:
    picture = deprocess_imagenet_image(x)
    return (picture[..., 0] > 0.75) & (picture[..., 1] < 0.5)


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (517, 389), (224, 224)])
@pytest.mark.parametrize("keep_aspect", [True, False])
def test_masks_line_up_with_the_preprocessed_image(tmp_path: Path, size: tuple[int, int], keep_aspect: bool) -> None:
    photo, regions = _photo_with_rectangle(tmp_path, size)
    mask = region_masks(photo, keep_aspect=keep_aspect, regions_file=regions)["box"]
    red = _red_pixels(preprocess_imagenet_image(photo, keep_aspect=keep_aspect))
    overlap = (mask & red).sum() / (mask | red).sum()
    assert mask.shape == (224, 224)
    assert overlap > 0.95, f"mask and red rectangle overlap {overlap:.3f} for a {size} photo"


@pytest.mark.parametrize(
    "photo_size, resize, crop, scale, offset",
    [
        ((200, 120), 120, 120, 1.0, (40, 0)),  # no scaling; crop 40 columns off the left
        ((600, 400), 200, 200, 0.5, (50, 0)),  # halve to 300 x 200, crop 50 columns off the left
        ((90, 150), 60, 60, 2 / 3, (0, 20)),  # portrait: 60 x 100, crop 20 rows off the top
        ((200, 120), None, 50, (0.25, 50 / 120), (0, 0)),  # keep_aspect=False: squashed to 50 x 50, no crop
    ],
)
def test_a_pixel_belongs_to_a_region_when_its_centre_lies_inside(
    tmp_path: Path,
    photo_size: tuple[int, int],
    resize: int | None,
    crop: int,
    scale: float | tuple[float, float],
    offset: tuple[int, int],
) -> None:
    """The exact rule, pixel by pixel: input pixel (r, c) stands for photo point ((c + left + 0.5) / s, ...).

    The rectangle's edges sit at fractional coordinates, so a rule testing pixel corners (or any point other
    than the centre) moves a row or a column in or out of the mask.
    """
    width, height = photo_size
    x0, x1, y0, y1 = 0.4 * width + 0.3, 0.6 * width + 0.7, 0.4 * height + 0.6, 0.6 * height + 0.2
    photo = tmp_path / "plain.png"
    Image.new("RGB", photo_size, "white").save(photo)
    regions = tmp_path / "regions.json"
    outline = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    regions.write_text(json.dumps({"images": {"plain.png": {"box": {"category": "box", "polygons": [outline]}}}}))
    transforms = ImageClassification(crop_size=crop, resize_size=resize or crop)
    mask = region_masks(photo, transforms, keep_aspect=resize is not None, regions_file=regions)["box"]
    scale_x, scale_y = scale if isinstance(scale, tuple) else (scale, scale)

    def inside(shift: float) -> np.ndarray:
        rows, cols = np.mgrid[0:crop, 0:crop]
        x, y = (cols + offset[0] + shift) / scale_x, (rows + offset[1] + shift) / scale_y
        return (x0 < x) & (x < x1) & (y0 < y) & (y < y1)

    expected = inside(0.5)
    assert mask.shape == (crop, crop) and expected.any()
    assert not np.array_equal(inside(0.0), expected), "the corner rule must give another mask here"
    assert np.array_equal(mask, expected), f"{int((mask != expected).sum())} pixels differ from the centre rule"


def test_masks_follow_the_models_own_transforms(tmp_path: Path) -> None:
    photo, regions = _photo_with_rectangle(tmp_path, (400, 250))
    transforms = SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms()
    mask = region_masks(photo, transforms, regions_file=regions)["box"]
    red = _red_pixels(preprocess_imagenet_image(photo, transforms))
    assert (mask & red).sum() / (mask | red).sum() > 0.95


# The course photos' geometry under VGG16's resize (shorter side 256) and centre crop (224), worked out by hand:
# fruits.jpg 512 x 480 -> 273 x 256 (int(256 * 512 / 480)), crop offset (round(24.5) = 24, 16);
# squirrel.jpg 535 x 426 -> 321 x 256 (int(256 * 535 / 426)), crop offset (round(48.5) = 48, 16).
COURSE_GEOMETRY = {"fruits": (512, 480, 273, 256, 24, 16), "squirrel": (535, 426, 321, 256, 48, 16)}


def _centre_rule_masks(photo: str) -> dict[str, np.ndarray]:
    """Each region of a course photo filled by scikit-image on the input grid: an independent rasteriser.

    Photo point (x, y) lands at input column x * new_w / w - left - 0.5 (pixel c's centre is at c), so
    ``skimage.draw.polygon`` on the moved vertices fills the input pixels whose centres lie inside.
    """
    width, height, new_w, new_h, left, top = COURSE_GEOMETRY[photo]
    regions = json.loads((Path(__file__).resolve().parents[1] / "data" / "regions.json").read_text())
    masks = {}
    for label, spec in regions["images"][f"{photo}.jpg"].items():
        mask = np.zeros((224, 224), dtype=bool)
        for outline in spec["polygons"]:
            vertices = np.asarray(outline, dtype=float)
            rows = vertices[:, 1] * new_h / height - top - 0.5
            cols = vertices[:, 0] * new_w / width - left - 0.5
            mask[skimage.draw.polygon(rows, cols, mask.shape)] = True
        masks[label] = mask
    return masks


@pytest.mark.parametrize("photo", ["fruits", "squirrel"])
def test_course_masks_are_the_outlines_filled_by_pixel_centre(photo: str) -> None:
    """Every pixel of the lessons' masks, against an independent fill (a half-pixel shift moves 98-267 pixels)."""
    masks, expected = region_masks(photo), _centre_rule_masks(photo)
    assert list(masks) == list(expected)
    for label, mask in masks.items():
        wrong = int((mask != expected[label]).sum())
        assert wrong == 0, f"{photo}'s {label} mask differs from the outline filled by pixel centre at {wrong} pixels"


def test_course_regions_are_separate_objects_inside_the_frame() -> None:
    assert marked_images() == ("squirrel.jpg", "fruits.jpg")
    fruits = region_masks("fruits")
    assert not (fruits["orange"] & fruits["lemon"]).any()
    # Where lesson 01 and 04 say the fruits are: the orange on the left (its slice fills the top-left corner), the
    # lemon at the bottom right; areas as the doctest of region_masks prints.
    assert fruits["orange"][0, 0] and fruits["lemon"][-1, -1] and not fruits["lemon"][0, 0]
    assert np.argwhere(fruits["orange"])[:, 1].mean() < 100 < np.argwhere(fruits["lemon"])[:, 1].mean()
    assert np.argwhere(fruits["lemon"])[:, 0].min() > 112, "the lemon lies in the bottom half"
    assert fruits["orange"].mean() == pytest.approx(0.46, abs=0.005)
    assert fruits["lemon"].mean() == pytest.approx(0.13, abs=0.005)
    squirrel = region_masks("squirrel")["squirrel"]
    # The squirrel does not fill the frame: that is why lessons use it to show localisation.
    assert 0.15 < squirrel.mean() < 0.4
    assert {r.category for r in image_regions("fruits").values()} == {"orange", "lemon"}


def test_masks_are_read_only_and_sample_names_resolve() -> None:
    mask = region_masks("squirrel")["squirrel"]
    with pytest.raises(ValueError):
        mask[0, 0] = True
    assert has_regions("fruits") and has_regions("data/fruits.jpg") and not has_regions("cat")


def test_a_photo_outside_the_regions_folder_has_no_regions_whatever_its_name(tmp_path: Path) -> None:
    """A learner's own fruits.jpg must not get the course's outlines of another photo."""
    own = tmp_path / "fruits.jpg"
    Image.new("RGB", (300, 200), "white").save(own)
    assert not has_regions(own) and not has_regions(str(own))
    with pytest.raises(
        ValueError, match=r"No regions are marked for .*fruits.jpg.*marks only photos in its own folder"
    ):
        region_masks(own)


def test_bad_regions_files_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "regions.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="regions.json is not valid"):
        image_regions("fruits", broken)
    broken.write_text(json.dumps({"images": {"a.png": {"x": {"category": "cat", "polygons": [[[0, 0], [1, 1]]]}}}}))
    with pytest.raises(ValueError, match="region 'x' of 'a.png' needs polygons of at least 3 vertices"):
        image_regions("a.png", broken)
    with pytest.raises(ValueError, match="is missing"):
        image_regions("fruits", tmp_path / "none.json")
    with pytest.raises(ValueError, match="No regions are marked for 'cat.png'"):
        region_masks("cat")


def test_a_transform_without_resize_and_crop_is_refused(tmp_path: Path) -> None:
    photo, regions = _photo_with_rectangle(tmp_path, (300, 200))
    with pytest.raises(ValueError, match="ImageClassification transform"):
        region_masks(photo, lambda image: torch.zeros(3, 224, 224), regions_file=regions)


def test_mass_share_reduces_channels_and_checks_its_mask() -> None:
    saliency = torch.zeros(1, 3, 2, 2)
    saliency[0, :, 0, 0] = torch.tensor([1.0, -1.0, 1.0])  # |.| sums to 3 at (0, 0)
    saliency[0, 0, 1, 1] = -1.0
    inside = np.array([[True, False], [False, False]])
    assert mass_share(saliency, inside) == pytest.approx(0.75)
    assert mass_share(saliency, torch.tensor([[1, 1], [1, 1]])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mask has shape"):
        mass_share(saliency, np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="zero everywhere"):
        mass_share(torch.zeros(2, 2), inside)
    with pytest.raises(ValueError, match="mask is empty"):
        mass_share(saliency, np.zeros((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        as_mask(np.array([[0.5, 1.0]]), (1, 2))


def test_mass_share_leaves_its_arguments_alone() -> None:
    saliency, mask = torch.tensor([[1.0, -2.0]]), np.array([[True, False]])
    before = (saliency.clone(), mask.copy())
    assert mass_share(saliency, mask) == pytest.approx(1 / 3)
    assert torch.equal(saliency, before[0]) and np.array_equal(mask, before[1])


def test_mass_share_of_huge_values_does_not_overflow() -> None:
    """Dividing by the peak first keeps sum(|map|) finite: 2 x 1e308 would overflow to inf (share nan)."""
    assert mass_share(np.array([[1e308, 1e308, 0.0]]), np.array([[True, False, False]])) == pytest.approx(0.5)


def test_mass_share_and_as_mask_name_what_they_refuse() -> None:
    def refuses(error: type[Exception], message: str):
        return pytest.raises(error, match="^" + re.escape(message) + "$")

    with refuses(
        ValueError, "The map is zero everywhere, so it places no mass anywhere; check the class and the method."
    ):
        mass_share(np.zeros((2, 2)), np.eye(2, dtype=bool))
    with refuses(TypeError, "saliency must be a numpy array or a torch tensor, not list."):
        mass_share([[1.0]], np.ones((1, 1), dtype=bool))
    with refuses(TypeError, "mask_a must be a numpy array or a torch tensor, not list."):
        as_mask([[True]], (1, 1), "mask_a")
    for shape in ([2, 2], (2.0, 2), (True, 2)):
        with refuses(TypeError, f"shape must be a tuple of whole numbers, e.g. (224, 224), not {shape!r}."):
            as_mask(np.ones((2, 2), dtype=bool), shape)


def test_as_mask_messages_name_the_mask_its_shape_and_the_fix() -> None:
    def refuses(error: type[Exception], message: str):
        return pytest.raises(error, match="^" + re.escape(message) + "$")

    with refuses(
        ValueError,
        "mask_b has shape (1, 3, 3) but the maps are 2 x 2; build masks on the model input's grid "
        "(region_masks and two_class_image do).",
    ):
        as_mask(np.ones((1, 3, 3), dtype=bool), (2, 2), "mask_b")
    with refuses(TypeError, "mask must be a numpy array or a torch tensor, not list."):
        as_mask([[True]], (1, 1))
    with refuses(ValueError, "mask_b must be boolean (True on the object) or 0/1, got values other than 0 and 1."):
        as_mask(np.array([[2.0]]), (1, 1), "mask_b")
    with refuses(ValueError, "mask_b is empty (no True pixel); it must mark where the object is."):
        as_mask(np.zeros((1, 2)), (1, 2), "mask_b")


def test_a_regions_file_is_read_region_by_region(tmp_path: Path) -> None:
    """Each region keeps its own category and every polygon; three vertices are enough (a triangle)."""
    regions = tmp_path / "regions.json"
    triangle, square = [[0, 0], [10, 0], [0, 10]], [[20, 20], [30, 20], [30, 30], [20, 30]]
    spec = {"a": {"category": "tabby", "polygons": [triangle, square]}, "b": {"category": 7, "polygons": [square]}}
    regions.write_text(json.dumps({"images": {"p.png": spec}}))
    read = image_regions(tmp_path / "p.png", regions)
    assert read["a"].category == "tabby" and read["b"].category == "7"
    as_floats = tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in (triangle, square))
    assert read["a"].polygons == as_floats and read["b"].polygons == as_floats[1:]
    broken = tmp_path / "broken.json"  # another file: a file's regions are read once (cached by path)
    broken.write_text(json.dumps({"images": {"p.png": {"a": {"polygons": [triangle]}}}}))
    message = f"Regions file {broken}: region 'a' of 'p.png' needs a category and polygons of (x, y) pairs."
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        image_regions(tmp_path / "p.png", broken)


def test_region_masks_name_a_bad_transform_and_flag(tmp_path: Path) -> None:
    photo, regions = _photo_with_rectangle(tmp_path, (300, 200))

    def no_geometry(image: object) -> torch.Tensor:
        return torch.zeros(3, 224, 224)

    message = "Masks need a torchvision ImageClassification transform (with resize_size and crop_size), not function."
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        region_masks(photo, no_geometry, regions_file=regions)
    half = types.SimpleNamespace(resize_size=[256], crop_size=None)
    with pytest.raises(ValueError, match=r"not SimpleNamespace\.$"):
        region_masks(photo, half, regions_file=regions)
    with pytest.raises(TypeError, match="^" + re.escape("keep_aspect must be True or False, not 1.") + "$"):
        region_masks(photo, keep_aspect=1, regions_file=regions)


def test_what_is_not_a_photo_or_a_regions_file_is_named(tmp_path: Path) -> None:
    def refuses(error: type[Exception], message: str):
        return pytest.raises(error, match="^" + re.escape(message) + "$")

    with refuses(TypeError, "image must be a sample name or a path, not int."):
        image_regions(3)
    with refuses(TypeError, "regions_file must be the path of a regions JSON file, not 3."):
        image_regions("fruits", 3)
    own = tmp_path / "mine.jpg"
    with pytest.raises(ValueError, match=r"; marked: squirrel\.jpg, fruits\.jpg\.$"):
        image_regions(own)
