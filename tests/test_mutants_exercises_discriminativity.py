"""Lesson 04's checker (utils/exercises/discriminativity.py), line by line: the exact line a learner reads for each
plausible wrong answer, the tolerance a right one is given, and the test pair that shows mistakes the lesson's maps
hide (make mutation, issue 26).

The maps are small and written out, so each expected line can be checked by hand: S_A's magnitudes are
[[4, 0, 1], [2, 1, 0.5]] (maximum 4), S_B's [[0, 2, 1], [1, 0.5, 0]] (maximum 2), and the reference map
S_A / 4 - S_B / 2 is [[1, -1, -0.25], [0, 0, 0.125]].
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import utils.exercises.discriminativity as checker
from utils.discriminativity import discriminativity_map
from utils.exercises import AnswerCheckError
from utils.exercises.discriminativity import check_discriminativity_map, diagnose_discriminativity_map

S_A = np.array([[[4.0, 0.0, 1.0], [2.0, -1.0, 0.5]]])
S_B = np.array([[[0.0, 2.0, 1.0], [-1.0, 0.5, 0.0]]])
EXPECTED = np.array([[1.0, -1.0, -0.25], [0.0, 0.0, 0.125]])
SHAPE = "Not yet right (shape): the answer has shape {}, expected 2 x 3, the input's grid."
UPSAMPLE = " Upsample Grad-CAM to the input size first."
RIGHT = "Correct: your map equals S_A - S_B with each map scaled to [0, 1]."
AGAIN = "right on these maps, but not on a test pair whose maps have no zero (a map's minimum is not always 0): "


def message(answer, s_a=S_A, s_b=S_B) -> str:
    return diagnose_discriminativity_map(answer, s_a, s_b).message


def test_the_written_out_reference_is_the_courses() -> None:
    assert np.allclose(discriminativity_map(S_A, S_B), EXPECTED, atol=1e-12)
    assert message(EXPECTED) == RIGHT


def test_a_map_per_channel_is_told_to_reduce_the_channels() -> None:
    assert message(np.stack([EXPECTED] * 3)) == (
        "Not yet right (channels): the answer has 3 channels (shape (3, 2, 3)); reduce each map to one channel first: "
        "absolute values, summed over the channels."
    )


@pytest.mark.parametrize(
    ("shape", "hint"),
    [((1, 2), True), ((1, 3), False), ((2, 2), False), ((3, 4), False), ((6,), False)],
    ids=["smaller", "fewer rows only", "fewer columns only", "larger", "flat"],
)
def test_a_wrong_shape_suggests_upsampling_only_when_the_map_is_smaller_both_ways(shape, hint) -> None:
    assert message(np.zeros(shape)) == SHAPE.format(shape) + (UPSAMPLE if hint else "")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_is_named_with_its_fix(bad) -> None:
    answer = EXPECTED.copy()
    answer[1, 2] = bad
    assert message(answer) == (
        "Not yet right (not finite): the answer contains NaN or infinite values; leave an all-zero map at zero "
        "instead of dividing by its maximum (0)."
    )


def test_a_map_within_the_tolerance_passes_and_one_just_outside_does_not() -> None:
    assert diagnose_discriminativity_map(EXPECTED + 0.9e-4, S_A, S_B).passed
    outside = EXPECTED.copy()
    outside[1, 0] += 1.2e-4
    assert message(outside) == (
        "Not yet right (values): the largest difference is at pixel (1, 0): expected 0.0000, got 0.0001; "
        "check each step: |values| summed over channels, divided by the map's own maximum, then S_A - S_B."
    )


def test_the_tolerance_grows_with_the_mistakes_size() -> None:
    """The unscaled difference (largest 4) is named within 1e-4 of its largest value, not of 1."""
    raw = np.array([[4.0, -2.0, 0.0], [1.0, 0.5, 0.5]])
    assert message(raw + 3e-4) == (
        "Not yet right (not scaled): the maps were not scaled: divide each map by its own maximum (to [0, 1]) before "
        "subtracting."
    )


def test_the_largest_difference_is_located_and_printed_to_four_decimals() -> None:
    answer = EXPECTED.copy()
    answer[1, 2] += 0.01
    answer[0, 2] -= 0.02
    assert message(answer) == (
        "Not yet right (values): the largest difference is at pixel (0, 2): expected -0.2500, got -0.2700; "
        "check each step: |values| summed over channels, divided by the map's own maximum, then S_A - S_B."
    )


@pytest.mark.parametrize("end", [-1.0, 1.0])
def test_values_at_exactly_plus_or_minus_one_are_within_range(end) -> None:
    """A map reaching -1 or 1 but wrong elsewhere is told where it differs, not that it is unscaled."""
    answer = np.array([[end, 0.5, 0.5], [0.5, 0.5, 0.5]])
    assert diagnose_discriminativity_map(answer, S_A, S_B).reason == "values"


def test_a_map_beyond_one_is_not_scaled_and_its_span_is_printed() -> None:
    answer = np.array([[1.5, -0.25, 0.0], [0.0, 0.0, 0.0]])
    assert message(answer) == (
        "Not yet right (not scaled): the answer spans [-0.25, 1.5], outside [-1, 1]; scale each map to [0, 1] before "
        "subtracting."
    )
    assert message(-answer) == (
        "Not yet right (not scaled): the answer spans [-1.5, 0.25], outside [-1, 1]; scale each map to [0, 1] before "
        "subtracting."
    )


def test_each_mistake_gives_the_map_worked_out_by_hand() -> None:
    raw = np.array([[4.0, -2.0, 0.0], [1.0, 0.5, 0.5]])  # |S_A| - |S_B|, summed over the one channel
    by_hand = {
        "sign": -EXPECTED,
        "not scaled": raw,
        "joint scaling": raw / 4,
        "scaled difference": raw / 4,
        "min-max": np.array([[1.0, 0.0, 0.25], [0.5, 0.25, 0.125]]) - np.array([[0.0, 1.0, 0.5], [0.5, 0.25, 0.0]]),
        "not subtracted": np.array([[1.0, 0.0, 0.25], [0.5, 0.25, 0.125]]),
        "zero": np.zeros((2, 3)),
    }
    table = checker._mistakes(S_A, S_B, EXPECTED)
    found = {}
    for reason, _, candidate in table:
        found.setdefault(reason, []).append(candidate)
    assert np.allclose(found["not scaled"][1], -raw)
    positive = np.array([[1.0, 0.0, 0.25], [0.5, 0.0, 0.125]]) - np.array([[0.0, 1.0, 0.5], [0.0, 0.25, 0.0]])
    assert np.allclose(found["reduction"][0], positive)
    assert np.allclose(found["reduction"][1], EXPECTED), "one channel: summing before |.| changes nothing"
    for reason, candidate in by_hand.items():
        assert np.allclose(found[reason][0], candidate), reason


def test_the_scaled_difference_and_joint_scaling_divide_by_different_numbers() -> None:
    """|S_A| = [4, 0], |S_B| = [1, 3]: the difference [3, -3] over its largest magnitude 3, or over the maxima's 4."""
    s_a, s_b = np.array([[4.0, 0.0]]), np.array([[1.0, 3.0]])
    table = {reason: candidate for reason, _, candidate in checker._mistakes(s_a, s_b, discriminativity_map(s_a, s_b))}
    assert np.allclose(table["scaled difference"], [[1.0, -1.0]])
    assert np.allclose(table["joint scaling"], [[0.75, -0.75]])
    assert message(np.array([[0.75, -0.75]]), s_a, s_b) == (
        "Not yet right (joint scaling): both maps were divided by the same maximum; divide each by its own, so each "
        "spans [0, 1]."
    )
    assert message(np.array([[1.0, -1.0]]), s_a, s_b) == (
        "Not yet right (scaled difference): the difference was scaled; scale each map to [0, 1] first, then subtract."
    )


def test_an_all_zero_pair_gives_no_warning_and_no_mistake_matches_a_wrong_answer() -> None:
    zero = np.zeros((1, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = checker._mistakes(zero, zero, np.zeros((2, 3)))
        verdict = diagnose_discriminativity_map(np.full((2, 3), 0.5), zero, zero)
    assert all(np.array_equal(candidate, np.zeros((2, 3))) for _, _, candidate in table)
    assert verdict.reason == "values"


def test_min_max_of_a_constant_map_is_zero_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(checker._min_max(np.full((2, 2), 3.0)), np.zeros((2, 2)))
    assert np.allclose(checker._min_max(np.array([[1.0, 3.0], [2.0, 5.0]])), [[0.0, 0.5], [0.25, 1.0]])


# --- the test pair: a function right on the lesson's maps is tried again on maps without zeros ---------------------

EQUAL_A = np.array([[[2.0, 0.0, 1.0], [0.5, 1.0, 0.0]]])  # both maxima are 2: dividing by one maximum is right here
EQUAL_B = np.array([[[0.0, 2.0, 0.5], [1.0, 0.0, 0.25]]])


def magnitudes(s: np.ndarray) -> np.ndarray:
    return np.abs(s).sum(0)


def joint_scaling(s_a, s_b):
    a, b = magnitudes(s_a), magnitudes(s_b)
    top = max(a.max(), b.max())
    return a / top - b / top


def scaled_difference(s_a, s_b):
    difference = magnitudes(s_a) - magnitudes(s_b)
    return difference / np.abs(difference).max()


def positive_parts(s_a, s_b):
    a, b = np.clip(s_a, 0, None).sum(0), np.clip(s_b, 0, None).sum(0)
    return a / a.max() - b / b.max()


def summed_first(s_a, s_b):
    a, b = np.abs(s_a.sum(0)), np.abs(s_b.sum(0))
    return a / a.max() - b / b.max()


@pytest.mark.parametrize(
    ("answer", "reason", "text"),
    [
        (joint_scaling, "joint scaling", "both maps were divided by the same maximum; divide each by its own, so each "
         "spans [0, 1]."),
        (scaled_difference, "scaled difference", "the difference was scaled; scale each map to [0, 1] first, then "
         "subtract."),
        (positive_parts, "reduction", "only the positive parts were kept; take absolute values, then sum over the "
         "channels."),
    ],
    ids=["joint", "scaled difference", "positive parts"],
)  # fmt: skip
def test_a_function_right_only_on_the_given_maps_is_refused_on_the_test_pair(answer, reason, text) -> None:
    assert np.allclose(answer(EQUAL_A, EQUAL_B), discriminativity_map(EQUAL_A, EQUAL_B)), "right on these maps"
    verdict = diagnose_discriminativity_map(answer, EQUAL_A, EQUAL_B)
    assert (verdict.status, verdict.reason) == ("wrong", reason)
    assert verdict.message == f"Not yet right ({reason}): {AGAIN}{text}"


def test_channels_summed_before_the_magnitude_are_caught_on_non_negative_maps_by_the_test_pairs_signs() -> None:
    generator = np.random.default_rng(0)
    s_a, s_b = generator.random((3, 4, 5)), generator.random((3, 4, 5))
    assert np.allclose(summed_first(s_a, s_b), discriminativity_map(s_a, s_b)), "right on these maps"
    assert message(summed_first, s_a, s_b) == (
        f"Not yet right (reduction): {AGAIN}the channels were summed before taking absolute values; take |values| "
        "first, then sum."
    )


def test_a_function_right_on_both_pairs_gets_the_first_verdict() -> None:
    assert diagnose_discriminativity_map(discriminativity_map, EQUAL_A, EQUAL_B).message == RIGHT


@pytest.mark.parametrize(
    ("saliency", "dtype"),
    [
        (np.zeros((2, 3)), np.float64),
        (np.zeros((2, 3), dtype=np.float32), np.float32),
        (np.zeros((2, 3), dtype=np.int64), np.float64),
        (torch.zeros(2, 3), torch.float32),
        (torch.zeros(2, 3, dtype=torch.float64), torch.float64),
        (torch.zeros(2, 3, dtype=torch.int64), torch.float64),
    ],
    ids=["float64 array", "float32 array", "int array", "float32 tensor", "float64 tensor", "int tensor"],
)
def test_the_test_pair_keeps_a_float_type_and_makes_an_integer_one_float64(saliency, dtype) -> None:
    for seed in (0, 1):
        probe = checker._probe(saliency, seed=seed)
        assert type(probe) is type(saliency) and probe.dtype == dtype and tuple(probe.shape) == (2, 3)


def test_the_test_pair_has_signed_values_and_maxima_three_times_apart() -> None:
    """Its magnitudes lie in [0.5, 1.5] (seed 0) and [1.5, 4.5] (seed 1), with both signs: the values seeded."""
    first, second = (np.asarray(checker._probe(np.zeros((8, 8)), seed=seed)) for seed in (0, 1))
    assert 0.5 <= np.abs(first).min() and np.abs(first).max() <= 1.5
    assert 1.5 <= np.abs(second).min() and np.abs(second).max() <= 4.5
    for probe in (first, second):
        assert 16 <= (probe < 0).sum() <= 48, "about half the values negative"
    assert np.allclose(first[0, :3], [-1.470053, -1.20781986, -0.95938294])
    assert np.allclose(checker._probe(np.zeros((2, 3)), seed=1)[0], [1.68315982, -2.17366352, -2.20275754])


def test_the_checker_prints_the_label_then_the_verdict(capsys) -> None:
    assert check_discriminativity_map(EXPECTED, S_A, S_B).message == RIGHT
    assert capsys.readouterr().out == RIGHT + "\n"
    check_discriminativity_map(EXPECTED, S_A, S_B, label="GBP")
    assert capsys.readouterr().out == f"GBP: {RIGHT}\n"
    with pytest.raises(AnswerCheckError) as error:
        check_discriminativity_map(-EXPECTED, S_A, S_B, label="GBP")
    assert str(error.value) == (
        "GBP: Not yet right (sign): the answer is S_B - S_A: the classes are in the wrong order. Put class A first "
        "(red = A, blue = B)."
    )


def test_the_learners_function_gets_copies_of_the_maps_as_they_were_given() -> None:
    seen = []

    def spy(s_a, s_b):
        seen.append((type(s_a), s_a.dtype, type(s_b)))
        result = discriminativity_map(s_a, s_b)
        s_a[...] = 0
        return result

    tensor_a = torch.from_numpy(S_A.copy())
    assert diagnose_discriminativity_map(spy, tensor_a, S_B).passed
    assert seen[0] == (torch.Tensor, torch.float64, np.ndarray) and len(seen) == 2, "run on the maps and the test pair"
    assert torch.equal(tensor_a, torch.from_numpy(S_A))


def test_the_learners_function_cannot_change_numpy_maps_either() -> None:
    s_a, s_b = S_A.copy(), S_B.copy()

    def vandal(a, b):
        result = discriminativity_map(a, b)
        a[...] = 0
        b[...] = 0
        return result

    assert diagnose_discriminativity_map(vandal, s_a, s_b).message == RIGHT
    assert np.array_equal(s_a, S_A) and np.array_equal(s_b, S_B)


def test_the_test_pair_is_placed_on_the_maps_device() -> None:
    probe = checker._probe(torch.zeros(2, 3, device="meta"), seed=0)
    assert probe.device.type == "meta" and probe.dtype == torch.float32


def test_the_tolerance_is_absolute_not_relative_to_each_value() -> None:
    """1.05e-4 off at a pixel whose value is 1 is refused (a relative tolerance of 1e-5 would let it pass)."""
    answer = EXPECTED.copy()
    answer[0, 0] -= 1.05e-4
    assert diagnose_discriminativity_map(answer, S_A, S_B).reason == "values"


@pytest.mark.parametrize("end", [-1 - checker._TOLERANCE, 1 + checker._TOLERANCE])
def test_values_at_one_plus_the_tolerance_are_still_within_range(end) -> None:
    answer = np.array([[end, 0.5, 0.5], [0.5, 0.5, 0.5]])
    assert diagnose_discriminativity_map(answer, S_A, S_B).reason == "values"


def test_maps_whose_maxima_are_below_one_are_still_divided_in_the_table() -> None:
    """|S_A| = [0.4, 0], |S_B| = [0.1, 0.3]: joint scaling divides [0.3, -0.3] by 0.4, the scaled difference by 0.3."""
    s_a, s_b = np.array([[0.4, 0.0]]), np.array([[0.1, 0.3]])
    table = {reason: candidate for reason, _, candidate in checker._mistakes(s_a, s_b, discriminativity_map(s_a, s_b))}
    assert np.allclose(table["joint scaling"], [[0.75, -0.75]])
    assert np.allclose(table["scaled difference"], [[1.0, -1.0]])


def test_a_function_wrong_only_on_the_test_pair_is_told_where_it_differs_there() -> None:
    def right_only_with_zeros(s_a, s_b):
        shift = 0.0 if (np.asarray(s_a) == 0).any() else 0.01
        return discriminativity_map(s_a, s_b) + shift

    probe_a, probe_b = checker._probe(S_A, seed=0), checker._probe(S_B, seed=1)
    wanted = discriminativity_map(probe_a, probe_b)[0, 0]
    assert message(right_only_with_zeros) == (
        f"Not yet right (values): {AGAIN}the largest difference is at pixel (0, 0): expected {wanted:.4f}, got "
        f"{wanted + 0.01:.4f}; check each step: |values| summed over channels, divided by the map's own maximum, then "
        "S_A - S_B."
    )


def test_an_answer_that_is_no_map_is_told_what_to_return() -> None:
    assert message("a map") == (
        "Not yet right (type): the answer is a str; return the map as an H x W numpy array or torch tensor of "
        "S_A - S_B."
    )


TABLE_TEXTS = {
    "sign": "the answer is S_B - S_A: the classes are in the wrong order. Put class A first (red = A, blue = B).",
    "not scaled": "the maps were not scaled: divide each map by its own maximum (to [0, 1]) before subtracting.",
    "not scaled, reversed": "the maps were not scaled, and the classes are in the wrong order: scale each map to "
    "[0, 1], then S_A - S_B.",
    "min-max": "each map's minimum was subtracted; divide by the maximum only, so that zero stays zero.",
    "positive parts": "only the positive parts were kept; take absolute values, then sum over the channels.",
    "summed first": "the channels were summed before taking absolute values; take |values| first, then sum.",
    "not subtracted": "the answer is S_A alone, scaled; subtract the scaled S_B.",
    "zero": "the answer is zero everywhere: was a map subtracted from itself? Use S_A for class A and S_B for class B.",
}


def test_each_table_mistake_reads_as_written() -> None:
    generator = torch.Generator().manual_seed(3)
    s_a, s_b = torch.randn(1, 3, 8, 8, generator=generator), 5 * torch.randn(1, 3, 8, 8, generator=generator)
    a, b = (np.abs(s.numpy()[0]).sum(0) for s in (s_a, s_b))
    positive_a, positive_b = (np.clip(s.numpy()[0], 0, None).sum(0) for s in (s_a, s_b))
    summed_a, summed_b = (np.abs(s.numpy()[0].sum(0)) for s in (s_a, s_b))

    def min_max(m):
        return (m - m.min()) / (m.max() - m.min())

    answers = {
        "sign": b / b.max() - a / a.max(),
        "not scaled": a - b,
        "not scaled, reversed": b - a,
        "min-max": min_max(a) - min_max(b),
        "positive parts": positive_a / positive_a.max() - positive_b / positive_b.max(),
        "summed first": summed_a / summed_a.max() - summed_b / summed_b.max(),
        "not subtracted": a / a.max(),
        "zero": np.zeros((8, 8)),
    }
    for name, answer in answers.items():
        reason = {"not scaled, reversed": "not scaled", "positive parts": "reduction", "summed first": "reduction"}
        reason = reason.get(name, name)
        assert message(answer, s_a, s_b) == f"Not yet right ({reason}): {TABLE_TEXTS[name]}", name
