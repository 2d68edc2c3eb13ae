"""utils.shortcuts: the confounded data set, the tag, the seeded training loop and the tag-box share (lesson 09)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.datasets import sample_image_path
from utils.regions import mass_share
from utils.shortcuts import (
    CLASSES,
    TAG_RULES,
    TAGGED_CLASS,
    Box,
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
