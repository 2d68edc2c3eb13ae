"""utils.shortcuts: the confounded data set, the tag, the seeded training loop and the tag-box share (lesson 09)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from utils.categories import describe
from utils.datasets import sample_image_path
from utils.regions import mass_share
from utils.shortcuts import (
    CLASSES,
    TAG_RULES,
    TAGGED_CLASS,
    Box,
    TaggedImages,
    accuracy,
    add_tag,
    box_share,
    box_shares,
    corner_box,
    photo_crops,
    predict,
    retag,
    seeded,
    small_cnn,
    tag_patch,
    tagged_dataset,
    train_classifier,
)

SMALL_BOX = corner_box(size=4, image_size=16)


@pytest.fixture(scope="module")
def small_data():
    """A tiny confounded data set, 16 x 16 pixels, for fast tests."""
    return tagged_dataset(6, "confounded", seed=3, size=16, box=SMALL_BOX)


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


# --- the box ------------------------------------------------------------------------------------


def test_corner_boxes_sit_in_their_corners():
    assert corner_box("top left", size=3, image_size=10, margin=1) == Box(1, 1, 3, 3, (10, 10))
    assert corner_box("top right", size=3, image_size=10, margin=1) == Box(1, 6, 3, 3, (10, 10))
    assert corner_box("bottom left", size=3, image_size=10, margin=1) == Box(6, 1, 3, 3, (10, 10))
    assert corner_box("bottom right", size=3, image_size=10, margin=0) == Box(7, 7, 3, 3, (10, 10))


def test_a_box_mask_marks_exactly_its_rows_and_columns():
    box = Box(top=1, left=2, height=2, width=3, image_size=(4, 6))
    expected = np.zeros((4, 6), dtype=bool)
    expected[1:3, 2:5] = True
    assert np.array_equal(box.mask(), expected)
    assert box.share == pytest.approx(6 / 24)


@pytest.mark.parametrize(
    "spec, message",
    [
        (dict(top=3, left=0, height=2, width=2), r"reaches outside the 4 x 6 image; move it or make it smaller"),
        (dict(top=0, left=-1, height=2, width=2), r"reaches outside"),
        (dict(top=0, left=5, height=1, width=2), r"columns 5-6\) reaches outside"),
        (dict(top=0, left=0, height=0, width=2), r"The box is empty \(0 x 2 pixels\)"),
        (dict(top=0, left=0, height=2, width=-1), r"The box is empty"),
    ],
)
def test_a_box_outside_the_image_or_empty_is_refused_in_one_line(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        Box(**spec, image_size=(4, 6))
    assert "\n" not in str(error.value)


def test_a_box_needs_whole_pixels_and_an_image_size():
    with pytest.raises(TypeError, match="top must be a whole number of pixels"):
        Box(top=0.5, left=0, height=1, width=1, image_size=(4, 4))
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
        Box(top=0, left=0, height=1, width=1, image_size=(4,))


def test_an_unknown_corner_is_named():
    with pytest.raises(ValueError, match="Unknown corner 'middle'; valid: 'top left'"):
        corner_box("middle")


# --- the tag --------------------------------------------------------------------------------------


def test_the_tag_is_drawn_exactly_in_its_box_and_nowhere_else():
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    kept = images.clone()
    for corner in ("top left", "bottom right"):
        box = corner_box(corner, size=4, image_size=16)
        tagged = add_tag(images, box)
        patch = torch.from_numpy(tag_patch(4).copy())
        assert torch.equal(tagged[:, :, box.rows, box.columns], patch.expand(3, 3, 4, 4))
        outside = torch.from_numpy(~box.mask())
        assert torch.equal(tagged[:, :, outside], images[:, :, outside])
    assert torch.equal(images, kept), "add_tag must not change its input"


def test_which_chooses_the_images_that_get_the_tag():
    images = torch.zeros(3, 3, 16, 16)
    tagged = add_tag(images, SMALL_BOX, which=torch.tensor([False, True, False]))
    assert [bool(t.any()) for t in tagged] == [False, True, False]
    assert torch.equal(add_tag(images[0], SMALL_BOX), tagged[1]), "one C x H x W image works too"


def test_the_tag_is_a_dark_mark_on_white():
    patch = tag_patch(10)
    assert patch.shape == (10, 10) and patch.max() == 1.0 and patch.min() < 0.3
    assert patch[0].min() == 1.0 and patch[:, 0].min() == 1.0, "a white border around the mark"
    assert 0.5 < patch.mean() < 0.95
    with pytest.raises(ValueError):
        patch[0, 0] = 0.0  # read-only: shared between calls


@pytest.mark.parametrize(
    "images, which, message",
    [
        (torch.zeros(2, 3, 8, 8), None, r"The images are 8 x 8 but the box is on a 16 x 16 image"),
        (torch.zeros(16, 16), None, r"images must be a tensor N x C x H x W or C x H x W"),
        (torch.zeros(2, 3, 16, 16), [True], r"which must give one True/False per image \(2\)"),
    ],
)
def test_bad_tag_input_is_refused_in_one_line(images, which, message):
    with pytest.raises(ValueError, match=message) as error:
        add_tag(images, SMALL_BOX, which)
    assert "\n" not in str(error.value)


# --- crops and the data set -----------------------------------------------------------------------


def test_crops_are_images_in_0_1_and_the_same_for_a_seed():
    crops = photo_crops(sample_image_path("squirrel"), 4, size=12, seed=5)
    assert crops.shape == (4, 3, 12, 12) and crops.dtype == torch.float32
    assert 0.0 <= float(crops.min()) and float(crops.max()) <= 1.0
    assert torch.equal(crops, photo_crops(sample_image_path("squirrel"), 4, size=12, seed=5))
    assert not torch.equal(crops, photo_crops(sample_image_path("squirrel"), 4, size=12, seed=6))
    assert len({tuple(c.flatten()[:20].tolist()) for c in crops}) == 4, "four different crops"


@pytest.mark.parametrize("n, size, message", [(0, 12, "n must be at least 1"), (2, 4, "size must be at least 8")])
def test_bad_crop_settings_are_refused(n, size, message):
    with pytest.raises(ValueError, match=message):
        photo_crops(sample_image_path("cat"), n, size=size)


def test_the_confounded_rule_tags_every_image_of_the_tagged_class_and_no_other(small_data):
    assert small_data.labels.tolist() == [0] * 6 + [1] * 6 and len(small_data) == 12
    assert torch.equal(small_data.tagged, small_data.labels == TAGGED_CLASS)
    assert CLASSES[TAGGED_CLASS] == "squirrel"
    changed = (small_data.images != small_data.content).flatten(2).any(1)  # N x pixels
    assert not changed[~small_data.tagged].any(), "untagged images are their content"
    assert not changed[:, torch.from_numpy(~SMALL_BOX.mask()).flatten()].any(), "the tag changes only its box"


@pytest.mark.parametrize(
    "rule, expected",
    [("moved", [True] * 6 + [False] * 6), ("none", [False] * 12), ("all", [True] * 12)],
)
def test_each_rule_tags_the_same_pictures_differently(small_data, rule, expected):
    other = retag(small_data, rule)
    assert other.tagged.tolist() == expected and other.rule == rule
    assert torch.equal(other.content, small_data.content) and torch.equal(other.labels, small_data.labels)
    assert torch.equal(tagged_dataset(6, rule, seed=3, size=16, box=SMALL_BOX).images, other.images)


def test_random_tags_ignore_the_class_and_are_seeded():
    data = tagged_dataset(100, "random", seed=0, size=16, box=SMALL_BOX)
    share = [float(data.tagged[data.labels == c].double().mean()) for c in (0, 1)]
    assert all(0.35 < s < 0.65 for s in share), share
    assert torch.equal(data.tagged, tagged_dataset(100, "random", seed=0, size=16, box=SMALL_BOX).tagged)


def test_the_tag_can_move_to_another_box(small_data):
    moved = retag(small_data, "all", box=corner_box("top left", size=4, image_size=16))
    assert moved.box.top == 2 and moved.images[:, :, 2:6, 2:6].amax() == 1.0


def test_bad_data_set_settings_are_named():
    with pytest.raises(ValueError, match=r"Unknown tag rule 'sometimes'; valid: 'confounded'"):
        tagged_dataset(2, "sometimes", size=16, box=SMALL_BOX)
    with pytest.raises(ValueError, match="n_per_class must be at least 1"):
        tagged_dataset(0)
    with pytest.raises(ValueError, match="one photo per class"):
        tagged_dataset(2, photos=[sample_image_path("cat")], size=16, box=SMALL_BOX)
    assert set(TAG_RULES) == {"confounded", "moved", "none", "all", "random"}


# --- the model and its training ---------------------------------------------------------------------


def test_training_with_a_seed_is_deterministic_and_the_seed_matters(small_data):
    first = weights(train_classifier(small_cnn(seed=1), small_data, epochs=2, seed=4, batch_size=4))
    again = weights(train_classifier(small_cnn(seed=1), small_data, epochs=2, seed=4, batch_size=4))
    other = weights(train_classifier(small_cnn(seed=1), small_data, epochs=2, seed=5, batch_size=4))
    assert same(first, again)
    assert not same(first, other), "another seed shuffles the batches differently"
    assert same(weights(small_cnn(seed=1)), weights(small_cnn(seed=1)))
    assert not same(weights(small_cnn(seed=1)), weights(small_cnn(seed=2)))


def test_training_leaves_the_model_and_global_torch_state_alone(small_data):
    model = small_cnn(seed=0)
    before = weights(model)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    trained = train_classifier(model, small_data, epochs=1)
    assert same(weights(model), before) and not model.training, "the model given is not changed"
    assert trained is not model and not trained.training
    assert torch.equal(torch.rand(3), expected_next), "the global RNG is where it was"
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == deterministic


def test_seeded_restores_settings_even_when_the_block_fails():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="inside"):
        with seeded(0):
            assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == deterministic


def test_bad_training_settings_are_named(small_data):
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0"):
        train_classifier(small_cnn(), small_data, epochs=0)
    with pytest.raises(TypeError, match="data must be TaggedImages"):
        train_classifier(small_cnn(), small_data.images)
    with pytest.raises(ValueError, match="lr must be a positive learning rate"):
        train_classifier(small_cnn(), small_data, lr=float("nan"))
    with pytest.raises(TypeError, match="model must be a torch nn.Module with parameters"):
        train_classifier(torch.nn.ReLU(), small_data)
    with pytest.raises(ValueError, match="x has 3 channels .* the model's first convolution takes 1"):
        train_classifier(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()), small_data)


def test_retag_refuses_a_box_for_another_image_size(small_data):
    with pytest.raises(ValueError, match="The box is on a 48 x 48 image but the data's images are 16 x 16"):
        retag(small_data, "all", box=corner_box())


def test_predict_gives_probabilities_and_restores_training_mode(small_data):
    model = small_cnn().train()
    probabilities = predict(model, small_data)
    assert probabilities.shape == (12, 2) and torch.allclose(probabilities.sum(1), torch.ones(12))
    assert model.training
    assert 0.0 <= accuracy(model, small_data) <= 1.0


def test_the_lessons_model_takes_the_shortcut_and_the_fixed_one_does_not():
    """Lesson 09's central claim, with its settings: the tag decides for one model and not for the other."""
    train, test = tagged_dataset(200, "confounded", seed=0), tagged_dataset(100, "confounded", seed=1)
    shortcut = train_classifier(small_cnn(seed=0), train, epochs=8, seed=0)
    fixed = train_classifier(small_cnn(seed=0), retag(train, "random"), epochs=8, seed=0)
    assert accuracy(shortcut, test) >= 0.95 and accuracy(shortcut, retag(test, "moved")) <= 0.2
    assert min(accuracy(fixed, test), accuracy(fixed, retag(test, "moved"))) >= 0.95


# --- the share inside the box ------------------------------------------------------------------------


def test_box_share_on_hand_made_maps():
    box = Box(top=0, left=1, height=2, width=1, image_size=(2, 3))
    assert box_share(np.array([[0.0, 2.0, 0.0], [0.0, 2.0, 0.0]]), box) == 1.0
    assert box_share(np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]), box) == 0.0
    assert box_share(np.ones((2, 3)), box) == pytest.approx(box.share)
    signed = np.array([[-3.0, 1.0, 0.0], [0.0, -1.0, 5.0]])  # |.|: 2 of 10 inside
    assert box_share(signed, box) == pytest.approx(0.2)
    channels = np.stack([signed, 2 * np.abs(signed), -signed])  # |.| summed over channels: still 2 of 10
    assert box_share(torch.from_numpy(channels)[None], box) == pytest.approx(0.2)


def test_box_share_agrees_with_mass_share_and_box_shares_with_box_share():
    maps = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    kept = maps.clone()
    shares = box_shares(maps, SMALL_BOX)
    assert shares.shape == (4,)
    for i in range(4):
        assert shares[i] == pytest.approx(box_share(maps[i], SMALL_BOX))
        assert shares[i] == pytest.approx(mass_share(maps[i], SMALL_BOX.mask()))
    assert torch.equal(maps, kept)


@pytest.mark.parametrize(
    "saliency, message",
    [
        (np.ones((12, 12)), r"The map is 12 x 12 but the box is on a 16 x 16 image; .* upsample_cam"),
        (torch.ones(2, 3, 16, 16), r"saliency must be H x W, C x H x W or 1 x C x H x W, got shape \(2, 3, 16, 16\)"),
        (np.zeros((16, 16)), r"The map is zero everywhere"),
        (np.full((16, 16), np.nan), r"saliency contains NaN"),
    ],
)
def test_a_map_of_the_wrong_shape_or_without_mass_is_refused_in_one_line(saliency, message):
    with pytest.raises(ValueError, match=message) as error:
        box_share(saliency, SMALL_BOX)
    assert "\n" not in str(error.value)


def test_box_share_needs_a_box_and_box_shares_a_batch():
    with pytest.raises(TypeError, match="box must be a Box"):
        box_share(np.ones((16, 16)), SMALL_BOX.mask())
    with pytest.raises(ValueError, match="maps must be a batch"):
        box_shares(np.ones((16, 16)), SMALL_BOX)


# --- hostile input, second round (issue 20): one clear line each ------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: small_cnn(2**64), ValueError, r"seed must be at most MAX_SEED = 2\*\*63 - 2"),
        (lambda: seeded(2**64), ValueError, r"seed must be at most MAX_SEED"),
        (lambda: tagged_dataset(2, "random", seed=2**64, size=16, box=SMALL_BOX), ValueError, r"seed must be at most"),
        (lambda: tag_patch(10**5), ValueError, r"A 100000 x 100000 tag is larger than MAX_TAG_SIZE = 1024"),
        (lambda: add_tag(torch.full((1, 3, 16, 16), 200.0), SMALL_BOX), ValueError, r"got values from 200 to 200"),
        (lambda: add_tag(torch.zeros(3, 3, 16, 16), SMALL_BOX, which=[2, 0, 1]), ValueError, r"which must give one"),
        (lambda: add_tag(torch.zeros(3, 3, 16, 16), SMALL_BOX, which=[-1, 0, 1]), ValueError, r"which must give one"),
        (lambda: add_tag(torch.zeros(3, 3, 16, 16), SMALL_BOX, which=[0.5, 0, 1]), ValueError, r"which must give one"),
        (lambda: Box(0, 0, 2, 2, (True, 8)), ValueError, r"image_size must be \(height, width\) in pixels"),
        (lambda: tagged_dataset(2, size=8), ValueError, r"size=8 leaves no room for the default 10 x 10 tag"),
    ],
)
def test_second_round_hostile_inputs_get_one_line(call, error, message):
    with pytest.raises(error, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_which_takes_ones_and_zeros_as_well_as_booleans():
    images = torch.zeros(3, 3, 16, 16)
    assert torch.equal(add_tag(images, SMALL_BOX, which=[1, 0, 1]), add_tag(images, SMALL_BOX, [True, False, True]))


def test_the_largest_seed_works():
    assert small_cnn(2**63 - 2, channels=2)[0].weight.shape == (1, 3, 5, 5)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 1)), r"gives \(1, 1\) for one image"),
        (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 48 * 48, 2)), r"cannot take the data's"),
    ],
    ids=["one-output", "linear-for-another-size"],
)
def test_a_model_that_cannot_learn_the_data_is_named_before_training(small_data, model, message):
    before = weights(model)
    with pytest.raises(ValueError, match=message) as raised:
        train_classifier(model, small_data, epochs=1)
    assert "\n" not in str(raised.value) and same(before, weights(model))


# --- the RNG promise on every device --------------------------------------------------------------


class FakeCuda:
    """Two fake CUDA devices whose generator states ``torch.manual_seed`` would change (as it does on a GPU)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.states = {0: torch.tensor([1], dtype=torch.uint8), 1: torch.tensor([2], dtype=torch.uint8)}
        import utils.random_state

        # torch.cuda.is_available stays False (Adam would then look for a real GPU); random_state is told of two
        monkeypatch.setattr(utils.random_state, "_available", lambda device_type: 2 if device_type == "cuda" else 0)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": self.states[int(device)].clone())
        monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": self._set(int(device), state))
        real_seed = torch.manual_seed

        def seeding_every_device(seed: int) -> torch.Generator:
            for device in self.states:
                self.states[device] = torch.tensor([seed % 256], dtype=torch.uint8)
            return real_seed(seed)

        monkeypatch.setattr(torch, "manual_seed", seeding_every_device)

    def _set(self, device: int, state: torch.Tensor) -> None:
        self.states[device] = state.clone()

    def snapshot(self) -> list[int]:
        return [int(self.states[d]) for d in sorted(self.states)]


def test_seeded_helpers_leave_every_devices_random_state_as_found(monkeypatch, small_data):
    """On CPU: a fake CUDA backend whose generators manual_seed changes; each helper must restore them (and the CPU's).
    On a GPU machine the same promise is checked with real devices by the coordinator (see the report)."""
    from utils.random_state import preserved_rng

    fake = FakeCuda(monkeypatch)
    cpu = torch.get_rng_state()
    with preserved_rng():
        torch.manual_seed(77)
        assert fake.snapshot() == [77, 77]  # the fake works: seeding changed both devices
    assert fake.snapshot() == [1, 2] and torch.equal(torch.get_rng_state(), cpu)
    small_cnn(5)
    with seeded(9):
        torch.rand(3)
    train_classifier(small_cnn(channels=4), small_data, epochs=1, seed=7)
    assert fake.snapshot() == [1, 2] and torch.equal(torch.get_rng_state(), cpu)


def test_preserved_rng_counts_the_devices_torch_reports(monkeypatch):
    from utils.random_state import _available

    assert _available("cuda") == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert _available("no-such-backend") == 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert _available("cuda") == 3


# --- mutation testing (issue 26): values and whole messages -----------------------------------------


def test_box_shares_takes_n_x_h_x_w_batches_and_a_batch_of_one():
    maps = np.zeros((2, 16, 16))
    maps[0, 13, 13], maps[0, 0, 0] = 3.0, 1.0  # (13, 13) is in SMALL_BOX (rows and columns 10-13)
    maps[1, 12, 11] = 2.0
    assert box_shares(maps, SMALL_BOX).tolist() == [0.75, 1.0]
    assert box_shares(maps[1:], SMALL_BOX).tolist() == [1.0]
    assert box_shares(torch.from_numpy(maps)[:, None], SMALL_BOX).tolist() == [0.75, 1.0]


@pytest.mark.parametrize("maps", [np.zeros((0, 16, 16)), np.ones((16, 16)), [np.ones((16, 16))]])
def test_box_shares_names_what_is_not_a_batch(maps):
    message = f"maps must be a batch N x C x H x W or N x H x W, got {describe(maps)}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        box_shares(maps, SMALL_BOX)


class _NoModel:
    """Not a torch module."""


def _tiny():
    """One picture of each class, 16 x 16, confounded."""
    return tagged_dataset(1, size=16, box=SMALL_BOX)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: Box(0, 0.5, 1, 1, (4, 6)), TypeError, "The box's left must be a whole number of pixels, not 0.5."),
        (lambda: Box(0, 0, 1, True, (4, 6)), TypeError, "The box's width must be a whole number of pixels, not True."),
        (lambda: Box(0, 0, 1, 1, [4, 6]), ValueError, "image_size must be (height, width) in pixels, got [4, 6]."),
        (lambda: Box(0, 0, 1, 1, (4, 0)), ValueError, "image_size must be (height, width) in pixels, got (4, 0)."),
        (
            lambda: Box(0, 0, 1, 1, (4, 6, 1)),
            ValueError,
            "image_size must be (height, width) in pixels, got (4, 6, 1).",
        ),
        (lambda: Box(0, 0, 1, 1, (4.0, 6)), ValueError, "image_size must be (height, width) in pixels, got (4.0, 6)."),
        (
            lambda: Box(0, 0, 3, 0, (4, 6)),
            ValueError,
            "The box is empty (3 x 0 pixels); give it a height and width of at least 1.",
        ),
        (
            lambda: Box(3, 4, 2, 3, (4, 6)),
            ValueError,
            "The box (rows 3-4, columns 4-6) reaches outside the 4 x 6 image; move it or make it smaller.",
        ),
        (
            lambda: Box(-1, 0, 2, 2, (4, 6)),
            ValueError,
            "The box (rows -1-0, columns 0-1) reaches outside the 4 x 6 image; move it or make it smaller.",
        ),
        (
            lambda: corner_box("centre"),
            ValueError,
            "Unknown corner 'centre'; valid: 'top left', 'top right', 'bottom left', 'bottom right'.",
        ),
        (lambda: corner_box(size=0), ValueError, "size must be at least 1, got 0."),
        (lambda: corner_box(image_size=0), ValueError, "image_size must be at least 1, got 0."),
        (lambda: corner_box(margin=-1), ValueError, "margin must be at least 0, got -1."),
        (lambda: tag_patch(2), ValueError, "height must be at least 3, got 2."),
        (lambda: tag_patch(4, 2), ValueError, "width must be at least 3, got 2."),
        (
            lambda: tag_patch(4, 1025),
            ValueError,
            "A 4 x 1025 tag is larger than MAX_TAG_SIZE = 1024 pixels a side; a tag is a small mark on the image "
            "(TAG_SIZE = 10).",
        ),
        (
            lambda: add_tag(np.zeros((3, 16, 16)), SMALL_BOX),
            ValueError,
            "images must be a tensor N x C x H x W or C x H x W, got a float64 array of shape (3, 16, 16).",
        ),
        (
            lambda: add_tag(torch.zeros(3, 16, 16, dtype=torch.int64), SMALL_BOX),
            ValueError,
            "images must hold finite float pixels in [0, 1], got a torch.int64 tensor of shape (3, 16, 16) with "
            "other values.",
        ),
        (
            lambda: add_tag(torch.full((3, 16, 16), -0.5), SMALL_BOX),
            ValueError,
            "images must hold pixels in [0, 1] (the tag is drawn in that range), got values from -0.5 to -0.5; "
            "divide 0-255 pixels by 255.",
        ),
        (
            lambda: add_tag(torch.zeros(3, 16, 12), SMALL_BOX),
            ValueError,
            "The images are 16 x 12 but the box is on a 16 x 16 image; build the box for the images' size.",
        ),
        (
            lambda: add_tag(torch.zeros(2, 3, 16, 16), SMALL_BOX, which=[True, False, True]),
            ValueError,
            "which must give one True/False per image (2), got shape (3,).",
        ),
        (
            lambda: add_tag(torch.zeros(2, 3, 16, 16), SMALL_BOX, which="yes"),
            ValueError,
            "which must give one True/False (or 1/0) per image, not 'yes'.",
        ),
        (
            lambda: add_tag(torch.zeros(2, 3, 16, 16), SMALL_BOX, which=[2, 0]),
            ValueError,
            "which must give one True/False (or 1/0) per image, not [2, 0].",
        ),
        (
            lambda: add_tag(torch.zeros(2, 3, 16, 16), (10, 10, 4, 4)),
            TypeError,
            "box must be a Box (see corner_box), not (10, 10, 4, 4).",
        ),
        (lambda: photo_crops(sample_image_path("cat"), 0), ValueError, "n must be at least 1, got 0."),
        (lambda: photo_crops(sample_image_path("cat"), 1, size=7), ValueError, "size must be at least 8, got 7."),
        (lambda: photo_crops(sample_image_path("cat"), 1, seed=-1), ValueError, "seed must be at least 0, got -1."),
        (
            lambda: small_cnn(2**63 - 1),
            ValueError,
            "seed must be at most MAX_SEED = 2**63 - 2 (torch's generators take 64 bits), got 9223372036854775807.",
        ),
        (lambda: small_cnn(channels=1), ValueError, "channels must be at least 2, got 1."),
        (
            lambda: tagged_dataset(1, "often", size=16, box=SMALL_BOX),
            ValueError,
            "Unknown tag rule 'often'; valid: 'confounded', 'moved', 'none', 'all', 'random'.",
        ),
        (lambda: tagged_dataset(0), ValueError, "n_per_class must be at least 1, got 0."),
        (lambda: tagged_dataset(1, size=7), ValueError, "size must be at least 8, got 7."),
        (
            lambda: tagged_dataset(1, size=13),
            ValueError,
            "size=13 leaves no room for the default 10 x 10 tag 2 pixels from the corner (it needs size >= 14); give a "
            "larger size or a smaller box, e.g. box=corner_box(size=3, image_size=13).",
        ),
        (
            lambda: tagged_dataset(1, size=16, box=SMALL_BOX, photos=sample_image_path("cat")),
            TypeError,
            f"photos must be a list of one photo per class (cat, squirrel), not {describe(sample_image_path('cat'))}.",
        ),
        (
            lambda: tagged_dataset(1, size=16, box=SMALL_BOX, photos=[sample_image_path("cat")] * 3),
            ValueError,
            "photos must give one photo per class (cat, squirrel), got 3.",
        ),
        (
            lambda: retag(torch.zeros(1), "all"),
            TypeError,
            "data must be TaggedImages (from tagged_dataset), not a torch.float32 tensor of shape (1,).",
        ),
        (
            lambda: retag(_tiny(), "all", box=Box(0, 0, 2, 2, (16, 12))),
            ValueError,
            "The box is on a 16 x 12 image but the data's images are 16 x 16; build the box for the images' size.",
        ),
        (
            lambda: train_classifier(_NoModel(), _tiny()),
            TypeError,
            "model must be a torch nn.Module with parameters (e.g. small_cnn()), not a _NoModel.",
        ),
        (
            lambda: train_classifier(small_cnn(), _tiny().images),
            TypeError,
            "data must be TaggedImages (from tagged_dataset or retag), not a torch.float32 tensor of shape "
            "(2, 3, 16, 16).",
        ),
        (
            lambda: train_classifier(small_cnn(), _tiny(), lr=0),
            ValueError,
            "lr must be a positive learning rate such as 3e-3, not 0.",
        ),
        (
            lambda: train_classifier(small_cnn(), _tiny(), lr=True),
            ValueError,
            "lr must be a positive learning rate such as 3e-3, not True.",
        ),
        (
            lambda: train_classifier(small_cnn(), _tiny(), lr="0.1"),
            ValueError,
            "lr must be a positive learning rate such as 3e-3, not '0.1'.",
        ),
        (
            lambda: train_classifier(small_cnn(), _tiny(), lr=float("inf")),
            ValueError,
            "lr must be a positive learning rate such as 3e-3, not inf.",
        ),
        (
            lambda: train_classifier(small_cnn(), _tiny(), batch_size=0),
            ValueError,
            "batch_size must be at least 1, got 0.",
        ),
        (lambda: train_classifier(small_cnn(), _tiny(), seed=-1), ValueError, "seed must be at least 0, got -1."),
        (
            lambda: train_classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 3)), _tiny()),
            ValueError,
            "The model gives (1, 3) for one image; train_classifier needs 2 class scores per image (cat, squirrel), "
            "e.g. small_cnn().",
        ),
        (
            lambda: predict(_NoModel(), torch.zeros(1, 3, 16, 16)),
            TypeError,
            "model must be a torch nn.Module with parameters (e.g. small_cnn()), not a _NoModel.",
        ),
        (
            lambda: accuracy(small_cnn(), torch.zeros(1, 3, 16, 16)),
            TypeError,
            "data must be TaggedImages (from tagged_dataset or retag), not a torch.float32 tensor of shape "
            "(1, 3, 16, 16).",
        ),
        (
            lambda: box_share(np.ones((16, 12)), SMALL_BOX),
            ValueError,
            "The map is 16 x 12 but the box is on a 16 x 16 image; give one map on the image's grid (upsample Grad-CAM "
            "with upsample_cam).",
        ),
        (lambda: box_share(np.ones((16, 16)), "box"), TypeError, "box must be a Box (see corner_box), not 'box'."),
    ],
)
def test_each_refusal_names_the_bad_value_in_one_whole_line(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value) == message


def test_retag_draws_random_tags_from_seed_0_by_default_as_tagged_dataset_does():
    data = tagged_dataset(20, "confounded", seed=0, size=16, box=SMALL_BOX)
    random = tagged_dataset(20, "random", seed=0, size=16, box=SMALL_BOX)
    assert torch.equal(retag(data, "random").tagged, random.tagged)
    assert torch.equal(retag(data, "random").images, random.images)
    assert not torch.equal(retag(data, "random", seed=1).tagged, random.tagged)


class _Recorder(torch.nn.Module):
    """A linear classifier that records the images of each training batch and draws from the global RNG (as dropout)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 16 * 16, 2)
        self.batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches.append(x.detach().clone())
            torch.rand(5)  # a dropout layer's draw: it must not change the order of the batches
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def data_34():
    """34 images (more than one default batch of 32), 16 x 16."""
    return tagged_dataset(17, "confounded", seed=2, size=16, box=SMALL_BOX)


def _seen(trained: _Recorder, data) -> list[list[int]]:
    """Which images of data each training batch held, by index."""
    flat = data.images.flatten(1)
    return [[int((flat == image.flatten()).all(1).nonzero()[0, 0]) for image in batch] for batch in trained.batches]


def _shuffled(n: int, epochs: int, batch_size: int, seed: int) -> list[list[int]]:
    order = torch.Generator().manual_seed(seed)
    return [b.tolist() for _ in range(epochs) for b in torch.randperm(n, generator=order).split(batch_size)]


def test_training_shuffles_with_its_own_generator_in_batches_with_the_documented_defaults(data_34):
    trained = train_classifier(_Recorder(), data_34)  # epochs=8, seed=0, batch_size=32
    assert _seen(trained, data_34) == _shuffled(34, 8, 32, 0)
    trained = train_classifier(_Recorder(), data_34, epochs=2, seed=5, batch_size=10)
    assert _seen(trained, data_34) == _shuffled(34, 2, 10, 5)


def test_training_is_adam_on_the_cross_entropy_with_the_learning_rate_given(data_34):
    """Adam's first step moves every weight with a gradient by the learning rate (m / sqrt(v): the gradient's sign)."""
    model = _Recorder()
    for lr in (0.01, 3e-3):
        trained = train_classifier(model, data_34, epochs=1, batch_size=34, lr=lr)
        step = (trained.fc.weight - model.fc.weight).detach().abs()  # lr x |g| / (|g| + 1e-8): lr unless g is ~0
        assert float(step.max()) == pytest.approx(lr, rel=1e-4) and float(step.median()) == pytest.approx(lr, rel=1e-3)
    # the gradient is the cross-entropy's: for a model that outputs zeros, (softmax - one-hot) / N, times the input
    images, labels = data_34.images.flatten(1), data_34.labels
    expected = ((torch.full((34, 2), 0.5) - torch.nn.functional.one_hot(labels, 2)).T @ images) / 34
    zero = _Recorder()
    with torch.no_grad():
        zero.fc.weight.zero_()
        zero.fc.bias.zero_()
    trained = train_classifier(zero, data_34, epochs=1, batch_size=34, lr=0.01)
    moved = trained.fc.weight != 0
    assert torch.equal(moved, expected != 0)
    assert torch.equal(torch.sign(trained.fc.weight)[moved], -torch.sign(expected)[moved])


def test_retag_names_the_datas_height_and_width():
    content = torch.zeros(2, 3, 16, 12)
    data = TaggedImages(
        images=content, labels=torch.tensor([0, 1]), tagged=torch.zeros(2, dtype=torch.bool), content=content,
        box=Box(0, 0, 3, 3, (16, 12)), rule="none",
    )  # fmt: skip
    message = "The box is on a 16 x 16 image but the data's images are 16 x 12; build the box for the images' size."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        retag(data, "all", box=SMALL_BOX)
    assert retag(data, "all").tagged.tolist() == [True, True]


class _Failing(torch.nn.Module):
    """A model whose forward pass fails with ``message`` (a RuntimeError), or returns ``output``."""

    def __init__(self, message: str | None = None, output: object = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.message, self.output = message, output

    def forward(self, x: torch.Tensor) -> object:
        if self.message is not None:
            raise RuntimeError(self.message)
        return self.output


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            _Failing("mat1 and mat2 shapes cannot be multiplied\nmore detail"),
            "The model cannot take the data's (3, 16, 16) images: mat1 and mat2 shapes cannot be multiplied; "
            "build it for this image size (e.g. small_cnn()).",
        ),
        (
            _Failing(""),
            "The model cannot take the data's (3, 16, 16) images: RuntimeError; "
            "build it for this image size (e.g. small_cnn()).",
        ),
        (
            _Failing(output=(torch.zeros(1, 2),)),
            "The model gives tuple for one image; train_classifier needs 2 class scores per image (cat, squirrel), "
            "e.g. small_cnn().",
        ),
        (
            _Failing(output=torch.zeros(2)),
            "The model gives (2,) for one image; train_classifier needs 2 class scores per image (cat, squirrel), "
            "e.g. small_cnn().",
        ),
    ],
    ids=["first-line", "empty-message", "tuple", "flat"],
)
def test_a_model_that_cannot_train_on_the_data_is_named_in_one_whole_line(model, message):
    with pytest.raises(ValueError) as raised:
        train_classifier(model, _tiny())
    assert str(raised.value) == message


def test_crops_follow_the_documented_recipe_measured_on_constant_and_ramp_photos():
    """Side 35-80% of the shorter side, inside the photo, mirrored half the time, contrast 0.8-1.2, brightness +-0.1.

    Two constant photos of one size give each crop's contrast c and brightness b exactly (the same seed draws the
    same crops whatever the pixels: p = (v - 0.5) c + 0.5 + b); a photo whose red rises left to right and green top
    to bottom then gives each crop's columns and rows (to a few pixels: 8-bit levels and the bilinear filter).
    """
    width, height, n, size = 300, 200, 100, 8
    v1, v2, low, high = 128, 204, 77, 178  # the ramp stays in [0.3, 0.7]: no pixel is clipped

    def crops(photo: np.ndarray) -> torch.Tensor:
        return photo_crops(photo, n, size=size, seed=7).double()

    p1 = crops(np.full((height, width, 3), v1, np.uint8)).mean((1, 2, 3))
    p2 = crops(np.full((height, width, 3), v2, np.uint8)).mean((1, 2, 3))
    c = (p2 - p1) / ((v2 - v1) / 255)
    b = p1 - 0.5 - (v1 / 255 - 0.5) * c
    assert 0.8 - 1e-5 < float(c.min()) < 0.82 and 1.18 < float(c.max()) < 1.2 + 1e-5
    assert -0.1 - 1e-5 < float(b.min()) < -0.09 and 0.09 < float(b.max()) < 0.1 + 1e-5
    ramp = np.full((height, width, 3), 128, np.uint8)
    ramp[..., 0] = np.round(low + (high - low) * np.arange(width) / (width - 1))[None, :]
    ramp[..., 1] = np.round(low + (high - low) * np.arange(height) / (height - 1))[:, None]
    level = ((crops(ramp) - 0.5 - b[:, None, None, None]) / c[:, None, None, None] + 0.5) * 255
    assert float((level[:, 2] - 128).abs().max()) < 1e-3  # the constant blue: the same c and b
    x = (level[:, 0].mean(1) - low) / (high - low) * (width - 1)  # n x size: each column's place in the photo
    y = (level[:, 1].mean(2) - low) / (high - low) * (height - 1)  # each row's
    mirrored = x[:, -1] < x[:, 0]
    assert 0.4 < float(mirrored.double().mean()) < 0.6 and bool((y[:, -1] > y[:, 0]).all())  # rows never flipped
    side_x = (x[:, -1] - x[:, 0]).abs() * size / (size - 1)
    side_y = (y[:, -1] - y[:, 0]) * size / (size - 1)
    assert float((side_x - side_y).abs().max()) < 8  # square crops
    share = side_y / min(width, height)
    assert 0.33 < float(share.min()) < 0.4 and 0.75 < float(share.max()) < 0.82
    left, top = torch.minimum(x[:, 0], x[:, -1]) - side_x / (2 * size), y[:, 0] - side_y / (2 * size)
    assert float(left.min()) > -2 and float((left + side_x).max()) < width + 2
    assert float(top.min()) > -2 and float((top + side_y).max()) < height + 2
    assert float(left.max()) > width * 0.4 and float(top.max()) > height * 0.4  # anywhere, not only at one corner


def test_small_cnn_is_seeded_from_0_by_default():
    assert same(weights(small_cnn()), weights(small_cnn(0))) and not same(weights(small_cnn()), weights(small_cnn(1)))


def test_the_default_tag_fits_from_size_14_and_the_default_seed_is_0():
    """TAG_SIZE + 4 = 14 pixels: the 10 x 10 tag 2 pixels from the corner, touching the image's far side."""
    data = tagged_dataset(1, size=14)
    assert data.box == Box(2, 2, 10, 10, (14, 14)) and data.images.shape == (2, 3, 14, 14)
    small = tagged_dataset(2, size=16, box=SMALL_BOX)
    assert torch.equal(small.content, tagged_dataset(2, size=16, box=SMALL_BOX, seed=0).content)
    assert not torch.equal(small.content, tagged_dataset(2, size=16, box=SMALL_BOX, seed=1).content)


def test_the_tag_is_a_c_open_to_the_right_centred_and_drawn_with_a_thin_pen():
    """A 270-degree arc (45 to 315, PIL's angles) on the middle 22-78% of the label, about 1.2 pixels wide."""
    patch = tag_patch(16)
    assert np.array_equal(patch, patch[::-1]), "the c is symmetric top to bottom"
    assert patch[7:9, 11:13].min() == 1.0 and patch[7:9, 3:5].min() < 0.3, "open on the right, closed on the left"
    ink = float((1 - patch).sum())  # the arc's length, 0.75 x 2 pi x 4.5 pixels, times the pen's width
    assert 0.9 < ink / (0.75 * 2 * np.pi * 0.28 * 16) < 1.3
    for (height, width), rows, columns in [((10, 20), (2, 7), (4, 13)), ((20, 10), (4, 15), (2, 6))]:
        dark = tag_patch(height, width) < 0.9
        assert dark.shape == (height, width)
        assert (np.flatnonzero(dark.any(1))[[0, -1]].tolist(), np.flatnonzero(dark.any(0))[[0, -1]].tolist()) == (
            list(rows),
            list(columns),
        )


def _out_of_range() -> torch.Tensor:
    images = torch.zeros(2, 3, 16, 16)
    images[0, 0, 0, 0], images[1, 2, 5, 5] = -0.5, 0.75
    return images


@pytest.mark.parametrize(
    ("images", "which", "box", "message"),
    [
        (
            torch.zeros(3, 16, 16).to_sparse(),
            None,
            SMALL_BOX,
            "images must be a tensor N x C x H x W or C x H x W, got a torch.float32 tensor of shape (3, 16, 16).",
        ),
        (
            torch.zeros(1, 1, 3, 16, 16),
            None,
            SMALL_BOX,
            "images must be a tensor N x C x H x W or C x H x W, got a torch.float32 tensor of shape "
            "(1, 1, 3, 16, 16).",
        ),
        (
            torch.full((3, 16, 16), float("nan")),
            None,
            SMALL_BOX,
            "images must hold finite float pixels in [0, 1], got a torch.float32 tensor of shape (3, 16, 16) with "
            "other values.",
        ),
        (
            _out_of_range(),
            None,
            SMALL_BOX,
            "images must hold pixels in [0, 1] (the tag is drawn in that range), got values from -0.5 to 0.75; "
            "divide 0-255 pixels by 255.",
        ),
        (
            torch.zeros(3, 12, 16),
            None,
            Box(0, 0, 3, 3, (16, 12)),
            "The images are 12 x 16 but the box is on a 16 x 12 image; build the box for the images' size.",
        ),
        (
            torch.zeros(2, 3, 16, 16),
            [[True], [False, True]],
            SMALL_BOX,
            "which must give one True/False (or 1/0) per image, not [[True], [False, True]].",
        ),
        (
            torch.zeros(2, 3, 16, 16),
            torch.tensor([1, 0]).to_sparse(),
            SMALL_BOX,
            "which must give one True/False (or 1/0) per image, not a torch.int64 tensor of shape (2,).",
        ),
        (
            torch.zeros(2, 3, 16, 16),
            torch.tensor([1 + 0j, 0j]),
            SMALL_BOX,
            "which must give one True/False (or 1/0) per image, not a torch.complex64 tensor of shape (2,).",
        ),
        (
            torch.zeros(2, 3, 16, 16),
            b"\x01\x00",
            SMALL_BOX,
            "which must give one True/False (or 1/0) per image, not b'\\x01\\x00'.",
        ),
    ],
)
def test_add_tag_names_each_bad_input_in_one_whole_line(images, which, box, message):
    with pytest.raises(ValueError) as raised:
        add_tag(images, box, which)
    assert str(raised.value) == message


def test_add_tag_takes_pixels_at_0_and_1_an_empty_batch_and_float64_images():
    images = torch.zeros(2, 3, 16, 16, dtype=torch.float64)
    images[1] = 1.0
    tagged = add_tag(images, SMALL_BOX, which=np.array([False, True]))
    patch = torch.from_numpy(tag_patch(4).astype(np.float64))
    assert tagged.dtype == torch.float64 and torch.equal(tagged[1, :, SMALL_BOX.rows, SMALL_BOX.columns][0], patch)
    assert torch.equal(tagged[0], images[0])
    assert add_tag(torch.zeros(0, 3, 16, 16), SMALL_BOX).shape == (0, 3, 16, 16)


def test_the_smallest_and_largest_tags_and_crops_are_allowed():
    assert tag_patch(3).shape == (3, 3) and tag_patch(3, 1024).shape == (3, 1024) and tag_patch(5).shape == (5, 5)
    for height, width in ((1025, 3), (3, 1025)):
        with pytest.raises(ValueError, match=f"^A {height} x {width} tag is larger than MAX_TAG_SIZE = 1024"):
            tag_patch(height, width)
    assert photo_crops(sample_image_path("cat"), 1, size=8, seed=0).shape == (1, 3, 8, 8)


def test_a_box_may_touch_the_images_far_edges_and_take_numpy_whole_numbers():
    assert Box(3, 5, 1, 1, (4, 6)).mask()[3, 5] and Box(0, 0, 4, 6, (4, 6)).mask().all()
    assert Box(np.int64(1), np.int64(2), np.int64(1), np.int64(1), (np.int64(4), np.int64(6))).share == 1 / 24
    for spec, message in [
        ((0, 0, 5, 1), "The box (rows 0-4, columns 0-0) reaches outside the 4 x 6 image; move it or make it smaller."),
        ((0, 0, 1, 7), "The box (rows 0-0, columns 0-6) reaches outside the 4 x 6 image; move it or make it smaller."),
        (
            (0, -1, 1, 1),
            "The box (rows 0-0, columns -1--1) reaches outside the 4 x 6 image; move it or make it smaller.",
        ),
        ((0, 0, 1, 0), "The box is empty (1 x 0 pixels); give it a height and width of at least 1."),
    ]:
        with pytest.raises(ValueError) as raised:
            Box(*spec, image_size=(4, 6))
        assert str(raised.value) == message
    with pytest.raises(ValueError, match=r"^image_size must be \(height, width\) in pixels, got \(np\.True_, 6\)\.$"):
        Box(0, 0, 1, 1, (np.True_, 6))


def test_add_tag_draws_a_tag_of_the_boxs_own_height_and_width_and_refuses_pixels_above_1():
    box = Box(1, 2, 3, 5, (16, 16))
    tagged = add_tag(torch.zeros(1, 3, 16, 16), box)
    assert torch.equal(tagged[0, 1, 1:4, 2:7], torch.from_numpy(tag_patch(3, 5).copy()))
    images = torch.zeros(3, 16, 16)
    images[0, 0, 0] = 1.5
    message = (
        "images must hold pixels in [0, 1] (the tag is drawn in that range), got values from 0 to 1.5; "
        "divide 0-255 pixels by 255."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        add_tag(images, box)


def test_crops_are_drawn_from_seed_0_by_default():
    photo = sample_image_path("cat")
    assert torch.equal(photo_crops(photo, 2, size=8), photo_crops(photo, 2, size=8, seed=0))
    assert not torch.equal(photo_crops(photo, 2, size=8), photo_crops(photo, 2, size=8, seed=1))
