"""utils.visualise: top-k printing, attribution processing, overlays and figure helpers.

Figures are made with ``matplotlib.figure.Figure`` directly (no backend, no pyplot) except where
a test checks pyplot itself.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from utils.visualise import (
    DIVERGING_CMAP,
    GRADIENT_CMAP,
    HEATMAP_CMAP,
    display_imagenet_output,
    draw_regions,
    overlay_heatmap,
    process_attributions,
    process_grads,
    show_diverging,
    show_heatmap,
    show_image,
)

NAMES = ("cat", "dog", "espresso maker", "car")


def new_axes():
    return Figure().add_subplot()


# --- display_imagenet_output ------------------------------------------------------------------


def test_prints_aligned_top_n_with_softmax_probabilities(capsys):
    logits = torch.tensor([[0.0, 2.0, 1.0, -1.0]])
    top = display_imagenet_output(logits, n=3, categories=NAMES)
    lines = capsys.readouterr().out.splitlines()
    assert top == 1 and type(top) is int
    assert lines == [  # softmax([0, 2, 1, -1]) = [0.0871, 0.6439, 0.2369, 0.0321]
        "1. dog             64.39%  (class 1)",
        "2. espresso maker  23.69%  (class 2)",
        "3. cat              8.71%  (class 0)",
    ]
    assert len({line.index("%") for line in lines}) == 1, "percentages line up"


def test_all_classes_printed_sum_to_100_percent(capsys):
    display_imagenet_output(torch.randn(4), n=10, categories=NAMES)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4, "n larger than the number of classes prints them all"
    assert sum(float(line.split("%")[0].split()[-1]) for line in lines) == pytest.approx(100, abs=0.03)


def test_default_categories_are_imagenets(capsys):
    logits = torch.zeros(1, 1000)
    logits[0, 282] = 10.0
    assert display_imagenet_output(logits) == 282
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("1. tiger cat") and len(out.splitlines()) == 5


def test_accepts_flat_batched_and_numpy_logits_alike(capsys):
    logits = torch.tensor([0.5, 0.1, 3.0, 0.2])
    results = [display_imagenet_output(x, categories=NAMES) for x in (logits, logits[None], logits.numpy())]
    outputs = capsys.readouterr().out.split("1. ")[1:]
    assert results == [2, 2, 2] and len(set(outputs)) == 1


def test_output_is_not_changed():
    logits = torch.randn(1, 4, requires_grad=True)
    before = logits.detach().clone()
    display_imagenet_output(logits, categories=NAMES)
    assert torch.equal(logits.detach(), before) and logits.requires_grad


@pytest.mark.parametrize(
    ("output", "n", "message"),
    [
        (torch.zeros(2, 4), 5, "batch of 2 images; pass one row"),
        (torch.zeros(1, 5), 5, "5 scores but there are 4 category names"),
        (torch.zeros(1, 1, 4), 5, "must be 1 x K or K"),
        (torch.tensor([0.0, float("nan"), 0.0, 0.0]), 5, "NaN or infinite"),
        (torch.zeros(4), 0, "n must be a positive integer"),
    ],
)
def test_bad_output_or_n_raises_a_clear_error(output, n, message):
    with pytest.raises(ValueError, match=message):
        display_imagenet_output(output, n=n, categories=NAMES)


# --- process_attributions ---------------------------------------------------------------------

SIGNED = np.array([[-2.0, 0.0], [1.0, 4.0]])


def test_modes_on_known_values():
    assert np.allclose(process_attributions(SIGNED, mode="abs"), [[0.5, 0.0], [0.25, 1.0]])
    assert np.allclose(process_attributions(SIGNED, mode="relu"), [[0.0, 0.0], [0.25, 1.0]])
    # "none": divide by max |a| = 4 -> [-0.5, 0, 0.25, 1], then shift so that zero sits at 0.5
    assert np.allclose(process_attributions(SIGNED, mode="none"), [[0.25, 0.5], [0.625, 1.0]])
    assert np.allclose(process_attributions(SIGNED, mode="abs", normalise=False), np.abs(SIGNED))
    assert np.allclose(process_attributions(SIGNED, mode="none", normalise=False), SIGNED)


def test_none_mode_is_symmetric_around_one_half():
    out = process_attributions(np.array([[-3.0, -1.0, 0.0, 1.0, 3.0]]), mode="none")
    assert np.allclose(out, [[0.0, 1 / 3, 0.5, 2 / 3, 1.0]])


@pytest.mark.parametrize(
    ("mode", "fill", "expected"),
    [("abs", 0.0, 0.0), ("relu", 0.0, 0.0), ("none", 0.0, 0.5), ("abs", 2.5, 1.0), ("relu", -2.5, 0.0)],
)
def test_constant_and_zero_maps_stay_finite(mode, fill, expected):
    out = process_attributions(np.full((3, 4, 4), fill), mode=mode)
    assert np.isfinite(out).all() and np.allclose(out, expected)


@pytest.mark.parametrize(
    ("shape", "grayscale", "expected"),
    [
        ((5, 6), False, (5, 6)),
        ((1, 5, 6), False, (5, 6)),
        ((1, 1, 5, 6), False, (5, 6)),
        ((3, 5, 6), False, (5, 6, 3)),
        ((1, 3, 5, 6), False, (5, 6, 3)),
        ((1, 3, 5, 6), True, (5, 6)),
        ((1, 512, 5, 6), True, (5, 6)),
    ],
)
def test_shapes_in_and_out(shape, grayscale, expected):
    for attr in (torch.randn(shape), np.random.default_rng(0).standard_normal(shape)):
        out = process_attributions(attr, grayscale=grayscale)
        assert out.shape == expected and out.dtype == np.float32


def test_channels_stay_in_order_and_share_one_scale():
    attr = torch.zeros(1, 3, 2, 2)
    attr[0, 0, 0, 0] = 4.0  # red
    attr[0, 2, 1, 1] = -2.0  # blue, half the magnitude
    out = process_attributions(attr)
    assert out[0, 0].tolist() == [1.0, 0.0, 0.0] and out[1, 1].tolist() == [0.0, 0.0, 0.5]


def test_grayscale_sums_the_channels_after_the_mode():
    attr = np.array([[[1.0]], [[-3.0]], [[0.5]]])  # 3 x 1 x 1
    assert process_attributions(attr, grayscale=True, normalise=False).item() == pytest.approx(4.5)
    assert process_attributions(attr, mode="relu", grayscale=True, normalise=False).item() == pytest.approx(1.5)
    assert process_attributions(attr, mode="none", grayscale=True, normalise=False).item() == pytest.approx(-1.5)


def test_gamma_skews_magnitudes_and_keeps_signs():
    assert np.allclose(process_attributions(np.array([[0.25, 1.0]]), gamma=0.5), [[0.5, 1.0]])
    assert np.allclose(process_attributions(np.array([[-0.25, 1.0]]), mode="none", gamma=0.5), [[0.25, 1.0]])
    with pytest.raises(ValueError, match="gamma must be positive"):
        process_attributions(SIGNED, gamma=0)


def test_colormap_gives_rgb_from_matplotlib_colormaps():
    values = np.linspace(0, 1, 6).reshape(2, 3)
    out = process_attributions(values, cmap="jet")
    assert out.shape == (2, 3, 3)
    assert np.allclose(out, colormaps["jet"](values)[..., :3], atol=1e-6)
    assert np.allclose(process_attributions(values, cmap=colormaps["viridis"]), colormaps["viridis"](values)[..., :3])


def test_colormap_needs_a_single_channel_and_a_real_name():
    with pytest.raises(ValueError, match="pass grayscale=True"):
        process_attributions(torch.rand(3, 4, 4), cmap="jet")
    with pytest.raises(ValueError, match="Unknown colormap 'jte'; closest: 'jet'"):
        process_attributions(torch.rand(4, 4), cmap="jte")


@pytest.mark.parametrize(
    ("attr", "kwargs", "message"),
    [
        (np.zeros((2, 3, 4, 4)), {}, "batch of 2 maps"),
        (np.zeros((8, 8, 3)), {}, "looks channels-last"),
        (np.zeros((5, 4, 4)), {}, "has 5 channels; pass grayscale=True"),
        (np.zeros(4), {}, "must be H x W"),
        (np.array([[np.inf, 0.0]]), {}, "NaN or infinite"),
        (np.zeros((2, 2)), {"mode": "square"}, "Unknown mode 'square'"),
    ],
)
def test_bad_attributions_raise_clear_errors(attr, kwargs, message):
    with pytest.raises(ValueError, match=message):
        process_attributions(attr, **kwargs)


def test_inputs_are_never_changed_and_grad_tensors_work():
    tensor = torch.randn(1, 3, 4, 4, requires_grad=True)
    array = np.random.default_rng(1).standard_normal((3, 4, 4))
    tensor_before, array_before = tensor.detach().clone(), array.copy()
    for mode in ("abs", "relu", "none"):
        for attr in (tensor, array):
            out = process_attributions(attr, mode=mode, gamma=0.5, grayscale=True, cmap="jet")
            assert not np.shares_memory(out, array)
    assert torch.equal(tensor.detach(), tensor_before) and tensor.requires_grad
    assert np.array_equal(array, array_before)


def test_process_grads_is_the_articles_name_for_the_same_processing():
    attr = torch.tensor([[[-2.0, 0.0], [1.0, 4.0]]])
    assert np.array_equal(
        process_grads(attr, mode="none", gamma=0.5), process_attributions(attr, mode="none", gamma=0.5)
    )
    assert np.array_equal(process_grads(attr), [[0.5, 0.0], [0.25, 1.0]])


# --- overlay_heatmap --------------------------------------------------------------------------


def test_overlay_upsamples_a_coarse_map_to_the_image_size():
    image = np.zeros((28, 28, 3))
    out = overlay_heatmap(image, torch.rand(1, 1, 7, 7), alpha=0.4)
    assert out.shape == (28, 28, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 0.4 + 1e-6, "alpha 0.4 over black"


def test_overlay_blends_with_alpha():
    image = np.full((4, 4, 3), 0.2)
    heat = np.full((4, 4), 0.75)
    colour = np.asarray(colormaps[HEATMAP_CMAP](0.75)[:3])
    blend = {alpha: overlay_heatmap(image, heat, alpha=alpha, normalise=False) for alpha in (0.0, 0.5, 1.0)}
    assert np.allclose(blend[0.0], 51 / 255, atol=1e-6), "alpha 0: the picture"
    assert np.allclose(blend[1.0], colour, atol=1e-6), "alpha 1: the heatmap"
    assert np.allclose(blend[0.5], 0.5 * 51 / 255 + 0.5 * colour, atol=1e-6)


def test_overlay_normalises_a_raw_map_like_relu_mode():
    image = np.zeros((2, 3, 3))
    raw = torch.tensor([[[[-1.0, 0.0, 0.5], [1.0, 1.5, 2.0]]]])  # a raw Grad-CAM map, 1 x 1 x 2 x 3
    scaled = np.array([[0.0, 0.0, 0.25], [0.5, 0.75, 1.0]])
    assert np.allclose(overlay_heatmap(image, raw), overlay_heatmap(image, scaled, normalise=False), atol=1e-6)
    assert np.isfinite(overlay_heatmap(image, np.zeros((2, 3)))).all(), "an all-zero map stays finite"


def test_overlay_upsampling_is_bilinear():
    out = overlay_heatmap(np.zeros((1, 4, 3)), np.array([[0.0, 1.0]]), alpha=1.0, cmap="gray")
    assert np.allclose(out[0, :, 0], [0.0, 0.25, 0.75, 1.0], atol=1 / 255)


@pytest.mark.parametrize(
    ("heatmap", "alpha", "message"),
    [
        (np.array([[0.0, 2.0]]), 0.5, r"heatmap values must lie in \[0, 1\] with normalise=False"),
        (np.zeros((3, 4, 4)), 0.5, "single-channel H x W map"),
        (np.zeros((4, 4)), 1.5, "alpha must lie in"),
    ],
)
def test_overlay_refuses_bad_maps_and_alpha(heatmap, alpha, message):
    with pytest.raises(ValueError, match=message):
        overlay_heatmap(np.zeros((4, 4, 3)), heatmap, alpha=alpha, normalise=False)


def test_overlay_with_alpha_0_is_the_picture_exactly():
    photo = np.random.default_rng(5).random((6, 6, 3)).astype(np.float32)
    assert np.array_equal(overlay_heatmap(photo, np.random.default_rng(6).random((3, 3)), alpha=0.0), photo)


def test_overlay_never_changes_its_inputs():
    image, heat = np.random.default_rng(2).random((8, 8, 3)), torch.rand(2, 2)
    before = (image.copy(), heat.clone())
    overlay_heatmap(image, heat)
    assert np.array_equal(image, before[0]) and torch.equal(heat, before[1])


# --- figure helpers ---------------------------------------------------------------------------


def test_colormap_constants_name_real_colormaps_and_bwr_is_white_at_zero():
    for name in (HEATMAP_CMAP, GRADIENT_CMAP, DIVERGING_CMAP):
        assert name in colormaps
    assert np.allclose(colormaps[DIVERGING_CMAP](0.5)[:3], 1.0, atol=0.01)


def test_show_image_draws_the_pixels_with_axes_off():
    rgb = np.random.default_rng(3).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    ax = show_image(new_axes(), rgb, "photo")
    assert ax.get_title() == "photo" and not ax.axison
    assert np.allclose(np.asarray(ax.images[0].get_array()), rgb / 255.0)


def test_show_image_draws_floats_as_they_are_not_rounded_to_8_bits():
    picture = np.random.default_rng(4).random((5, 6, 3)).astype(np.float32)
    drawn = np.asarray(show_image(new_axes(), picture).images[0].get_array())
    assert np.array_equal(drawn, picture.astype(np.float64))
    tensor = torch.from_numpy(picture).permute(2, 0, 1)  # tensors are channels first
    assert np.array_equal(np.asarray(show_image(new_axes(), tensor).images[0].get_array()), drawn)


def test_show_image_refuses_values_outside_0_1_with_a_drawing_message():
    raw = process_attributions(torch.tensor([[[-2.0, 0.0], [1.0, 4.0]]]), mode="none", normalise=False)
    with pytest.raises(
        ValueError, match=r"image values must lie in \[0, 1\] to be drawn as a picture, these span \[-2, 4\]"
    ) as caught:
        show_image(new_axes(), raw)
    assert type(caught.value) is ValueError and "load" not in str(caught.value)


def test_show_image_colours_a_single_channel_map_with_cmap():
    gray = np.array([[0.0, 0.5], [1.0, 0.25]])
    drawn = show_image(new_axes(), gray, "gradient", cmap="viridis").images[0]
    assert drawn.get_cmap().name == "viridis" and drawn.get_clim() == (0.0, 1.0)
    assert np.array_equal(np.asarray(drawn.get_array()), gray)
    plain = show_image(new_axes(), gray).images[0]
    assert plain.get_cmap().name == GRADIENT_CMAP and plain.get_clim() == (0.0, 1.0), "without cmap: gray"
    eight_bit = show_image(new_axes(), np.array([[0, 255]], dtype=np.uint8), cmap="viridis").images[0]
    assert np.array_equal(np.asarray(eight_bit.get_array()), [[0.0, 1.0]])
    with pytest.raises(ValueError, match="cmap colours single-channel pictures"):
        show_image(new_axes(), np.zeros((2, 2, 3)), cmap="gray")


def test_show_heatmap_has_the_colormap_title_and_colour_bar():
    ax = show_heatmap(new_axes(), torch.tensor([[[0.0, 0.5], [0.25, 1.0]]]), "Grad-CAM")
    drawn = ax.images[0]
    assert drawn.get_cmap().name == HEATMAP_CMAP and ax.get_title() == "Grad-CAM" and not ax.axison
    assert drawn.colorbar is not None and drawn.get_clim() == (0.0, 1.0)
    assert show_heatmap(new_axes(), np.eye(2), colorbar=False).images[0].colorbar is None


def test_show_diverging_is_centred_on_zero():
    diff = np.array([[-1.0, 0.0], [0.5, 3.0]])
    ax = show_diverging(new_axes(), diff, "cat - dog")
    drawn = ax.images[0]
    vmin, vmax = drawn.get_clim()
    assert vmin == -vmax == -3.0
    assert drawn.get_cmap().name == DIVERGING_CMAP and drawn.colorbar is not None and not ax.axison
    red, _, blue, _ = drawn.to_rgba(np.array([[3.0]]))[0, 0]
    assert red > blue, "positive is red"
    assert np.allclose(drawn.to_rgba(np.array([[0.0]]), norm=True)[0, 0, :3], 1.0, atol=0.01), "zero is white"
    assert show_diverging(new_axes(), diff, limit=10).images[0].get_clim() == (-10.0, 10.0)
    assert show_diverging(new_axes(), np.zeros((2, 2))).images[0].get_clim() == (-1.0, 1.0), "all zeros stays finite"


def test_importing_the_modules_prints_nothing_and_loads_no_pyplot():
    modules = (
        "utils.models, utils.datasets, utils.visualise, utils.saliency, utils.discriminativity, utils.sanity, "
        "utils.explorer"
    )
    code = f"import sys, {modules}; print('matplotlib.pyplot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "False\n" and result.stderr == ""


def test_clip_percentile_scales_by_the_percentile_and_clips_outliers() -> None:
    attr = np.concatenate([np.linspace(0.0, 1.0, 99), [50.0]]).reshape(10, 10)
    processed = process_attributions(attr, clip_percentile=98)
    assert processed.max() == 1.0 and np.count_nonzero(processed == 1.0) == 2
    assert np.isclose(processed.flat[49], attr.flat[49] / np.percentile(attr, 98))
    plain = process_attributions(attr)
    assert plain.flat[49] < 0.02  # without clipping one outlier leaves the rest nearly black
    with pytest.raises(ValueError, match="clip_percentile must be in"):
        process_attributions(attr, clip_percentile=0)


# --- the [0, 1] promise and odd inputs (issue 12) --------------------------------------------------


def sparse_map() -> np.ndarray:
    """0.1% of the pixels non-zero: the 99.5th percentile of |map| is 0."""
    values = np.zeros((100, 100))
    values.flat[::1000] = np.linspace(-3.0, 7.0, 10)
    return values


def single_spike() -> np.ndarray:
    values = np.zeros((50, 50))
    values[20, 30] = 5.0
    return values


@pytest.mark.parametrize("mode", ["abs", "relu", "none"])
@pytest.mark.parametrize(
    "attr",
    [
        sparse_map(),
        np.full((20, 20), 3.0),
        np.full((20, 20), -2.0),
        single_spike(),
        torch.from_numpy(sparse_map())[None],
    ],
    ids=["sparse", "constant", "constant-negative", "single-spike", "sparse-tensor-1xHxW"],
)
def test_clip_percentile_keeps_the_0_1_promise_for_every_map(attr, mode) -> None:
    processed = process_attributions(attr, mode=mode, clip_percentile=99.5)
    assert processed.min() >= 0.0 and processed.max() <= 1.0, (processed.min(), processed.max())
    plain = process_attributions(attr, mode=mode)
    if (
        np.count_nonzero(np.asarray(attr)) <= 0.005 * np.asarray(attr).size
    ):  # the percentile is 0: scaled by the maximum
        assert np.array_equal(processed, plain)


def test_a_tiny_percentile_does_not_overflow() -> None:
    attr = np.full((10, 10), 1e-310)
    attr[0, 0] = 1e300
    with np.errstate(all="raise"):
        processed = process_attributions(attr, clip_percentile=50)
    assert processed.max() == 1.0 and processed.min() >= 0.0


@pytest.mark.parametrize(
    ("output", "error", "message"),
    [
        ("x", TypeError, r"output must be the model's logits, a tensor or an array, not str"),
        ([0.1, 0.9], TypeError, r"not list"),
        (np.array(["a", "b"]), TypeError, r"output must hold real numbers"),
        (torch.zeros(4, dtype=torch.complex64), TypeError, r"output must hold real numbers"),
    ],
)
def test_display_imagenet_output_refuses_what_is_not_logits_in_one_line(output, error, message) -> None:
    with pytest.raises(error, match=message) as caught:
        display_imagenet_output(output, categories=NAMES[:2] if not isinstance(output, torch.Tensor) else NAMES)
    assert "\n" not in str(caught.value)


def test_display_imagenet_output_reads_a_sparse_tensor_like_its_dense_self(capsys) -> None:
    logits = torch.tensor([[0.0, 3.0, 0.0, 1.0]])
    assert display_imagenet_output(logits.to_sparse(), n=2, categories=NAMES) == 1
    sparse_text = capsys.readouterr().out
    display_imagenet_output(logits, n=2, categories=NAMES)
    assert sparse_text == capsys.readouterr().out


def test_process_attributions_reads_a_sparse_tensor_like_its_dense_self() -> None:
    dense = torch.zeros(1, 4, 4)
    dense[0, 1, 2] = -3.0
    assert np.array_equal(
        process_attributions(dense.to_sparse(), mode="none"), process_attributions(dense, mode="none")
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"gamma": "0.5"}, TypeError, "gamma must be a number, not '0.5'"),
        ({"clip_percentile": float("nan")}, ValueError, "clip_percentile must be a number, not NaN"),
        ({"mode": None}, ValueError, "Unknown mode None"),
        ({"cmap": 3, "grayscale": True}, TypeError, "cmap must be a colormap name"),
    ],
)
def test_process_attributions_names_a_bad_argument(kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        process_attributions(torch.rand(3, 4, 4), **kwargs)


def test_a_picture_panel_turned_back_on_shows_the_ticks_its_figure_sets() -> None:
    """show_image leaves no ticks (faster to draw), yet a figure may label its pictures (lesson 05's strip)."""
    figure = Figure(figsize=(4, 2), layout="constrained")
    ax = show_image(figure.add_subplot(), np.zeros((8, 24, 3)), "strip")
    assert not ax.axison and list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    ax.set_axis_on()
    ax.set_xticks([4, 12, 20], ["trained", "step 1", "step 2"])
    figure.canvas.draw()
    shown = [label.get_text() for label in ax.get_xticklabels() if label.get_visible()]
    assert ax.xaxis.get_visible() and shown == ["trained", "step 1", "step 2"]


def test_a_picture_beside_a_plot_that_shares_its_axis_leaves_the_plots_ticks() -> None:
    figure = Figure()
    plot, picture = figure.subplots(1, 2, sharey=True)
    plot.plot([0, 5, 10], [0, 5, 10])
    show_image(picture, np.zeros((10, 10, 3)), "picture")
    assert len(plot.get_yticks()) > 2 and not picture.axison


def test_a_region_at_the_pictures_edge_is_outlined_along_the_edge_and_the_view_stays_the_pictures() -> None:
    ax = show_image(Figure().add_subplot(), np.zeros((6, 8, 3)), "halves")
    left = np.zeros((6, 8), dtype=bool)
    left[:, :4] = True  # the left half: only its right side lies inside the picture
    draw_regions(ax, {"left": left})
    vertices = np.concatenate([path.vertices for path in ax.collections[0].get_paths()])
    assert vertices[:, 0].min() == pytest.approx(-0.5) and vertices[:, 0].max() == pytest.approx(3.5)
    assert vertices[:, 1].min() == pytest.approx(-0.5) and vertices[:, 1].max() == pytest.approx(5.5)
    assert ax.get_xlim() == (-0.5, 7.5) and ax.get_ylim() == (5.5, -0.5)
    clip = ax.collections[0].get_clip_box().transformed(ax.transData.inverted())  # in data units
    assert -0.8 < clip.x0 < -0.5 and 7.5 < clip.x1 < 7.8  # a line along the edge shows whole, and little more


def test_outlines_on_a_zoomed_picture_stay_inside_the_zoomed_view() -> None:
    ax = show_image(Figure().add_subplot(), np.zeros((20, 20, 3)), "zoomed")
    ax.set_xlim(4.5, 9.5)
    draw_regions(ax, {"left": np.arange(20)[None, :].repeat(20, 0) < 15})  # its right edge lies outside the view
    clip = ax.collections[0].get_clip_box().transformed(ax.transData.inverted())
    assert ax.get_xlim() == (4.5, 9.5) and 4.3 < clip.x0 < 4.5 and 9.5 < clip.x1 < 9.7


def test_a_colour_bar_says_what_its_colours_measure_when_told() -> None:
    figure = Figure()
    ax = show_heatmap(figure.add_subplot(), np.eye(3), "map", colorbar_label="|gradient| / its 99.5th percentile")
    assert figure.axes[-1].get_ylabel() == "|gradient| / its 99.5th percentile" and ax.images[0].colorbar is not None
    untouched = Figure().add_subplot()
    with pytest.raises(ValueError, match=r"^colorbar_label labels the colour bar; pass colorbar=True"):
        show_diverging(untouched, np.eye(3), colorbar=False, colorbar_label="A - B")
    assert not untouched.images  # refused before anything was drawn
    with pytest.raises(TypeError, match=r"^colorbar_label must be text \(a str\) or None, not 3\.$"):
        show_heatmap(Figure().add_subplot(), np.eye(3), colorbar_label=3)


@pytest.mark.parametrize("labels", [("cat",), ("squirrel", "head", "body"), ("cat", "cup", "A", "B")])
def test_the_regions_legend_lies_outside_the_picture(labels: tuple[str, ...]) -> None:
    figure = Figure(figsize=(4, 4), layout="constrained")
    ax = show_image(figure.add_subplot(), np.zeros((40, 60, 3)), "photo")
    masks = {}
    for i, label in enumerate(labels):  # regions in every part of the picture, the lower left corner included
        mask = np.zeros((40, 60), dtype=bool)
        mask[30 - 8 * i : 40 - 8 * i, 10 * i : 10 * i + 15] = True
        masks[label] = mask
    draw_regions(ax, masks)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)  # lays the figure out (constrained layout) as saving it would
    legend, picture = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == list(labels)
    assert legend.y1 <= picture.y0 + 0.5  # below the picture: no overlap with the axes' area
    assert legend.y0 >= 0 and figure.bbox.x0 <= legend.x0 and legend.x1 <= figure.bbox.x1  # and inside the figure


def test_a_white_outlines_legend_swatch_shows_on_the_white_page_below_the_picture() -> None:
    figure = Figure(figsize=(3, 3), layout="constrained")
    ax = show_image(figure.add_subplot(), np.zeros((20, 20, 3)), "photo")
    left = np.zeros((20, 20), dtype=bool)
    left[:, :10] = True
    draw_regions(ax, {"left": left, "right": ~left}, colours=("white", "black"))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    box = ax.get_legend().get_lines()[0].get_window_extent(canvas.get_renderer())  # the white region's swatch
    rows, columns = slice(int(box.y0) - 4, int(box.y1) + 5), slice(int(box.x0), int(box.x1) + 1)  # the line, and 4 px
    pixels = np.asarray(canvas.buffer_rgba())[::-1][rows, columns, :3]  # rows counted from the bottom, as the box
    assert pixels.min() < 200  # a darker edge around the white line: on a white page it would not show otherwise
