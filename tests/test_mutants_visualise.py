"""utils.visualise, value by value: the printed top classes, the overlay's inputs, the outline's clip view.

tests/test_visualise.py checks the figures; these pin what its mutants used to change unnoticed: whole messages
(each names the argument and the fix), ties in the printed ranking, a gray picture under a heatmap, and the
rectangle that clips the region outlines.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from _shared import refuses

from utils.visualise import _view_with_margin, display_imagenet_output, overlay_heatmap, show_image

NAMES = ("cat", "dog", "car")


# --- display_imagenet_output ---------------------------------------------------------------------


def test_ties_print_the_lower_index_first_even_among_a_thousand(capsys: pytest.CaptureFixture[str]) -> None:
    assert display_imagenet_output(torch.zeros(1, 1000), n=3) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit("(class ", 1)[1] for line in lines] == ["0)", "1)", "2)"]


def test_one_class_is_a_valid_n_and_bad_ones_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert display_imagenet_output(np.array([0.0, 2.0, 1.0]), n=1, categories=NAMES) == 1
    assert capsys.readouterr().out == "1. dog  66.52%  (class 1)\n"
    for n, shown in ((0, "0"), (True, "True"), (2.0, "2.0"), (np.int64(-1), "np.int64(-1)")):
        with refuses(ValueError, f"n must be a positive integer, got {shown}."):
            display_imagenet_output(torch.zeros(3), n=n, categories=NAMES)


@pytest.mark.parametrize(
    "output, message",
    [
        (torch.zeros(2, 3), "output holds a batch of 2 images; pass one row, e.g. output[i:i + 1]."),
        (torch.zeros(1, 1, 3), "output must be 1 x K or K logits, got shape (1, 1, 3)."),
        (
            torch.zeros(4),
            "output has 4 scores but there are 3 category names; pass the model's categories (LoadedModel.categories).",
        ),
        (
            torch.tensor([0.0, float("nan"), 1.0]),
            "output contains NaN or infinite logits; check the model's forward pass.",
        ),
    ],
)
def test_logits_that_do_not_fit_are_named(output: torch.Tensor, message: str) -> None:
    with refuses(ValueError, message):
        display_imagenet_output(output, categories=NAMES)


# --- overlay_heatmap ----------------------------------------------------------------------------


def test_a_gray_picture_is_blended_on_every_channel() -> None:
    gray = np.linspace(0, 1, 16).reshape(4, 4)
    blended = overlay_heatmap(gray, np.zeros((4, 4)), alpha=0.25, cmap="gray", normalise=False)
    assert blended.shape == (4, 4, 3)
    np.testing.assert_allclose(blended, np.repeat(0.75 * gray[..., None], 3, axis=-1), atol=1e-6)


def test_overlay_names_its_arguments_in_its_messages() -> None:
    picture = np.zeros((4, 4, 3))
    with refuses(TypeError, "alpha must be a number, not '0.5'."):
        overlay_heatmap(picture, np.ones((2, 2)), alpha="0.5")
    with refuses(ValueError, "alpha must lie in [0, 1] (0 = picture only, 1 = heatmap only), got 1.5."):
        overlay_heatmap(picture, np.ones((2, 2)), alpha=1.5)
    with refuses(
        ValueError, "image of shape (4, 4, 2) is not a picture; pass H x W or an array H x W x C with C = 1, 3 or 4."
    ):
        overlay_heatmap(np.zeros((4, 4, 2)), np.ones((2, 2)))


# --- the outlines' clip view ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits, corner, size",
    [
        (((0.0, 10.0), (5.0, 25.0)), (-0.2, 4.6), (10.4, 20.8)),
        (((-0.5, 223.5), (223.5, -0.5)), (-0.5 - 4.48, -0.5 - 4.48), (224 * 1.04, 224 * 1.04)),  # imshow: y down
    ],
)
def test_the_clip_view_widens_the_limits_by_two_percent_on_every_side(limits, corner, size) -> None:
    fig, ax = plt.subplots()
    try:
        view = _view_with_margin(ax, limits)
        assert view.get_xy() == pytest.approx(corner)
        assert (view.get_width(), view.get_height()) == pytest.approx(size)
    finally:
        plt.close(fig)


def test_overlay_names_the_heatmap_and_the_flag() -> None:
    picture = np.zeros((4, 4, 3))
    with refuses(TypeError, "normalise must be True or False, not 1."):
        overlay_heatmap(picture, np.ones((2, 2)), normalise=1)
    with refuses(
        ValueError,
        "heatmap values must lie in [0, 1] with normalise=False, these span [0, 2]; "
        "pass normalise=True, or divide the map by its maximum first.",
    ):
        overlay_heatmap(picture, np.array([[0.0, 2.0]]), normalise=False)
    with pytest.raises(ValueError, match="^heatmap "):
        overlay_heatmap(picture, np.zeros((2, 2, 2, 2)))


def test_a_gray_picture_is_drawn_on_the_full_zero_to_one_scale() -> None:
    fig, ax = plt.subplots()
    try:
        show_image(ax, np.array([[0.2, 0.6], [0.4, 0.3]]))
        assert ax.images[0].get_clim() == (0.0, 1.0), "a dim picture must not be stretched to full contrast"
    finally:
        plt.close(fig)


# --- pictures: what _picture reads as one channel, RGB or RGBA, and what it refuses --------------------------


def drawn(image) -> np.ndarray:
    """The array show_image hands to imshow."""
    fig, ax = plt.subplots()
    try:
        return np.asarray(show_image(ax, image).images[0].get_array())
    finally:
        plt.close(fig)


EIGHT_BIT = np.array([[0, 51, 102], [153, 204, 255]], dtype=np.uint8)  # 2 x 3


def test_eight_bit_single_channel_pictures_are_drawn_as_one_channel() -> None:
    for image in (torch.from_numpy(EIGHT_BIT)[None], EIGHT_BIT[..., None], EIGHT_BIT):  # 1 x H x W, H x W x 1, H x W
        values = drawn(image)
        assert values.shape == (2, 3), type(image)
        np.testing.assert_array_equal(values, EIGHT_BIT / 255.0)


def test_eight_bit_rgb_pictures_keep_their_three_channels() -> None:
    rgb = np.stack([EIGHT_BIT, 255 - EIGHT_BIT, np.full_like(EIGHT_BIT, 51)], axis=-1)  # 2 x 3 x 3
    for image in (rgb, torch.from_numpy(rgb).permute(2, 0, 1)):
        np.testing.assert_array_equal(drawn(image), rgb / 255.0)


def test_float_single_channel_pictures_are_drawn_as_one_channel() -> None:
    gray = EIGHT_BIT / 255.0
    for image in (torch.from_numpy(gray)[None], gray[..., None], gray):
        values = drawn(image)
        assert values.shape == (2, 3)
        np.testing.assert_array_equal(values, gray)


def test_float_rgba_pictures_are_composited_on_white() -> None:
    rgba = np.zeros((2, 3, 4))
    rgba[..., 0] = 0.5  # half red
    rgba[..., 3] = [[1.0, 0.5, 0.0], [0.25, 1.0, 0.0]]  # opaque, half, transparent
    alpha = rgba[..., 3:]
    expected = rgba[..., :3] * alpha + (1.0 - alpha)
    for image in (rgba, torch.from_numpy(rgba).permute(2, 0, 1)):  # channels last for arrays, first for tensors
        np.testing.assert_allclose(drawn(image), expected, atol=1e-12)


def test_a_one_pixel_picture_is_a_picture() -> None:
    np.testing.assert_array_equal(drawn(np.full((1, 1, 3), 0.25)), np.full((1, 1, 3), 0.25))


def test_values_within_the_rounding_slack_are_clipped_not_refused() -> None:
    picture = np.array([[-1e-4, 0.5], [1.0 + 1e-4, 1.0]])
    np.testing.assert_array_equal(drawn(picture), [[0.0, 0.5], [1.0, 1.0]])


@pytest.mark.parametrize(
    "image, message",
    [
        (
            torch.zeros(2, 5, 5),
            "image of shape (2, 5, 5) is not a picture; pass H x W or a tensor C x H x W with C = 1, 3 or 4.",
        ),
        (np.zeros(4), "image of shape (4,) is not a picture; pass H x W or an array H x W x C with C = 1, 3 or 4."),
        (
            np.zeros((0, 3)),
            "image of shape (0, 3) is not a picture; pass H x W or an array H x W x C with C = 1, 3 or 4.",
        ),
        (
            np.zeros((2, 2, 2, 3)),
            "image of shape (2, 2, 2, 3) is not a picture; pass H x W or an array H x W x C with C = 1, 3 or 4.",
        ),
        (np.array([[0.0, np.nan]]), "image contains NaN or infinite values, so it cannot be drawn."),
        (
            np.array([[-0.5, 0.5]]),
            "image values must lie in [0, 1] to be drawn as a picture, these span [-0.5, 0.5]; scale it first "
            "(process_attributions(..., normalise=True), deprocess_imagenet_image for a model input), "
            "or draw a signed map with show_diverging.",
        ),
        (
            np.array([[0.0, 1.5]]),
            "image values must lie in [0, 1] to be drawn as a picture, these span [0, 1.5]; scale it first "
            "(process_attributions(..., normalise=True), deprocess_imagenet_image for a model input), "
            "or draw a signed map with show_diverging.",
        ),
    ],
)
def test_what_is_not_a_picture_is_named_in_one_whole_line(image, message: str) -> None:
    fig, ax = plt.subplots()
    try:
        with refuses(ValueError, message):
            show_image(ax, image)
    finally:
        plt.close(fig)


def test_a_cmap_for_an_rgb_picture_is_refused_with_its_shape() -> None:
    fig, ax = plt.subplots()
    try:
        with refuses(ValueError, "cmap colours single-channel pictures; this one has shape (3, 2, 4)."):
            show_image(ax, torch.zeros(3, 2, 4), cmap="gray")
    finally:
        plt.close(fig)


# --- the random-weights mark ----------------------------------------------------------------------------------


def test_every_panel_under_the_random_weights_switch_carries_one_red_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.visualise import RANDOM_WEIGHTS_MARK, draw_regions, show_diverging, show_heatmap

    monkeypatch.setenv("XAI_MODEL", "vgg16")
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")
    fig, axes = plt.subplots(1, 4)
    try:
        show_image(axes[0], np.zeros((4, 4, 3)))
        show_heatmap(axes[1], np.eye(4))
        show_diverging(axes[2], np.eye(4))
        axes[3].imshow(np.eye(4))
        draw_regions(axes[3], [np.eye(4)])
        show_image(axes[0], np.zeros((4, 4, 3)))  # drawn on twice: still one mark
        for ax in axes:
            (mark,) = ax.texts
            assert mark.get_text() == RANDOM_WEIGHTS_MARK == "random weights"
            assert mark.get_position() == (0.02, 0.02) and mark.get_transform() == ax.transAxes
            assert (mark.get_fontsize(), mark.get_color(), mark.get_ha(), mark.get_va()) == (7, "red", "left", "bottom")
            box = mark.get_bbox_patch()
            assert box.get_facecolor() == (1.0, 1.0, 1.0, 0.7) and box.get_edgecolor() == (0.0, 0.0, 0.0, 0.0)
            assert box.get_boxstyle().pad == pytest.approx(0.14), "1 point over the 7-point font (matplotlib rounds it)"
    finally:
        plt.close(fig)


def test_without_the_switch_no_panel_is_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XAI_RANDOM_WEIGHTS", raising=False)
    fig, ax = plt.subplots()
    try:
        assert len(show_image(ax, np.zeros((4, 4, 3))).texts) == 0
    finally:
        plt.close(fig)


# --- colour bars and region outlines: the settings that shape them ----------------------------------------------


def test_a_maps_colour_bar_takes_4_6_percent_of_the_width_after_a_4_percent_gap() -> None:
    from utils.visualise import show_diverging, show_heatmap

    for draw in (show_heatmap, show_diverging):
        fig, ax = plt.subplots()
        try:
            x0, _, width, _ = ax.get_position(original=True).bounds
            draw(ax, np.eye(3))
            bar = fig.axes[-1].get_position(original=True)
            assert bar.width == pytest.approx(0.046 * width) and bar.x1 == pytest.approx(x0 + width)
            assert ax.get_position(original=True).width == pytest.approx((1 - 0.046 - 0.04) * width)
        finally:
            plt.close(fig)


def test_the_regions_outlines_and_legend_have_their_documented_look() -> None:
    from utils.visualise import REGION_COLOURS, draw_regions

    fig, ax = plt.subplots()
    try:
        show_image(ax, np.zeros((6, 8, 3)))
        left = np.zeros((6, 8), dtype=bool)
        left[:, :4] = True
        draw_regions(ax, {"a": left, "b": ~left, "c": left, "d": ~left, "e": left}, linewidth=2.5)
        assert REGION_COLOURS == ("white", "black", "magenta", "cyan")
        edges = [tuple(outline.get_edgecolor()[0]) for outline in ax.collections]
        assert edges == [(1, 1, 1, 1), (0, 0, 0, 1), (1, 0, 1, 1), (0, 1, 1, 1), (1, 1, 1, 1)], "the colours in turn"
        assert all(list(outline.get_linewidth()) == [2.5] for outline in ax.collections)
        legend = ax.get_legend()
        assert [text.get_text() for text in legend.get_texts()] == ["a", "b", "c", "d", "e"]
        anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
        assert (legend._loc, (anchor.x0, anchor.y0), legend._ncols) == (9, (0.5, 0.0), 3)  # 9: upper center
        assert legend.get_texts()[0].get_fontsize() == pytest.approx(8.33) and not legend.get_frame_on()
        assert (legend.borderaxespad, legend.handlelength, legend.columnspacing) == (0.2, 1.5, 1.0)
        swatch = legend.legend_handles[0]
        assert (swatch.get_color(), swatch.get_linewidth()) == ("white", 2.5)
        (stroke,) = swatch.get_path_effects()
        assert stroke._gc == {"linewidth": 4.5, "foreground": "0.5"}, "a gray edge 1 point wide on each side"
    finally:
        plt.close(fig)


# --- process_attributions: its refusals whole, and the percentile's bounds -------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"mode": "square"}, ValueError, "Unknown mode 'square'; valid modes: abs, relu, none."),
        ({"gamma": 0}, ValueError, "gamma must be positive (e.g. 0.5 to bring out faint values), got 0."),
        ({"clip_percentile": 0}, ValueError, "clip_percentile must be in (0, 100], e.g. 99.5; got 0."),
        ({"clip_percentile": 100.5}, ValueError, "clip_percentile must be in (0, 100], e.g. 99.5; got 100.5."),
        ({"normalise": 1}, TypeError, "normalise must be True or False, not 1."),
        ({"grayscale": "yes"}, TypeError, "grayscale must be True or False, not 'yes'."),
        ({"cmap": "gray"}, ValueError, "cmap colours a single-channel map; pass grayscale=True as well."),
    ],
)
def test_process_attributions_refuses_in_one_whole_line(kwargs: dict, error: type[Exception], message: str) -> None:
    from utils.visualise import process_attributions

    with refuses(error, message):
        process_attributions(np.ones((3, 2, 2)), **kwargs)


def test_a_batch_of_attributions_is_named_as_attr() -> None:
    from utils.visualise import process_attributions

    with refuses(ValueError, "attr holds a batch of 2 maps (shape (2, 3, 4, 4)); pass one, e.g. attr[i:i + 1]."):
        process_attributions(np.zeros((2, 3, 4, 4)))


def test_any_percentile_in_the_half_open_range_is_taken() -> None:
    from utils.visualise import process_attributions

    attr = np.arange(1.0, 201.0).reshape(10, 20)  # 1 ... 200
    np.testing.assert_allclose(process_attributions(attr, clip_percentile=100), attr / 200.0, rtol=1e-6)
    low = np.percentile(attr, 0.5)  # 1.995: all but the smallest value clip at 1
    np.testing.assert_allclose(process_attributions(attr, clip_percentile=0.5), np.minimum(attr / low, 1.0), rtol=1e-6)


def test_a_signed_outlier_below_the_percentile_is_clipped_at_minus_one() -> None:
    from utils.visualise import process_attributions

    attr = np.array([[-100.0, 1.0, 2.0, 2.0]])  # the 50th percentile of |attr| is 2
    np.testing.assert_allclose(process_attributions(attr, mode="none", clip_percentile=50), [[0.0, 0.75, 1.0, 1.0]])


# --- show_heatmap and show_diverging: the colour scale asked for, and every refusal whole ------------------------


def test_show_heatmap_uses_the_colour_scale_it_is_given() -> None:
    from utils.visualise import show_heatmap

    fig, axes = plt.subplots(1, 3)
    try:
        values = np.array([[0.25, 0.5]])
        assert show_heatmap(axes[0], values, vmin=-1, vmax=2).images[0].get_clim() == (-1.0, 2.0)
        assert show_heatmap(axes[1], values, vmin=0).images[0].get_clim() == (0.0, 0.5), "vmax: the map's"
        assert show_heatmap(axes[2], values, vmax=1).images[0].get_clim() == (0.25, 1.0), "vmin: the map's"
    finally:
        plt.close(fig)


def test_show_diverging_takes_any_positive_limit() -> None:
    from utils.visualise import show_diverging

    fig, ax = plt.subplots()
    try:
        assert show_diverging(ax, np.array([[-1.0, 3.0]]), limit=0.5).images[0].get_clim() == (-0.5, 0.5)
    finally:
        plt.close(fig)


ONE_CHANNEL_HINT = (
    "must be a single-channel H x W map, got shape (3, 4, 4); reduce the channels with "
    "process_attributions(..., grayscale=True), or draw an RGB picture with show_image."
)


@pytest.mark.parametrize(
    "draw, kwargs, error, message",
    [
        ("show_heatmap", {"vmin": "low"}, TypeError, "vmin must be a number, not 'low'."),
        ("show_heatmap", {"vmax": "high"}, TypeError, "vmax must be a number, not 'high'."),
        ("show_heatmap", {"heatmap": np.zeros((3, 4, 4))}, ValueError, "heatmap " + ONE_CHANNEL_HINT),
        ("show_diverging", {"diff": np.zeros((3, 4, 4))}, ValueError, "diff " + ONE_CHANNEL_HINT),
        ("show_diverging", {"limit": "1"}, TypeError, "limit must be a number, not '1'."),
        ("show_diverging", {"limit": 0}, ValueError, "limit must be positive, got 0."),
        ("show_diverging", {"limit": -2.5}, ValueError, "limit must be positive, got -2.5."),
    ],
)
def test_the_map_panels_refuse_in_one_whole_line(draw: str, kwargs: dict, error, message: str) -> None:
    import utils.visualise as visualise

    fig, ax = plt.subplots()
    try:
        arguments = {"heatmap" if draw == "show_heatmap" else "diff": np.eye(2), **kwargs}
        with refuses(error, message):
            getattr(visualise, draw)(ax, **arguments)
    finally:
        plt.close(fig)


def test_show_diverging_refuses_a_scale_whose_width_overflows() -> None:
    from utils.visualise import show_diverging

    fig, axes = plt.subplots(1, 3)
    try:
        message = "The colour scale reaches {}, too large to draw; scale the map (or limit) down."
        with refuses(ValueError, message.format("1e+308")):
            show_diverging(axes[0], np.eye(2), limit=1e308)  # -1e308 to 1e308: 2e308 is no float
        with refuses(ValueError, message.format("1.5e+308")):
            show_diverging(axes[0], np.array([[0.0, -1.5e308]]))
        assert show_diverging(axes[1], np.eye(2), limit=8e307).images[0].get_clim() == (-8e307, 8e307)  # 1.6e308
        ax = show_diverging(axes[2], np.eye(2), "cat - dog")
        assert ax.get_title() == "cat - dog"
    finally:
        plt.close(fig)


def test_outlines_are_one_and_a_half_points_wide_by_default() -> None:
    from utils.visualise import draw_regions

    fig, ax = plt.subplots()
    try:
        draw_regions(ax, {"a": np.eye(4)})
        assert list(ax.collections[0].get_linewidth()) == [1.5]
        assert ax.get_legend().legend_handles[0].get_linewidth() == 1.5
        draw_regions(ax, {"b": np.eye(4)}, linewidth=0.5)  # any positive width, thinner than a point too
        assert list(ax.collections[1].get_linewidth()) == [0.5]
    finally:
        plt.close(fig)


def test_draw_regions_takes_one_mask_or_a_stack_of_masks_as_one_array() -> None:
    from utils.visualise import draw_regions

    left = np.zeros((4, 6), dtype=bool)
    left[:, :3] = True
    for masks, colours in (
        (left, [(1, 1, 1, 1)]),  # one H x W mask
        (np.stack([left, ~left]), [(1, 1, 1, 1), (0, 0, 0, 1)]),  # N x H x W: N masks
        (torch.from_numpy(np.stack([left, ~left])), [(1, 1, 1, 1), (0, 0, 0, 1)]),
    ):
        fig, ax = plt.subplots()
        try:
            draw_regions(ax, masks)
            assert [tuple(outline.get_edgecolor()[0]) for outline in ax.collections] == colours
            assert ax.get_legend() is None  # no labels, no legend
        finally:
            plt.close(fig)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"masks": "x"}, TypeError, "masks must be {label: mask} or a list of H x W masks, not 'x'."),
        ({"masks": {}}, ValueError, "draw_regions needs at least one mask."),
        ({"masks": []}, ValueError, "draw_regions needs at least one mask."),
        (
            {"colours": "red"},
            ValueError,
            "colours must be a non-empty list of colours, e.g. ('white', 'black'); got 'red'.",
        ),
        ({"colours": ()}, ValueError, "colours must be a non-empty list of colours, e.g. ('white', 'black'); got ()."),
        (
            {"colours": ("red", "nocolour")},
            ValueError,
            "colours must be a non-empty list of colours, e.g. ('white', 'black'); got ('red', 'nocolour').",
        ),
        ({"linewidth": 0}, ValueError, "linewidth must be a positive number of points, got 0."),
        ({"linewidth": float("inf")}, ValueError, "linewidth must be a positive number of points, got inf."),
        ({"linewidth": "1"}, TypeError, "linewidth must be a number, not '1'."),
        ({"legend": 1}, TypeError, "legend must be True or False, not 1."),
        (
            {"masks": {"a": np.ones((1, 4))}},
            ValueError,
            "mask 'a' of shape (1, 4) is too thin to outline; H and W must be >= 2.",
        ),
        (
            {"masks": {"a": np.ones((4, 1))}},
            ValueError,
            "mask 'a' of shape (4, 1) is too thin to outline; H and W must be >= 2.",
        ),
        ({"masks": {"a": np.ones((3, 4, 4))}}, ValueError, "mask 'a' " + ONE_CHANNEL_HINT),
        ({"masks": [np.ones((3, 4, 4))]}, ValueError, "mask " + ONE_CHANNEL_HINT),
    ],
)
def test_draw_regions_refuses_in_one_whole_line(kwargs: dict, error: type[Exception], message: str) -> None:
    from utils.visualise import draw_regions

    fig, ax = plt.subplots()
    try:
        with refuses(error, message):
            draw_regions(ax, **{"masks": [np.eye(3)], **kwargs})
        assert len(ax.collections) == 0, "refused before anything was drawn"
    finally:
        plt.close(fig)


def test_the_thinnest_masks_outlined_are_two_pixels_and_half_is_outside() -> None:
    from utils.visualise import draw_regions

    fig, ax = plt.subplots()
    try:
        ax.imshow(np.zeros((2, 3)))
        draw_regions(ax, {"a": np.array([[0.5, 0.6, 0.6], [0.5, 0.6, 0.6]])})  # inside: > 0.5
        vertices = np.concatenate([path.vertices for path in ax.collections[0].get_paths()])
        assert vertices[:, 0].min() == pytest.approx(0.5) and vertices[:, 0].max() == pytest.approx(2.5)
        assert vertices[:, 1].min() == pytest.approx(-0.5) and vertices[:, 1].max() == pytest.approx(1.5)
    finally:
        plt.close(fig)


# --- the small checks every panel shares ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmap, error, message",
    [
        ("jte", ValueError, "Unknown colormap 'jte'; closest: 'jet' (see matplotlib.colormaps)."),
        (
            "Pastel",
            ValueError,
            "Unknown colormap 'Pastel'; closest: 'Pastel2', 'Pastel1', 'Pastel2_r' (see matplotlib.colormaps).",
        ),
        ("zzzzqqq", ValueError, "Unknown colormap 'zzzzqqq'; closest: none (see matplotlib.colormaps)."),
        (3, TypeError, "cmap must be a colormap name (see matplotlib.colormaps) or a Colormap, not 3."),
    ],
)
def test_a_colormap_that_is_not_one_is_named_with_the_three_closest(cmap, error, message: str) -> None:
    from utils.visualise import show_heatmap

    fig, ax = plt.subplots()
    try:
        with refuses(error, message):
            show_heatmap(ax, np.eye(2), cmap=cmap)
    finally:
        plt.close(fig)


def test_what_is_not_axes_or_a_title_is_named() -> None:
    with refuses(TypeError, "ax must be matplotlib Axes to draw on (e.g. figure.add_subplot()), not 'ax'."):
        show_image("ax", np.zeros((2, 2, 3)))
    fig, ax = plt.subplots()
    try:
        with refuses(TypeError, "title must be text (a str) or None, not 3."):
            show_image(ax, np.zeros((2, 2, 3)), 3)
        assert show_image(ax, np.zeros((2, 2, 3))).get_title() == ""
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "attr, message",
    [
        (np.zeros((8, 8, 3)), "attr of shape (8, 8, 3) looks channels-last; pass it channels first (C x H x W)."),
        (np.zeros((8, 8, 1)), "attr of shape (8, 8, 1) looks channels-last; pass it channels first (C x H x W)."),
        (np.zeros((2, 8, 3)), "attr of shape (2, 8, 3) looks channels-last; pass it channels first (C x H x W)."),
        (np.zeros(4), "attr must be H x W, C x H x W, 1 x C x H x W or 1 x 1 x H x W, got shape (4,)."),
        (np.zeros((0, 4)), "attr must be H x W, C x H x W, 1 x C x H x W or 1 x 1 x H x W, got shape (0, 4)."),
        (
            np.zeros((1, 2, 2, 3, 4, 4)),
            "attr must be H x W, C x H x W, 1 x C x H x W or 1 x 1 x H x W, got shape (1, 2, 2, 3, 4, 4).",
        ),
        (np.array([[0.0, np.inf]]), "attr contains NaN or infinite values; check the method that produced it."),
    ],
)
def test_what_is_not_one_map_is_named_in_one_whole_line(attr: np.ndarray, message: str) -> None:
    from utils.visualise import process_attributions

    with refuses(ValueError, message):
        process_attributions(attr)


def test_a_map_with_one_or_three_channels_first_is_not_taken_for_channels_last() -> None:
    from utils.visualise import process_attributions

    assert process_attributions(np.ones((3, 4, 3))).shape == (4, 3, 3)  # C x H x W with W = 3
    assert process_attributions(np.ones((1, 4, 1))).shape == (4, 1)


def test_colours_are_a_list_even_of_one_and_never_a_string_of_colour_letters() -> None:
    from utils.visualise import draw_regions

    fig, ax = plt.subplots()
    try:
        with refuses(ValueError, "colours must be a non-empty list of colours, e.g. ('white', 'black'); got 'rgb'."):
            draw_regions(ax, [np.eye(3)], colours="rgb")  # 'r', 'g' and 'b' are colours each
        draw_regions(ax, [np.eye(3), 1 - np.eye(3)], colours=("red",))
        assert [tuple(outline.get_edgecolor()[0]) for outline in ax.collections] == [(1, 0, 0, 1)] * 2
    finally:
        plt.close(fig)


def test_the_colour_bar_flag_is_named_and_an_unlabelled_bar_has_no_label() -> None:
    from utils.visualise import show_heatmap

    fig, ax = plt.subplots()
    try:
        with refuses(TypeError, "colorbar must be True or False, not 1."):
            show_heatmap(ax, np.eye(2), colorbar=1)
        show_heatmap(ax, np.eye(2))
        assert fig.axes[-1].get_ylabel() == ""
    finally:
        plt.close(fig)


def test_what_is_not_an_array_or_a_tensor_is_named_as_attr() -> None:
    from utils.visualise import process_attributions

    with refuses(TypeError, "attr must be a numpy array or a torch tensor, not list."):
        process_attributions([[0.0, 1.0]])
    with refuses(TypeError, "attr must hold real numbers, not complex128."):
        process_attributions(np.zeros((2, 2), dtype=complex))
