"""utils.faithfulness: deletion and insertion curves, the maps to beat, and the report card's rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.faithfulness import (
    AttributionMaps,
    Curves,
    attribution_maps,
    centre_map,
    edge_map,
    insertion_deletion,
    random_map,
    removal_ranks,
    replacement,
    report_card_rows,
    summarise,
)
from utils.saliency import grad_cam, guided_grad_cam

SIDE, REGION = 32, (slice(12, 20), slice(12, 20))  # an 8 x 8 square: 4 of the 64 patches of 4 x 4


class RegionModel(nn.Module):
    """Two classes; class 0's logit reads only the mean of the known square, class 1's is zero.

    With the square at 1 the model is sure of class 0 (p > 0.99); with the square replaced by
    zeros or by the image's mean colour (1/16), it is sure it is not (p < 0.01).
    """

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(40.0))
        self.dropout = nn.Dropout(0.5)  # identity in eval mode; the curves must use eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = self.dropout(x[:, :, REGION[0], REGION[1]]).mean(dim=(1, 2, 3))
        return torch.stack([self.gain * (inside - 0.5), torch.zeros_like(inside)], dim=1)


def region_image() -> torch.Tensor:
    x = torch.zeros(1, 3, SIDE, SIDE)
    x[:, :, REGION[0], REGION[1]] = 1.0
    return x


def marking_map(seed: int = 0) -> np.ndarray:
    """1 on the square, small distinct noise elsewhere (no ties)."""
    values = 0.01 * np.random.default_rng(seed).random((SIDE, SIDE))
    values[REGION] += 1.0
    return values


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()


# --- the curves on a model whose evidence is known ---------------------------------------------


@pytest.mark.parametrize("baseline", ["zero", "mean"])
def test_the_map_that_marks_the_evidence_is_faithful_and_its_reverse_is_not(baseline: str) -> None:
    model, x = RegionModel().eval(), region_image()
    right = insertion_deletion(model, x, marking_map(), 0, steps=16, baseline=baseline, patch=4)
    reverse = insertion_deletion(model, x, -marking_map(), 0, steps=16, baseline=baseline, patch=4)
    assert right.insertion_auc > 0.9 and right.deletion_auc < 0.1
    assert reverse.insertion_auc < 0.1 and reverse.deletion_auc > 0.9


def test_the_curves_start_and_end_at_the_image_and_its_replacement() -> None:
    model, x = RegionModel().eval(), region_image()
    curves = insertion_deletion(model, x, marking_map(), 0, steps=4, baseline="zero", patch=4)
    with torch.no_grad():
        p_image = torch.softmax(model(x), 1)[0, 0].item()
        p_base = torch.softmax(model(torch.zeros_like(x)), 1)[0, 0].item()
    assert isinstance(curves, Curves) and curves.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curves.deletion[0] == pytest.approx(p_image) and curves.insertion[-1] == pytest.approx(p_image)
    assert curves.deletion[-1] == pytest.approx(p_base) and curves.insertion[0] == pytest.approx(p_base)
    assert (curves.target, curves.baseline, curves.patch) == (0, "zero", 4)


@pytest.mark.parametrize(("steps", "patch", "baseline"), [(5, 1, "blur"), (7, 3, "mean"), (16, 1, "zero")])
def test_deletion_of_a_map_is_insertion_of_its_negation(steps: int, patch: int, baseline: str) -> None:
    model, x = small_net(), torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    saliency = np.random.default_rng(2).normal(size=(20, 20))
    plain = insertion_deletion(model, x, saliency, 2, steps=steps, baseline=baseline, patch=patch)
    negated = insertion_deletion(model, x, -saliency, 2, steps=steps, baseline=baseline, patch=patch)
    assert plain.deletion_auc == pytest.approx(negated.insertion_auc, abs=1e-6)
    assert plain.insertion_auc == pytest.approx(negated.deletion_auc, abs=1e-6)
    np.testing.assert_allclose(plain.deletion, negated.insertion[::-1], atol=1e-6)


def test_a_map_with_channels_ranks_by_absolute_values_summed() -> None:
    signed = np.random.default_rng(0).normal(size=(3, 6, 6))
    assert np.array_equal(removal_ranks(signed, (6, 6))[0], removal_ranks(np.abs(signed).sum(0), (6, 6))[0])
    assert np.array_equal(removal_ranks(signed[None], (6, 6))[0], removal_ranks(-signed, (6, 6))[0])


def test_patches_go_whole_and_in_order_of_their_mean() -> None:
    values = np.zeros((4, 4))
    values[2:, 2:] = 3.0  # bottom right patch first
    values[:2, :2] = 1.0  # then top left
    ranks, units = removal_ranks(values, (4, 4), patch=2)
    assert units == 4 and set(ranks[2:, 2:].ravel()) == {0} and set(ranks[:2, :2].ravel()) == {1}


def test_blur_replacement_is_the_blurred_image_and_baselines_do_not_touch_x() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    blurred = replacement(x, "blur")
    assert blurred.shape == x.shape and blurred.std() < x.std()
    assert torch.allclose(replacement(x[0], "blur"), blurred[0])
    assert torch.equal(replacement(x, x.flip(-1)), x.flip(-1))
    assert torch.equal(x, before)


# --- leaving the model and inputs alone --------------------------------------------------------


def test_the_model_and_the_inputs_are_unchanged() -> None:
    model, x = RegionModel(), region_image()  # in training mode: dropout on
    model.gain.requires_grad_(True)
    saliency = torch.from_numpy(marking_map())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x_before, map_before = x.clone(), saliency.clone()
    curves = insertion_deletion(model, x, saliency, 0, steps=8, baseline="mean", patch=4)
    assert model.training and model.dropout.training and model.gain.requires_grad
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model._forward_pre_hooks and not model._backward_hooks
    assert torch.equal(x, x_before) and torch.equal(saliency, map_before)
    again = insertion_deletion(model.eval(), x, saliency, 0, steps=8, baseline="mean", patch=4)
    np.testing.assert_allclose(curves.insertion, again.insertion)  # computed with eval semantics both times


def test_a_class_name_is_read_from_categories() -> None:
    model, x = RegionModel().eval(), region_image()
    by_name = insertion_deletion(model, x, marking_map(), "square", steps=4, patch=4, categories=("square", "empty"))
    assert by_name.target == 0
    by_index = insertion_deletion(model, x, marking_map(), 0, steps=4, patch=4)
    np.testing.assert_allclose(by_name.insertion, by_index.insertion)


# --- bad input: one clear line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"saliency": np.ones((8, 8))}, r"saliency is 8 x 8 but x is 32 x 32"),
        ({"saliency": np.full((SIDE, SIDE), np.nan)}, r"saliency contains NaN"),
        ({"steps": 0}, r"steps must be a whole number, at least 1, got 0"),
        ({"steps": True}, r"steps must be a whole number"),
        ({"steps": 65, "patch": 4}, r"steps=65 is more than the 64 pixels or patches"),
        ({"patch": 40}, r"patch=40 is larger than the image"),
        ({"baseline": "gaussian"}, r"Unknown baseline 'gaussian'; use one of 'zero', 'mean', 'blur'"),
        ({"target": 5}, r"Class index 5 is out of range; valid: 0-1"),
        ({"target": "tigr cat"}, r"Unknown class name 'tigr cat'"),
        ({"x": torch.zeros(2, 3, SIDE, SIDE)}, r"x holds 2 images; the curves explain one image"),
        ({"saliency": "map"}, r"saliency must be a numpy array or a torch tensor"),
    ],
)
def test_bad_input_gives_one_clear_line(change: dict, message: str) -> None:
    change = dict(change)
    arguments = {"steps": 4, "patch": 1, "baseline": "zero"}
    x, saliency = change.pop("x", region_image()), change.pop("saliency", marking_map())
    target = change.pop("target", 0)
    arguments.update(change)
    with pytest.raises((ValueError, TypeError), match=message) as raised:
        insertion_deletion(RegionModel().eval(), x, saliency, target, **arguments)
    assert "\n" not in str(raised.value)


# --- the maps a method must beat ----------------------------------------------------------------


def test_baseline_maps() -> None:
    assert np.array_equal(random_map(5, 7, seed=3), random_map(5, 7, seed=3))
    assert not np.array_equal(random_map(5, 7, seed=3), random_map(5, 7, seed=4))
    centre = centre_map(9, 9)
    assert np.unravel_index(centre.argmax(), centre.shape) == (4, 4) and centre[0, 0] < 0.05
    square = region_image()
    edges = edge_map(square)
    assert edges.shape == (SIDE, SIDE) and edges[16, 16] == 0 and edges[0, 0] == 0 and edges[12, 16] > 0
    with pytest.raises(ValueError, match="edge_map takes one image"):
        edge_map(torch.zeros(2, 3, 4, 4))


# --- the report card's rows -------------------------------------------------------------------


def count_forward_passes(model: nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls: list[int] = []
    return calls, model.register_forward_hook(lambda *_: calls.append(1))


def test_attribution_maps_share_one_forward_pass_and_match_the_course() -> None:
    model, x = small_net(), torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    seen: list[list[int]] = []

    def plain_gradient(net: nn.Module, images: torch.Tensor, targets: list[int]) -> torch.Tensor:
        seen.append(targets)
        images = images.requires_grad_(True)
        (grad,) = torch.autograd.grad(net(images)[range(len(targets)), targets].sum(), images)
        return grad

    calls, handle = count_forward_passes(model)
    try:
        found = attribution_maps(model, "3", x, 2, ["grad_cam", "guided_backprop", "guided_grad_cam"])
    finally:
        handle.remove()
    assert len(calls) == 1 and isinstance(found, AttributionMaps)  # one class for all images: one pass
    assert torch.allclose(found.maps["grad_cam"], grad_cam(model, "3", x, 2, upsample="bilinear"))
    calls, handle = count_forward_passes(model)
    try:
        methods = {"cam": "grad_cam", "guided": "guided_grad_cam", "gradient": plain_gradient, "edges": "edges"}
        mixed = attribution_maps(model, "3", x, [0, 2], methods)
    finally:
        handle.remove()
    assert len(calls) == 2  # the course's maps (one class per image) in one pass, the gradient in one: both images
    assert seen == [[0, 2]] and list(mixed.maps) == ["cam", "guided", "gradient", "edges"]
    assert torch.allclose(mixed.maps["cam"][1:], grad_cam(model, "3", x[1:], 2, upsample="bilinear"))
    expected = guided_grad_cam(model, "3", x[:1], 0, interpolate_mode="bilinear")
    assert torch.allclose(mixed.image(0)["guided"], expected, atol=1e-6)
    assert mixed.maps["gradient"].shape == (2, 3, 12, 12) and mixed.maps["edges"].shape == (2, 1, 12, 12)
    assert set(mixed.seconds) == set(mixed.maps) and all(s >= 0 for s in mixed.seconds.values())


def test_attribution_maps_name_a_bad_method() -> None:
    with pytest.raises(ValueError, match="Unknown method 'smoothgrad'"):
        attribution_maps(small_net(), "3", torch.rand(1, 3, 8, 8), [0], ["smoothgrad"])
    with pytest.raises(ValueError, match="need the Grad-CAM layer"):
        attribution_maps(small_net(), None, torch.rand(1, 3, 8, 8), [0], ["grad_cam"])
    with pytest.raises(ValueError, match="Method 'bad' returned shape"):
        attribution_maps(small_net(), None, torch.rand(2, 3, 8, 8), 0, {"bad": lambda m, x, c: torch.zeros(1, 3, 8, 8)})


@pytest.mark.filterwarnings("ignore::utils.saliency.ZeroGradCamWarning")  # a random net's Grad-CAM may be blank
def test_report_card_rows_and_their_summary() -> None:
    model = small_net()
    photos = {n: (torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(i)), 1) for i, n in enumerate("ab")}
    rows = report_card_rows(model, "3", photos, ["grad_cam", "random"], steps=4, patch=4)
    assert [(r.method, r.photo) for r in rows] == [(m, p) for p in "ab" for m in ("grad_cam", "random")]
    alone = insertion_deletion(model, photos["b"][0], random_map(16, 16, seed=0), 1, steps=4, patch=4)
    assert rows[3].insertion_auc == pytest.approx(alone.insertion_auc, abs=1e-6)
    summary = summarise(rows)["random"]
    assert summary.photos == 2
    assert summary.insertion_mean == pytest.approx((rows[1].insertion_auc + rows[3].insertion_auc) / 2)
    reused = attribution_maps(model, "3", torch.cat([photos["a"][0], photos["b"][0]]), 1, ["grad_cam", "random"])
    calls, handle = count_forward_passes(model)
    try:
        again = report_card_rows(model, "3", photos, ["grad_cam", "random"], steps=4, patch=4, computed=reused)
    finally:
        handle.remove()
    assert len(calls) == 2  # per photo one batch (image, replacement, perturbed images); no saliency pass
    assert [r.insertion_auc for r in again] == pytest.approx([r.insertion_auc for r in rows], abs=1e-6)


def test_the_other_helpers_name_bad_input_in_one_line() -> None:
    image, net = torch.rand(1, 3, 8, 8), small_net()
    cases = [
        (lambda: replacement(image[..., :4, :4], "blur"), ValueError, "blur baseline needs an image of at least 6 x 6"),
        (lambda: replacement(np.zeros((3, 8, 8)), "zero"), TypeError, "x must be a dense torch.Tensor"),
        (lambda: replacement(image, np.zeros((8, 8))), ValueError, "Unknown baseline a ndarray of shape"),
        (lambda: removal_ranks(np.ones((4, 4)), "4 x 4"), ValueError, r"shape must be \(height, width\)"),
        (lambda: random_map(0, 4), ValueError, "height must be a whole number, at least 1, got 0"),
        (lambda: centre_map(4, 4, sigma=-1.0), ValueError, "sigma must be a positive number"),
        (lambda: attribution_maps(net, "3", image, 0, "grad_cam"), TypeError, "methods must be"),
        (lambda: report_card_rows(net, "3", [image], ["random"]), TypeError, "photos must be a dict"),
        (lambda: summarise([0.5]), TypeError, "rows must be a list of FaithfulnessRow"),
        (lambda: insertion_deletion(None, region_image(), marking_map(), 0), TypeError, "model must be a torch.nn"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message) as raised:
            call()
        assert "\n" not in str(raised.value)


def test_a_sparse_map_ranks_the_pixels_as_its_dense_copy() -> None:
    dense = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(4))
    for saliency in (dense, dense[0]):
        sparse_ranks, dense_ranks = removal_ranks(saliency.to_sparse(), (6, 6)), removal_ranks(saliency, (6, 6))
        assert all(np.array_equal(a, b) for a, b in zip(sparse_ranks, dense_ranks))


def test_the_edge_map_is_each_channels_sobel_magnitude_summed_as_scikit_image_computes_it_up_to_a_constant() -> None:
    """One Sobel filter (utils.sanity.sobel_magnitude) for both lessons; scikit-image's is the same map / (4 sqrt 2),
    so the edge map ranks pixels exactly as it did when it was computed with skimage.filters.sobel."""
    from skimage.filters import sobel

    image = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    expected = np.sum([sobel(channel) for channel in image[0].double().numpy()], axis=0) * 4 * np.sqrt(2)
    assert np.allclose(edge_map(image), expected, rtol=1e-12, atol=1e-12)
