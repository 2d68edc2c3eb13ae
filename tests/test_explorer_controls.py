"""utils.explorer: the controls as a learner meets them (labels, what each accepts, the limits it starts with) and the
layer menu, on a five-class network with pictures stood in for (the pictures are tested in tests/test_explorer.py)."""

from __future__ import annotations

import pytest
import torch
from _shared import refuses, small_net
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
    SaliencyExplorer,
    View,
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


@pytest.fixture(autouse=True)
def pictures_stood_in(monkeypatch: pytest.MonkeyPatch) -> None:
    def stand_in(analysis: ImageAnalysis, view: View) -> bytes:
        return b"%0100d" % view.target

    monkeypatch.setattr(explorer_module, "render_png", stand_in)


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


def test_each_image_is_analysed_under_its_menu_name() -> None:
    samples = {"my cat": sample_image_path("cat"), "coffee": sample_image_path("coffee")}
    explorer = SaliencyExplorer(five_classes("3"), top_k=2, samples=samples)
    assert explorer.analysis.name == "my cat"
    explorer.image_choice.value = "coffee"
    assert explorer.analysis.name == "coffee"
