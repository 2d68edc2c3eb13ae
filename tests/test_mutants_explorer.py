"""utils.explorer, value by value: what its mutants changed unnoticed by tests/test_explorer.py.

The cache's own questions (``has_attribution``, ``has_cam``), the uploads kept, and the problem line the widget
shows, each checked as the whole value a learner or a notebook reads.
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime

import pytest
from PIL import Image

from utils.categories import category_index
from utils.datasets import sample_image_path
from utils.explorer import ImageAnalysis, SaliencyExplorer
from utils.models import LoadedModel, load_model


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return load_model("squeezenet1_1", device="cpu")


@pytest.fixture
def cat(loaded: LoadedModel) -> ImageAnalysis:
    return ImageAnalysis(loaded, sample_image_path("cat"), top_k=1, name="cat")


@pytest.fixture
def explorer(loaded: LoadedModel) -> SaliencyExplorer:
    return SaliencyExplorer(loaded, top_k=2, samples={"cat": sample_image_path("cat")})


def upload(explorer: SaliencyExplorer, content: bytes, name: str) -> None:
    """What ipywidgets 8's FileUpload holds after a browser upload, set on the explorer's upload control."""
    when = datetime(2024, 1, 1, tzinfo=UTC)
    explorer.upload.value = (
        {"name": name, "type": "", "size": len(content), "content": memoryview(content), "last_modified": when},
    )


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def paragraphs(explorer: SaliencyExplorer) -> list[str]:
    """The message's paragraphs, as the learner reads them (HTML escapes undone)."""
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", explorer.message.value)]


PROBLEM = '<p style="color:#b00020"><b>Problem:</b> '


# --- the cache's questions --------------------------------------------------------------------------------------


def test_has_attribution_says_whether_that_methods_map_of_that_class_is_kept(cat: ImageAnalysis) -> None:
    target = cat.top[0].index
    assert not cat.has_attribution("smoothgrad", target)
    cat.attribution("smoothgrad", target)
    assert cat.has_attribution("smoothgrad", target)
    assert not cat.has_attribution("integrated_gradients", target) and not cat.has_attribution("smoothgrad", 0)


def test_has_cam_says_whether_that_cam_at_that_layer_of_that_class_is_kept(cat: ImageAnalysis) -> None:
    target, layer = cat.top[0].index, cat.loaded.target_layer_name
    assert not cat.has_cam("layer_cam", layer, target)
    cat.cam("layer_cam", layer, target)
    assert cat.has_cam("layer_cam", layer, target)
    assert not cat.has_cam("hires_cam", layer, target) and not cat.has_cam("layer_cam", "features.11", target)
    assert not cat.has_cam("layer_cam", layer, 0)


# --- uploads kept -----------------------------------------------------------------------------------------------


def test_with_one_upload_kept_the_previous_upload_leaves_the_menu(explorer: SaliencyExplorer) -> None:
    explorer.uploads_kept = 1
    upload(explorer, png((200, 30, 30)), "red.png")
    upload(explorer, png((30, 30, 200)), "blue.png")
    assert list(explorer.image_choice.options) == ["cat", "upload: blue.png"]
    assert explorer.image_choice.value == "upload: blue.png"
    assert "The explorer keeps the last 1 uploads: 'upload: red.png' was dropped (upload it again to see it)." in (
        paragraphs(explorer)
    )


# --- the problem line -------------------------------------------------------------------------------------------


def test_a_typed_class_the_model_does_not_know_is_the_whole_problem_line(explorer: SaliencyExplorer) -> None:
    with pytest.raises(ValueError) as expected:
        category_index("not a class at all", explorer.loaded.categories)
    explorer.class_name.value = "not a class at all"
    assert explorer.message.value == PROBLEM + html.escape(str(expected.value)) + "</p>"


def test_an_upload_that_is_not_an_image_adds_that_the_previous_image_stays(explorer: SaliencyExplorer) -> None:
    upload(explorer, b"just text", "notes.txt")
    reason = "Cannot load image 'notes.txt': it is not an image PIL can read (PNG, JPEG, ...)."
    after = "That upload could not be used; the explorer still shows the previous image."
    assert explorer.message.value == PROBLEM + html.escape(reason) + " " + after + "</p>"
    assert list(explorer.image_choice.options) == ["cat"]


def test_uploads_of_one_name_are_numbered_2_3_in_turn(explorer: SaliencyExplorer) -> None:
    for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200)):
        upload(explorer, png(colour), "photo.png")
    assert list(explorer.image_choice.options) == [
        "cat",
        "upload: photo.png",
        "upload: photo.png (2)",
        "upload: photo.png (3)",
    ]


# --- the class box ----------------------------------------------------------------------------------------------


def test_clearing_the_class_box_changes_nothing(explorer: SaliencyExplorer) -> None:
    explorer.class_name.value = "espresso"
    before = (explorer.target.value, explorer.image.value, explorer.message.value)
    explorer.class_name.value = "  "
    assert (explorer.target.value, explorer.image.value, explorer.message.value) == before
    assert "Problem" not in explorer.message.value


def test_a_typed_class_keeps_class_b_chosen(explorer: SaliencyExplorer) -> None:
    chosen_b = explorer.analysis.top[1].index
    explorer.other.value = chosen_b
    explorer.class_name.value = "espresso"
    assert explorer.target.value == 967 and explorer.other.value == chosen_b


def test_a_typed_class_that_is_class_b_stays_in_the_menu(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import utils.explorer as explorer_module

    monkeypatch.setattr(explorer_module, "TYPED_CLASSES_KEPT", 2)
    explorer.class_name.value = "espresso"
    explorer.other.value = 967  # class B: the first typed class
    for name in ("goldfish", "teapot"):
        explorer.class_name.value = name
    assert [index for _, index in explorer.target.options][2:] == [967, 849]  # goldfish (1) dropped, not class B
    assert explorer.other.value == 967 and explorer.target.value == 849


def test_the_class_box_reads_the_models_own_category_names(loaded: LoadedModel) -> None:
    from dataclasses import replace

    renamed = replace(loaded, categories=tuple(f"kind {i}" for i in range(1000)))
    built = SaliencyExplorer(renamed, top_k=1, samples={"cat": sample_image_path("cat")})
    built.class_name.value = "kind 967"
    assert built.target.value == 967 and "Problem" not in built.message.value


def test_an_upload_without_a_name_is_called_upload(explorer: SaliencyExplorer) -> None:
    upload(explorer, png((200, 30, 30)), "")
    assert explorer.image_choice.value == "upload: upload"


def test_a_dropped_typed_class_is_named_in_a_whole_sentence(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import utils.explorer as explorer_module

    monkeypatch.setattr(explorer_module, "TYPED_CLASSES_KEPT", 1)
    explorer.class_name.value = "espresso"
    explorer.class_name.value = "teapot"
    label = explorer.analysis.prediction(967).label()
    assert f"The class menu keeps the last 1 typed classes: '{label}' was dropped (type it again to see it)." in (
        paragraphs(explorer)
    )


def test_an_upload_lists_as_many_classes_as_the_explorer_was_built_with(explorer: SaliencyExplorer) -> None:
    upload(explorer, png((200, 30, 30)), "red.png")
    assert explorer.analysis.name == "upload: red.png" and len(explorer.analysis.top) == explorer.top_k == 2
    assert len(explorer.target.options) == len(explorer.other.options) == 2


# --- what the explorer says while a slow map is computed --------------------------------------------------------


def _recording(explorer: SaliencyExplorer, name: str, seen: list[tuple[str, object]]) -> None:
    """Wrap the analysis' ``name`` method so that each call first records the progress line and whether it shows."""
    compute = getattr(explorer.analysis, name)

    def recorded(*args: object) -> object:
        seen.append((explorer.progress.value, explorer.progress.layout.display))
        return compute(*args)

    setattr(explorer.analysis, name, recorded)


def test_while_a_captum_map_is_computed_the_explorer_says_which_for_which_class_and_in_how_many_batches(
    explorer: SaliencyExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import utils.explorer as module

    monkeypatch.setattr(module, "CAPTUM_BATCH_BYTES", 3 * explorer.analysis.activation_bytes)  # 3 images a pass
    monkeypatch.setattr(module, "IG_STEPS", 4)
    seen: list[tuple[str, object]] = []
    _recording(explorer, "attribution", seen)
    top = explorer.analysis.prediction(explorer.target.value).name
    kept = "It is kept: showing it again for this image and class is instant.</i></p>"
    for method, batches in (("smoothgrad", "in 3 batches"), ("integrated_gradients", "in 2 batches")):
        start = len(seen)
        explorer.method.value = method
        detail = module._method_detail(method)
        line = f"<p><i>Computing {module.METHODS[method]} for '{html.escape(top)}' ({detail} {batches})... {kept}"
        assert seen[start] == (line, None)  # shown while it is computed (later calls read the kept map)
        assert (explorer.progress.value, explorer.progress.layout.display) == ("", "none")  # and gone after
    monkeypatch.setattr(module, "CAPTUM_BATCH_BYTES", 64 * explorer.analysis.activation_bytes)
    start = len(seen)
    explorer.target.value = explorer.target.options[1][1]  # IG is shown: computed for this class, in one batch now
    explorer.method.value = "smoothgrad"
    second = html.escape(explorer.analysis.prediction(explorer.target.value).name)
    shown = [value for value, display in seen[start:] if display is None]
    assert shown == [
        f"<p><i>Computing Integrated Gradients for '{second}' (4 steps in one batch)... {kept}",
        f"<p><i>Computing SmoothGrad for '{second}' (8 samples in one batch)... {kept}",
    ]
    explorer.target.value = explorer.target.options[0][1]  # back to the first class: both maps kept, nothing said
    assert sum(display is None for _, display in seen) == 4


def test_while_score_cam_is_computed_the_explorer_names_the_class_and_the_layer(explorer: SaliencyExplorer) -> None:
    seen: list[tuple[str, object]] = []
    _recording(explorer, "cam", seen)
    top = explorer.analysis.prediction(explorer.target.value).name
    explorer.method.value = "score_cam"
    layer = explorer.loaded.target_layer_name
    line = (
        f"<p><i>Computing Score-CAM for '{html.escape(top)}' at {layer} (one forward pass per channel of the "
        "layer)... It is kept: showing it again for this image and class is instant.</i></p>"
    )
    assert (line, None) in seen and seen[0] == (line, None)
    assert (explorer.progress.value, explorer.progress.layout.display) == ("", "none")
