"""utils.saliency: the same maps as Captum 0.9, and no trace left on the model or the input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam
from PIL import Image
from torch import nn

from utils.categories import category_index
from utils.models import load_model
from utils.saliency import (
    ZeroGradCamWarning,
    as_batch,
    as_float_array,
    class_indices,
    conv_layers,
    drop_leading_ones,
    eval_with_frozen_parameters,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    guided_grad_cam_factors,
    last_conv_layer,
    resolve_layer,
    saliency_maps,
    upsample_cam,
)

DATA = Path(__file__).resolve().parents[1] / "data"
HOOK_DICTS = ("_forward_hooks", "_backward_hooks", "_forward_pre_hooks", "_backward_pre_hooks")


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.vgg16().eval()


@pytest.fixture(scope="module")
def vgg_x() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def squeeze():
    return load_model("squeezenet1_1", device="cpu")


@pytest.fixture(scope="module")
def photos(squeeze) -> torch.Tensor:
    images = [Image.open(DATA / name).convert("RGB") for name in ("cat.png", "coffee.png")]
    return torch.stack([squeeze.transforms(image) for image in images])


def tiny_net(negative: bool = False) -> nn.Sequential:
    """Conv -> in-place ReLU -> global pooling -> linear; ``negative``: class 0 only decreases with activation."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    if negative:
        with torch.no_grad():
            net[4].weight[0] = -net[4].weight[0].abs() - 0.1
    return net.eval()


def as_index(target, categories=None):
    if isinstance(target, list):
        return [category_index(t, categories) for t in target]
    return category_index(target, categories)


def captum_maps(model, layer, x, target, mode="nearest"):
    """Captum's three maps, the article's way (its warnings silenced; it gets its own copy of x)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "grad_cam": LayerGradCam(model, layer).attribute(x.clone(), target, relu_attributions=True),
            "guided_backprop": GuidedBackprop(model).attribute(x.clone(), target),
            "guided_grad_cam": GuidedGradCam(model, layer).attribute(x.clone(), target, interpolate_mode=mode),
        }


def assert_close(ours: torch.Tensor, reference: torch.Tensor, what: str) -> None:
    assert ours.shape == reference.shape, f"{what}: shape {tuple(ours.shape)} != Captum's {tuple(reference.shape)}"
    scale = reference.abs().max().item()
    diff = (ours - reference).abs().max().item()
    assert diff <= 1e-5 * scale, f"{what}: max |ours - Captum| = {diff:.3g}, map scale {scale:.3g}"


def hook_count(model: nn.Module) -> int:
    return sum(len(getattr(m, d)) for m in model.modules() for d in HOOK_DICTS)


def model_state(model: nn.Module) -> dict:
    return {
        "values": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
        "grads": [p.grad for p in model.parameters()],
    }


def assert_same_state(before: dict, after: dict) -> None:
    assert before["values"].keys() == after["values"].keys()
    for key, value in before["values"].items():
        assert torch.equal(value, after["values"][key]), f"model value {key} changed"
    for field in ("requires_grad", "training", "inplace"):
        assert before[field] == after[field], f"model {field} flags changed"
    assert all(g is None for g in after["grads"]), "a parameter gained a .grad"


def plain_input_gradient(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    image = x.clone().requires_grad_(True)
    return torch.autograd.grad(model(image)[:, target].sum(), image)[0]


# --- equality with Captum -------------------------------------------------------------------------


@pytest.mark.parametrize("target", [3, "tiger cat", [5, "Egyptian cat"]], ids=["index", "name", "per-image"])
def test_vgg16_maps_equal_captum(vgg, vgg_x, target):
    reference = captum_maps(vgg, vgg.features[29], vgg_x, as_index(target))
    assert_close(grad_cam(vgg, "features.29", vgg_x, target), reference["grad_cam"], "grad_cam")
    assert_close(guided_backprop(vgg, vgg_x, target), reference["guided_backprop"], "guided_backprop")
    assert_close(guided_grad_cam(vgg, vgg.features[29], vgg_x, target), reference["guided_grad_cam"], "guided_grad_cam")


def test_conv_layer_before_an_inplace_relu_equals_captum(vgg, vgg_x):
    # features.28 is a convolution whose output the next ReLU(inplace=True) overwrites: A must be kept intact.
    reference = captum_maps(vgg, vgg.features[28], vgg_x[:1], 7)
    assert_close(grad_cam(vgg, "features.28", vgg_x[:1], 7), reference["grad_cam"], "grad_cam at features.28")
    maps = saliency_maps(vgg, vgg.features[28], vgg_x[:1], 7)[7]
    assert_close(maps["guided_grad_cam"], reference["guided_grad_cam"], "guided_grad_cam at features.28")


@pytest.mark.parametrize("target", ["tiger cat", 967, ["tabby", "espresso"]], ids=["name", "index", "per-image"])
def test_squeezenet_photos_equal_captum(squeeze, photos, target):
    model, layer, names = squeeze.model, squeeze.target_layer, squeeze.categories
    reference = captum_maps(model, layer, photos, as_index(target, names), mode="bilinear")
    assert_close(grad_cam(model, layer, photos, target, categories=names), reference["grad_cam"], "grad_cam")
    assert_close(
        guided_backprop(model, photos, target, categories=names), reference["guided_backprop"], "guided_backprop"
    )
    ggc = guided_grad_cam(model, "features.12", photos, target, interpolate_mode="bilinear", categories=names)
    assert_close(ggc, reference["guided_grad_cam"], "guided_grad_cam (bilinear)")
    assert reference["grad_cam"].abs().max() > 0, "the photos should give a non-blank Grad-CAM"


def test_saliency_maps_equal_captum_for_every_target(vgg, vgg_x, squeeze, photos):
    for model, layer, x, targets in (
        (vgg, "features.29", vgg_x, [3, "tiger cat"]),
        (squeeze.model, "features.12", photos, ["tiger cat", 967]),
    ):
        maps = saliency_maps(model, layer, x, targets)
        assert list(maps) == targets
        for target in targets:
            reference = captum_maps(model, resolve_layer(model, layer)[1], x, as_index(target))
            for method in ("grad_cam", "guided_backprop", "guided_grad_cam"):
                assert_close(maps[target][method], reference[method], f"saliency_maps[{target!r}][{method!r}]")


def test_grad_cam_upsample_is_captums_interpolate(squeeze, photos):
    model, layer = squeeze.model, squeeze.target_layer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cam = LayerGradCam(model, layer).attribute(photos.clone(), 282, relu_attributions=True)
    assert cam.shape[-2:] == (13, 13)
    for upsample, mode in ((True, "nearest"), ("bilinear", "bilinear")):
        expected = LayerAttribution.interpolate(cam, (224, 224), interpolate_mode=mode)
        assert_close(grad_cam(model, layer, photos, 282, upsample=upsample), expected, f"upsample={upsample!r}")
    maps = saliency_maps(model, layer, photos, 282)
    expected = LayerAttribution.interpolate(cam, (224, 224))
    assert_close(upsample_cam(maps[282]["grad_cam"], photos.shape[-2:]), expected, "upsample_cam")


def test_saliency_maps_upsamples_guided_grad_cam_with_the_mode_it_is_given() -> None:
    """Guided Grad-CAM from saliency_maps equals Captum's in each interpolate_mode, and the modes differ here."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(2))  # a 7 x 7 layer upsampled to 9 x 9
    got = {mode: saliency_maps(net, "1", x, [0, 1], interpolate_mode=mode) for mode in ("nearest", "bilinear")}
    for mode, maps in got.items():
        for target in (0, 1):
            reference = captum_maps(net, net[1], x, target, mode=mode)["guided_grad_cam"]
            assert_close(maps[target]["guided_grad_cam"], reference, f"saliency_maps guided_grad_cam ({mode})")
            assert torch.equal(
                maps[target]["guided_grad_cam"], guided_grad_cam(net, "1", x, target, interpolate_mode=mode)
            )
    nearest, bilinear = got["nearest"][1]["guided_grad_cam"], got["bilinear"][1]["guided_grad_cam"]
    assert (nearest - bilinear).abs().max() > 1e-3 * bilinear.abs().max(), "the two modes should differ on this net"


def test_single_image_is_a_batch_of_one(squeeze, photos):
    model, cat = squeeze.model, photos[0]
    single = grad_cam(model, "features.12", cat, "tiger cat")
    assert torch.equal(single, grad_cam(model, "features.12", cat[None], "tiger cat"))
    assert guided_backprop(model, cat, 282).shape == (1, 3, 224, 224)


# --- saliency_maps: one forward pass, keys ------------------------------------------------------


def test_saliency_maps_runs_one_forward_pass_with_frozen_parameters(squeeze, photos):
    model, seen = squeeze.model, []
    handle = model.register_forward_hook(lambda m, i, o: seen.append([p.requires_grad for p in m.parameters()]))
    try:
        saliency_maps(model, "features.12", photos, ["tiger cat", "espresso", 281])
    finally:
        handle.remove()
    assert len(seen) == 1, "saliency_maps should run the model once for all targets"
    assert not any(seen[0]), "parameters should not require grad during the call"
    assert all(p.requires_grad for p in model.parameters()), "requires_grad should be restored"


def test_saliency_maps_keys_are_the_targets_as_given(squeeze, photos):
    model = squeeze.model
    maps = saliency_maps(model, "features.12", photos, torch.tensor([282, 967]))
    assert list(maps) == [282, 967] and all(type(k) is int for k in maps)
    maps = saliency_maps(model, "features.12", photos, ["Tiger Cat", 282, "Tiger Cat"])
    assert list(maps) == ["Tiger Cat", 282], "repeats are computed once, names keep their spelling"
    assert torch.equal(maps["Tiger Cat"]["guided_grad_cam"], maps[282]["guided_grad_cam"])
    assert set(saliency_maps(model, "features.12", photos, "espresso")) == {"espresso"}
    assert set(maps[282]) == {"grad_cam", "guided_backprop", "guided_grad_cam"}
    assert maps[282]["grad_cam"].shape == (2, 1, 13, 13), "grad_cam stays at the layer's resolution"


# --- no trace left on the model or the input ---------------------------------------------------


def test_no_hooks_state_or_input_change_after_calls(squeeze, photos):
    model = squeeze.model
    x = photos.clone()
    before, hooks, plain = model_state(model), hook_count(model), plain_input_gradient(model, photos, 282)
    first = saliency_maps(model, "features.12", x, ["tiger cat", 967])
    grad_cam(model, "features.12", x, 282, upsample=True)
    guided_backprop(model, x, [282, 967])
    guided_grad_cam(model, "features.12", x, 282)
    second = saliency_maps(model, "features.12", x, ["tiger cat", 967])
    assert hook_count(model) == hooks
    assert_same_state(before, model_state(model))
    assert torch.equal(x, photos) and not x.requires_grad and x.grad is None
    for target in first:
        for method, value in first[target].items():
            assert torch.equal(value, second[target][method]), f"a second call changed {method}"
            assert value.grad_fn is None and not value.requires_grad, "maps should be detached"
    assert torch.equal(plain_input_gradient(model, photos, 282), plain), (
        "plain gradients changed: a guided rule lingers"
    )


def test_input_that_requires_grad_is_left_alone(squeeze, photos):
    x = photos[:1].clone().requires_grad_(True)
    guided_grad_cam(squeeze.model, "features.12", x, "tiger cat")
    saliency_maps(squeeze.model, "features.12", x, [282])
    assert x.requires_grad and x.grad is None and x.is_leaf
    assert torch.equal(x.detach(), photos[:1])


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: grad_cam(m, "features.12", x, 5000),  # bad index, found after the forward pass
        lambda m, x: saliency_maps(m, "features.12", x, [282, 5000]),
        lambda m, x: guided_grad_cam(m, "features.12", x[:, :2], 282),  # the model itself raises
        lambda m, x: guided_backprop(m, x[:, :2], 282),
    ],
    ids=["grad_cam-index", "saliency_maps-index", "guided_grad_cam-model-raises", "guided_backprop-model-raises"],
)
def test_hooks_and_state_restored_when_a_call_raises(squeeze, photos, call):
    model = squeeze.model
    before, hooks, plain = model_state(model), hook_count(model), plain_input_gradient(model, photos[:1], 282)
    with pytest.raises((ValueError, RuntimeError)):
        call(model, photos[:1])
    assert hook_count(model) == hooks, "hooks left behind after an error"
    assert_same_state(before, model_state(model))
    assert torch.equal(plain_input_gradient(model, photos[:1], 282), plain)


def test_train_mode_is_computed_in_eval_and_restored(squeeze, photos):
    model = squeeze.model
    expected = saliency_maps(model, "features.12", photos, [282])[282]
    model.train()
    model.features.eval()  # a mixed pattern that must come back exactly
    model.features[0].weight.requires_grad_(False)
    try:
        before = model_state(model)
        got = saliency_maps(model, "features.12", photos, [282])[282]
        again = guided_grad_cam(model, "features.12", photos, 282)
        assert_same_state(before, model_state(model))
    finally:
        model.eval()
        model.features[0].weight.requires_grad_(True)
    for method in expected:
        assert torch.equal(got[method], expected[method]), f"train mode changed {method} (dropout should be off)"
    assert torch.equal(again, expected["guided_grad_cam"])


# --- a blank Grad-CAM ------------------------------------------------------------------------------


def test_all_negative_grad_cam_warns_and_returns_zeros():
    net, x = tiny_net(negative=True), torch.rand(2, 3, 8, 8)
    with pytest.warns(ZeroGradCamWarning, match=r"class 0 on images 0, 1 is zero everywhere: no region of layer '1'"):
        cam = grad_cam(net, "1", x, 0)
    assert cam.shape == (2, 1, 6, 6) and torch.equal(cam, torch.zeros_like(cam))
    with pytest.warns(ZeroGradCamWarning, match="class 'tench' is zero everywhere"):
        ggc = guided_grad_cam(net, "1", x[:1], "tench", categories=["tench", "goldfish"])
    assert not ggc.isnan().any() and torch.equal(ggc, torch.zeros_like(ggc))
    with pytest.warns(ZeroGradCamWarning):
        maps = saliency_maps(net, net[1], x, [0, 1])
    assert torch.equal(maps[0]["grad_cam"], torch.zeros(2, 1, 6, 6)) and maps[1]["grad_cam"].abs().max() > 0


def test_a_zero_grad_cam_warning_reaches_a_learner_under_pythons_default_filters() -> None:
    """Python's default filters (as in a notebook) show the warning once per call site; -W error makes it raise."""
    net, x = tiny_net(negative=True), torch.rand(1, 3, 8, 8)
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)  # what python -W default leaves out
        grad_cam(net, "1", x, 0)
    assert [type(w.message) for w in seen] == [ZeroGradCamWarning]
    assert "is zero everywhere" in str(seen[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ZeroGradCamWarning, match="Grad-CAM for class 0 is zero everywhere"):
            grad_cam(net, "1", x, 0)


def test_positive_grad_cam_does_not_warn_and_works_without_grad_mode():
    net, x = tiny_net(), torch.rand(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroGradCamWarning)
        expected = saliency_maps(net, "1", x, 1)[1]
        with torch.no_grad():
            no_grad = saliency_maps(net, "1", x, 1)[1]
        with torch.inference_mode():
            inference = saliency_maps(net, "1", x.clone(), 1)[1]
    assert expected["grad_cam"].abs().max() > 0
    for method, value in expected.items():
        assert torch.equal(no_grad[method], value) and torch.equal(inference[method], value), method


# --- layers ------------------------------------------------------------------------------------------


def test_conv_layers_and_last_conv_layer(vgg, squeeze):
    names = [name for name, _ in conv_layers(vgg)]
    assert names[:2] == ["features.0", "features.1"] and names[-2:] == ["features.28", "features.29"]
    assert len(names) == 26, "13 convolutions and the ReLU after each"
    assert last_conv_layer(vgg) == ("features.29", vgg.features[29])
    assert last_conv_layer(squeeze.model) == ("features.12", squeeze.target_layer), "the course's SqueezeNet layer"
    fire_parts = [name for name, _ in conv_layers(squeeze.model) if name.startswith("features.12.")]
    assert fire_parts == [], "modules inside a Fire block are partial maps and not listed"
    resnet = torchvision.models.resnet18()
    assert last_conv_layer(resnet) == ("layer4.1", resnet.layer4[1])


def test_resolve_layer_accepts_name_or_module(vgg):
    assert resolve_layer(vgg, "features.29") == ("features.29", vgg.features[29])
    assert resolve_layer(vgg, vgg.features[28]) == ("features.28", vgg.features[28])


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            "features.31",
            r"Layer 'features.31' is not in VGG; convolutional layers: 'features.0', .*'features.29' \(the",
        ),
        ("featurs.29", r"Closest names: 'features.29'"),
        (nn.Conv2d(3, 3, 3), r"not a module of this model; convolutional layers: 'features.0'"),
        ("classifier.0", r"Layer 'classifier.0' outputs \(1, 4096\), not an N x C x h x w feature map; convolutional"),
        ("", r"Layer '' is not in VGG"),
    ],
    ids=["unknown-name", "typo", "foreign-module", "linear-layer", "empty"],
)
def test_wrong_layer_lists_candidates(vgg, layer, message):
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match=message):
        grad_cam(vgg, layer, x, 1)


def test_pooled_and_repeated_layers_are_refused():
    net = tiny_net()
    with pytest.raises(ValueError, match=r"Layer '2' outputs \(1, 4, 1, 1\): a 1 x 1 map shows no region"):
        grad_cam(net, "2", torch.rand(1, 3, 8, 8), 0)
    relu = nn.ReLU()
    twice = nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 4, 3), relu, nn.Flatten(), nn.LazyLinear(2))
    twice(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"Layer '1' ran 2 times in one forward pass"):
        grad_cam(twice.eval(), relu, torch.rand(1, 3, 8, 8), 0)


# --- bad inputs and classes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("tigr cat", ValueError, r"Unknown class name 'tigr cat'; closest: 'tiger cat'"),
        (1000, ValueError, r"Class index 1000 is out of range; valid: 0-999"),
        (-1, ValueError, r"Class index -1 is out of range; valid: 0-999"),
        ([1, 2, 3], ValueError, r"Got 3 targets for a batch of 2 images"),
        (torch.tensor([1]), ValueError, r"Got 1 targets for a batch of 2 images"),
        (2.0, TypeError, r"not float"),
    ],
    ids=["unknown-name", "index-too-big", "negative-index", "three-for-two", "tensor-one-for-two", "float"],
)
def test_bad_target(squeeze, photos, target, error, message):
    with pytest.raises(error, match=message):
        guided_grad_cam(squeeze.model, "features.12", photos, target)


def test_index_range_comes_from_the_model_output():
    net = tiny_net()
    with pytest.raises(ValueError, match=r"Class index 2 is out of range; valid: 0-1 \(the model has 2 outputs\)"):
        grad_cam(net, "1", torch.rand(1, 3, 8, 8), 2)
    with pytest.raises(ValueError, match=r"Class 'tiger cat' is index 282, which is out of range; valid: 0-1"):
        guided_backprop(net, torch.rand(1, 3, 8, 8), "tiger cat")
    with pytest.raises(ValueError, match=r"Unknown class name 'cat'; closest: 'cot'"):
        guided_backprop(net, torch.rand(1, 3, 8, 8), "cat", categories=["cot", "dog"])


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(8, 8), r"x has shape \(8, 8\); expected an image C x H x W or a batch N x C x H x W"),
        (torch.rand(1, 1, 3, 8, 8), r"x has shape \(1, 1, 3, 8, 8\)"),
        (
            torch.rand(1, 3, 8, 8, dtype=torch.float64),
            r"x has dtype torch.float64 but the model's weights are torch.float32",
        ),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), r"x has dtype torch.uint8; preprocess"),
    ],
    ids=["2-D", "5-D", "float64", "uint8"],
)
def test_bad_input(x, message):
    net = tiny_net()
    with pytest.raises(ValueError, match=message):
        grad_cam(net, "1", x, 0)
    with pytest.raises(ValueError, match=message):
        guided_backprop(net, x, 0)
    with pytest.raises(ValueError, match=message):
        saliency_maps(net, "1", x, 0)


def test_device_mismatch_is_a_clear_error():
    net = tiny_net().to("meta")
    with pytest.raises(ValueError, match=r"x is on cpu but the model is on meta; move one, e.g. x.to\('meta'\)"):
        guided_grad_cam(net, "1", torch.rand(1, 3, 8, 8), 0)


def test_bad_modes_and_saliency_targets():
    net, x = tiny_net(), torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"upsample='cubic'; use False, True \(nearest\) or a mode"):
        grad_cam(net, "1", x, 0, upsample="cubic")
    with pytest.raises(ValueError, match=r"Unknown interpolation mode 'linear'"):
        guided_grad_cam(net, "1", x, 0, interpolate_mode="linear")
    with pytest.raises(ValueError, match=r"one class for all images; for one per image use guided_grad_cam"):
        saliency_maps(net, "1", x, [[0, 1]])
    with pytest.raises(ValueError, match=r"targets is empty"):
        saliency_maps(net, "1", x, [])


def test_inputs_the_model_cannot_take_get_one_clear_line() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"x has 1 channels .* first convolution takes 3"):
        grad_cam(net, "1", torch.rand(1, 1, 8, 8), 0)
    with pytest.raises(ValueError, match=r"channels last\? use x.permute\(0, 3, 1, 2\)"):
        grad_cam(net, "1", torch.rand(1, 8, 8, 3), 0)
    nan_image = torch.rand(1, 3, 8, 8)
    nan_image[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        guided_backprop(net, nan_image, 0)


def test_saliency_maps_takes_a_numpy_array_of_targets() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(1, 3, 8, 8)
    from_array = saliency_maps(net, "1", x, np.array([0, 1]))
    from_list = saliency_maps(net, "1", x, [0, 1])
    assert list(from_array) == [0, 1]
    assert all(torch.equal(from_array[t][k], from_list[t][k]) for t in (0, 1) for k in from_list[0])


def test_a_score_that_ignores_the_input_is_named_as_such() -> None:
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 2) * 1.0

    with pytest.raises(ValueError, match="does not depend on the input x"):
        guided_backprop(Constant(), torch.rand(1, 3, 8, 8), 0)


# --- classes by name, repeated classes, odd targets (issue 11 and 12) ----------------------------


class BackwardCounter:
    """Counts ``torch.autograd.grad`` calls (one per backward pass) while installed with monkeypatch."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count, real = 0, torch.autograd.grad

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(torch.autograd, "grad", counted)


def test_saliency_maps_computes_a_class_once_however_it_is_spelled(monkeypatch) -> None:
    net, x = tiny_net(), torch.rand(1, 3, 8, 8)
    categories = ["cup", "espresso"]
    once = BackwardCounter(monkeypatch)
    single = saliency_maps(net, "1", x, ["espresso"], categories=categories)
    per_class = once.count
    twice = BackwardCounter(monkeypatch)
    maps = saliency_maps(net, "1", x, ["espresso", 1, np.int64(1), "cup"], categories=categories)
    assert per_class == 2 and twice.count == 2 * per_class, "two classes: two backward passes each"
    assert list(maps) == ["espresso", 1, "cup"]
    for kind in ("grad_cam", "guided_backprop", "guided_grad_cam"):
        assert torch.equal(maps["espresso"][kind], maps[1][kind]) and torch.equal(
            maps[1][kind], single["espresso"][kind]
        )


def test_an_exact_class_name_wins_and_an_ambiguous_one_is_refused(squeeze, photos) -> None:
    x = photos[:1]
    assert torch.equal(
        grad_cam(squeeze.model, "features.12", x, "cardigan"), grad_cam(squeeze.model, "features.12", x, 474)
    )
    assert torch.equal(
        grad_cam(squeeze.model, "features.12", x, "Cardigan"), grad_cam(squeeze.model, "features.12", x, 264)
    )
    with pytest.raises(ValueError, match=r"Class name 'CARDIGAN' is ambiguous: 'Cardigan' \(264\), 'cardigan' \(474\)"):
        saliency_maps(squeeze.model, "features.12", x, "CARDIGAN")
    with pytest.raises(ValueError, match=r"Class name 'crane' is ambiguous: 'crane' \(0\), 'crane' \(2\)"):
        guided_backprop(tiny_net(), torch.rand(1, 3, 8, 8), "crane", categories=["crane", "cup", "crane"])


@pytest.mark.parametrize(
    "target",
    [True, np.True_, torch.tensor(True), [torch.tensor(True)], torch.tensor([True]), torch.tensor(1.0)],
    ids=["bool", "numpy-bool", "tensor-bool", "list-of-tensor-bool", "1-D-bool-tensor", "float-tensor"],
)
def test_booleans_and_floats_are_never_a_class(target) -> None:
    with pytest.raises((TypeError, ValueError), match=r"index or a category name|0-D or 1-D integers"):
        grad_cam(tiny_net(), "1", torch.rand(1, 3, 8, 8), target)
    with pytest.raises((TypeError, ValueError), match=r"index or a category name|0-D or 1-D integers"):
        saliency_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), target)


def test_a_set_of_targets_is_refused_for_having_no_order() -> None:
    with pytest.raises(TypeError, match=r"targets must be a class or a list of classes, not a set: it has no order"):
        saliency_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), {0, 1})
    with pytest.raises(TypeError, match=r"not a set: it has no order"):
        grad_cam(tiny_net(), "1", torch.rand(2, 3, 8, 8), {0, 1})


def test_an_input_too_small_for_the_model_names_the_smallest_size(squeeze) -> None:
    with pytest.raises(
        ValueError, match=r"^x is 16 x 16 pixels, too small for SqueezeNet: it needs at least (\d+) x \1 pixels"
    ) as caught:
        grad_cam(squeeze.model, "features.12", torch.rand(1, 3, 16, 16), 0)
    smallest = int(str(caught.value).split("at least ")[1].split(" ")[0])
    with torch.no_grad():
        squeeze.model(torch.zeros(1, 3, smallest, smallest))  # runs
        with pytest.raises(RuntimeError, match="too small"):
            squeeze.model(torch.zeros(1, 3, smallest - 1, smallest - 1))
    assert hook_count(squeeze.model) == 0


def test_helpers_shared_by_the_map_modules() -> None:
    assert drop_leading_ones(np.zeros((1, 1, 1, 4, 5))).shape == (4, 5)
    assert drop_leading_ones(np.zeros((1, 1, 4, 5)), keep=3).shape == (1, 4, 5)
    sparse = torch.zeros(2, 3)
    sparse[1, 2] = 4.0
    assert np.array_equal(as_float_array(sparse.to_sparse()), sparse.numpy())
    with pytest.raises(TypeError, match="map must hold real numbers, not torch.complex64"):
        as_float_array(torch.zeros(2, dtype=torch.complex64))


def test_guided_grad_cam_factors_are_grad_cam_and_gbp_and_their_product_is_guided_grad_cam(squeeze, photos):
    model, classes = squeeze.model, ["tiger cat", "espresso"]  # one class per image
    factors = guided_grad_cam_factors(model, "features.12", photos, classes)
    assert torch.equal(factors["grad_cam"], grad_cam(model, "features.12", photos, classes))
    assert torch.equal(factors["guided_backprop"], guided_backprop(model, photos, classes))
    product = factors["guided_backprop"] * upsample_cam(factors["grad_cam"], photos.shape[-2:], "bilinear")
    expected = guided_grad_cam(model, "features.12", photos, classes, interpolate_mode="bilinear")
    assert torch.equal(product, expected)


def test_eval_with_frozen_parameters_restores_every_flag_when_the_body_raises() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 2)).train()
    net[1].eval()
    net[2].weight.requires_grad_(False)
    before = ([m.training for m in net.modules()], [p.requires_grad for p in net.parameters()])
    with pytest.raises(RuntimeError, match="inside"), eval_with_frozen_parameters(net):
        assert not any(m.training for m in net.modules())
        assert not any(p.requires_grad for p in net.parameters())
        raise RuntimeError("inside")
    assert ([m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]) == before


def test_as_batch_and_class_indices_leave_their_arguments_alone() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    x = torch.rand(3, 8, 8)
    copy = x.clone()
    assert as_batch(net, x).shape == (1, 3, 8, 8)
    assert torch.equal(x, copy)
    targets = ["dog", 0]
    assert class_indices(targets, 2, ["cat", "dog"]) == [1, 0]
    assert targets == ["dog", 0]
    with pytest.raises(ValueError, match="Got 2 targets for a batch of 3 images"):
        class_indices(targets, 3, ["cat", "dog"])
