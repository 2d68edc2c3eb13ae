"""Marked regions: the hand-drawn outlines land on the model input where the object is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torchvision.models import SqueezeNet1_1_Weights

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


def test_masks_follow_the_models_own_transforms(tmp_path: Path) -> None:
    photo, regions = _photo_with_rectangle(tmp_path, (400, 250))
    transforms = SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms()
    mask = region_masks(photo, transforms, regions_file=regions)["box"]
    red = _red_pixels(preprocess_imagenet_image(photo, transforms))
    assert (mask & red).sum() / (mask | red).sum() > 0.95


def test_course_regions_are_separate_objects_inside_the_frame() -> None:
    assert marked_images() == ("squirrel.jpg", "fruits.jpg")
    fruits = region_masks("fruits")
    assert not (fruits["orange"] & fruits["lemon"]).any()
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
