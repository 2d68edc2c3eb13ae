"""Lesson 09's checker (utils/exercises/shortcuts.py), line by line: the exact line a learner reads for each plausible
wrong share, worked out here by hand on small maps; the tolerance a right share is given; which mistakes a box allows
near the image's edges (make mutation, issue 26).

The main map is 4 x 6, values 0 .. 23 minus 5 (signed, total |mass| 186); the box covers rows 1-2, columns 2-4
(a quarter of the image), whose |values| sum to 3 + 4 + 5 + 9 + 10 + 11 = 42: the share is 42 / 186 = 7 / 31.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import utils.exercises.shortcuts as checker
from utils.exercises import AnswerCheckError, correct
from utils.exercises.shortcuts import check_box_share, diagnose_box_share
from utils.shortcuts import Box, box_share

MAP = np.arange(24, dtype=np.float64).reshape(4, 6) - 5
BOX = Box(top=1, left=2, height=2, width=3, image_size=(4, 6))
SHARE = 42 / 186
RIGHT = "Correct: 0.226 of the map's mass lies in the box (the box is 25.0% of the image)."
NUMBER = "return one number, the share (a float)."


def message(answer, saliency=MAP, box=BOX) -> str:
    return diagnose_box_share(answer, saliency, box).message


def test_the_share_worked_out_by_hand_passes_in_every_form() -> None:
    assert box_share(MAP, BOX) == pytest.approx(SHARE, abs=1e-15)
    for answer in (SHARE, np.float32(SHARE), np.array(SHARE), np.array([[SHARE]]), torch.tensor([SHARE]), (SHARE,)):
        assert message(answer) == RIGHT, answer
    assert message(lambda s, b: SHARE) == RIGHT
    assert message(box_share) == RIGHT, "the function gets the numpy map itself"


def test_a_share_within_one_millionth_passes_and_one_beyond_it_does_not() -> None:
    assert message(SHARE + 0.9e-6) == RIGHT
    assert message(SHARE + 1.5e-6) == (
        "Not yet right (value): got 0.2258, expected 0.2258: reduce the map to |values| summed over channels, then "
        "divide the sum inside the box by the sum over the whole map."
    )


@pytest.mark.parametrize(
    ("reason", "value", "words"),
    [
        ("signed", 42 / 156, "you summed the map's signed values; take absolute values first (|map|), so that "
         "negative and positive evidence both count as mass."),
        ("outside", 1 - SHARE, "that is the share outside the box; the question is how much lies inside it."),
        ("density", 4 * SHARE, "you divided by the box's share of the image: that is how many times denser the box "
         "is than the image on average. The share is sum inside / sum of all, without the area."),
        ("percent", 100 * SHARE, "that is a percentage; return a fraction between 0 and 1."),
        ("box +1", 126 / 186, "your box is one pixel too large (the end is not part of the box): it covers rows "
         "top .. top + height - 1 and columns left .. left + width - 1."),
        ("box -1", 7 / 186, "your box is one pixel too small: it covers rows top .. top + height - 1 and columns "
         "left .. left + width - 1."),
    ],
)  # fmt: skip
def test_each_mistake_worked_out_by_hand_is_named(reason, value, words) -> None:
    assert message(value) == f"Not yet right ({reason}): got {value:.4f}, expected 0.2258: {words}"


def test_the_table_holds_the_values_worked_out_by_hand() -> None:
    table = {reason: value for reason, (value, _) in checker._mistakes(MAP, BOX).items()}
    assert set(table) == {"signed", "one channel", "outside", "density", "percent", "box +1", "box -1"}
    by_hand = {"signed": 42 / 156, "one channel": SHARE, "outside": 1 - SHARE, "density": 4 * SHARE}
    by_hand |= {"percent": 100 * SHARE, "box +1": 126 / 186, "box -1": 7 / 186}
    for reason, value in by_hand.items():
        assert table[reason] == pytest.approx(value, rel=1e-12), reason


def test_a_percentage_is_named_within_its_own_scales_tolerance() -> None:
    """100 x the share is 22.6: an answer 1e-5 away from it (within 1e-6 of 22.6) is still the percentage."""
    assert diagnose_box_share(100 * SHARE + 1e-5, MAP, BOX).reason == "percent"


@pytest.mark.parametrize(
    ("saliency", "signed", "one_channel"),
    [
        (np.array([[[1.0, -3.0], [2.0, 0.0]], [[1.0, 1.0], [0.0, 2.0]]]), 2 / 4, 1 / 6),
        (torch.tensor([[[[1.0, -3.0], [2.0, 0.0]], [[1.0, 1.0], [0.0, 2.0]]]]), 2 / 4, 1 / 6),
        (torch.tensor([[[[1.0, -3.0], [2.0, 0.0]]]]), float("nan"), 1 / 6),
    ],
    ids=["C x H x W array", "1 x C x H x W tensor", "1 x 1 x H x W tensor"],
)
def test_the_signed_and_one_channel_shares_read_every_map_form(saliency, signed, one_channel) -> None:
    """Box: the top-left pixel of a 2 x 2 image. Channel 0 is [[1, -3], [2, 0]], channel 1 [[1, 1], [0, 2]]."""
    box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    table = {reason: value for reason, (value, _) in checker._mistakes(saliency, box).items()}
    assert table["one channel"] == pytest.approx(one_channel)
    assert table["signed"] == pytest.approx(signed, nan_ok=True), "one channel summing to 0: no signed share"


def test_a_signed_map_that_sums_to_zero_has_no_signed_share() -> None:
    saliency = np.array([[1.0, -1.0], [2.0, -2.0]])
    box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    assert np.isnan(checker._mistakes(saliency, box)["signed"][0])
    assert np.isnan(checker._shares_of(saliency, np.ones((2, 2), bool)))
    assert diagnose_box_share(0.5, saliency, box).reason == "value"


def test_rows_and_columns_swapped_is_named_for_a_box_off_the_diagonal() -> None:
    box = Box(top=0, left=2, height=2, width=3, image_size=(5, 6))  # swapped: rows 2-4, columns 0-1
    saliency = np.arange(30, dtype=np.float64).reshape(5, 6)
    swapped = (12 + 13 + 18 + 19 + 24 + 25) / saliency.sum()
    table = {reason: value for reason, (value, _) in checker._mistakes(saliency, box).items()}
    assert table["rows and columns"] == pytest.approx(swapped)
    assert message(swapped, saliency, box) == (
        f"Not yet right (rows and columns): got {swapped:.4f}, expected {box_share(saliency, box):.4f}: rows and "
        "columns are swapped: rows are the first index (top, height), columns the second (left, width)."
    )


@pytest.mark.parametrize(
    ("box", "swap"),
    [
        (Box(top=0, left=2, height=2, width=3, image_size=(5, 6)), True),  # swapped rows end at the last row
        (Box(top=0, left=3, height=2, width=3, image_size=(5, 6)), False),  # would end below the image
        (Box(top=0, left=0, height=4, width=2, image_size=(6, 3)), False),  # swapped columns 0-3 of 3
        (Box(top=1, left=0, height=5, width=2, image_size=(6, 6)), True),  # swapped columns end at the last column
        (Box(top=1, left=1, height=2, width=2, image_size=(5, 6)), False),  # on the diagonal: swapping changes nothing
        (Box(top=1, left=1, height=2, width=3, image_size=(5, 6)), True),
        (Box(top=1, left=2, height=2, width=2, image_size=(5, 6)), True),
    ],
)
def test_rows_and_columns_swapped_is_tried_only_where_the_swapped_box_fits(box, swap) -> None:
    assert ("rows and columns" in checker._mistakes(np.ones(box.image_size), box)) is swap


@pytest.mark.parametrize(
    ("box", "larger", "smaller"),
    [
        (Box(top=0, left=0, height=3, width=5, image_size=(4, 6)), True, True),
        (Box(top=1, left=0, height=3, width=5, image_size=(4, 6)), False, True),  # touches the bottom
        (Box(top=0, left=1, height=3, width=5, image_size=(4, 6)), False, True),  # touches the right
        (Box(top=0, left=0, height=1, width=5, image_size=(4, 6)), True, False),  # one row: nothing smaller
        (Box(top=0, left=0, height=3, width=1, image_size=(4, 6)), True, False),  # one column
        (Box(top=0, left=0, height=2, width=2, image_size=(4, 6)), True, True),
    ],
)
def test_a_box_one_pixel_larger_or_smaller_is_tried_only_where_it_fits(box, larger, smaller) -> None:
    table = checker._mistakes(np.ones(box.image_size), box)
    assert ("box +1" in table, "box -1" in table) == (larger, smaller)


def test_a_box_one_pixel_larger_covers_one_more_row_and_column() -> None:
    box = Box(top=1, left=1, height=2, width=2, image_size=(4, 5))
    saliency = np.zeros((4, 5))
    saliency[3, 3] = 1.0  # just past the box's corner
    saliency[0, 0] = 3.0
    assert checker._mistakes(saliency, box)["box +1"][0] == pytest.approx(0.25)
    saliency[1, 1] = 4.0  # the box's first pixel: all a box one pixel smaller holds
    assert checker._mistakes(saliency, box)["box -1"][0] == pytest.approx(0.5)


@pytest.mark.parametrize(("decimals", "answer"), [(0, 0.0), (1, 0.2), (2, 0.23), (3, 0.226), (4, 0.2258), (5, 0.22581)])
def test_a_rounded_share_is_named_with_its_number_of_decimals(decimals, answer) -> None:
    assert message(answer) == (
        f"Not yet right (rounded): got {answer}, the share 0.225806 rounded to {decimals} decimals; return it "
        "unrounded (round only what you print, e.g. f'{share:.3f}')."
    )


def test_rounded_wants_the_rounded_value_exactly() -> None:
    assert checker._rounded(0.23, SHARE) == 2
    assert checker._rounded(0.23 + 1e-11, SHARE) is None
    assert checker._rounded(round(SHARE, 6), SHARE) is None, "within the tolerance: the share itself"
    assert checker._rounded(0.3, 0.3) is None


@pytest.mark.parametrize("value", [1.5, -0.2])
def test_a_share_outside_zero_to_one_is_out_of_range(value) -> None:
    assert message(value) == f"Not yet right (range): got {value:.4f}; a share lies between 0 and 1 (expected 0.2258)."


def test_zero_and_one_are_within_range() -> None:
    """1 is no rounding of the share 0.2258, 0 none of 0.8145 (the box of rows 0-3, columns 0-4): both are values."""
    assert diagnose_box_share(1.0, MAP, BOX).reason == "value"
    big = Box(top=0, left=0, height=4, width=5, image_size=(4, 6))
    assert box_share(MAP, big) == pytest.approx(1 - (0 + 6 + 12 + 18) / 186)
    assert message(0.0, MAP, big) == (
        "Not yet right (value): got 0.0000, expected 0.8065: reduce the map to |values| summed over channels, then "
        "divide the sum inside the box by the sum over the whole map."
    )


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (True, "Not yet right (not a number): the answer is True, True/False; " + NUMBER),
        (np.bool_(False), "Not yet right (not a number): the answer is False, True/False; " + NUMBER),
        (1 + 2j, "Not yet right (type): the answer is a complex number ((1+2j)); the share is real: " + NUMBER),
        (np.complex128(0.5), "Not yet right (type): the answer is a complex number ((0.5+0j)); the share is real: "
         + NUMBER),
        ("0.2", "Not yet right (not a number): the answer is a str; " + NUMBER),
        ({"share": 0.2}, "Not yet right (not a number): the answer is a dict; " + NUMBER),
        ([0.1, "x"], "Not yet right (not a number): the answer is a list of something other than numbers; " + NUMBER),
        ((0.1, "x"), "Not yet right (not a number): the answer is a tuple of something other than numbers; "
         + NUMBER),
        ([0.1, 0.2], "Not yet right (not a number): the answer has shape (2,); return one number for the whole map "
         "(sum inside / sum of all)."),
        (torch.ones(1, 2), "Not yet right (not a number): the answer has shape (1, 2); return one number for the "
         "whole map (sum inside / sum of all)."),
        (float("inf"), "Not yet right (not finite): the answer is inf; is the map's total zero, or did a division go "
         "wrong?"),
        (np.array([np.nan]), "Not yet right (not finite): the answer is nan; is the map's total zero, or did a "
         "division go wrong?"),
    ],
    ids=["bool", "numpy bool", "complex", "numpy complex", "str", "dict", "list", "tuple", "two numbers", "tensor",
         "inf", "nan array"],
)  # fmt: skip
def test_an_answer_that_is_not_one_real_number_gets_one_line(answer, text) -> None:
    assert message(lambda s, b: answer) == text


def test_a_whole_number_is_read_as_a_share() -> None:
    assert message(lambda s, b: 1) == (
        "Not yet right (value): got 1.0000, expected 0.2258: reduce the map to |values| summed over channels, then "
        "divide the sum inside the box by the sum over the whole map."
    )
    box = Box(top=0, left=0, height=2, width=6, image_size=(2, 6))
    assert diagnose_box_share(1, np.ones((2, 6)), box).passed


def test_a_verdict_returned_or_given_is_no_share() -> None:
    assert checker._number(correct("trust me.")).message == "Correct: trust me."
    assert diagnose_box_share(lambda s, b: correct("trust me."), MAP, BOX).reason == "verdict"


def test_the_learners_function_gets_a_copy_of_the_map() -> None:
    tensor = torch.from_numpy(MAP.copy())

    def vandal(saliency, box):
        share = box_share(saliency, box)
        saliency.zero_()
        return share

    assert diagnose_box_share(vandal, tensor, BOX).passed
    assert torch.equal(tensor, torch.from_numpy(MAP))
    array = MAP.copy()
    assert diagnose_box_share(lambda s, b: s.fill(0) or SHARE, array, BOX).passed
    assert np.array_equal(array, MAP)


def test_the_checker_prints_the_label_and_refuses_a_label_that_is_not_text(capsys) -> None:
    assert check_box_share(SHARE, MAP, BOX).message == RIGHT
    assert capsys.readouterr().out == RIGHT + "\n"
    check_box_share(SHARE, MAP, BOX, label="GBP")
    assert capsys.readouterr().out == f"GBP: {RIGHT}\n"
    with pytest.raises(TypeError) as error:
        check_box_share(SHARE, MAP, BOX, label=3)
    assert str(error.value) == "label must be text (a str) or None, not int."
    with pytest.raises(AnswerCheckError) as failed:
        check_box_share(1.5, MAP, BOX, label="GBP")
    assert (
        str(failed.value) == "GBP: Not yet right (range): got 1.5000; a share lies between 0 and 1 (expected 0.2258)."
    )


def test_one_colour_channel_is_named_with_its_line() -> None:
    saliency = np.array([[[1.0, 3.0], [2.0, 0.0]], [[3.0, 1.0], [0.0, 2.0]]])  # all channels: 4 of 12 in the box
    box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    assert message(1 / 6, saliency, box) == (
        "Not yet right (one channel): got 0.1667, expected 0.3333: you used one colour channel; sum |map| over all "
        "channels first, as lessons 04 and 05 do."
    )


def test_a_map_that_requires_grad_or_is_float16_is_read_as_float64() -> None:
    box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    tensor = torch.tensor([[1.0, -3.0], [2.0, 0.5]], requires_grad=True)
    assert diagnose_box_share(2.0, tensor, box).reason == "signed"
    assert checker._mistakes(tensor, box)["signed"][0] == pytest.approx(2.0)
    half = np.array([[1.0, 3.0], [2.0, -0.001]], dtype=np.float16)  # summed in float16, 5.999 would be 6
    signed = float(half[0, 0]) / sum(float(v) for v in half.ravel())
    assert diagnose_box_share(signed, half, box).reason == "signed"


def test_a_map_one_row_high_is_not_squeezed_to_one_dimension() -> None:
    box = Box(top=0, left=1, height=1, width=2, image_size=(1, 6))
    saliency = np.array([[1.0, -2.0, 3.0, 0.0, 0.0, 2.0]])
    assert checker._mistakes(saliency, box)["signed"][0] == pytest.approx(1 / 4)
    assert message(1 / 4, saliency, box).startswith("Not yet right (signed): got 0.2500, expected 0.6250:")


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (torch.empty(1, device="meta"), "Not yet right (type): the answer is a meta tensor: a shape without values; "
         "return one number, the share (a float) with its values."),
        (np.ones((2, 1)), "Not yet right (not a number): the answer has shape (2, 1); return one number for the whole "
         "map (sum inside / sum of all)."),
        (np.ones((1, 1, 2)), "Not yet right (not a number): the answer has shape (1, 1, 2); return one number for the "
         "whole map (sum inside / sum of all)."),
    ],
    ids=["meta", "column", "3-D"],
)  # fmt: skip
def test_an_array_answer_is_read_without_squeezing(answer, text) -> None:
    assert message(lambda s, b: answer) == text


def test_a_mistake_is_named_only_within_one_millionth_of_its_value() -> None:
    outside = 1 - SHARE
    assert diagnose_box_share(outside + 0.9e-6, MAP, BOX).reason == "outside"
    assert diagnose_box_share(outside + 1.5e-6, MAP, BOX).reason == "value"


def test_a_mistake_within_the_tolerance_of_the_share_itself_is_not_named() -> None:
    """A tiny negative value outside the box: the signed share is within 1e-6 of the share, so no mistake to name."""
    box = Box(top=0, left=0, height=1, width=1, image_size=(2, 2))
    saliency = np.array([[1.0, 1.0], [1.0, -3e-6]])
    share, signed = 1 / (3 + 3e-6), 1 / (3 - 3e-6)
    assert checker._mistakes(saliency, box)["signed"][0] == pytest.approx(signed, abs=1e-15)
    assert diagnose_box_share(signed + 0.9e-6, saliency, box).message == (
        f"Not yet right (value): got {signed + 0.9e-6:.4f}, expected {share:.4f}: reduce the map to |values| summed "
        "over channels, then divide the sum inside the box by the sum over the whole map."
    )
