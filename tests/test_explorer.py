"""utils.explorer: the pure core (uploads, cached maps, views, rendering) and the widget, driven headlessly."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import utils.explorer as explorer_module
from utils.datasets import SAMPLE_IMAGES, ImageLoadError, sample_image_path
from utils.discriminativity import discriminativity_map
from utils.explorer import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    ImageAnalysis,
    SaliencyExplorer,
    View,
    image_from_upload,
    render_figure,
    render_png,
)
from utils.models import LoadedModel, load_model
from utils.saliency import saliency_maps, upsample_cam

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOOK_DICTS = ("_forward_hooks", "_backward_hooks", "_forward_pre_hooks", "_backward_pre_hooks")


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return load_model("squeezenet1_1", device="cpu")


@pytest.fixture(scope="module")
def cat(loaded: LoadedModel) -> ImageAnalysis:
    return ImageAnalysis(loaded, sample_image_path("cat"), top_k=2, name="cat")


class ForwardCounter:
    """Counts the model's forward passes with a forward hook, removed on exit."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.count = model, 0

    def __enter__(self) -> ForwardCounter:
        self.handle = self.model.register_forward_hook(self._hook)
        return self

    def _hook(self, *args: object) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


@pytest.fixture
def counter(loaded: LoadedModel) -> Iterator[ForwardCounter]:
    with ForwardCounter(loaded.model) as counting:
        yield counting


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def upload_value(content: bytes, name: str) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload holds after a browser upload."""
    return (
        {
            "name": name,
            "type": "",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2024, 1, 1, tzinfo=UTC),
        },
    )


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(getattr(m, d)) for m in model.modules() for d in HOOK_DICTS)


def shown(explorer: SaliencyExplorer) -> bytes:
    """The PNG the explorer's image widget shows."""
    return bytes(explorer.image.value)


def stripes() -> Image.Image:
    pixels = np.zeros((96, 128, 3), dtype=np.uint8)
    pixels[:, ::8] = 255
    return Image.fromarray(pixels)


# --- uploads ----------------------------------------------------------------------------------


def test_image_from_upload_decodes_images_into_rgb() -> None:
    rgba = Image.new("RGBA", (5, 4), (255, 0, 0, 0))
    picture = image_from_upload(png_bytes(rgba), "clear.png")
    assert picture.mode == "RGB" and picture.size == (5, 4)
    assert picture.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white, as load_image does
    assert image_from_upload(memoryview(png_bytes(stripes(), "JPEG")), "s.jpg").size == (128, 96)


@pytest.mark.parametrize(
    ("content", "limits", "message"),
    [
        (b"", {}, r"'x': the file is empty"),
        (b"%PDF-1.7 not a picture", {}, r"'x': it is not an image PIL can read"),
        (png_bytes(Image.new("RGB", (64, 64)))[:60], {}, r"'x': PIL cannot decode it"),
        (b"\0" * 2000, {"max_bytes": 1000}, r"'x': it is .* MB, over the limit"),
        (png_bytes(Image.new("RGB", (100, 80))), {"max_pixels": 1000}, r"'x': 100x80 pixels is over the limit"),
    ],
    ids=["empty", "not-an-image", "truncated", "too-many-bytes", "too-many-pixels"],
)
def test_image_from_upload_refuses_bad_files_with_one_readable_line(content: bytes, limits: dict, message: str) -> None:
    with pytest.raises(ImageLoadError, match=message) as caught:
        image_from_upload(content, "x", **limits)
    assert "\n" not in str(caught.value)


# --- the analysis of one image ------------------------------------------------------------------


def test_image_analysis_predicts_the_top_k_with_one_forward_pass(loaded: LoadedModel, counter: ForwardCounter) -> None:
    analysis = ImageAnalysis(loaded, sample_image_path("cat"), top_k=3, name="cat")
    assert counter.count == 1 and analysis.forward_passes == 1
    with torch.no_grad():
        probabilities = torch.softmax(loaded.model(analysis.x)[0].double(), 0)
    expected = torch.argsort(probabilities, descending=True)[:3].tolist()
    assert [p.index for p in analysis.top] == expected
    assert [p.name for p in analysis.top] == [loaded.categories[i] for i in expected]
    assert analysis.top[0].probability == pytest.approx(float(probabilities[expected[0]]))
    assert analysis.top[0].label() == f"{analysis.top[0].name} ({analysis.top[0].probability:.1%})"
    assert analysis.photo.shape == (224, 224, 3)


def test_maps_run_one_forward_per_layer_for_all_top_classes(loaded: LoadedModel, counter: ForwardCounter) -> None:
    analysis = ImageAnalysis(loaded, sample_image_path("cat"), top_k=3)
    top = [p.index for p in analysis.top]
    first = analysis.maps("features.12", top[0])
    assert counter.count == 2 and all(analysis.is_cached("features.12", c) for c in top)
    for c in top:
        analysis.maps("features.12", c)
    assert counter.count == 2  # every top-k class came from the same forward pass
    reference = saliency_maps(loaded.model, "features.12", analysis.x, top[0])[top[0]]
    assert all(torch.allclose(first[k], reference[k]) for k in reference)
    counter.count = 0
    analysis.maps("features.11", top[1])
    assert counter.count == 1 and analysis.is_cached("features.11", top[2])
    analysis.maps("features.12", 967)  # espresso: outside the top-k, one more pass, then cached
    analysis.maps("features.12", 967)
    assert counter.count == 2 and analysis.forward_passes == 4
    assert hook_count(loaded.model) == 1  # only the test's own forward counter


def test_image_analysis_rejects_a_bad_top_k(loaded: LoadedModel) -> None:
    with pytest.raises(ValueError, match="top_k must be an integer from 1 to 1000, got 0"):
        ImageAnalysis(loaded, sample_image_path("cat"), top_k=0)


def test_image_analysis_notes_a_tiny_image(loaded: LoadedModel) -> None:
    analysis = ImageAnalysis(loaded, np.zeros((20, 30, 3), dtype=np.uint8))
    assert any("only 30x20 pixels" in note for note in analysis.notes)


# --- views and the discriminativity map ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "saliency"}, "Unknown method 'saliency'; valid: grad_cam, guided_backprop"),
        ({"base": "discriminativity"}, "Unknown base map 'discriminativity'"),
        ({"opacity": 1.5}, r"opacity must lie in \[0, 1\]"),
        ({"method": "discriminativity"}, "give the second one as other="),
    ],
)
def test_view_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        View(target=1, **kwargs)


def test_view_says_when_the_layer_and_the_opacity_apply() -> None:
    assert View(1).uses_layer and View(1, method="guided_grad_cam").uses_layer
    assert not View(1, method="guided_backprop").uses_layer
    assert not View(1, method="discriminativity", other=2, base="guided_backprop").uses_layer
    assert View(1, method="discriminativity", other=2).uses_layer
    assert View(1).uses_opacity and not View(1, method="discriminativity", other=2).uses_opacity


def test_render_png_is_a_png_that_depends_on_every_setting(cat: ImageAnalysis) -> None:
    top, second = cat.top[0].index, cat.top[1].index
    views = [
        View(top),
        View(top, opacity=0.9),
        View(second),
        View(top, layer="features.11"),
        View(top, method="guided_backprop"),
        View(top, method="guided_grad_cam"),
        View(top, method="discriminativity", other=second),
        View(top, method="discriminativity", other=second, base="guided_grad_cam"),
    ]
    pictures = [render_png(cat, view) for view in views]
    assert all(p.startswith(PNG_SIGNATURE) for p in pictures)
    assert len(set(pictures)) == len(views)
    assert render_png(cat, views[0]) == pictures[0]  # the same view gives the same picture


def test_render_figure_titles_and_scales(cat: ImageAnalysis) -> None:
    top, second = cat.top[0], cat.top[1]
    figure = render_figure(cat, View(top.index, method="guided_grad_cam"))
    assert isinstance(figure, Figure)
    assert figure.axes[0].get_title() == f"cat: the model says '{top.label()}'"
    assert figure.axes[1].get_title() == f"Guided Grad-CAM at features.12: '{top.label()}'"
    gbp = render_figure(cat, View(top.index, method="guided_backprop"))
    assert gbp.axes[1].get_title() == f"Guided Backprop: '{top.label()}'"  # no layer: GBP has none
    diverging = render_figure(cat, View(top.index, method="discriminativity", other=second.index))
    assert diverging.axes[1].get_title() == (
        f"Grad-CAM at features.12: '{top.name}' (red) - '{second.name}' (blue)\n"
        "each map divided by its 99.5th percentile of |map|, clipped at 1"
    )
    drawn = diverging.axes[1].images[0].get_array()
    maps = [cat.maps("features.12", c)["grad_cam"] for c in (top.index, second.index)]
    upsampled = [upsample_cam(m, cat.x.shape[-2:], "bilinear") for m in maps]  # on the input's grid, as lesson 04
    expected = discriminativity_map(*upsampled, clip_percentile=99.5)
    assert drawn.shape == (224, 224) and np.allclose(drawn, expected)  # lesson 04's readable scaling, not the maximum
    assert diverging.axes[1].images[0].get_clim() == (-1.0, 1.0) and len(diverging.axes) == 3  # with a colour bar
    assert diverging.axes[2].get_ylabel() == "A - B, each / its 99.5th percentile"
    gbp_pairs = [cat.maps("features.12", c)["guided_backprop"] for c in (top.index, second.index)]
    gbp_drawn = render_figure(
        cat, View(top.index, method="discriminativity", other=second.index, base="guided_backprop")
    )
    assert np.allclose(gbp_drawn.axes[1].images[0].get_array(), discriminativity_map(*gbp_pairs, clip_percentile=99.5))


def test_every_overlay_has_a_colour_bar_saying_how_its_map_was_scaled(cat: ImageAnalysis) -> None:
    scales = {
        "grad_cam": ("jet", "Grad-CAM / its maximum"),
        "guided_grad_cam": ("gray", "|map| / its 99.5th percentile"),
        "guided_backprop": ("gray", "|map| / its 99.5th percentile"),
    }
    for method, (cmap, label) in scales.items():
        figure = render_figure(cat, View(cat.top[0].index, method=method))
        assert len(figure.axes) == 3, method  # the photo, the overlay, the overlay's colour bar
        bar = figure.axes[2]
        assert bar.get_ylabel() == label and bar.get_ylim() == (0.0, 1.0), method
        assert {type(c).__name__: c.get_cmap().name for c in bar.collections}["QuadMesh"] == cmap, method


# --- the widget, driven headlessly ---------------------------------------------------------------


@pytest.fixture
def explorer(loaded: LoadedModel, counter: ForwardCounter) -> SaliencyExplorer:
    built = SaliencyExplorer(loaded, top_k=4)
    assert counter.count == 2  # the prediction, then one pass for every map of the top-4 classes
    return built


def test_the_explorer_opens_on_the_first_sample_with_its_top_classes(
    explorer: SaliencyExplorer, loaded: LoadedModel
) -> None:
    assert explorer.image_choice.value == "cat" and list(explorer.image_choice.options) == list(SAMPLE_IMAGES)
    assert [v for _, v in explorer.target.options] == [p.index for p in explorer.analysis.top]
    assert explorer.target.value == explorer.analysis.top[0].index
    assert explorer.other.value == explorer.analysis.top[1].index
    assert explorer.layer.value == loaded.target_layer_name and "features.11" in explorer.layer.options
    assert shown(explorer).startswith(PNG_SIGNATURE) and explorer.message.value == ""
    assert shown(explorer) == render_png(explorer.analysis, explorer.view)


def test_method_opacity_and_class_changes_reuse_the_forward_pass(
    explorer: SaliencyExplorer, counter: ForwardCounter
) -> None:
    seen = [shown(explorer)]
    changes = [
        (explorer.method, "guided_backprop"),
        (explorer.method, "guided_grad_cam"),
        (explorer.opacity, 0.8),
        (explorer.target, explorer.analysis.top[2].index),
        (explorer.method, "discriminativity"),
        (explorer.other, explorer.analysis.top[3].index),
        (explorer.base, "guided_backprop"),
        (explorer.method, "grad_cam"),
    ]
    for control, value in changes:
        control.value = value
        assert shown(explorer) != seen[-1], f"setting {control.description} to {value!r} did not change the image"
        seen.append(shown(explorer))
        if control is explorer.other:  # a discriminativity view: the picture is the one its View renders
            assert shown(explorer) == render_png(explorer.analysis, explorer.view)
    assert shown(explorer) == render_png(explorer.analysis, explorer.view)
    assert counter.count == 2 and explorer.forward_passes == 2


def test_going_back_to_a_recent_view_shows_its_picture_without_drawing_it_again(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[View] = []
    render = explorer_module.render_png
    monkeypatch.setattr(
        explorer_module, "render_png", lambda analysis, view: drawn.append(view) or render(analysis, view)
    )
    first = shown(explorer)
    explorer.method.value = "guided_backprop"
    explorer.method.value = "grad_cam"  # back to the first view: kept
    assert shown(explorer) == first and len(drawn) == 1
    explorer.opacity.value = 0.7  # a new view is drawn
    explorer.opacity.value = 0.5
    assert len(drawn) == 2 and shown(explorer) == first
    explorer.image_choice.value = "coffee"  # the same controls on another image: another picture
    assert len(drawn) == 3 and shown(explorer) != first
    for i in range(explorer_module.PICTURES_KEPT + 1):  # more views than are kept: the oldest is drawn again
        explorer.opacity.value = round(0.01 * (i + 1), 2)
    explorer.image_choice.value = "cat"
    explorer.opacity.value = 0.5
    before = len(drawn)
    explorer.method.value = "guided_backprop"
    assert len(drawn) == before + 1


def test_controls_are_disabled_where_they_do_not_apply(explorer: SaliencyExplorer) -> None:
    def disabled() -> tuple[bool, bool, bool, bool]:
        return explorer.layer.disabled, explorer.opacity.disabled, explorer.base.disabled, explorer.other.disabled

    assert disabled() == (False, False, True, True)
    explorer.method.value = "guided_backprop"
    assert disabled() == (True, False, True, True)
    explorer.method.value = "discriminativity"
    assert disabled() == (False, True, False, False)
    explorer.base.value = "guided_backprop"
    assert disabled() == (True, True, False, False)


def test_a_new_layer_runs_saliency_maps_once_at_that_layer(
    explorer: SaliencyExplorer, counter: ForwardCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, list[int]]] = []

    def recording(model, layer, x, targets, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((layer, list(targets)))
        return saliency_maps(model, layer, x, targets, **kwargs)

    monkeypatch.setattr(explorer_module, "saliency_maps", recording)
    before = shown(explorer)
    explorer.layer.value = "features.11"
    assert calls == [("features.11", [p.index for p in explorer.analysis.top])]
    assert shown(explorer) != before and counter.count == 3
    explorer.method.value = "guided_grad_cam"
    explorer.layer.value = "features.12"  # back to a cached layer: nothing computed
    assert len(calls) == 1 and counter.count == 3


def test_typing_a_category_adds_it_and_a_typo_shows_a_message(
    explorer: SaliencyExplorer, counter: ForwardCounter
) -> None:
    before = shown(explorer)
    explorer.class_name.value = "Espresso"
    assert explorer.target.value == 967 and explorer.target.label.startswith("espresso (")
    assert 967 in [v for _, v in explorer.other.options]
    assert shown(explorer) != before and counter.count == 3
    typed = shown(explorer)
    explorer.class_name.value = "espreso maker"
    assert "Unknown class name 'espreso maker'; closest: 'espresso maker'" in explorer.message.value.replace(
        "&#x27;", "'"
    )
    assert shown(explorer) == typed and explorer.target.value == 967
    explorer.method.value = "guided_backprop"  # still working
    assert shown(explorer) != typed and "Problem" not in explorer.message.value


def test_the_class_box_takes_the_exact_name_and_lists_an_ambiguous_one(explorer: SaliencyExplorer) -> None:
    explorer.class_name.value = "cardigan"
    assert explorer.target.value == 474 and "Problem" not in explorer.message.value  # the sweater
    explorer.class_name.value = "Cardigan"
    assert explorer.target.value == 264  # the corgi
    shown_before = shown(explorer)
    explorer.class_name.value = "CARDIGAN"
    text = explorer.message.value.replace("&#x27;", "'")
    assert "Class name 'CARDIGAN' is ambiguous: 'Cardigan' (264), 'cardigan' (474)" in text
    assert explorer.target.value == 264 and shown(explorer) == shown_before


def test_an_upload_error_of_any_kind_shows_one_line(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(explorer_module, "image_from_upload", broken)
    explorer.upload.value = upload_value(png_bytes(stripes()), "s.png")
    assert "Problem:</b> OSError: disk on fire" in explorer.message.value and explorer.upload.value == ()


BAD_UPLOADS = [
    (b"GIF89a? no, just text", {}, "is not an image PIL can read"),
    (png_bytes(Image.new("RGB", (64, 64)))[:60], {}, "PIL cannot decode it"),
    (
        b"BM" + bytes(12) + (7).to_bytes(4, "little") + bytes(64),
        {},
        "PIL cannot decode it (Unsupported BMP header type (7))",
    ),
    (png_bytes(Image.new("RGB", (64, 64)))[:20], {}, "PIL cannot decode it (Truncated File Read)"),  # cut inside IHDR
    (png_bytes(Image.new("RGB", (300, 200))), {"max_upload_pixels": 10_000}, "300x200 pixels is over the limit"),
    (png_bytes(Image.new("RGB", (300, 200))), {"max_upload_bytes": 100}, "MB, over the limit"),
]


def test_bad_uploads_show_a_message_and_the_explorer_keeps_working(
    explorer: SaliencyExplorer, counter: ForwardCounter
) -> None:
    methods = iter(["guided_backprop", "guided_grad_cam", "grad_cam", "guided_backprop", "guided_grad_cam", "grad_cam"])
    for content, limits, message in BAD_UPLOADS:  # not an image, unreadable (x3), too many pixels, too many bytes
        explorer.max_upload_bytes, explorer.max_upload_pixels = MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS
        for name, value in limits.items():
            setattr(explorer, name, value)
        before = shown(explorer)
        explorer.upload.value = upload_value(content, "holiday.png")
        text = explorer.message.value.replace("&#x27;", "'")
        assert "Problem" in text and "'holiday.png'" in text and message in text, text
        assert shown(explorer) == before and list(explorer.image_choice.options) == list(SAMPLE_IMAGES)
        assert explorer.upload.value == ()
        explorer.method.value = next(methods)  # still working
        assert shown(explorer) != before and "Problem" not in explorer.message.value
    assert counter.count == 2


def test_a_good_upload_becomes_the_image_shown(explorer: SaliencyExplorer, counter: ForwardCounter) -> None:
    before = shown(explorer)
    explorer.upload.value = upload_value(png_bytes(stripes(), "JPEG"), "stripes.jpg")
    assert explorer.image_choice.value == "upload: stripes.jpg"
    assert list(explorer.image_choice.options) == [*SAMPLE_IMAGES, "upload: stripes.jpg"]
    assert explorer.analysis.name == "upload: stripes.jpg" and shown(explorer) != before
    assert explorer.target.value == explorer.analysis.top[0].index and counter.count == 4
    explorer.upload.value = upload_value(png_bytes(stripes()), "stripes.jpg")  # same name: a new entry
    assert explorer.image_choice.value == "upload: stripes.jpg (2)"
    explorer.image_choice.value = "cat"  # already analysed: no forward pass
    assert shown(explorer) == before and counter.count == 6


def test_switching_images_resets_the_classes_and_leaves_the_model_untouched(
    explorer: SaliencyExplorer, loaded: LoadedModel, counter: ForwardCounter
) -> None:
    state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    explorer.class_name.value = "espresso"
    explorer.image_choice.value = "coffee"
    assert explorer.target.value == explorer.analysis.top[0].index == 967
    assert len(explorer.target.options) == 4 and explorer.class_name.value == ""
    assert counter.count == 5  # cat: 2 + espresso 1; coffee: 2
    assert all(torch.equal(v, state[k]) for k, v in loaded.model.state_dict().items())
    assert hook_count(loaded.model) == 1  # only the test's own forward counter
    assert not loaded.model.training and all(p.grad is None for p in loaded.model.parameters())


# --- SmoothGrad and Integrated Gradients: computed when chosen, cached, drawn as gradient maps ----


@pytest.fixture
def few_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small sample and step counts: the tests check the caching and the plumbing, not the maps' quality."""
    monkeypatch.setattr(explorer_module, "SMOOTHGRAD_SAMPLES", 2)
    monkeypatch.setattr(explorer_module, "IG_STEPS", 2)


def model_state(model: torch.nn.Module) -> dict[str, object]:
    """Everything a helper must not change: the modules, their flags and hooks, the parameters and their gradients."""
    return {
        "modules": [(name, type(m).__name__, repr(m)) for name, m in model.named_modules()],
        "training": [m.training for m in model.modules()],
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "hooks": hook_count(model),
        "weights": [p.detach().clone() for p in model.parameters()],
    }


def assert_same_state(before: dict[str, object], after: dict[str, object]) -> None:
    for key in ("modules", "training", "inplace", "requires_grad", "grads", "hooks"):
        assert before[key] == after[key], f"the model's {key} changed"
    assert all(torch.equal(a, b) for a, b in zip(before["weights"], after["weights"]))  # type: ignore[call-overload]


def test_captum_methods_are_views_without_a_layer_and_can_be_compared() -> None:
    assert explorer_module.CAPTUM_METHODS == ("smoothgrad", "integrated_gradients")
    assert set(explorer_module.CAPTUM_METHODS) <= set(explorer_module.METHODS) & set(explorer_module.BASE_METHODS)
    assert not View(1, method="smoothgrad").uses_layer and not View(1, method="integrated_gradients").uses_layer
    assert View(1, method="integrated_gradients").captum_maps == (("integrated_gradients", 1),)
    assert View(1, method="discriminativity", other=2, base="smoothgrad").captum_maps == (
        ("smoothgrad", 1),
        ("smoothgrad", 2),
    )
    assert (
        View(1, method="guided_backprop").captum_maps == ()
        and View(1, method="discriminativity", other=2).captum_maps == ()
    )


def test_smoothgrad_is_captums_noise_tunnel_seeded_and_leaves_the_global_random_state(
    loaded: LoadedModel, cat: ImageAnalysis, few_samples: None
) -> None:
    from captum.attr import NoiseTunnel, Saliency

    target = cat.top[0].index
    state = torch.random.get_rng_state()
    first = ImageAnalysis(loaded, sample_image_path("cat"), top_k=1).attribution("smoothgrad", target)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = ImageAnalysis(loaded, sample_image_path("cat"), top_k=1).attribution("smoothgrad", target)
    assert torch.equal(first, again)  # reproducible: the noise is seeded
    torch.manual_seed(explorer_module.SMOOTHGRAD_SEED)
    stdev = explorer_module.SMOOTHGRAD_NOISE * float(cat.x.max() - cat.x.min())
    expected = NoiseTunnel(Saliency(loaded.model)).attribute(
        cat.x.clone(),
        target=target,
        abs=False,
        nt_type="smoothgrad",
        nt_samples=2,
        nt_samples_batch_size=2,
        stdevs=stdev,
    )
    assert first.shape == (1, 3, 224, 224) and torch.allclose(first, expected, atol=1e-6)


def test_integrated_gradients_starts_at_a_zero_baseline_and_is_nearly_complete(
    loaded: LoadedModel, cat: ImageAnalysis
) -> None:
    target = cat.top[0].index
    analysis = ImageAnalysis(loaded, sample_image_path("cat"), top_k=1)
    attribution = analysis.attribution("integrated_gradients", target)
    with torch.no_grad():
        change = float(loaded.model(cat.x)[0, target] - loaded.model(torch.zeros_like(cat.x))[0, target])
    # Completeness (Sundararajan et al., 2017): the attributions add up to f(x) - f(baseline), here within 10%
    # with IG_STEPS steps, which only a zero (mean-colour) baseline and the class score give.
    assert abs(float(attribution.sum()) - change) < 0.1 * abs(change), (float(attribution.sum()), change)


def test_the_captum_maps_render_as_gradient_maps_whatever_the_layer(
    cat: ImageAnalysis, counter: ForwardCounter
) -> None:
    top = cat.top[0]
    pictures = {
        m: render_png(cat, View(top.index, method=m)) for m in ("guided_backprop", "smoothgrad", "integrated_gradients")
    }
    assert all(p.startswith(PNG_SIGNATURE) for p in pictures.values()) and len(set(pictures.values())) == 3
    computed = counter.count
    assert render_png(cat, View(top.index, method="smoothgrad", layer="features.11")) == pictures["smoothgrad"]
    assert counter.count == computed  # no layer, and cached: nothing computed again
    for method, detail in (("smoothgrad", "8 samples"), ("integrated_gradients", "8 steps")):
        figure = render_figure(cat, View(top.index, method=method))
        label = explorer_module.METHODS[method]
        assert figure.axes[1].get_title() == (
            f"{label}: '{top.label()}'\n{detail}; |map| in gray, clipped at the 99.5th percentile"
        )
        drawn = figure.axes[1].images[0].get_array()
        expected = explorer_module._gradient_overlay(cat.photo, cat.attribution(method, top.index), 0.5)
        assert np.allclose(drawn, expected)  # GRADIENT_CMAP, clipped at GRADIENT_CLIP_PERCENTILE, as GBP
    assert counter.count == computed


def test_a_captum_map_is_computed_once_per_image_class_and_method(
    explorer: SaliencyExplorer, counter: ForwardCounter, few_samples: None
) -> None:
    steps = []

    def select(control: object, value: object) -> int:
        before = counter.count
        control.value = value  # type: ignore[attr-defined]
        assert "Problem" not in explorer.message.value, explorer.message.value
        steps.append(shown(explorer))
        return counter.count - before

    top, second = explorer.analysis.top[0].index, explorer.analysis.top[1].index
    assert select(explorer.method, "smoothgrad") == 1  # first time: computed, one batched forward pass
    assert select(explorer.method, "grad_cam") == 0
    assert select(explorer.method, "smoothgrad") == 0 and steps[-1] == steps[0]  # back again: cached, instant
    assert select(explorer.layer, "features.11") == 0  # SmoothGrad has no layer: still cached
    assert select(explorer.method, "integrated_gradients") == 1  # another method: computed
    assert select(explorer.method, "smoothgrad") == 0
    assert select(explorer.target, second) == 1 and steps[-1] != steps[0]  # another class: computed
    assert select(explorer.target, top) == 0 and steps[-1] == steps[0]
    assert (
        select(explorer.image_choice, "coffee") == 2
    )  # another image: the prediction and SmoothGrad (no Grad-CAM yet)
    assert explorer.method.value == "smoothgrad" and explorer.progress.layout.display == "none"
    assert select(explorer.image_choice, "cat") == 0 and steps[-1] == steps[0]
    assert (
        explorer.forward_passes == counter.count == 7
    )  # 2 + 3 Captum maps + coffee 2: the explorer agrees with the hook


def test_a_discriminativity_map_of_smoothgrad_computes_both_classes_once(
    explorer: SaliencyExplorer, counter: ForwardCounter, few_samples: None
) -> None:
    with explorer._batch():
        explorer.base.value = "smoothgrad"
    explorer.method.value = "discriminativity"
    assert counter.count == 4 and "Problem" not in explorer.message.value  # class A and class B
    figure = render_figure(explorer.analysis, explorer.view)
    assert figure.axes[1].get_title().startswith("SmoothGrad: ") and figure.axes[1].images[0].get_clim() == (-1.0, 1.0)
    explorer.method.value = "smoothgrad"  # class A's map, already there
    assert counter.count == 4


def test_the_progress_label_is_shown_while_a_map_is_computed_and_hidden_after(
    explorer: SaliencyExplorer, loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[object, str]] = []

    def fake(model: torch.nn.Module, x: torch.Tensor, target: int, batch_size: int) -> torch.Tensor:
        seen.append((explorer.progress.layout.display, explorer.progress.value))
        return torch.rand_like(x)

    monkeypatch.setitem(explorer_module._CAPTUM, "smoothgrad", fake)
    assert explorer.progress.layout.display == "none" and explorer.progress in explorer.widget.children
    explorer.method.value = "smoothgrad"
    name = loaded.categories[explorer.target.value]
    assert len(seen) == 1 and seen[0][0] is None  # visible during the computation
    assert f"Computing SmoothGrad for '{name}' (8 samples in one batch)" in seen[0][1]
    assert explorer.progress.layout.display == "none" and explorer.progress.value == ""  # hidden after
    explorer.method.value = "grad_cam"
    explorer.method.value = "smoothgrad"  # cached: no computation, no label
    assert len(seen) == 1 and explorer.progress.layout.display == "none"

    def broken(model: torch.nn.Module, x: torch.Tensor, target: int, batch_size: int) -> torch.Tensor:
        raise RuntimeError("out of memory")

    monkeypatch.setitem(explorer_module._CAPTUM, "integrated_gradients", broken)
    explorer.method.value = "integrated_gradients"
    assert "Problem:</b> RuntimeError: out of memory" in explorer.message.value
    assert explorer.progress.layout.display == "none"  # hidden on failure too


def test_the_captum_methods_leave_the_model_as_it_was(loaded: LoadedModel, few_samples: None) -> None:
    before = model_state(loaded.model)
    analysis = ImageAnalysis(loaded, sample_image_path("squirrel"), top_k=1)
    for method in explorer_module.CAPTUM_METHODS:
        render_png(analysis, View(analysis.top[0].index, method=method))
    assert_same_state(before, model_state(loaded.model))
    assert any(getattr(m, "inplace", False) for m in loaded.model.modules())  # its in-place ReLUs are still in place


@pytest.mark.parametrize(
    ("method", "target", "error", "message"),
    [
        ("saliency", 1, ValueError, "Unknown Captum method 'saliency'; valid: smoothgrad, integrated_gradients"),
        ("smoothgrad", 1000, ValueError, "target must be a class index from 0 to 999, got 1000"),
        ("smoothgrad", True, TypeError, "A target must be an index or a category name, not bool True"),
    ],
)
def test_attribution_refuses_an_unknown_method_or_class(
    cat: ImageAnalysis, method: str, target: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        cat.attribution(method, target)  # type: ignore[arg-type]


# --- hostile use: one clear line, never an exception out of an observer (issue 20) ----------------


def problem_text(explorer: SaliencyExplorer) -> str:
    return explorer.message.value.replace("&#x27;", "'")


def test_the_explorer_names_a_model_that_is_not_a_loaded_model(loaded: LoadedModel) -> None:
    with pytest.raises(TypeError, match=r"loaded must be a LoadedModel \(from utils.models.load_model\(\)\)") as raised:
        SaliencyExplorer(loaded.model)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("top_k", [0, True, 1001, 2.5])
def test_a_bad_top_k_is_refused_when_the_explorer_is_built(loaded: LoadedModel, top_k: object) -> None:
    with pytest.raises(ValueError, match=r"top_k must be an integer from 1 to 1000"):
        SaliencyExplorer(loaded, top_k=top_k, samples={"cat": sample_image_path("cat")})  # type: ignore[arg-type]


def test_a_first_sample_that_fails_to_load_leaves_a_working_explorer(loaded: LoadedModel) -> None:
    built = SaliencyExplorer(loaded, top_k=2, samples={"broken": "no/such/file.png", "cat": sample_image_path("cat")})
    assert "Problem" in built.message.value and "file.png" in problem_text(built)
    built.method.value = "guided_backprop"  # every later control change: a message, not a TypeError
    built.opacity.value = 0.7
    assert "Problem" in built.message.value and "could not be loaded" in problem_text(built)
    built.image_choice.value = "cat"
    assert "Problem" not in built.message.value and shown(built).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("index", [1000, 5000])
def test_a_class_the_model_does_not_have_is_named_in_one_line(cat: ImageAnalysis, index: int) -> None:
    calls = [
        lambda: cat.prediction(index),
        lambda: render_png(cat, View(index)),
        lambda: render_png(cat, View(282, method="discriminativity", other=index)),
        lambda: cat.maps("features.12", index),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rf"is class {index}, but the model has 1000 classes: give an index") as e:
            call()
        assert "\n" not in str(e.value)


def test_a_nan_opacity_set_from_code_shows_a_message(explorer: SaliencyExplorer) -> None:
    before = shown(explorer)
    explorer.opacity.value = float("nan")
    text = problem_text(explorer)
    assert "Problem" in text and "opacity must be a number, not NaN" in text and shown(explorer) == before
    explorer.opacity.value = 0.3  # and it still works
    assert "Problem" not in explorer.message.value and shown(explorer) != before


def test_discriminativity_of_a_class_against_itself_says_why_the_picture_is_blank(explorer: SaliencyExplorer) -> None:
    with explorer._batch():
        explorer.other.value = explorer.target.value
    explorer.method.value = "discriminativity"
    assert "Class B is class A: a map minus itself is zero everywhere" in explorer.message.value
    explorer.other.value = explorer.analysis.top[1].index
    assert "Class B is class A" not in explorer.message.value


# --- bounded memory: every cache has a limit, and says when it drops something ----------------------


def test_only_the_last_uploads_are_kept_and_the_message_says_which_was_dropped(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Image.Image] = []
    real = explorer_module.image_from_upload
    monkeypatch.setattr(
        explorer_module, "image_from_upload", lambda *a, **k: decoded.append(real(*a, **k)) or decoded[-1]
    )
    explorer.uploads_kept = 2
    for i in range(3):
        explorer.upload.value = upload_value(png_bytes(Image.new("RGB", (40 + i, 30), (10 * i, 90, 200))), f"u{i}.png")
    assert list(explorer.image_choice.options) == [*SAMPLE_IMAGES, "upload: u1.png", "upload: u2.png"]
    text = problem_text(explorer)
    assert "keeps the last 2 uploads: 'upload: u0.png' was dropped (upload it again to see it)" in text
    assert "upload: u0.png" not in explorer._analyses and all(key[0] != "upload: u0.png" for key in explorer._pictures)
    assert all(not hasattr(a, "image") for a in explorer._analyses.values())  # the decoded upload is not kept
    explorer.method.value = "guided_backprop"
    assert "was dropped" not in explorer.message.value  # said once


def test_only_the_image_shown_keeps_its_maps(explorer: SaliencyExplorer, counter: ForwardCounter) -> None:
    cat_analysis = explorer.analysis
    assert cat_analysis.cached_bytes > 0
    explorer.image_choice.value = "coffee"
    assert cat_analysis.cached_bytes == 0 and explorer.analysis.cached_bytes > 0
    before = counter.count
    explorer.image_choice.value = "cat"  # its picture and its Grad-CAM's blankness are kept: nothing to compute
    assert counter.count == before and "Problem" not in explorer.message.value


def test_the_maps_kept_are_bounded_in_bytes_and_the_message_says_so(loaded: LoadedModel) -> None:
    built = SaliencyExplorer(loaded, top_k=2, samples={"cat": sample_image_path("cat")})
    analysis = built.analysis
    one_set = analysis.cached_bytes // 2  # two classes' maps at the target layer
    analysis.max_bytes = 3 * one_set
    built.layer.value = "features.11"  # two more map sets: one old set must go
    assert analysis.cached_bytes <= analysis.max_bytes and analysis.dropped == 1
    limit = f"{analysis.max_bytes / 2**20:.0f} MiB"
    assert f"keeps at most {limit} of maps per image: 1 older map sets were dropped" in built.message.value
    assert analysis.is_cached("features.11", analysis.top[0].index)  # what the view needs stays
    assert analysis.is_cached("features.11", analysis.top[1].index)


def test_the_last_two_maps_asked_for_are_never_dropped(cat: ImageAnalysis) -> None:
    cat.max_bytes, top = 0, [p.index for p in cat.top]
    cat.maps("features.12", top[0])
    cat.maps("features.12", top[1])
    assert cat.is_cached("features.12", top[0]) and cat.is_cached("features.12", top[1])
    cat.maps("features.11", top[0])
    assert cat.is_cached("features.12", top[1]) and not cat.is_cached("features.12", top[0])
    cat.max_bytes = explorer_module.MAP_BYTES_KEPT


def test_typed_classes_beyond_the_limit_leave_the_menu_with_a_message(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(explorer_module, "TYPED_CLASSES_KEPT", 2)
    for name in ("espresso", "goldfish", "teapot"):
        explorer.class_name.value = name
    labels = [label for label, _ in explorer.target.options]
    assert len(labels) == 4 + 2 and labels[-1].startswith("teapot") and labels[-2].startswith("goldfish")
    assert "keeps the last 2 typed classes: 'espresso" in problem_text(explorer)


def test_the_pictures_kept_are_bounded_in_bytes(explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explorer_module, "PICTURE_BYTES_KEPT", 1)  # below one picture: only the last is kept
    for method in ("guided_backprop", "guided_grad_cam", "grad_cam"):
        explorer.method.value = method
    assert len(explorer._pictures) == 1


def test_captum_batches_are_bounded_by_bytes_whatever_the_samples(
    loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis = ImageAnalysis(loaded, sample_image_path("cat"), top_k=1)
    assert 15 * 2**20 < analysis.activation_bytes < 30 * 2**20  # SqueezeNet 1.1: 21 MiB of outputs per image
    assert analysis.captum_batch_size == explorer_module.CAPTUM_BATCH_BYTES // analysis.activation_bytes >= 8
    monkeypatch.setattr(explorer_module, "SMOOTHGRAD_SAMPLES", 5)
    monkeypatch.setattr(explorer_module, "CAPTUM_BATCH_BYTES", 2 * analysis.activation_bytes)
    sizes: list[int] = []
    with_hook = loaded.model.register_forward_hook(lambda module, inputs, output: sizes.append(inputs[0].shape[0]))
    try:
        batched = analysis.attribution("smoothgrad", analysis.top[0].index)
    finally:
        with_hook.remove()
    assert sizes == [2, 2, 1]
    monkeypatch.setattr(explorer_module, "CAPTUM_BATCH_BYTES", 256 * 2**20)
    one_batch = ImageAnalysis(loaded, sample_image_path("cat"), top_k=1).attribution(
        "smoothgrad", analysis.top[0].index
    )
    assert torch.allclose(batched, one_batch, atol=1e-6)  # the same noise, the same map, in fewer passes


def test_the_captum_batch_of_vgg16_is_two_images() -> None:
    """VGG16's outputs for one 224 x 224 image take 109 MiB: two images per batch stay within CAPTUM_BATCH_BYTES."""
    from torchvision.models import vgg16
    from torchvision.transforms._presets import ImageClassification

    torch.manual_seed(0)
    net = vgg16().eval()  # random weights: the memory does not depend on them (no download here)
    loaded_vgg = LoadedModel(
        name="vgg16",
        model=net,
        target_layer=net.features[29],
        target_layer_name="features.29",
        categories=tuple(f"class {i}" for i in range(1000)),
        transforms=ImageClassification(crop_size=224, resize_size=256),
        device=torch.device("cpu"),
        description="VGG16, random weights",
    )
    analysis = ImageAnalysis(loaded_vgg, sample_image_path("cat"), top_k=1)
    assert 100 * 2**20 < analysis.activation_bytes < 120 * 2**20 and analysis.captum_batch_size == 2


@pytest.mark.parametrize("dpi", [1, 3, 601])
def test_a_dpi_no_figure_can_be_drawn_at_is_named(cat: ImageAnalysis, dpi: int) -> None:
    with pytest.raises(ValueError, match=rf"dpi must be from 10 to 600 .*, got {dpi}\."):
        render_png(cat, View(cat.top[0].index), dpi=dpi)


def test_smoothgrad_leaves_every_devices_random_state_as_found(
    cat: ImageAnalysis, monkeypatch: pytest.MonkeyPatch, few_samples: None
) -> None:
    """A fake second device whose generator torch.manual_seed changes, as it does on a GPU (issue 20)."""
    import utils.random_state

    state = {0: torch.tensor([7], dtype=torch.uint8)}
    monkeypatch.setattr(utils.random_state, "_available", lambda device_type: 1 if device_type == "cuda" else 0)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": state[0].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda new, device="cuda": state.__setitem__(0, new.clone()))
    real_seed = torch.manual_seed

    def seeding_every_device(seed: int) -> torch.Generator:
        state[0] = torch.tensor([seed % 256], dtype=torch.uint8)
        return real_seed(seed)

    monkeypatch.setattr(torch, "manual_seed", seeding_every_device)
    cpu = torch.get_rng_state()
    cat.attribution("smoothgrad", cat.top[1].index)
    assert int(state[0]) == 7 and torch.equal(torch.get_rng_state(), cpu)


# --- lesson 10's CAM family in the explorer ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["grad_cam_plus_plus", "hires_cam", "layer_cam", "score_cam"])
def test_the_cam_family_is_offered_drawn_and_cached(method) -> None:
    from utils.cams import CAM_METHODS
    from utils.datasets import sample_image_path
    from utils.explorer import CAM_FAMILY, METHODS, ImageAnalysis, View, render_png
    from utils.models import load_model

    loaded = load_model("squeezenet1_1", device="cpu")
    analysis = ImageAnalysis(loaded, sample_image_path("squirrel"), top_k=2)
    target = analysis.top[0].index
    assert method in METHODS and method in CAM_FAMILY and View(target, method=method).uses_layer
    layer = "features.12" if method != "score_cam" else "features.4"  # 128 channels: a quarter of the passes
    before = analysis.forward_passes
    png = render_png(analysis, View(target, method=method, layer=layer))
    assert png.startswith(b"\x89PNG") and analysis.forward_passes == before + 1
    expected = CAM_METHODS[method](loaded.model, layer, analysis.x, target)
    assert torch.allclose(analysis.cam(method, layer, target), expected)
    render_png(analysis, View(target, method=method, layer=layer, opacity=0.9))
    assert analysis.forward_passes == before + 1, "the map is cached: a new opacity runs nothing"
    with pytest.raises(ValueError, match="Unknown CAM method"):
        analysis.cam("grad_cam", layer, target)
