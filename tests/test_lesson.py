"""utils.lesson.open_photo: the lesson set-up gives the input, the picture, the regions and the prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.datasets import deprocess_imagenet_image, preprocess_imagenet_image, sample_image_path
from utils.lesson import open_photo
from utils.models import load_model


@pytest.fixture(scope="module")
def loaded():
    return load_model("squeezenet1_1", device="cpu")


def test_open_photo_matches_the_steps_it_replaces(loaded) -> None:
    photo = open_photo("squirrel", loaded)
    x = preprocess_imagenet_image(sample_image_path("squirrel"), loaded.transforms)
    assert torch.equal(photo.x, x)
    assert np.array_equal(photo.picture, deprocess_imagenet_image(x, loaded.transforms))
    with torch.no_grad():
        assert torch.allclose(photo.logits, loaded.model(x))
    assert list(photo.masks) == ["squirrel"] and photo.masks["squirrel"].shape == (224, 224)
    assert photo.categories[photo.top_class] == "fox squirrel"
    assert photo.top(1)[0][0] == "fox squirrel" and photo.top(1)[0][1] > 0.9


def test_open_photo_without_regions_and_by_path(loaded) -> None:
    cat = open_photo(sample_image_path("cat"), loaded)
    assert dict(cat.masks) == {}
    names = [name for name, _ in cat.top(3)]
    assert names == sorted(names, key=lambda n: -float(torch.softmax(cat.logits[0], 0)[cat.categories.index(n)]))
    assert sum(p for _, p in open_photo("fruits", loaded).top(1000)) == pytest.approx(1.0)
