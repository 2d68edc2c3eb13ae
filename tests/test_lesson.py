"""utils.lesson.open_photo: the lesson set-up gives the input, the picture, the regions and the prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.datasets import deprocess_imagenet_image, preprocess_imagenet_image, sample_image_path
from utils.lesson import ClaimChecker, claim_checker, open_photo
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


# --- claim_checker: asserts on the verified (offline) model, reports on any other ---------------------------


def test_a_false_claim_fails_on_the_verified_model(loaded) -> None:
    claim = claim_checker(loaded)
    assert claim.verifies
    claim("share", 0.5, 0.4, 0.6)
    claim("peak inside", True)
    with pytest.raises(AssertionError, match=r"claim 'share' does not hold: 0.7 is not between 0.4 and 0.6"):
        claim("share", 0.7, 0.4, 0.6)
    with pytest.raises(AssertionError, match=r"'peak inside' does not hold: it is false \(verified on SqueezeNet"):
        claim("peak inside", np.bool_(False))
    with pytest.raises(AssertionError, match=r"0.4 is not above 0.4"):
        claim("strictly above", 0.4, low=0.4)
    with pytest.raises(AssertionError, match=r"nan is not below 1"):
        claim("a NaN never holds", float("nan"), high=1.0)


def test_a_claim_on_another_model_prints_the_number_beside_the_verified_range(capsys) -> None:
    claim = ClaimChecker("vgg16")
    assert not claim.verifies
    claim("share", 0.7, 0.4, 0.6)
    claim("share", torch.tensor(0.5), 0.4, 0.6)
    claim("peak inside", False)
    claim("ratio", 2.5, low=1.8)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "claim 'share': verified on SqueezeNet 1.1: between 0.4 and 0.6; yours (VGG16): 0.7, outside that range",
        "claim 'share': verified on SqueezeNet 1.1: between 0.4 and 0.6; yours (VGG16): 0.5, as verified",
        "claim 'peak inside': verified on SqueezeNet 1.1: true; yours (VGG16): false, not as verified",
        "claim 'ratio': verified on SqueezeNet 1.1: above 1.8; yours (VGG16): 2.5, as verified",
    ]


def test_random_weights_never_verify_even_on_the_offline_architecture(loaded, capsys) -> None:
    claim = ClaimChecker("squeezenet1_1", "random weights")
    assert not claim.verifies
    claim("share", 0.9, 0.4, 0.6)
    assert "yours (SqueezeNet 1.1, random weights): 0.9" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("", 0.5, 0.4, 0.6), ValueError, "needs a short description"),
        (("x", 0.5), ValueError, "give the verified range"),
        (("x", True, 0.4), ValueError, "takes no range"),
        (("x", "0.5", 0.4), TypeError, "must be a number or a bool"),
        (("x", 0.5, 0.6, 0.4), ValueError, r"low \(0.6\) is above high \(0.4\)"),
        (("x", 0.5, float("inf")), ValueError, "finite number"),
    ],
)
def test_a_malformed_claim_is_refused_on_every_model(args, error, message) -> None:
    for claim in (ClaimChecker("squeezenet1_1"), ClaimChecker("vgg16")):
        with pytest.raises(error, match=message):
            claim(*args)


def test_claim_checker_takes_a_loaded_model_only() -> None:
    with pytest.raises(TypeError, match="must be the LoadedModel"):
        claim_checker("squeezenet1_1")
