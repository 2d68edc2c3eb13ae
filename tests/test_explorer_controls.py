"""utils.explorer on a five-class network: the controls as a learner meets them (labels, what each accepts, the limits
it starts with) and the layer menu, with pictures stood in for (the pictures are tested in tests/test_explorer.py);
the maps an analysis computes and the PNG it is drawn as."""

from __future__ import annotations

import io
import warnings

import matplotlib
import numpy as np
import pytest
import torch
from _shared import Noisy, refuses, small_net
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from PIL import Image
from torch import nn
from torchvision.transforms._presets import ImageClassification

import utils.explorer as explorer_module
from utils.datasets import sample_image_path
from utils.explorer import (
    BASE_METHODS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    METHODS,
    UPLOADS_KEPT,
    ImageAnalysis,
    Prediction,
    SaliencyExplorer,
    View,
    render_figure,
    render_png,
)
from utils.models import LoadedModel

NAMES = ["ant", "bee", "cat", "dog", "eel"]


def five_classes(target_layer_name: str) -> LoadedModel:
    net = small_net().eval()
    return LoadedModel(
        name="small",
        model=net,
        target_layer=net.get_submodule(target_layer_name),
        target_layer_name=target_layer_name,
        categories=NAMES,
        transforms=ImageClassification(crop_size=28, resize_size=32),
        device=torch.device("cpu"),
        description="five classes, 28 x 28 pixels",
    )


@pytest.fixture
def pictures_stood_in(monkeypatch: pytest.MonkeyPatch) -> None:
    def stand_in(analysis: ImageAnalysis, view: View) -> bytes:
        return b"%0100d" % view.target

    monkeypatch.setattr(explorer_module, "render_png", stand_in)


@pytest.mark.usefixtures("pictures_stood_in")
def test_each_control_says_what_it_is_and_accepts_what_it_should() -> None:
    samples = {"cat": sample_image_path("cat"), "coffee": sample_image_path("coffee")}
    explorer = SaliencyExplorer(five_classes("3"), top_k=3, samples=samples)

    assert (explorer.image_choice.description, list(explorer.image_choice.options)) == ("image", ["cat", "coffee"])
    upload = explorer.upload
    assert (upload.description, upload.accept, upload.multiple) == ("upload", "image/*", False)  # one image at a time
    assert explorer.target.description == "class"
    assert [label.split(". ", 1)[0] for label, _ in explorer.target.options] == ["1", "2", "3"]  # the top 3, ranked
    typed = explorer.class_name
    assert (typed.description, typed.placeholder, list(typed.options)) == ("", "or type a category", NAMES)
    # any text may be typed (a problem line answers a name the model does not know), read once it is entered
    assert (typed.ensure_option, typed.continuous_update) == (False, False)
    assert explorer.method.description == "method"
    assert list(explorer.method.options) == [(label, key) for key, label in METHODS.items()]
    assert explorer.base.description == "map of"
    assert list(explorer.base.options) == [(METHODS[key], key) for key in BASE_METHODS]
    assert explorer.other.description == "class B"
    assert (explorer.layer.description, explorer.layer.value) == ("layer", "3")
    opacity = explorer.opacity
    assert (opacity.description, opacity.value, opacity.min, opacity.max, opacity.step) == ("opacity", 0.5, 0, 1, 0.05)
    assert explorer.image.format == "png"
    assert explorer.progress.layout.display == "none"  # shown only while a slow map is computed
    assert (explorer.max_upload_bytes, explorer.max_upload_pixels) == (MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS)
    assert explorer.uploads_kept == UPLOADS_KEPT
    rows = [list(row.children) if hasattr(row, "children") else row for row in explorer.widget.children]
    assert rows == [
        [explorer.image_choice, explorer.upload],
        [explorer.target, explorer.class_name],
        [explorer.method, explorer.base, explorer.other],
        [explorer.layer, explorer.opacity],
        explorer.progress,
        explorer.message,
        explorer.image,
    ]


@pytest.mark.usefixtures("pictures_stood_in")
@pytest.mark.parametrize(
    ("target_layer_name", "listed"),
    [
        ("3", ["0", "1", "2", "3"]),  # the convolutions and the ReLUs after them, the target among them once
        ("4", ["0", "1", "2", "3", "4"]),  # a target layer that is no convolution (the pooling) is added at the end
    ],
)
def test_the_layer_menu_lists_the_convolutional_layers_and_the_target_layer_once(
    target_layer_name: str, listed: list[str]
) -> None:
    explorer = SaliencyExplorer(five_classes(target_layer_name), top_k=2, samples={"cat": sample_image_path("cat")})
    assert (list(explorer.layer.options), explorer.layer.value) == (listed, target_layer_name)


def test_samples_named_by_anything_but_a_string_are_refused_in_one_line() -> None:
    with refuses(TypeError, "samples must name each image by a string, e.g. {'cat': sample_image_path('cat')}."):
        SaliencyExplorer(five_classes("3"), samples={1: sample_image_path("cat")})  # type: ignore[dict-item]


@pytest.mark.usefixtures("pictures_stood_in")
def test_each_image_is_analysed_under_its_menu_name() -> None:
    samples = {"my cat": sample_image_path("cat"), "coffee": sample_image_path("coffee")}
    explorer = SaliencyExplorer(five_classes("3"), top_k=2, samples=samples)
    assert explorer.analysis.name == "my cat"
    explorer.image_choice.value = "coffee"
    assert explorer.analysis.name == "coffee"


@pytest.mark.usefixtures("pictures_stood_in")
def test_only_a_controls_value_is_read_other_properties_set_from_code_change_nothing() -> None:
    explorer = SaliencyExplorer(five_classes("3"), top_k=2, samples={"cat": sample_image_path("cat")})
    shown, message = bytes(explorer.image.value), explorer.message.value
    explorer.class_name.placeholder = "a category"  # not a typed class
    explorer.upload.description = "your photo"  # not an upload
    assert (bytes(explorer.image.value), explorer.message.value) == (shown, message)


def test_maps_names_a_class_outside_the_model_as_target() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    with refuses(ValueError, "target is class 7, but the model has 5 classes: give an index from 0 to 4."):
        analysis.maps("3", 7)


def test_maps_computes_a_class_outside_the_top_alone_once_the_top_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    asked: list[list[int]] = []
    real = explorer_module.saliency_maps

    def recording(model, layer, x, targets, **kwargs):  # noqa: ANN001, ANN202 -- saliency_maps' own signature
        asked.append(list(targets))
        return real(model, layer, x, targets, **kwargs)

    monkeypatch.setattr(explorer_module, "saliency_maps", recording)
    top = [p.index for p in analysis.top]
    outside = next(c for c in range(5) if c not in top)
    analysis.maps("3", top[0])
    analysis.maps("3", outside)
    assert asked == [top, [outside]]  # the top classes, kept from the first call, are not computed again
    assert analysis.forward_passes == 3  # the prediction, then one pass for each call


def test_maps_leaves_the_models_own_warnings_to_the_caller() -> None:
    net = nn.Sequential(Noisy(), *small_net().eval())  # warns at every pass; layer "4" is the second ReLU
    loaded = five_classes("3")
    loaded = LoadedModel(**{**vars(loaded), "model": net, "target_layer": net[4], "target_layer_name": "4"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = ImageAnalysis(loaded, sample_image_path("cat"), top_k=2)
    with pytest.warns(UserWarning, match="the model ran"):
        analysis.maps("4", 0)


@pytest.fixture
def small_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    """render_figure drawing a 2 x 1 inch figure: render_png's sizes are then known and quick to draw at 600 dpi."""

    def two_by_one(analysis: ImageAnalysis, view: View) -> Figure:
        figure = Figure(figsize=(2, 1))
        figure.add_subplot().plot([0, 1], [view.target, 1])
        return figure

    monkeypatch.setattr(explorer_module, "render_figure", two_by_one)


@pytest.mark.usefixtures("small_figure")
def test_render_png_draws_at_80_dpi_and_takes_10_to_600_dpi_with_the_fastest_compression() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    view = View(analysis.top[0].index)
    for dpi, size in ((None, (160, 80)), (10, (20, 10)), (600, (1200, 600))):
        png = render_png(analysis, view) if dpi is None else render_png(analysis, view, dpi=dpi)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and Image.open(io.BytesIO(png)).size == size, dpi
        # zlib's header in the first IDAT chunk: FLEVEL (the top two bits of its second byte) 0 = the fastest level
        idat = png.index(b"IDAT") + 4
        assert png[idat + 1] >> 6 == 0, f"compression level flag {png[idat + 1] >> 6} at {dpi} dpi"
    for dpi in (9, 601):
        with refuses(
            ValueError, f"dpi must be from 10 to 600 for a figure on screen (80 is the explorer's), got {dpi}."
        ):
            render_png(analysis, view, dpi=dpi)
    with refuses(TypeError, "dpi must be a whole number, not 80.0."):
        render_png(analysis, view, dpi=80.0)  # type: ignore[arg-type]


@pytest.mark.usefixtures("small_figure")
def test_render_png_is_a_png_whatever_format_matplotlib_saves_by_default() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    with matplotlib.rc_context({"savefig.format": "svg"}):  # a learner's own setting
        png = render_png(analysis, View(analysis.top[0].index))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_render_figure_is_two_panels_of_4_5_inches_and_takes_panels_of_half_an_inch_to_50() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    view = View(analysis.top[0].index)
    for size, inches in ((None, (10.8, 4.5)), (0.5, (1.2, 0.5)), (50, (120.0, 50.0))):
        figure = render_figure(analysis, view) if size is None else render_figure(analysis, view, panel_size=size)
        assert tuple(figure.get_size_inches()) == pytest.approx(inches), size
    for size in (0.49, 50.01):
        with refuses(ValueError, f"panel_size must be a size in inches from 0.5 to 50, got {size}."):
            render_figure(analysis, view, panel_size=size)
    with refuses(TypeError, "panel_size must be a number, not 'big'."):
        render_figure(analysis, view, panel_size="big")  # type: ignore[arg-type]


def test_the_map_panel_is_titled_with_the_method_layer_and_class() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    top = analysis.top[0]
    figure = render_figure(analysis, View(top.index, layer="1"))
    assert figure.axes[1].get_title() == f"Grad-CAM at 1: '{top.label()}'"


def test_an_overlays_colour_bar_is_sized_and_placed_as_the_diverging_maps_and_spans_0_to_1() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    a, b = (p.index for p in analysis.top)
    places = []
    for view in (View(a), View(a, method="discriminativity", other=b)):  # _colour_bar's, then show_diverging's
        figure = render_figure(analysis, view)
        figure.canvas.draw()
        panel, bar = (ax.get_position() for ax in figure.axes[1:3])
        places.append((bar.width / panel.width, (bar.x0 - panel.x1) / panel.width))
        if view.method == "grad_cam":
            assert figure.axes[2].get_ylim() == (0.0, 1.0)
    (width, gap), (diverging_width, diverging_gap) = places
    assert width == pytest.approx(diverging_width, abs=1e-3) and gap == pytest.approx(diverging_gap, abs=2e-3), places


@pytest.mark.parametrize("draw", [render_figure, render_png])
def test_a_picture_of_something_else_is_refused_in_one_line_naming_the_argument(draw) -> None:  # noqa: ANN001
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    view = View(analysis.top[0].index)
    with refuses(TypeError, "analysis must be an ImageAnalysis, not 'cat.jpg'."):
        draw("cat.jpg", view)
    with refuses(TypeError, "view must be a View (what to show), not 3."):
        draw(analysis, 3)
    with refuses(ValueError, "The view's target is class 5, but the model has 5 classes: give an index from 0 to 4."):
        draw(analysis, View(5))
    with refuses(
        ValueError, "The view's class B (other) is class 9, but the model has 5 classes: give an index from 0 to 4."
    ):
        draw(analysis, View(0, method="discriminativity", other=9))


def test_a_view_keeps_its_classes_as_python_ints() -> None:
    view = View(np.int64(3), method="discriminativity", other=torch.tensor(2))
    assert (type(view.target), type(view.other), view) == (int, int, View(3, method="discriminativity", other=2))
    assert not {"XXtargetXX", "TARGET", "XXotherXX", "OTHER"} & set(vars(view))
    assert (View(0, opacity=0).opacity, View(0, opacity=1).opacity) == (0, 1)  # both ends taken


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ({"target": 1.5}, TypeError, "A target must be an index or a category name, not float 1.5."),
        ({"other": 2.5}, TypeError, "A class B (other) must be an index or a category name, not float 2.5."),
        (
            {"base": "x"},
            ValueError,
            "Unknown base map 'x'; valid: grad_cam, guided_backprop, guided_grad_cam, smoothgrad, "
            "integrated_gradients.",
        ),
        ({"layer": 3}, TypeError, "layer must be a layer's dotted name or None (the target layer), not 3."),
        ({"opacity": 1.01}, ValueError, "opacity must lie in [0, 1] (0 = picture only, 1 = map only), got 1.01."),
        ({"opacity": -0.01}, ValueError, "opacity must lie in [0, 1] (0 = picture only, 1 = map only), got -0.01."),
        ({"opacity": "a"}, TypeError, "opacity must be a number, not 'a'."),
        (
            {"method": "discriminativity"},
            ValueError,
            "The discriminativity map compares two classes; give the second one as other=.",
        ),
    ],
)
def test_a_view_refuses_each_bad_field_in_one_line_naming_it(given: dict, error: type, message: str) -> None:
    with refuses(error, message):
        View(**{"target": 0, **given})


def test_a_probability_from_0_05_percent_is_shown_as_a_number_below_it_as_under_0_1_percent() -> None:
    assert Prediction(0, "ant", 0.0005).label() == "ant (0.1%)"  # the smallest that rounds to 0.1%
    assert Prediction(0, "ant", 0.00049).label() == "ant (<0.1%)"  # would read 0.0%


def test_render_figure_puts_the_picture_and_the_map_side_by_side_in_a_constrained_layout() -> None:
    analysis = ImageAnalysis(five_classes("3"), sample_image_path("cat"), top_k=2)
    figure = render_figure(analysis, View(analysis.top[0].index))
    assert isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)  # titles and colour bar never overlap
    figure.canvas.draw()
    photo, drawn = (ax.get_position() for ax in figure.axes[:2])
    assert photo.x1 <= drawn.x0 and photo.y0 < drawn.y1 and drawn.y0 < photo.y1  # left and right, on one row
