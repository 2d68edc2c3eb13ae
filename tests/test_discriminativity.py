"""utils.discriminativity: the test's picture, its score, the auto-checker, and lesson 04's two notebooks.

Hand-made maps pin the formulas; a tiny network stands in for a classifier where only the
plumbing matters; the offline model checks the lesson's claims on its picture.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from utils.datasets import preprocess_imagenet_image, sample_image_path, two_class_image
from utils.discriminativity import (
    METHOD_TITLES,
    METHODS,
    AnswerCheckError,
    DiscriminativityReport,
    check_discriminativity_map,
    diagnose_discriminativity_map,
    discriminativity_map,
    discriminativity_score,
    map_correlation,
    paired_maps,
    scale_01,
)
from utils.models import load_model
from utils.saliency import saliency_maps, upsample_cam

ROOT = Path(__file__).resolve().parents[1]
LEARNER = ROOT / "notebooks" / "04_discriminativity_challenge.ipynb"
SOLUTION = ROOT / "notebooks" / "solutions" / "04_discriminativity_challenge.ipynb"
CATEGORIES = ("cat", "cup", "dog")
LEFT = np.zeros((4, 6), dtype=bool)
LEFT[:, :3] = True
HALVES = (LEFT, ~LEFT)
LEFT_8 = np.zeros((8, 8), dtype=bool)
LEFT_8[:, :4] = True
HALVES_8 = (LEFT_8, ~LEFT_8)


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()


def blob(row: int, col: int, shape: tuple[int, int] = (4, 6), channels: int | None = None) -> np.ndarray:
    """A map that is 1 at one pixel, 0.5 at its neighbours in the row, 0 elsewhere."""
    values = np.zeros(shape)
    values[row, max(col - 1, 0) : col + 2] = 0.5
    values[row, col] = 1.0
    return values if channels is None else np.stack([values * (c + 1) for c in range(channels)])


@pytest.fixture(scope="module")
def rich_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two signed 1 x 3 x 8 x 8 maps with unequal maxima, like a GBP pair."""
    generator = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, 8, 8, generator=generator), 5 * torch.randn(1, 3, 8, 8, generator=generator)


def reference(s_a, s_b) -> np.ndarray:
    """The recipe written out independently: |.| summed over channels, / own max, A - B."""
    def scaled(s):
        m = np.abs(np.asarray(s, dtype=np.float64)).reshape(-1, *np.shape(s)[-2:]).sum(0)
        return m / m.max() if m.max() > 0 else m
    return scaled(s_a) - scaled(s_b)


# --- scale_01 and the picture ---------------------------------------------------------------------


def test_scale_01_sums_magnitudes_over_channels_and_divides_by_the_max():
    saliency = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]], [[0.0, 0.5]]]])  # 1 x 3 x 1 x 2
    assert scale_01(saliency).tolist() == [[1.0, 0.75]]
    assert scale_01(np.array([[0.0, -4.0, 2.0]])).tolist() == [[0.0, 1.0, 0.5]]


def test_scale_01_keeps_a_zero_map_zero_and_leaves_its_input_alone():
    assert scale_01(torch.zeros(1, 1, 3, 3)).tolist() == [[0.0] * 3] * 3
    saliency = torch.randn(1, 3, 4, 4, requires_grad=True)
    kept = saliency.detach().clone()
    scaled = scale_01(saliency)
    assert torch.equal(saliency.detach(), kept) and saliency.grad is None
    assert scaled.dtype == np.float64 and scaled.max() == 1.0 and scaled.min() >= 0.0


@pytest.mark.parametrize(
    "saliency, error, message",
    [
        (torch.zeros(2, 3, 4, 4), ValueError, r"saliency must be H x W, C x H x W or 1 x C x H x W, got shape \(2, 3, 4, 4\)"),
        (np.array([[np.nan, 1.0]]), ValueError, "saliency contains NaN or infinite values"),
        ([[1.0, 2.0]], TypeError, "saliency must be a numpy array or a torch tensor, not list"),
    ],
)
def test_scale_01_refuses_bad_maps(saliency, error, message):
    with pytest.raises(error, match=message):
        scale_01(saliency)


def test_discriminativity_map_is_the_difference_of_the_scaled_maps(rich_pair):
    s_a, s_b = rich_pair
    picture = discriminativity_map(s_a, s_b)
    assert picture.shape == (8, 8)
    assert np.allclose(picture, reference(s_a.numpy(), s_b.numpy()), atol=1e-12)
    assert np.allclose(discriminativity_map(s_b, s_a), -picture), "swapping the classes flips the sign"
    assert -1.0 <= picture.min() and picture.max() <= 1.0


def test_maps_with_different_channels_on_one_grid_compare_but_different_grids_do_not():
    cam, gbp = torch.rand(1, 1, 8, 8), torch.randn(1, 3, 8, 8)
    assert discriminativity_map(cam, gbp).shape == (8, 8)
    with pytest.raises(ValueError, match=r"s_a is 2 x 2 but s_b is 8 x 8; .*upsample_cam\(cam, x.shape\[-2:\]\)"):
        discriminativity_map(torch.rand(1, 1, 2, 2), gbp)


# --- the score ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-12, 1.0, 3.0, 1e9])
def test_identical_maps_score_zero_whatever_their_scale(rich_pair, scale):
    s_a = rich_pair[0]
    report = discriminativity_score(s_a, scale * s_a, HALVES_8)  # float32 rounding of scale * s_a: ~1e-7
    assert report.score < 1e-6 and report.separation < 1e-6
    assert report.correlation == pytest.approx(1.0)
    assert discriminativity_score(s_a, s_a.clone(), HALVES_8).separation == 0.0


def test_tiny_differences_score_tiny_although_the_self_scaled_picture_is_full_range(rich_pair):
    s_a = rich_pair[0]
    twin = 2 * s_a + 1e-7 * torch.randn(s_a.shape, generator=torch.Generator().manual_seed(0))
    picture = discriminativity_map(s_a, twin)
    stretched = picture / np.abs(picture).max()  # what a colour bar on the picture's own range shows
    assert stretched.min() < -0.5 and stretched.max() > 0.5, "min-max scaling makes noise look like a signal"
    assert discriminativity_score(s_a, twin, HALVES_8).score < 1e-5


def test_disjoint_maps_on_their_own_objects_score_one_and_on_each_others_zero():
    a, b = blob(1, 1), blob(2, 4)
    right_place = discriminativity_score(a, b, HALVES)
    assert right_place == DiscriminativityReport(score=1.0, separation=1.0, localisation=1.0, correlation=right_place.correlation)
    wrong_place = discriminativity_score(a, b, (HALVES[1], HALVES[0]))
    assert wrong_place.separation == 1.0 and wrong_place.localisation == 0.0 and wrong_place.score == 0.0


def test_score_formula_on_a_hand_computed_example():
    a = np.array([[1.0, 0.5, 0.0, 0.0, 0.0, 0.0]] * 4)
    b = np.array([[0.5, 0.0, 0.0, 0.0, 1.0, 0.0]] * 4)
    # Scaled maps equal the inputs (max 1). D = [0.5, 0.5, 0, 0, -1, 0] per row; sum|D| = 2, sum(a + b) = 3.
    # Red (0.5 + 0.5) lies on the left half, blue (1) on the right: localisation 1.
    report = discriminativity_score(a, b, HALVES)
    assert report.separation == pytest.approx(2 / 3) and report.localisation == 1.0 and report.score == pytest.approx(2 / 3)
    # Moving B's blob onto the left half puts its blue in A's region: localisation 1 / 2.
    b_left = np.array([[0.5, 0.0, 1.0, 0.0, 0.0, 0.0]] * 4)
    assert discriminativity_score(a, b_left, HALVES).localisation == pytest.approx(0.5)


def test_without_masks_the_location_part_is_skipped():
    report = discriminativity_score(blob(1, 1), blob(2, 4))
    assert report.localisation is None and report.score == report.separation == 1.0


def test_scores_stay_finite_when_maps_are_all_zero():
    zero = np.zeros((4, 6))
    one_blank = discriminativity_score(blob(1, 1), zero, HALVES)
    assert one_blank == DiscriminativityReport(score=1.0, separation=1.0, localisation=1.0, correlation=0.0)
    both_blank = discriminativity_score(zero, zero, HALVES)
    assert both_blank == DiscriminativityReport(score=0.0, separation=0.0, localisation=0.0, correlation=1.0)
    assert map_correlation(zero, blob(1, 1)) == 0.0 and map_correlation(zero, zero) == 1.0


def test_correlation_of_three_channel_maps_uses_their_magnitudes():
    a = blob(1, 2, channels=3)
    assert discriminativity_score(a, -a).correlation == pytest.approx(1.0), "a sign flip is no change in magnitude"
    assert map_correlation(a, blob(1, 2)) == pytest.approx(1.0)
    assert map_correlation(blob(1, 1), blob(2, 4)) < 0


def test_map_correlation_inside_a_mask_ignores_the_rest():
    a, b = blob(1, 1) + blob(2, 4), blob(1, 1) + blob(3, 4)  # the same on the left half, different on the right
    assert map_correlation(a, b, HALVES[0]) == pytest.approx(1.0)
    assert map_correlation(a, b, HALVES[1]) < 0.5
    with pytest.raises(ValueError, match=r"mask has shape \(4, 3\) but the maps are 4 x 6"):
        map_correlation(a, b, LEFT[:, :3])


@pytest.mark.parametrize(
    "masks, message",
    [
        ((LEFT[:, :5], ~LEFT), r"mask_a has shape \(4, 5\) but the maps are 4 x 6; build the masks on the model input's grid"),
        ((LEFT, np.zeros((4, 6), dtype=bool)), r"mask_b is empty \(no True pixel\)"),
        ((LEFT, np.full((4, 6), 0.5)), r"mask_b must be boolean \(True on the object\) or 0/1"),
        (LEFT, r"masks must be a pair \(mask_a, mask_b\)"),
    ],
)
def test_bad_masks_raise_clear_errors(masks, message):
    with pytest.raises(ValueError, match=message):
        discriminativity_score(blob(1, 1), blob(2, 4), masks)


def test_masks_may_be_tensors_or_zero_one_arrays_with_leading_ones():
    as_int = (LEFT.astype(int), (~LEFT).astype(np.uint8))
    as_tensor = (torch.from_numpy(LEFT)[None, None], torch.from_numpy(~LEFT)[None, None])
    expected = discriminativity_score(blob(1, 1), blob(2, 4), HALVES)
    assert discriminativity_score(blob(1, 1), blob(2, 4), as_int) == expected
    assert discriminativity_score(blob(1, 1), blob(2, 4), as_tensor) == expected


# --- paired_maps ----------------------------------------------------------------------------------


def test_paired_maps_gives_each_method_on_the_input_grid_from_one_forward_pass():
    net, x = tiny_net(), torch.rand(1, 3, 8, 8)
    calls = []
    handle = net.register_forward_hook(lambda *args: calls.append(1))
    try:
        pairs = paired_maps(net, "1", x, "cat", 2, categories=CATEGORIES)
    finally:
        handle.remove()
    assert len(calls) == 1, "both classes and all three methods from one forward pass"
    assert list(pairs) == list(METHODS) == list(METHOD_TITLES)
    maps = saliency_maps(net, "1", x, [0, 2], interpolate_mode="bilinear")
    for method, (s_a, s_b) in pairs.items():
        want_a, want_b = maps[0][method], maps[2][method]
        if method == "grad_cam":
            want_a, want_b = upsample_cam(want_a, (8, 8), "bilinear"), upsample_cam(want_b, (8, 8), "bilinear")
        assert s_a.shape[-2:] == (8, 8) and not s_a.requires_grad
        assert torch.allclose(s_a, want_a) and torch.allclose(s_b, want_b), method


@pytest.mark.parametrize(
    "class_a, class_b, error, message",
    [
        ("cup", 1, ValueError, r"class_a 'cup' and class_b 1 are the same class \('cup', index 1\); the test compares two different classes"),
        ("dog", "DOG", ValueError, "are the same class"),
        ("cat", "cupp", ValueError, r"class_b: Unknown class name 'cupp'; closest: 'cup'"),
        (3, "cat", ValueError, r"class_a: Class index 3 is out of range; valid: 0-2"),
        ("cat", 1.5, TypeError, "class_b: A class must be an index or a category name, not float"),
    ],
)
def test_bad_classes_raise_clear_errors(class_a, class_b, error, message):
    with pytest.raises(error, match=message):
        paired_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), class_a, class_b, categories=CATEGORIES)


def test_imagenet_names_are_the_default_categories():
    with pytest.raises(ValueError, match=r"class_a: Unknown class name 'tabbby'; closest: 'tabby'"):
        paired_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), "tabbby", "espresso")


def test_paired_maps_takes_one_image_only():
    with pytest.raises(ValueError, match=r"x must be one image, 1 x C x H x W or C x H x W, got \(2, 3, 8, 8\)"):
        paired_maps(tiny_net(), "1", torch.rand(2, 3, 8, 8), 0, 1, categories=CATEGORIES)
    assert paired_maps(tiny_net(), "1", torch.rand(3, 8, 8), 0, 1, categories=CATEGORIES)["grad_cam"][0].shape == (1, 1, 8, 8)


# --- the auto-checker -----------------------------------------------------------------------------


def a_learners_answer(s_a, s_b):
    """What the lesson asks for, written the way a learner might."""
    def scaled(s):
        m = s[0].abs().sum(dim=0)
        return m / m.max() if m.max() > 0 else m
    return scaled(s_a) - scaled(s_b)


def min_max(s: torch.Tensor) -> torch.Tensor:
    """The other common way to scale to [0, 1], which the lesson does not ask for."""
    m = s[0].abs().sum(dim=0)
    return (m - m.min()) / (m.max() - m.min())


def test_a_correct_answer_passes_as_function_array_or_tensor(rich_pair):
    s_a, s_b = rich_pair
    for answer in (a_learners_answer, a_learners_answer(s_a, s_b), a_learners_answer(s_a, s_b).numpy()[None, None]):
        verdict = diagnose_discriminativity_map(answer, s_a, s_b)
        assert verdict.passed and verdict.status == verdict.reason == "correct", verdict  # float32 rounding is fine


def test_a_deliberately_wrong_answer_is_caught_for_the_right_reason(rich_pair):
    s_a, s_b = rich_pair

    def swapped(s_a, s_b):  # the classes in the wrong order
        return a_learners_answer(s_b, s_a)

    with pytest.raises(AnswerCheckError, match=r"^GBP: Not yet right \(sign\): the answer is S_B - S_A: the classes are in the wrong order"):
        check_discriminativity_map(swapped, s_a, s_b, label="GBP")


@pytest.mark.parametrize(
    "mistake, reason, words",
    [
        (lambda a, b: a[0].abs().sum(0) - b[0].abs().sum(0), "not scaled", "divide each map by its own maximum"),
        (lambda a, b: b[0].abs().sum(0) - a[0].abs().sum(0), "not scaled", "classes are in the wrong order"),
        (lambda a, b: (a[0].abs().sum(0) - b[0].abs().sum(0)) / max(a.abs().sum(1).max(), b.abs().sum(1).max()),
         "joint scaling", "divided by the same maximum"),
        (lambda a, b: (d := a[0].abs().sum(0) - b[0].abs().sum(0)) / d.abs().max(), "scaled difference", r"scale each map to \[0, 1\] first"),
        (lambda a, b: min_max(a) - min_max(b), "min-max", "minimum was subtracted; divide by the maximum only"),
        (lambda a, b: a_learners_answer(a.clamp(min=0), b.clamp(min=0)), "reduction", "only the positive parts"),
        (lambda a, b: a_learners_answer(a.sum(1, keepdim=True), b.sum(1, keepdim=True)), "reduction", "summed before taking absolute values"),
        (lambda a, b: a_learners_answer(a, a), "zero", "subtracted from itself"),
        (lambda a, b: a_learners_answer(a, torch.zeros_like(b)), "not subtracted", "subtract the scaled S_B"),
        (lambda a, b: a_learners_answer(a, b)[None].repeat(3, 1, 1), "channels", "reduce each map to one channel"),
        (lambda a, b: a_learners_answer(a, b)[:4, :4], "shape", r"shape \(4, 4\), expected 8 x 8.*Upsample Grad-CAM"),
        (lambda a, b: a_learners_answer(a, b) * float("nan"), "not finite", "leave an all-zero map at zero"),
        (lambda a, b: a_learners_answer(a, b) + 0.3, "values", r"the largest difference is at pixel"),
        (lambda a, b: 3 * a_learners_answer(a, b) + 0.3, "not scaled", r"outside \[-1, 1\]"),
        (lambda a, b: "a string", "type", "the answer is a str; return the map as an H x W numpy array or torch tensor"),
        (lambda a, b: a.no_such_method(), "raised", "raised AttributeError"),
    ],
    ids=[
        "not-scaled", "not-scaled-and-swapped", "joint-scaling", "scaled-difference", "min-max", "positive-parts", "abs-of-sum",
        "same-map-twice", "no-subtraction", "channels", "shape", "nan", "values", "out-of-range", "type", "raised",
    ],
)
def test_each_usual_mistake_is_named(rich_pair, mistake, reason, words):
    verdict = diagnose_discriminativity_map(mistake, *rich_pair)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert verdict.message.startswith(f"Not yet right ({reason}): ")
    assert re.search(words, verdict.message), verdict.message


@pytest.mark.parametrize("answer", [None, ..., NotImplemented, lambda a, b: None], ids=["None", "Ellipsis", "NotImplemented", "returns None"])
def test_no_answer_is_not_attempted(rich_pair, answer):
    verdict = diagnose_discriminativity_map(answer, *rich_pair)
    assert (verdict.status, verdict.reason, verdict.passed) == ("not attempted", "not attempted", False)
    assert verdict.message.startswith("Not attempted:") and "YOUR ANSWER" in verdict.message


def test_an_unanswered_notebook_function_is_not_attempted_and_the_check_stops(rich_pair, capsys):
    def my_discriminativity_map(s_a, s_b):
        raise NotImplementedError("write my_discriminativity_map")

    with pytest.raises(AnswerCheckError, match=r"^Grad-CAM: Not attempted: my_discriminativity_map raises NotImplementedError"):
        check_discriminativity_map(my_discriminativity_map, *rich_pair, label="Grad-CAM")
    assert capsys.readouterr().out == "", "a failed check prints nothing; the error says it all"


def test_a_passing_check_prints_its_verdict_and_returns_it(rich_pair, capsys):
    verdict = check_discriminativity_map(a_learners_answer, *rich_pair, label="Grad-CAM")
    assert verdict.passed and str(verdict) == verdict.message
    assert capsys.readouterr().out == f"Grad-CAM: {verdict.message}\n"


def test_the_checker_accepts_an_all_zero_map_done_right_and_catches_division_by_zero():
    s_a, blank = torch.rand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    assert diagnose_discriminativity_map(a_learners_answer, s_a, blank).passed

    def divides_by_zero(s_a, s_b):
        return s_a[0, 0] / s_a.max() - s_b[0, 0] / s_b.max()

    assert diagnose_discriminativity_map(divides_by_zero, s_a, blank).reason == "not finite"


def test_a_learner_function_cannot_change_the_maps_it_is_checked_on(rich_pair):
    s_a, s_b = rich_pair
    kept = s_a.clone()

    def vandal(a, b):
        a.mul_(0)
        return a_learners_answer(a, b)

    diagnose_discriminativity_map(vandal, s_a, s_b)
    assert torch.equal(s_a, kept)


# --- lesson 04: the offline model's picture, and the two notebooks -----------------------------------


def test_the_lessons_claims_hold_on_the_offline_model():
    loaded = load_model("squeezenet1_1", device="cpu")
    pair = two_class_image(sample_image_path("cat"), sample_image_path("coffee"), crop_at=(0.5, 0.25))
    x = preprocess_imagenet_image(pair.image, loaded.transforms, keep_aspect=False)
    pairs = paired_maps(loaded.model, loaded.target_layer, x, "Egyptian cat", "espresso")
    gbp, cam, guided = (discriminativity_score(*pairs[m], pair.masks) for m in ("guided_backprop", "grad_cam", "guided_grad_cam"))
    assert cam.score > gbp.score + 0.2 and guided.score > gbp.score + 0.2, (gbp, cam, guided)
    assert gbp.correlation > 0.5 and cam.correlation < 0.2
    assert min(map_correlation(*pairs["guided_backprop"], mask) for mask in pair.masks) > 0.85
    for method, maps in pairs.items():
        assert diagnose_discriminativity_map(a_learners_answer, *maps).passed, method


def read_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# `make handout` gives learners the course without notebooks/solutions/; there these two checks have
# nothing to compare. In the repository (and CI) the solution is always present, so they run.
needs_solution = pytest.mark.skipif(
    not SOLUTION.exists() and not os.environ.get("CI"), reason="hand-out copy: notebooks/solutions/ left out"
)


@needs_solution
def test_the_challenge_and_its_solution_differ_only_in_the_answer_cells():
    learner, solution = read_cells(LEARNER), read_cells(SOLUTION)
    assert [c["id"] for c in learner] == [c["id"] for c in solution]
    answers = [i for i, c in enumerate(learner) if "answer" in tags(c)]
    assert answers and answers == [i for i, c in enumerate(solution) if "answer" in tags(c)]
    for i, (ours, theirs) in enumerate(zip(learner, solution)):
        if i not in answers:
            assert ours["source"] == theirs["source"], f"cell {i} differs between the challenge and the solution"
    for i in answers:
        assert "raise NotImplementedError" in "".join(learner[i]["source"])
        assert "NotImplementedError" not in "".join(solution[i]["source"])


@needs_solution
def test_only_the_challenges_check_cells_may_raise():
    learner, solution = read_cells(LEARNER), read_cells(SOLUTION)
    checks = [i for i, c in enumerate(learner) if "check" in tags(c)]
    assert checks and checks == [i for i, c in enumerate(solution) if "check" in tags(c)]
    assert all("check_discriminativity_map" in "".join(learner[i]["source"]) for i in checks)
    raising = {i for i, c in enumerate(learner) if "raises-exception" in tags(c)}
    assert raising == set(checks), "the challenge may raise only in its check cells (Not attempted)"
    assert not any("raises-exception" in tags(c) for c in solution), "the solution's checks must pass"
