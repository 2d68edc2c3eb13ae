"""utils.lesson.open_photo: the lesson set-up gives the input, the picture, the regions and the prediction."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from torchvision.models import SqueezeNet1_1_Weights

from utils.datasets import deprocess_imagenet_image, preprocess_imagenet_image, sample_image_path
from utils.lesson import ClaimChecker, claim_checker, open_photo
from utils.models import load_model
from utils.regions import region_masks


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
        (("x", 0.5, 0.6, 0.4), ValueError, r"low \(0.6\) is not below high \(0.4\)"),
        (("x", 0.5, 0.5, 0.5), ValueError, r"low \(0.5\) is not below high \(0.5\); no value lies strictly between"),
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


def test_claim_checker_does_not_verify_a_model_with_random_weights(loaded, capsys) -> None:
    """The test switch's random weights (XAI_RANDOM_WEIGHTS=1) report instead of asserting, even on SqueezeNet."""
    random = dataclasses.replace(loaded, random_weights=True)
    claim = claim_checker(random)
    assert not claim.verifies
    claim("share", 0.9, 0.4, 0.6)  # outside the range: printed, not raised
    assert capsys.readouterr().out == (
        "claim 'share': verified on SqueezeNet 1.1: between 0.4 and 0.6; "
        "yours (SqueezeNet 1.1, random weights): 0.9, outside that range\n"
    )


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("", 0.5, 0.4, 0.6), ValueError, "a claim needs a short description of what it checks, not ''."),
        ((3, 0.5, 0.4, 0.6), ValueError, "a claim needs a short description of what it checks, not 3."),
        (("x", "0.5", 0.4), TypeError, "claim 'x': the value must be a number or a bool, not '0.5'."),
        (("x", [0.5], 0.4), TypeError, "claim 'x': the value must be a number or a bool, not [0.5]."),
        (("x", 0.5, float("inf")), ValueError, "claim 'x': a bound must be a finite number, not inf."),
        (("x", 0.5, 0.1, "1"), ValueError, "claim 'x': a bound must be a finite number, not '1'."),
    ],
)
def test_a_malformed_claims_message_names_the_value_given(args, error, message) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        ClaimChecker("squeezenet1_1")(*args)


def test_a_value_on_either_bound_is_outside_the_range(capsys) -> None:
    claim = ClaimChecker("squeezenet1_1")
    for value in (0.4, 0.6):
        with pytest.raises(AssertionError, match=rf"{value} is not between 0.4 and 0.6"):
            claim("share", value, 0.4, 0.6)
    with pytest.raises(AssertionError, match=r"0.6 is not below 0.6"):
        claim("strictly below", 0.6, high=0.6)
    ClaimChecker("vgg16")("share", 0.6, 0.4, 0.6)
    assert capsys.readouterr().out.endswith("yours (VGG16): 0.6, outside that range\n")


def test_a_one_sided_claim_that_fails_elsewhere_says_outside_that_range(capsys) -> None:
    ClaimChecker("vgg16")("ratio", 1.0, low=1.8)
    ClaimChecker("vgg16")("ratio", 2.0, high=1.8)
    assert capsys.readouterr().out.splitlines() == [
        "claim 'ratio': verified on SqueezeNet 1.1: above 1.8; yours (VGG16): 1, outside that range",
        "claim 'ratio': verified on SqueezeNet 1.1: below 1.8; yours (VGG16): 2, outside that range",
    ]


def test_a_model_without_a_title_is_named_as_given(capsys) -> None:
    ClaimChecker("resnet18")("share", 0.5, 0.4, 0.6)
    ClaimChecker("resnet18", "fine-tuned")("share", 0.3, 0.4, 0.6)
    assert capsys.readouterr().out.splitlines() == [
        "claim 'share': verified on SqueezeNet 1.1: between 0.4 and 0.6; yours (resnet18): 0.5, as verified",
        "claim 'share': verified on SqueezeNet 1.1: between 0.4 and 0.6; yours (resnet18, fine-tuned): 0.3, "
        "outside that range",
    ]


@pytest.mark.parametrize("function", [open_photo, claim_checker])
def test_a_model_name_instead_of_a_loaded_model_is_named(function) -> None:
    args = ("squirrel", "squeezenet1_1") if function is open_photo else ("squeezenet1_1",)
    expected = "loaded must be the LoadedModel that utils.models.load_model() returns, not 'squeezenet1_1'."
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        function(*args)


def test_a_sample_is_named_as_the_samples_are_and_a_path_as_given(loaded) -> None:
    assert open_photo(" Squirrel ", loaded).name == "squirrel"
    path = sample_image_path("cat")
    assert open_photo(path, loaded).name == str(path)


def test_top_lists_five_classes_unless_asked(loaded) -> None:
    photo = open_photo("fruits", loaded)
    assert len(photo.top()) == 5 and len(photo.top(2)) == 2
    assert photo.top() == photo.top(5)


def test_open_photo_uses_the_models_own_preprocessing(loaded) -> None:
    """A model whose transforms differ from VGG16's (another crop, mean and std) gets its own input, picture, masks."""
    own = SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms(
        crop_size=160, resize_size=176, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)
    )
    photo = open_photo("squirrel", dataclasses.replace(loaded, transforms=own))
    path = sample_image_path("squirrel")
    assert tuple(photo.x.shape) == (1, 3, 160, 160)
    assert torch.equal(photo.x, preprocess_imagenet_image(path, own))
    # the picture is the input un-normalised with the model's own mean and std
    mean, std = np.array(own.mean), np.array(own.std)
    expected = np.clip(photo.x[0].permute(1, 2, 0).numpy() * std + mean, 0, 1)
    assert photo.picture.shape == (160, 160, 3)
    np.testing.assert_allclose(photo.picture, expected, atol=1e-6)
    assert list(photo.masks) == ["squirrel"] and photo.masks["squirrel"].shape == (160, 160)
    assert np.array_equal(photo.masks["squirrel"], region_masks(path, own)["squirrel"])
