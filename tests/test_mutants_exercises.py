"""What every checker shares (utils/exercises/__init__.py), line by line: which answers read as a verdict, the exact
line a learner sees for each kind of answer that is not a map, the image check's refusals and the report's
(mutation testing, issue 26)."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from _shared import refuses

from utils.exercises import (
    AnswerCheckError,
    Verdict,
    answer_array,
    answer_tensor,
    article,
    call_answer,
    check_image,
    correct,
    not_attempted,
    report,
    wrong,
)

GIVEN_A_VERDICT = (
    "Not yet right (verdict): the answer is {} that reads like a checker's verdict, not the value asked for; "
    "return the value itself and let the check cell judge it."
)


# --- what reads as a verdict ------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"passed": True}, {"status": "correct"}, {"passed": 1, "status": "x"}])
def test_a_dict_with_either_verdict_key_is_a_verdict(fields: dict[str, Any]) -> None:
    assert call_answer(fields).message == GIVEN_A_VERDICT.format("a dict")
    assert call_answer(lambda: fields).message == GIVEN_A_VERDICT.format("a dict")


def test_a_dict_without_them_is_an_answer_like_any_other() -> None:
    given = {"cat": 0.9, "dog": 0.1}
    assert call_answer(given) is given
    assert call_answer(lambda: given) is given


@pytest.mark.parametrize("name", ["passed", "status", "verdict"])
def test_an_object_with_any_one_verdict_field_is_a_verdict(name: str) -> None:
    given = SimpleNamespace(**{name: True})
    assert call_answer(given).message == GIVEN_A_VERDICT.format("a SimpleNamespace")
    assert call_answer(lambda: given).message == GIVEN_A_VERDICT.format("a SimpleNamespace")


def test_a_function_with_a_status_field_is_called_not_taken_for_a_verdict() -> None:
    def answer() -> int:
        return 3

    answer.status = "draft"  # type: ignore[attr-defined]
    assert call_answer(answer) == 3


class _Unreadable:
    """An object whose every attribute look-up raises something other than AttributeError."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} here")


def test_an_object_whose_attributes_raise_is_no_verdict() -> None:
    given = _Unreadable()
    assert call_answer(given) is given


@pytest.mark.parametrize("given", [correct("trust me."), AnswerCheckError("Correct")])
def test_a_verdict_given_or_returned_is_named_with_its_type(given: Any) -> None:
    name = article(type(given).__name__)
    assert call_answer(given) == Verdict("wrong", "verdict", GIVEN_A_VERDICT.format(name))
    assert call_answer(lambda: given) == Verdict("wrong", "verdict", GIVEN_A_VERDICT.format(name))


# --- the verdicts' fields and the placeholders -------------------------------------------------------


def test_the_three_verdicts_fields() -> None:
    assert correct("well done.") == Verdict("correct", "correct", "Correct: well done.")
    assert wrong("sign", "swapped.") == Verdict("wrong", "sign", "Not yet right (sign): swapped.")
    placeholder = Verdict(
        "not attempted", "not attempted", "Not attempted: no answer yet; write it in the cell marked YOUR ANSWER."
    )
    assert not_attempted() == placeholder
    assert [call_answer(given) for given in (None, ..., NotImplemented)] == [placeholder] * 3


def _raises_value_error() -> None:
    raise ValueError("bad map")


def _not_written() -> None:
    raise NotImplementedError


def test_a_function_without_a_name_is_called_your_function() -> None:
    assert call_answer(functools.partial(_raises_value_error)) == Verdict(
        "wrong", "raised", "Not yet right (raised): your function raised ValueError: bad map"
    )
    assert call_answer(functools.partial(_not_written)).message == (
        "Not attempted: your function raises NotImplementedError; write it in the cell marked YOUR ANSWER."
    )
    assert call_answer(_raises_value_error).message == (
        "Not yet right (raised): _raises_value_error raised ValueError: bad map"
    )


def test_the_article_follows_the_spoken_first_sound() -> None:
    assert [article(noun) for noun in ("XLA", "ndarray", "int", "Tensor", "object", "")] == [
        "a XLA",
        "an ndarray",
        "an int",
        "a Tensor",
        "an object",
        "an ",
    ]


# --- an answer that is not a map: the exact line ------------------------------------------------------


def test_a_boolean_tensor_and_a_boolean_array_are_named() -> None:
    for given, kind in ((torch.ones(2, 2, dtype=torch.bool), "tensor"), (np.ones((2, 2), dtype=bool), "array")):
        assert answer_array(given, "a map") == Verdict(
            "wrong",
            "type",
            f"Not yet right (type): the answer is a boolean {kind} (dtype bool): True/False, not "
            "numbers; return a map.",
        )


def test_a_complex_tensor_names_its_dtype_without_the_torch_prefix() -> None:
    verdict = answer_array(torch.ones(2, 2, dtype=torch.complex64), "a map")
    assert verdict == Verdict(
        "wrong",
        "type",
        "Not yet right (type): the answer is a complex tensor (dtype complex64); the map is real: return a map.",
    )


def test_a_meta_tensor_says_what_to_return() -> None:
    assert answer_array(torch.empty(2, 2, device="meta"), "an H x W map").message == (
        "Not yet right (type): the answer is a meta tensor: a shape without values; "
        "return an H x W map with its values."
    )


def test_a_tensor_numpy_cannot_read_is_named_with_numpys_words() -> None:
    given = torch.ones(2, 2, dtype=torch.float8_e4m3fn)
    try:
        given.numpy()
    except TypeError as error:
        why = str(error)
    else:  # pragma: no cover - a numpy that reads float8 would make this no test of the refusal
        pytest.fail("numpy now reads float8 tensors: pick another dtype it cannot read")
    assert answer_array(given, "a map") == Verdict(
        "wrong",
        "type",
        f"Not yet right (type): the answer is a tensor of dtype torch.float8_e4m3fn that numpy cannot read ({why}); "
        "return a map.",
    )


def test_a_bfloat16_tensor_is_read_as_its_values() -> None:
    values = answer_array(torch.tensor([[0.5, -2.0]], dtype=torch.bfloat16), "a map")
    assert isinstance(values, np.ndarray) and values.dtype == np.float64
    np.testing.assert_array_equal(values, [[0.5, -2.0]])


def test_strings_are_named_as_a_type_mistake() -> None:
    assert answer_array(np.array([["a"]]), "a map") == Verdict(
        "wrong", "type", "Not yet right (type): the answer is an array of dtype <U1; return a map."
    )
    assert answer_tensor("map", "a map") == Verdict(
        "wrong", "type", "Not yet right (type): the answer is a str; return a map."
    )


def test_the_array_is_a_new_one_and_the_answer_is_left_alone() -> None:
    given = np.arange(4.0).reshape(1, 1, 2, 2)
    values = answer_array(given, "a map")
    assert isinstance(values, np.ndarray) and values.shape == (2, 2)
    assert not np.shares_memory(values, given)
    values[0, 0] = 99.0
    assert given[0, 0, 0, 0] == 0.0
    tensor = answer_tensor(given, "a map")
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64 and tensor.shape == (2, 2)


def test_squeezing_stops_at_two_dimensions() -> None:
    assert answer_array(np.ones((1, 5)), "a map").shape == (1, 5)
    assert answer_array(np.ones((1, 1, 1, 5)), "a map").shape == (1, 5)
    assert answer_array(np.ones((1, 1, 3, 5)), "a map", squeeze=False).shape == (1, 1, 3, 5)


def test_squeeze_must_be_a_flag() -> None:
    with refuses(TypeError, "squeeze must be True or False, not 1."):
        answer_array(np.ones((2, 2)), "a map", squeeze=1)  # type: ignore[arg-type]


# --- the image check ---------------------------------------------------------------------------------


def test_an_integer_image_is_refused_as_not_float() -> None:
    with refuses(
        TypeError,
        "x must be a float torch tensor (the preprocessed image), not a torch.uint8 tensor of shape (1, 3, 4, 4).",
    ):
        check_image(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with refuses(TypeError, "image must be a float torch tensor (the preprocessed image), not 'cat'."):
        check_image("cat", "image")


def test_an_empty_image_is_refused_and_a_one_pixel_image_is_not() -> None:
    with refuses(ValueError, "x must be a model input of shape N x C x H x W, got shape (1, 3, 0, 4)."):
        check_image(torch.zeros(1, 3, 0, 4))
    pixel = torch.zeros(1, 1, 1, 1)
    assert check_image(pixel) is pixel


def test_a_nan_image_is_refused_with_its_line() -> None:
    with refuses(ValueError, "x contains NaN or infinite values; check the image and its preprocessing."):
        check_image(torch.full((1, 3, 2, 2), float("nan")))


# --- the report ----------------------------------------------------------------------------------------


def test_report_refuses_what_is_not_a_verdict_and_a_label_that_is_not_text() -> None:
    with refuses(TypeError, "verdict must be a Verdict from a diagnose_* function, not 'Correct'."):
        report("Correct")  # type: ignore[arg-type]
    with refuses(TypeError, "label must be a string (e.g. the method's name) or None, not int."):
        report(correct("fine."), 3)  # type: ignore[arg-type]


def test_report_prints_a_pass_and_raises_a_failure_with_its_label(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(correct("fine."), "GBP").passed
    assert report(correct("fine."), "").passed
    assert capsys.readouterr().out == "GBP: Correct: fine.\nCorrect: fine.\n"
    with refuses(AnswerCheckError, "GBP: Not yet right (sign): swapped."):
        report(wrong("sign", "swapped."), "GBP")
