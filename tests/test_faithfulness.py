"""utils.faithfulness: deletion and insertion curves, the maps to beat, and the report card's rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _shared import refuses
from torch import nn

import utils.faithfulness as faithfulness_module
from utils.faithfulness import (
    CPU_FORWARD_BATCH,
    MAX_MAP_PIXELS,
    MAX_STEPS,
    AttributionMaps,
    Curves,
    FaithfulnessRow,
    attribution_maps,
    blur,
    blur_kernel,
    centre_map,
    edge_map,
    forward_batch_for,
    insertion_deletion,
    random_map,
    removal_ranks,
    replacement,
    report_card_rows,
    summarise,
)
from utils.saliency import grad_cam, guided_grad_cam
from utils.sanity import ConstantMapWarning

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


def rise_blur(x: torch.Tensor) -> torch.Tensor:
    """The RISE authors' blur as their code writes it (github.com/eclique/RISE, evaluation.py and Evaluation.ipynb):
    ``gkern(11, 5)``, a 3 x 3 diagonal kernel of the smoothed delta, ``conv2d(x, kern, padding=klen // 2)``."""
    from scipy.ndimage import gaussian_filter

    klen, nsig = 11, 5
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen))
    for c in range(3):
        kern[c, c] = k
    return torch.nn.functional.conv2d(x.double(), torch.from_numpy(kern), padding=klen // 2)


def test_the_blur_is_the_rise_authors_blur_value_for_value() -> None:
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    blurred = replacement(x, "blur")
    assert torch.allclose(blurred.double(), rise_blur(x), atol=1e-6)  # RISE's code, as written there
    assert torch.allclose(blur(x[0]), blurred[0]) and torch.allclose(replacement(x[0], "blur"), blurred[0])
    assert torch.equal(x, before)
    kernel = blur_kernel()  # the kernel's own values: flat (corner 0.876 of the centre), summing to 1
    assert kernel[0, 0] / kernel[5, 5] == pytest.approx(0.8759, abs=1e-4) and kernel.sum() == pytest.approx(1.0)
    impulse = torch.zeros(1, 1, 21, 21)
    impulse[0, 0, 10, 10] = 1.0
    assert np.allclose(blur(impulse)[0, 0, 5:16, 5:16].numpy(), kernel, atol=1e-7)  # an impulse spreads as the kernel
    ones = blur(torch.ones(1, 1, 12, 12))[0, 0]  # zero padding: the border fades towards 0 (the mean colour)
    assert float(ones[6, 6]) == pytest.approx(1.0, abs=1e-6) and float(ones[0, 0]) == pytest.approx(0.2992, abs=1e-4)


def test_a_sharper_blur_would_be_caught() -> None:
    """Sigma 1 instead of 5 (the mutant that survived before): the blurred value at the centre of an impulse is the
    kernel's centre weight, 0.00883 for sigma 5 (nearly 1/121: flat), about 0.16 for sigma 1."""
    impulse = torch.zeros(1, 3, 15, 15)
    impulse[:, :, 7, 7] = 1.0
    centre = float(replacement(impulse, "blur")[0, 0, 7, 7])
    assert centre == pytest.approx(0.0088326, abs=1e-6)


def test_other_replacements_and_a_given_image() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(replacement(x, x.flip(-1)), x.flip(-1))
    assert torch.equal(replacement(x, "zero"), torch.zeros_like(x))
    assert torch.allclose(replacement(x, "mean")[0, :, 3, 5], x[0].mean(dim=(1, 2)))
    tiny = torch.rand(1, 3, 1, 1)  # the blur takes any size: zero padding
    assert torch.allclose(replacement(tiny, "blur"), tiny * float(blur_kernel()[5, 5]))


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
    """The batch size of every forward pass of ``model`` (until the handle is removed)."""
    calls: list[int] = []
    return calls, model.register_forward_hook(lambda _, args, __: calls.append(int(args[0].shape[0])))


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
    assert set(mixed.seconds) == set(mixed.maps)


def test_attribution_maps_name_a_bad_method() -> None:
    with pytest.raises(ValueError, match="Unknown method 'smoothgrad'"):
        attribution_maps(small_net(), "3", torch.rand(1, 3, 8, 8), [0], ["smoothgrad"])
    with pytest.raises(ValueError, match="need the Grad-CAM layer"):
        attribution_maps(small_net(), None, torch.rand(1, 3, 8, 8), [0], ["grad_cam"])
    with pytest.raises(ValueError, match="Method 'bad' returned shape"):
        attribution_maps(small_net(), None, torch.rand(2, 3, 8, 8), 0, {"bad": lambda m, x, c: torch.zeros(1, 3, 8, 8)})


@pytest.mark.filterwarnings("ignore::utils.saliency.ZeroGradCamWarning")  # a random net's Grad-CAM may be blank
@pytest.mark.filterwarnings("ignore::utils.sanity.ConstantMapWarning")  # ... and then constant
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
    # per photo the image, its replacement and 2 x 2 x 3 perturbed images, 8 at a time on a CPU; no saliency pass
    assert calls == [8, 6, 8, 6]
    assert [r.insertion_auc for r in again] == pytest.approx([r.insertion_auc for r in rows], abs=1e-6)
    calls.clear()
    handle = model.register_forward_hook(lambda _, args, __: calls.append(int(args[0].shape[0])))
    try:
        wide = report_card_rows(
            model, "3", photos, ["grad_cam", "random"], steps=4, patch=4, computed=reused, batch_size=64
        )
    finally:
        handle.remove()
    assert calls == [14, 14]  # a batch size given is used as it is
    assert [r.deletion_auc for r in wide] == pytest.approx([r.deletion_auc for r in rows], abs=1e-6)


def test_the_default_batch_is_small_on_a_cpu_and_large_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert forward_batch_for(torch.device("cpu"), 64) == CPU_FORWARD_BATCH == 8
    assert forward_batch_for(torch.device("cuda", 0), 64) == 64
    assert forward_batch_for(torch.device("mps"), 128) == 128
    assert (forward_batch_for("cpu", 64), forward_batch_for("cuda:1", 32)) == (8, 32)  # a device's name will do
    with refuses(ValueError, "device 'gpu' is not a device torch knows; e.g. 'cpu' or 'cuda'."):
        forward_batch_for("gpu", 64)
    with refuses(TypeError, "device must be a torch.device or its name (e.g. 'cpu'), not 0."):
        forward_batch_for(0, 64)  # torch would read 0 as CUDA's first device
    with refuses(ValueError, "accelerator must be at least 1, got 0."):
        forward_batch_for("cuda", 0)
    model, image = small_net(), torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(faithfulness_module, "CPU_FORWARD_BATCH", 5)
    calls, handle = count_forward_passes(model)
    try:
        insertion_deletion(model, image, random_map(16, 16, seed=0), 1, steps=7, patch=4)
    finally:
        handle.remove()
    assert calls == [5, 5, 4]  # the image, its replacement and 2 x 6 perturbed images, CPU_FORWARD_BATCH at a time
    asked: list[torch.device] = []
    monkeypatch.setattr(faithfulness_module, "forward_batch_for", lambda device, _: asked.append(device) or 64)
    calls, handle = count_forward_passes(model)
    try:
        insertion_deletion(model, image, random_map(16, 16, seed=0), 1, steps=7, patch=4)
    finally:
        handle.remove()
    assert calls == [14] and asked == [image.device]  # the default asked for the images' device


def test_the_other_helpers_name_bad_input_in_one_line() -> None:
    image, net = torch.rand(1, 3, 8, 8), small_net()
    cases = [
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


# --- the report card's timing and summary, checked value by value -----------------------------------


class FakeClock:
    """``perf_counter`` that returns the given times in turn: a timing check that does not depend on the machine."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


@pytest.mark.filterwarnings("ignore::utils.saliency.ZeroGradCamWarning")
def test_seconds_per_map_are_the_time_measured_divided_by_the_maps_made(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = small_net(), torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    # the course's three maps share one pass: 0 -> 12 s for 3 x 2 maps; then 'random' 20 -> 25 s for 2 maps
    monkeypatch.setattr(faithfulness_module, "_clock", FakeClock(0.0, 12.0, 20.0, 25.0))
    course = ["grad_cam", "guided_backprop", "guided_grad_cam"]
    found = attribution_maps(model, "3", x, 1, [*course, "random"])
    assert found.seconds == {"grad_cam": 2.0, "guided_backprop": 2.0, "guided_grad_cam": 2.0, "random": 2.5}
    photos = {"a": (x[:1], 1), "b": (x[1:], 1)}
    rows = report_card_rows(model, "3", photos, [*course, "random"], steps=2, patch=4, computed=found)
    assert [r.seconds for r in rows] == [2.0, 2.0, 2.0, 2.5] * 2


def test_every_summary_field_is_its_own_statistic() -> None:
    rows = [
        FaithfulnessRow("m", "a", 0, insertion_auc=0.6, deletion_auc=0.1, seconds=1.0),
        FaithfulnessRow("other", "a", 0, insertion_auc=0.9, deletion_auc=0.9, seconds=9.0),
        FaithfulnessRow("m", "b", 0, insertion_auc=0.8, deletion_auc=0.4, seconds=2.0),
        FaithfulnessRow("m", "c", 0, insertion_auc=1.0, deletion_auc=0.1, seconds=6.0),
    ]
    summary = summarise(rows)
    assert list(summary) == ["m", "other"]
    m = summary["m"]
    assert m.insertion_mean == pytest.approx(0.8) and m.insertion_std == pytest.approx(np.sqrt(0.08 / 3))
    assert m.deletion_mean == pytest.approx(0.2) and m.deletion_std == pytest.approx(np.sqrt(0.06 / 3))
    assert m.seconds == pytest.approx(3.0) and m.photos == 3
    assert summary["other"] == faithfulness_module.Summary(0.9, 0.0, 0.9, 0.0, 9.0, 1)


# --- bounded memory, bounded steps, and one line for what cannot make sense -----------------------


class BatchRecorder(nn.Module):
    """``RegionModel`` that records the size of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.sizes = RegionModel().eval(), []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return self.inner(x)


@pytest.mark.parametrize("batch_size", [1, 3, np.int64(8), 500])
def test_the_perturbed_images_go_batch_size_at_a_time_and_give_the_same_curves(batch_size: int) -> None:
    model, x = BatchRecorder(), region_image()
    curves = insertion_deletion(model, x, marking_map(), 0, steps=16, baseline="blur", patch=2, batch_size=batch_size)
    reference = insertion_deletion(RegionModel().eval(), x, marking_map(), 0, steps=16, baseline="blur", patch=2)
    images = 2 + 2 * 15  # the image, its replacement, 15 deletion and 15 insertion images
    assert sum(model.sizes) == images and max(model.sizes) == min(int(batch_size), images)
    np.testing.assert_allclose(curves.deletion, reference.deletion, atol=1e-12)
    np.testing.assert_allclose(curves.insertion, reference.insertion, atol=1e-12)


def test_the_perturbed_images_are_built_one_batch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No batch of images exists before the previous one went through the model: memory grows with batch_size."""
    built: list[int] = []
    real_where = torch.where

    def recording_where(*args: torch.Tensor) -> torch.Tensor:
        out = real_where(*args)
        built.append(int(out.shape[0]))
        return out

    class Checking(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert sum(built) - x.shape[0] == sum(seen), "images were built before they were needed"
            seen.append(int(x.shape[0]))
            return RegionModel().eval()(x)

    seen: list[int] = []
    monkeypatch.setattr(faithfulness_module.torch, "where", recording_where)
    insertion_deletion(Checking(), region_image(), marking_map(), 0, steps=32, baseline="zero", patch=1, batch_size=4)
    assert seen == built and sum(seen) == 2 + 2 * 31


def test_the_report_cards_steps_over_patches_round_as_documented() -> None:
    """8 steps over 196 patches (a 224 x 224 photo, 16 x 16 patches): 122 and 171 at steps 5 and 7, not 123 and 172."""
    shape, values = (224, 224), np.random.default_rng(0).random((224, 224))
    _, units = removal_ranks(values, shape, patch=16)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)).eval()
    curves = insertion_deletion(model, torch.zeros(1, 3, 224, 224), values, 0, steps=8, baseline="zero", patch=16)
    assert units == 196 and (curves.fractions * 196).round().astype(int).tolist() == [
        0, 25, 49, 74, 98, 122, 147, 171, 196
    ]  # fmt: skip
    strip = insertion_deletion(model, torch.zeros(1, 3, 3, 3), values[:3, :3], 0, steps=4, baseline="zero")
    assert (strip.fractions * 9).round().astype(int).tolist() == [0, 2, 5, 7, 9]  # 2.25 -> 2, 4.5 -> 5, 6.75 -> 7


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: insertion_deletion(
                small_net(), torch.rand(1, 3, 64, 64), random_map(64, 64), 0, steps=MAX_STEPS + 9
            ),
            rf"steps={MAX_STEPS + 9} would run {2 * MAX_STEPS + 16} images through the model; at most {MAX_STEPS}",
        ),
        (lambda: insertion_deletion(RegionModel(), region_image(), marking_map(), 0, steps=4, batch_size=True),
         r"batch_size must be a whole number, at least 1, or None, got True"),
        (lambda: insertion_deletion(RegionModel(), region_image(), marking_map(), 0, steps=4, batch_size=0),
         r"batch_size must be a whole number, at least 1, or None, got 0"),
        (lambda: random_map(10**6, 10**6), rf"1000000 x 1000000 map has more than MAX_MAP_PIXELS = {MAX_MAP_PIXELS:,}"),
        (lambda: centre_map(10**5, 10**5), r"map has more than MAX_MAP_PIXELS"),
    ],
)  # fmt: skip
def test_settings_that_cannot_make_sense_are_refused_in_one_line(call, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)


def pooling_net() -> nn.Module:
    """Three 2 x 2 max pools: an input under 8 x 8 pixels is too small (torch: 'Output size is too small')."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(2)
    ).eval()


@pytest.mark.filterwarnings("ignore::utils.sanity.ConstantMapWarning")  # a 1 x 1 map ranks nothing
@pytest.mark.parametrize("side", [1, 4])
def test_an_image_too_small_for_the_model_is_named_with_the_smallest_size(side: int) -> None:
    model = pooling_net()
    model(torch.zeros(1, 3, 8, 8))  # the lazy layer takes its size from an 8 x 8 image
    with pytest.raises(
        ValueError, match=rf"x is {side} x {side} pixels, too small for Sequential: it needs at least 8"
    ) as raised:
        insertion_deletion(model, torch.rand(1, 3, side, side), np.random.default_rng(0).random((side, side)), 0,
                           steps=1, baseline="zero")  # fmt: skip
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("value", [0.0, 0.3])
def test_a_constant_map_is_warned_about(value: float) -> None:
    with pytest.warns(ConstantMapWarning, match="saliency is constant"):
        curves = insertion_deletion(RegionModel().eval(), region_image(), np.full((SIDE, SIDE), value), 0, steps=4)
    random_order = insertion_deletion(RegionModel().eval(), region_image(), random_map(SIDE, SIDE, seed=5), 0, steps=4)
    assert curves.deletion.shape == random_order.deletion.shape  # a curve still comes back: a random order's


@pytest.mark.filterwarnings("ignore::utils.saliency.ZeroGradCamWarning")
def test_the_report_card_names_the_method_and_photo_of_a_constant_map() -> None:
    photos = {"blank": (torch.rand(1, 3, 12, 12), 0)}
    methods = {"flat": lambda model, x, classes: torch.zeros(len(classes), 1, 12, 12), "random": "random"}
    with pytest.warns(ConstantMapWarning, match="the 'flat' map of 'blank' is constant") as caught:
        report_card_rows(small_net(), None, photos, methods, steps=2, patch=2)
    assert len(caught) == 1


def test_the_report_cards_photos_and_reused_maps_are_checked() -> None:
    model = small_net()
    a, b = (torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(i)) for i in (1, 2))
    with pytest.raises(ValueError, match=r"photos is an empty dict; give at least one photo") as raised:
        report_card_rows(model, None, {}, ["random"])
    assert "not a dict" not in str(raised.value)
    computed = attribution_maps(model, None, torch.cat([a, b]), 0, ["random"])
    assert torch.equal(computed.inputs, torch.cat([a, b]))
    rows = report_card_rows(model, None, {"a": (a, 0), "b": (b, 0)}, ["random"], steps=2, patch=2, computed=computed)
    assert [r.photo for r in rows] == ["a", "b"]
    with pytest.raises(ValueError, match=r"computed's image 0 is not the photo 'b': its maps explain another image"):
        report_card_rows(model, None, {"b": (b, 0), "a": (a, 0)}, ["random"], steps=2, patch=2, computed=computed)
    with pytest.raises(ValueError, match=r"computed's maps are not on the photos' grid"):
        report_card_rows(model, None, {"a": (a[..., :8, :8], 0)}, ["random"], steps=2, patch=2, computed=computed)
    unknown = AttributionMaps(maps=computed.maps, seconds=computed.seconds)  # made by hand: nothing to compare
    assert len(report_card_rows(model, None, {"a": (a, 0)}, ["random"], steps=2, patch=2, computed=unknown)) == 1
