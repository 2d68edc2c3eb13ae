"""utils.sanity: the paper's similarity measures, cascading and independent randomisation, the edge baseline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torchvision
from scipy import ndimage
from scipy.stats import spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from utils.saliency import magnitude
from utils.sanity import (
    SIMILARITY_MEASURES,
    ConstantMapWarning,
    cascading_randomisation,
    edge_map,
    hog_correlation,
    independent_randomisation,
    is_blank,
    magnitude_pair,
    randomisation_order,
    rank_correlation,
    ssim,
)


def small_net() -> nn.Sequential:
    """conv -> batch norm -> ReLU -> conv -> ReLU -> pool -> linear: four layers with weights.

    The batch norm gets values a trained one would have (its fresh initialisation is constant).
    """
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    with torch.no_grad():
        for tensor, value in zip(
            (net[1].weight, net[1].bias, net[1].running_mean, net[1].running_var), (2.0, 0.5, 5.0, 7.0)
        ):
            tensor.fill_(value)
    return net.eval()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    current = model.state_dict()
    return current.keys() == state.keys() and all(torch.equal(current[k], state[k]) for k in state)


def layer_state(model: nn.Module, name: str) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.get_submodule(name).state_dict().values()]


def random_map(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


# --- magnitude ------------------------------------------------------------------------------------


def test_magnitude_sums_absolute_values_over_channels_and_drops_batch_of_one() -> None:
    saliency = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]], [[0.0, 1.0]]]])  # 1 x 3 x 1 x 2
    assert magnitude(saliency).tolist() == [[4.0, 3.5]]
    assert magnitude(np.array([[-1.0, 2.0]])).tolist() == [[1.0, 2.0]]
    assert magnitude(torch.ones(1, 1, 2, 3)).shape == (2, 3)


def test_magnitude_leaves_the_input_unchanged_and_accepts_tensors_that_require_grad() -> None:
    array = np.array([[-1.0, 2.0]])
    tensor = torch.tensor([[-1.0, 2.0]], requires_grad=True)
    magnitude(array)[0, 0] = 99.0
    magnitude(tensor)[0, 0] = 99.0
    assert array.tolist() == [[-1.0, 2.0]] and tensor.tolist() == [[-1.0, 2.0]]


@pytest.mark.parametrize(
    ("bad", "message"),
    [(np.zeros((2, 3, 4, 4)), "pass one map"), (np.zeros(5), "H x W"), (np.array([[np.nan, 1.0]]), "NaN")],
)
def test_magnitude_rejects_batches_vectors_and_nan(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        magnitude(bad)


# --- rank correlation -----------------------------------------------------------------------------


def test_rank_correlation_is_one_for_a_map_and_any_monotone_rescaling_or_sign_flip() -> None:
    a = random_map(3, 8, 8)
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, 5.0 * a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(1.0)  # magnitudes: a sign flip is no change
    assert rank_correlation(a[0], np.exp(np.abs(a[0]))) == pytest.approx(1.0)


def test_rank_correlation_equals_scipy_spearman_of_the_channel_summed_magnitudes() -> None:
    a, b = random_map(3, 10, 12, seed=1), random_map(3, 10, 12, seed=2)
    expected = spearmanr(np.abs(a).sum(0).ravel(), np.abs(b).sum(0).ravel()).statistic
    assert rank_correlation(torch.from_numpy(a)[None], b) == pytest.approx(expected, abs=1e-12)
    assert -0.3 < rank_correlation(a, b) < 0.3  # unrelated noise


def test_rank_correlation_equals_scipy_spearman_with_ties_and_after_an_array_changes_in_place() -> None:
    """Ranks and HOG features are remembered by content: a map changed in place is ranked anew."""
    a = np.round(random_map(32, 32, seed=4), 1)  # many ties, as in maps with zeros
    b = np.round(random_map(32, 32, seed=5), 1)
    assert rank_correlation(a, b) == pytest.approx(spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic, abs=1e-12)
    before = hog_correlation(a, b)
    a[:16] = a[:16][::-1].copy()  # the same object, other content
    assert rank_correlation(a, b) == pytest.approx(spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic, abs=1e-12)
    ma, mb = np.abs(a), np.abs(b)
    assert hog_correlation(a, b) == pytest.approx(np.corrcoef(hog(ma / ma.max()), hog(mb / mb.max()))[0, 1], abs=1e-9)
    assert hog_correlation(a, b) != before
    for _ in range(12):  # more maps than are remembered: the first is computed again, with the same result
        rank_correlation(random_map(32, 32, seed=_ + 20), b)
    assert rank_correlation(a, b) == pytest.approx(spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_ranks_equal_scipy_rankdata_average_ranks_with_runs_of_ties(seed: int) -> None:
    from scipy.stats import rankdata

    from utils.sanity import _ranks

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 5 + 20 * seed, size=(17, 13)).astype(np.float64)  # runs of ties of every length
    values[0, :4] = [-0.0, 0.0, np.finfo(float).tiny, -1e300]  # signed zeros tie; extremes rank at the ends
    assert np.array_equal(_ranks(values), rankdata(values.ravel()))


def test_rank_correlation_of_reversed_ranks_is_minus_one() -> None:
    a = np.arange(1.0, 17.0).reshape(4, 4)
    assert rank_correlation(a, 1.0 / a) == pytest.approx(-1.0)


def test_rank_correlation_defines_constant_maps_with_a_warning_never_nan() -> None:
    a = random_map(6, 6)
    with pytest.warns(ConstantMapWarning, match="map b is constant.*returning 0.0"):
        assert rank_correlation(a, np.zeros((6, 6))) == 0.0
    with pytest.warns(ConstantMapWarning, match="map a is constant"):
        assert rank_correlation(np.full((6, 6), 3.0), a) == 0.0
    with pytest.warns(ConstantMapWarning, match="both maps are constant.*returning 1.0"):
        assert rank_correlation(np.zeros((6, 6)), np.full((6, 6), 2.0)) == 1.0


def test_rank_correlation_rejects_maps_of_different_sizes_naming_the_fix() -> None:
    with pytest.raises(
        ValueError, match=r"a is 13 x 13 but b is 224 x 224; compare maps on the same grid .*upsample_cam"
    ):
        rank_correlation(np.ones((1, 1, 13, 13)), random_map(3, 224, 224))
    for measure in SIMILARITY_MEASURES.values():
        with pytest.raises(ValueError, match="compare maps on the same grid"):
            measure(np.ones((30, 30)), np.ones((32, 32)))


def test_rank_correlation_leaves_its_inputs_unchanged() -> None:
    a, b = random_map(3, 5, 5, seed=3), torch.randn(1, 3, 5, 5)
    a_before, b_before = a.copy(), b.clone()
    rank_correlation(a, b)
    assert np.array_equal(a, a_before) and torch.equal(b, b_before)


def test_signed_rank_correlation_keeps_the_signs_summed_over_channels() -> None:
    a, b = random_map(3, 10, 12, seed=1), random_map(3, 10, 12, seed=2)
    expected = spearmanr(a.sum(0).ravel(), b.sum(0).ravel()).statistic
    assert rank_correlation(a, torch.from_numpy(b)[None], absolute=False) == pytest.approx(expected, abs=1e-12)
    assert rank_correlation(a, -a, absolute=False) == pytest.approx(-1.0), "a sign flip reverses the signed ranks"
    assert rank_correlation(a, -a) == pytest.approx(1.0), "and leaves the magnitudes' ranks alone"
    with pytest.warns(ConstantMapWarning, match="map b is constant"):
        assert rank_correlation(a, np.zeros((3, 10, 12)), absolute=False) == 0.0


def test_magnitude_pair_names_the_arguments_it_was_given() -> None:
    with pytest.raises(ValueError, match=r"^s_a is 2 x 2 but s_b is 3 x 3; compare maps on the same grid"):
        magnitude_pair(np.ones((2, 2)), np.ones((3, 3)), ("s_a", "s_b"))
    first, second = magnitude_pair(torch.ones(1, 3, 2, 2), -np.ones((2, 2)))
    assert first.tolist() == [[3.0, 3.0], [3.0, 3.0]] and second.tolist() == [[1.0, 1.0], [1.0, 1.0]]


# --- HOG ------------------------------------------------------------------------------------------


def test_hog_correlation_is_pearson_of_skimage_hog_features_of_the_scaled_magnitudes() -> None:
    a, b = random_map(3, 32, 40, seed=9), random_map(3, 32, 40, seed=10)
    ma, mb = np.abs(a).sum(0), np.abs(b).sum(0)
    expected = np.corrcoef(hog(ma / ma.max()), hog(mb / mb.max()))[0, 1]
    assert hog_correlation(a, b) == pytest.approx(expected, abs=1e-9)
    assert hog_correlation(a, -3.0 * a) == pytest.approx(1.0)


def test_hog_correlation_sees_edges_that_move() -> None:
    ramp = np.add.outer(np.arange(48.0), np.zeros(48))  # rows brighten downwards: horizontal edges
    assert hog_correlation(ramp, ramp.T) < 0.5 < hog_correlation(ramp, ramp + 0.1 * random_map(48, 48, seed=1))


def test_hog_correlation_refuses_small_maps_and_defines_constant_ones() -> None:
    with pytest.raises(ValueError, match=r"at least 24 x 24 pixels, got \(13, 13\); upsample them first"):
        hog_correlation(np.ones((13, 13)), np.ones((13, 13)))
    with pytest.warns(ConstantMapWarning, match="both maps are constant.*HOG correlation.*returning 1.0"):
        assert hog_correlation(np.zeros((24, 24)), np.ones((24, 24))) == 1.0
    with pytest.warns(ConstantMapWarning, match="map a is constant"):
        assert hog_correlation(np.zeros((24, 24)), random_map(24, 24)) == 0.0


def test_every_similarity_measure_gives_one_for_a_map_and_its_rescaled_copy() -> None:
    assert list(SIMILARITY_MEASURES) == ["Spearman |.|", "Spearman", "SSIM", "HOG"]
    a = random_map(3, 32, 32, seed=11)
    for name, measure in SIMILARITY_MEASURES.items():
        assert measure(a, 7.0 * a) == pytest.approx(1.0), name
        assert measure(a, random_map(3, 32, 32, seed=12)) < 0.5, name


# --- SSIM -----------------------------------------------------------------------------------------


def test_ssim_is_one_for_identical_maps_up_to_scale_and_sign() -> None:
    a = random_map(3, 16, 16, seed=4)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, -4.0 * a) == pytest.approx(1.0)
    assert ssim(np.zeros((8, 8)), np.zeros((8, 8))) == pytest.approx(1.0)  # defined, not NaN


def test_ssim_equals_skimage_on_max_normalised_magnitudes_with_data_range_one() -> None:
    a, b = random_map(3, 16, 16, seed=5), random_map(3, 16, 16, seed=6)
    ma, mb = np.abs(a).sum(0), np.abs(b).sum(0)
    expected = structural_similarity(ma / ma.max(), mb / mb.max(), data_range=1.0)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert ssim(a, b) < 0.5


def test_ssim_shrinks_its_window_for_small_maps_and_rejects_tiny_ones() -> None:
    a, b = random_map(5, 6, seed=7), random_map(5, 6, seed=8)
    expected = structural_similarity(
        np.abs(a) / np.abs(a).max(), np.abs(b) / np.abs(b).max(), data_range=1.0, win_size=5
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="at least 3 x 3"):
        ssim(np.ones((2, 5)), np.ones((2, 5)))


def test_signed_ssim_equals_skimage_on_channel_sums_over_their_largest_magnitude() -> None:
    a, b = random_map(3, 16, 16, seed=5), random_map(3, 16, 16, seed=6)
    sa, sb = a.sum(0), b.sum(0)
    sa, sb = sa / np.abs(sa).max(), sb / np.abs(sb).max()
    span = max(sa.max(), sb.max()) - min(sa.min(), sb.min())
    assert ssim(a, b, absolute=False) == pytest.approx(structural_similarity(sa, sb, data_range=span), abs=1e-12)
    assert ssim(a, -a, absolute=False) < 0.75 < ssim(a, -a) == pytest.approx(1.0), "only the signed SSIM sees a flip"


def test_signed_and_magnitude_ssim_and_hog_agree_on_a_map_without_negative_values() -> None:
    a, b = np.abs(random_map(32, 32, seed=1)), np.abs(random_map(32, 32, seed=2))
    assert ssim(a, b, absolute=False) == pytest.approx(ssim(a, b), abs=1e-12)
    assert hog_correlation(a, b, absolute=False) == pytest.approx(hog_correlation(a, b), abs=1e-12)


def test_signed_hog_is_pearson_of_skimage_hog_of_the_channel_sums_and_blind_to_a_sign_flip() -> None:
    a, b = random_map(3, 32, 32, seed=3), random_map(3, 32, 32, seed=4)
    sa, sb = a.sum(0), b.sum(0)
    expected = np.corrcoef(hog(sa / np.abs(sa).max()), hog(sb / np.abs(sb).max()))[0, 1]
    assert hog_correlation(a, b, absolute=False) == pytest.approx(expected, abs=1e-9)
    assert hog_correlation(a, -a, absolute=False) == pytest.approx(1.0)
    assert hog_correlation(a, b, absolute=False) != pytest.approx(hog_correlation(a, b), abs=1e-6)


def test_similarity_measures_are_computed_as_the_paper_does_ssim_and_hog_without_absolute_values() -> None:
    a, b = random_map(3, 32, 32, seed=8), random_map(3, 32, 32, seed=9)
    b = a + 0.5 * b  # related maps, so that the two ways differ clearly
    assert SIMILARITY_MEASURES["SSIM"](a, b) == ssim(a, b, absolute=False) != ssim(a, b)
    assert SIMILARITY_MEASURES["HOG"](a, b) == hog_correlation(a, b, absolute=False) != hog_correlation(a, b)
    assert SIMILARITY_MEASURES["Spearman |.|"](a, b) == rank_correlation(a, b)
    assert SIMILARITY_MEASURES["Spearman"](a, b) == rank_correlation(a, b, absolute=False)


def test_absolute_must_be_a_flag_for_ssim_and_hog() -> None:
    for measure in (ssim, hog_correlation):
        with pytest.raises(TypeError, match="absolute must be True or False"):
            measure(random_map(32, 32), random_map(32, 32), absolute="no")


# --- blank maps -----------------------------------------------------------------------------------


def test_is_blank_finds_constant_maps_only_and_leaves_them_alone() -> None:
    zeros = torch.zeros(1, 3, 8, 8)
    assert is_blank(zeros) and is_blank(np.full((8, 8), -2.0)) and is_blank(np.zeros((3, 8, 8)))
    one_pixel = np.zeros((1, 3, 8, 8))
    one_pixel[0, 1, 4, 4] = 1e-30  # the smallest non-zero value still ranks one pixel above the others
    assert not is_blank(one_pixel) and not is_blank(random_map(8, 8))
    cancelling = np.zeros((2, 4, 4))
    cancelling[0, 1, 1], cancelling[1, 1, 1] = 1.0, -1.0  # channels that sum to zero still have a magnitude
    assert not is_blank(cancelling)
    assert torch.equal(zeros, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        is_blank(np.full((4, 4), np.nan))


# --- randomisation order ----------------------------------------------------------------------------


def test_randomisation_order_goes_from_the_output_to_the_input() -> None:
    assert randomisation_order(small_net()) == ["7", "3", "1", "0"]  # ReLUs, pooling, flatten: no weights
    vgg_order = randomisation_order(torchvision.models.vgg16())
    assert vgg_order[:3] == ["classifier.6", "classifier.3", "classifier.0"]
    assert vgg_order[3] == "features.28" and vgg_order[-1] == "features.0" and len(vgg_order) == 16


def test_randomisation_order_keeps_blocks_whole() -> None:
    order = randomisation_order(torchvision.models.resnet18())
    assert order[:3] == ["fc", "layer4.1", "layer4.0"] and order[-2:] == ["bn1", "conv1"]
    assert len(order) == 11  # fc, 8 residual blocks, bn1, conv1


# --- cascading randomisation ------------------------------------------------------------------------


def test_cascading_randomisation_randomises_one_more_layer_per_step_on_a_copy() -> None:
    model = small_net()
    original = snapshot(model)
    names = randomisation_order(model)
    steps = []
    for step, (name, randomised) in enumerate(cascading_randomisation(model)):
        assert randomised is not model
        steps.append(name)
        for i, other in enumerate(names):
            changed = any(
                not torch.equal(a, b) for a, b in zip(layer_state(randomised, other), layer_state(model, other))
            )
            assert changed == (i <= step), f"after randomising {name!r}, layer {other!r} changed={changed}"
    assert steps == names
    assert same_state(model, original)


def test_cascading_randomisation_yields_one_copy_that_keeps_mode_and_flags() -> None:
    model = small_net().train()
    model[0].weight.requires_grad_(False)
    copies = {id(randomised) for _, randomised in cascading_randomisation(model)}
    assert len(copies) == 1
    _, randomised = next(iter(cascading_randomisation(model)))
    assert randomised.training and all(m.training for m in randomised.modules())
    assert not randomised[0].weight.requires_grad and randomised[3].weight.requires_grad
    assert model.training and not model[0].weight.requires_grad  # the original's flags are untouched


def test_cascading_randomisation_resets_batch_norm_statistics() -> None:
    model = small_net()  # running mean 5, running variance 7
    *_, (_, randomised) = cascading_randomisation(model)
    assert torch.equal(randomised[1].running_mean, torch.zeros(4)) and torch.equal(
        randomised[1].running_var, torch.ones(4)
    )
    assert float(model[1].running_mean[0]) == 5.0


def test_cascading_randomisation_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    model = small_net()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    runs = [[snapshot(r) for _, r in cascading_randomisation(model, seed=s)] for s in (0, 0, 1)]
    assert torch.equal(torch.random.get_rng_state(), before)
    first, again, other = runs
    for a, b, c in zip(first, again, other):
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert any(not torch.equal(a[k], c[k]) for k in a)


def test_cascading_randomisation_accepts_names_and_modules_in_any_order() -> None:
    model = small_net()
    order = [name for name, _ in cascading_randomisation(model, [model[0], "7"])]
    assert order == ["0", "7"]
    *_, (_, randomised) = cascading_randomisation(model, ["3"])
    assert torch.equal(randomised[0].weight, model[0].weight) and not torch.equal(randomised[3].weight, model[3].weight)


def test_independent_randomisation_changes_exactly_one_layer_per_step_on_fresh_copies() -> None:
    model = small_net()
    original = snapshot(model)
    torch.manual_seed(7)
    rng = torch.random.get_rng_state()
    names = randomisation_order(model)
    seen = []
    for step, (name, randomised) in enumerate(independent_randomisation(model)):
        assert randomised is not model and all(randomised is not other for other in seen)
        seen.append(randomised)
        for other in names:
            changed = any(
                not torch.equal(a, b) for a, b in zip(layer_state(randomised, other), layer_state(model, other))
            )
            assert changed == (other == name), f"step {step} ({name!r}): layer {other!r} changed={changed}"
    assert [name for name, _ in independent_randomisation(model)] == names
    assert same_state(model, original) and torch.equal(torch.random.get_rng_state(), rng)


def test_independent_step_draws_the_same_weights_as_the_cascading_step() -> None:
    model = small_net()
    cascade = [(name, layer_state(randomised, name)) for name, randomised in cascading_randomisation(model, seed=3)]
    for (name, weights), (same_name, randomised) in zip(cascade, independent_randomisation(model, seed=3)):
        assert name == same_name
        assert all(torch.equal(a, b) for a, b in zip(weights, layer_state(randomised, name)))


@pytest.mark.parametrize("randomise", [cascading_randomisation, independent_randomisation])
def test_a_single_layer_name_instead_of_a_list_is_named(randomise) -> None:
    with pytest.raises(
        TypeError,
        match=r"layer_order must be a list of layers \(names or modules\), not a str; "
        r"for one layer pass a list of one, e.g. \['features.12'\]",
    ):
        randomise(small_net(), "features.12")
    with pytest.raises(TypeError, match=r"not a Conv2d; for one layer pass a list of one"):
        randomise(small_net(), small_net()[0])


class NoReset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["9"], r"'9' is not a layer of Sequential; layers with weights, output first: '7', '3', '1', '0'"),
        ([nn.Linear(4, 2)], "The Linear given is not a layer"),
        (["2"], "'2' has no parameters to randomise"),
    ],
)
def test_randomisation_rejects_bad_layers_when_called(order: list, message: str) -> None:
    for randomise in (cascading_randomisation, independent_randomisation):
        with pytest.raises(ValueError, match=message):
            randomise(small_net(), order)  # raised at the call, before iterating


def test_cascading_randomisation_rejects_parameters_it_cannot_reinitialise() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 1), NoReset())
    with pytest.raises(ValueError, match=r"'1' \(NoReset\) has parameters but no reset_parameters"):
        cascading_randomisation(model)


def test_a_randomised_model_gives_a_different_output_and_the_original_the_same() -> None:
    model = small_net()
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            outputs = [randomised(x) for _, randomised in cascading_randomisation(model)]
        after = model(x)
    assert torch.equal(before, after)
    assert not torch.allclose(outputs[0], before)


# --- the edge-detector baseline ---------------------------------------------------------------------


def test_edge_map_is_the_sobel_magnitude_of_the_mean_of_the_channels() -> None:
    picture = np.random.default_rng(0).random((16, 20, 3))
    gray = picture.mean(axis=-1)
    expected = np.sqrt(ndimage.sobel(gray, axis=0) ** 2 + ndimage.sobel(gray, axis=1) ** 2)
    assert np.allclose(edge_map(picture), expected)
    assert np.allclose(edge_map(torch.from_numpy(picture)), expected), "a tensor gives the same"
    assert np.allclose(edge_map(gray), expected), "a gray picture is used as it is"


def test_edge_map_is_zero_on_a_flat_picture_and_leaves_its_input_alone() -> None:
    assert edge_map(np.full((8, 8, 3), 0.3)).max() == pytest.approx(0.0)
    picture = np.random.default_rng(1).random((8, 8, 3))
    kept = picture.copy()
    edge_map(picture)
    assert np.array_equal(picture, kept)


@pytest.mark.parametrize(
    ("picture", "error", "message"),
    [
        ([[0.0, 1.0]], TypeError, "picture must be a real numpy array or torch tensor"),
        (
            np.zeros((3, 8, 8)),
            ValueError,
            r"picture must be H x W x 3 \(channels last\) or H x W, at least 3 x 3, got shape \(3, 8, 8\)",
        ),
        (np.zeros((2, 8)), ValueError, "at least 3 x 3"),
        (np.full((4, 4), np.nan), ValueError, "NaN or infinite"),
        (np.zeros((4, 4), dtype=complex), TypeError, "real numpy array"),
    ],
)
def test_edge_map_refuses_what_is_not_a_picture(picture, error, message) -> None:
    with pytest.raises(error, match=message):
        edge_map(picture)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: randomisation_order(None),
            TypeError,
            r"model must be a torch nn.Module \(the classifier to randomise\), not None",
        ),
        (lambda: cascading_randomisation("net"), TypeError, "model must be a torch nn.Module"),
        (
            lambda: independent_randomisation(small_net(), seed=float("nan")),
            TypeError,
            "seed must be an integer, e.g. 0, not float",
        ),
        (lambda: cascading_randomisation(small_net(), seed=True), TypeError, "seed must be an integer"),
        (
            lambda: rank_correlation(np.ones((3, 3)), np.ones((3, 3)), absolute="yes"),
            TypeError,
            "absolute must be True or False, not 'yes'",
        ),
        (
            lambda: magnitude_pair(np.ones((3, 3)), np.ones((3, 3)), np.True_),
            TypeError,
            "names must be a pair of strings",
        ),
    ],
    ids=["order-none", "cascading-str", "seed-nan", "seed-bool", "absolute-str", "names-bool"],
)
def test_wrong_kinds_of_arguments_get_one_line_naming_them(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()
