"""Lesson 08's checker (utils/exercises/faithfulness.py), line by line: the exact line a learner reads for each
plausible wrong curve, the tolerance a right one is given, and the inputs the learner's function receives
(make mutation, issue 26). The setting is tests/test_exercises_08_faithfulness.py's linear classifier on a 12 x 12
image, whose blurred image already gives the target class 0.284 and the whole image 0.060."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import utils.exercises.faithfulness as curve_checker
from utils.exercises import AnswerCheckError
from utils.exercises.faithfulness import check_insertion_curve, diagnose_insertion_curve
from utils.faithfulness import insertion_deletion

STEPS = 4
TARGET = 2
RIGHT = "Correct: your insertion curve matches the reference (AUC 0.147)."
WANT = "return the steps + 1 probabilities as a 1-D numpy array, tensor or list of numbers."


def setting() -> tuple[nn.Module, torch.Tensor, np.ndarray]:
    """As tests/test_exercises_08_faithfulness.py: large weights, a bright left half, a random map."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 3))
    with torch.no_grad():
        model[1].weight.mul_(0.5)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    x[..., :6] += 3.0
    return model.eval(), x, np.random.default_rng(1).random((12, 12))


@pytest.fixture(scope="module")
def case():
    model, x, saliency = setting()
    return model, x, saliency, insertion_deletion(model, x, saliency, TARGET, steps=STEPS, baseline="blur")


def message(answer, case, **kwargs) -> str:
    model, x, saliency, _ = case
    return diagnose_insertion_curve(answer, model, x, saliency, TARGET, steps=kwargs.pop("steps", STEPS)).message


def test_the_reference_passes_with_its_auc_and_the_curve_is_the_one_written_here(case) -> None:
    insertion = case[3].insertion
    assert np.allclose(insertion, [0.28427724, 0.19831885, 0.1183606, 0.09813367, 0.06016805])
    for answer in (insertion, list(insertion), tuple(float(v) for v in insertion), torch.tensor(insertion)):
        assert message(answer, case) == RIGHT


def test_a_curve_within_the_tolerance_passes_and_one_beyond_it_is_told_where_they_part(case) -> None:
    insertion = case[3].insertion
    assert message(insertion + np.array([0, 0, 0.009, 0, -0.009]), case) == RIGHT
    assert message(insertion + np.array([0, 0, 0.02, 0, 0]), case) == (
        "Not yet right (values): the curves part at step 2 (2/4 of the pixels revealed): yours gives 0.138, the "
        "reference 0.118. Check how many pixels each step reveals and where they come from."
    )
    assert message(np.zeros(5), case).startswith("Not yet right (values): the curves part at step 0 (0/4 of the")


@pytest.mark.parametrize(("size", "got"), [(4, 4), (6, 6), (1, 1)])
def test_a_curve_of_another_length_says_how_many_values_it_needs(case, size, got) -> None:
    answer = np.full(size, 0.1) if size > 1 else np.array(0.1)  # a 0-D array is one value
    assert message(answer, case) == (
        f"Not yet right (length): got {got} values; a curve with steps=4 has 5: the blurred image (0 pixels revealed) "
        "first, then one value after each step, ending with the whole image."
    )


def test_the_curve_times_minus_one_or_a_hundred_is_named(case) -> None:
    insertion = case[3].insertion
    assert message(-insertion, case) == (
        "Not yet right (sign): the curve is the probabilities times -1; return the class probability itself, between "
        "0 and 1."
    )
    assert message(100 * insertion, case) == (
        "Not yet right (percent): the curve is in percent; return the probability as a fraction between 0 and 1."
    )


def test_scores_outside_zero_to_one_are_logits_and_their_range_is_printed(case) -> None:
    assert message(10 * case[3].insertion - 3, case) == (
        "Not yet right (logits): values from -2.40 to -0.16: use the class probability, torch.softmax(logits, "
        "dim=1)[:, target], not the raw scores."
    )
    assert message(np.array([0.5, 0.4, 0.3, 0.2, 1.5]), case).startswith(
        "Not yet right (logits): values from 0.20 to 1.50: use the class probability"
    )


@pytest.mark.parametrize("end", [-0.005, 1.005])
def test_values_just_outside_zero_to_one_within_the_tolerance_are_not_logits(case, end) -> None:
    answer = case[3].insertion.copy()
    answer[2] = end
    assert diagnose_insertion_curve(answer, *case[:3], TARGET, steps=STEPS).reason == "values"


def test_the_deletion_curve_reversed_order_and_zero_baseline_are_named(case) -> None:
    model, x, saliency, reference = case
    assert message(reference.deletion, case) == (
        "Not yet right (deletion): this is the deletion curve: start from the blurred image and REVEAL x's pixels, "
        "rather than removing them from x."
    )
    reversed_order = insertion_deletion(model, x, -saliency, TARGET, steps=STEPS, baseline="blur").insertion
    assert message(reversed_order, case) == (
        "Not yet right (order): the pixels come in reverse order: reveal the map's HIGHEST values first "
        "(np.argsort(-values) or descending=True)."
    )
    on_zeros = insertion_deletion(model, x, saliency, TARGET, steps=STEPS, baseline="zero").insertion
    assert message(on_zeros, case) == (
        "Not yet right (baseline): the pixels are revealed on zeros: start from replacement(x, 'blur'), the blurred "
        "image."
    )


def test_a_tensor_map_is_reversed_too(case) -> None:
    model, x, saliency, _ = case
    tensor = torch.from_numpy(saliency).float()
    reversed_order = insertion_deletion(model, x, -tensor, TARGET, steps=STEPS, baseline="blur").insertion
    assert diagnose_insertion_curve(reversed_order, model, x, tensor, TARGET, steps=STEPS).reason == "order"


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (np.ones((2, 3)), f"Not yet right (type): the answer has shape (2, 3); {WANT}"),
        (np.ones((1, 5)), f"Not yet right (type): the answer has shape (1, 5); {WANT}"),
        (np.array([]), f"Not yet right (type): the answer has shape (0,); {WANT}"),
        ([], f"Not yet right (type): the answer has shape (0,); {WANT}"),
        ([0.1, "a"], f"Not yet right (type): the list holds something other than numbers; {WANT}"),
        ((0.1, None), f"Not yet right (type): the list holds something other than numbers; {WANT}"),
        ([0.1, np.nan, 0.1, 0.1, 0.1], "Not yet right (type): the curve contains NaN or infinite values."),
        (np.full(5, np.inf), "Not yet right (type): the curve contains NaN or infinite values."),
        ("0.1", f"Not yet right (type): the answer is a str; {WANT}"),
    ],
    ids=["2-D", "row", "empty", "empty list", "list of text", "tuple with None", "nan", "inf", "str"],
)
def test_an_answer_that_is_not_a_curve_gets_one_line(case, answer, text) -> None:
    assert message(lambda *args: answer, case) == text


def test_a_list_of_tensors_is_a_curve(case) -> None:
    assert message([torch.tensor(v) for v in case[3].insertion], case) == RIGHT


def test_the_learners_function_gets_copies_and_the_number_of_steps(case) -> None:
    model, x, saliency, reference = case
    seen = {}

    def spy(model_given, x_given, saliency_given, target, steps):
        seen.update(model=model_given, x=x_given, target=target, steps=steps, kind=type(saliency_given))
        values = insertion_deletion(model_given, x_given, saliency_given, target, steps=steps, baseline="blur")
        x_given.zero_()
        saliency_given.zero_()
        return values.insertion

    tensor = torch.from_numpy(saliency.copy())
    assert diagnose_insertion_curve(spy, model, x, tensor, TARGET, steps=STEPS).message == RIGHT
    assert seen["model"] is not model and seen["x"] is not x and (seen["target"], seen["steps"]) == (TARGET, STEPS)
    assert seen["kind"] is torch.Tensor and torch.equal(tensor, torch.from_numpy(saliency))
    assert torch.equal(x, setting()[1])


def test_eight_steps_by_default(case) -> None:
    model, x, saliency, _ = case
    steps_seen = []

    def answer(model, x, saliency, target, steps):
        steps_seen.append(steps)
        return insertion_deletion(model, x, saliency, target, steps=steps, baseline="blur").insertion

    assert diagnose_insertion_curve(answer, model, x, saliency, TARGET).passed
    assert check_insertion_curve(answer, model, x, saliency, TARGET, steps=STEPS).passed
    assert check_insertion_curve(answer, model, x, saliency, TARGET, label="toy").passed
    assert steps_seen == [8, 4, 8]
    with pytest.raises(AnswerCheckError, match=r"^Not yet right \(length\): got 5 values; a curve with steps=8 has 9"):
        check_insertion_curve(case[3].insertion, model, x, saliency, TARGET)


def test_a_model_changed_by_the_answer_is_named_and_the_lessons_model_is_not(case) -> None:
    model, x, saliency, reference = case

    def left_in_train_mode(model, *args):
        model.train()
        return reference.insertion

    assert message(left_in_train_mode, case) == (
        "Not yet right (train mode): your function left the model in train mode (model.train() changes the model "
        "itself; at 'the model'); leave the mode as you found it. The checker ran your function on a copy: the "
        "lesson's model is unchanged."
    )
    assert not model.training


def test_x_must_be_a_tensor(case) -> None:
    model, x, saliency, _ = case
    with pytest.raises(TypeError) as error:
        diagnose_insertion_curve(None, model, x.numpy(), saliency, TARGET)
    assert str(error.value) == "x must be a torch.Tensor (the model input, 1 x C x H x W), not ndarray."


def test_the_checker_prints_the_label_then_the_verdict(case, capsys) -> None:
    model, x, saliency, reference = case
    assert check_insertion_curve(reference.insertion, model, x, saliency, TARGET, steps=STEPS).message == RIGHT
    assert capsys.readouterr().out == RIGHT + "\n"
    check_insertion_curve(reference.insertion, model, x, saliency, TARGET, steps=STEPS, label="GBP")
    assert capsys.readouterr().out == f"GBP: {RIGHT}\n"


def test_maps_of_other_types_are_reversed_as_float64(case) -> None:
    """A uint8 map negated in uint8 wraps around (0 stays lowest); a bfloat16 tensor has no numpy form."""
    model, x, _, _ = case
    bytes_map = (np.arange(144).reshape(12, 12) % 7).astype(np.uint8)
    bf16_map = torch.from_numpy(np.random.default_rng(2).random((12, 12))).to(torch.bfloat16)
    for saliency, negated in ((bytes_map, -bytes_map.astype(np.float64)), (bf16_map, -bf16_map.double())):
        reversed_order = insertion_deletion(model, x, negated, TARGET, steps=STEPS, baseline="blur").insertion
        assert diagnose_insertion_curve(reversed_order, model, x, saliency, TARGET, steps=STEPS).reason == "order"


@pytest.mark.parametrize("end", [-curve_checker._TOLERANCE, 1 + curve_checker._TOLERANCE])
def test_values_at_exactly_the_tolerance_outside_zero_to_one_are_not_logits(case, end) -> None:
    answer = case[3].insertion.copy()
    answer[2] = end
    assert diagnose_insertion_curve(answer, *case[:3], TARGET, steps=STEPS).reason == "values"


def test_percent_means_one_hundred_times_within_the_tolerance(case) -> None:
    """101 x (the curve + 0.009), divided by 100, is 1.01 x (the curve + 0.009): over 0.01 off at 0.284."""
    answer = 101 * (case[3].insertion + 0.009)
    assert diagnose_insertion_curve(answer, *case[:3], TARGET, steps=STEPS).reason == "logits"
