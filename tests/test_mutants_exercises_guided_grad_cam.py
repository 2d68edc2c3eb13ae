"""Lesson 03's checker (utils/exercises/guided_grad_cam.py), line by line: each usual mistake, written here from
scratch rather than taken from the checker's own table, gets the exact line a learner sees; the inputs' refusals are
whole lines (mutation testing, issue 26)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from _shared import refuses

from utils.exercises import AnswerCheckError, Verdict
from utils.exercises.guided_grad_cam import check_guided_grad_cam, diagnose_guided_grad_cam, guided_grad_cam_bilinear

SIZE = (16, 16)


def maps() -> tuple[torch.Tensor, torch.Tensor]:
    """GBP 1 x 3 x 16 x 16 with both signs; a 3 x 3 Grad-CAM with zeros and a maximum of 2.5, not 1."""
    gbp = torch.randn(1, 3, *SIZE, generator=torch.Generator().manual_seed(0))
    cam = torch.tensor([[[[0.0, 0.5, 0.0], [1.0, 0.0, 2.5], [0.0, 0.3, 1.2]]]])
    return gbp, cam


def up(cam: torch.Tensor, mode: str = "bilinear", **options: Any) -> torch.Tensor:
    return F.interpolate(cam, size=SIZE, mode=mode, **options)


def product(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return g * up(c)


MODE = 'Grad-CAM was upsampled with mode={!r}; the paper\'s figure uses mode="bilinear".'

MISTAKES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]] = {
    "nearest": (lambda g, c: g * up(c, "nearest"), MODE.format("nearest")),
    "nearest-exact": (lambda g, c: g * up(c, "nearest-exact"), MODE.format("nearest-exact")),
    "bicubic": (lambda g, c: g * up(c, "bicubic"), MODE.format("bicubic")),
    "area": (lambda g, c: g * up(c, "area"), MODE.format("area")),
    "align_corners": (
        lambda g, c: g * up(c, align_corners=True),
        "align_corners=True moves the coarse cells' centres to the image's corners; leave it at its default (False), "
        "as utils.saliency and Captum do.",
    ),
    "normalised Grad-CAM": (
        lambda g, c: g * up(c) / c.max(),
        "Grad-CAM was divided by its maximum; Guided Grad-CAM multiplies by the map itself (scale only the picture "
        "you draw).",
    ),
    "normalised product": (
        lambda g, c: product(g, c) / product(g, c).abs().max(),
        "the product was divided by its maximum; return it unscaled (scale only the picture you draw).",
    ),
    "sum instead of product": (
        lambda g, c: g + up(c),
        "GBP and Grad-CAM were added; Guided Grad-CAM multiplies them pixel by pixel.",
    ),
    "absolute value": (
        lambda g, c: product(g, c).abs(),
        "the answer is |GBP x Grad-CAM|; keep the signs (a picture may take |.| later).",
    ),
    "Grad-CAM only": (
        lambda g, c: up(c).expand_as(g),
        "the answer is the upsampled Grad-CAM alone; multiply it with GBP.",
    ),
    "GBP only": (lambda g, c: g.clone(), "the answer is GBP alone; multiply it with the upsampled Grad-CAM."),
}


@pytest.mark.parametrize("reason", sorted(MISTAKES))
def test_each_usual_mistake_gets_its_line(reason: str) -> None:
    answer, text = MISTAKES[reason]
    assert diagnose_guided_grad_cam(answer, *maps()) == Verdict("wrong", reason, f"Not yet right ({reason}): {text}")


def test_a_product_normalised_after_a_zero_grad_cam_is_no_mistake_of_scale() -> None:
    """A Grad-CAM of zeros: the reference is zeros, and so is any answer built from it."""
    gbp, _ = maps()
    zeros = torch.zeros(1, 1, 3, 3)
    assert diagnose_guided_grad_cam(lambda g, c: g * up(c), gbp, zeros).passed


def test_the_right_answer_passes_with_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_guided_grad_cam(lambda g, c: g * up(c), *maps(), label="squirrel").passed
    assert capsys.readouterr().out == (
        "squirrel: Correct: your Guided Grad-CAM equals GBP x bilinear-upsampled Grad-CAM.\n"
    )


def test_an_answer_in_float64_passes_and_one_off_by_a_little_more_than_the_tolerance_does_not() -> None:
    gbp, cam = maps()
    exact = gbp.double() * up(cam.double())
    assert diagnose_guided_grad_cam(lambda g, c: exact, gbp, cam).passed
    peak = float(exact.abs().max())
    assert diagnose_guided_grad_cam(lambda g, c: exact + 0.5e-5 * peak, gbp, cam).passed
    assert diagnose_guided_grad_cam(lambda g, c: exact + 2e-5 * peak, gbp, cam).reason == "values"


def test_the_largest_difference_is_named_where_it_is() -> None:
    gbp, cam = maps()

    def off_at_one_pixel(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        answer = product(g, c)
        answer[0, 2, 5, 7] += 1.0
        return answer

    expected = float(product(gbp.double(), cam.double())[0, 2, 5, 7])
    assert diagnose_guided_grad_cam(off_at_one_pixel, gbp, cam).message == (
        f"Not yet right (values): the largest difference is at (0, 2, 5, 7): expected {expected:.4g}, got "
        f'{expected + 1:.4g}; compute gbp * F.interpolate(cam, size=gbp.shape[-2:], mode="bilinear").'
    )


def test_infinite_values_get_their_line() -> None:
    assert diagnose_guided_grad_cam(lambda g, c: product(g, c) / 0.0, *maps()) == Verdict(
        "wrong",
        "not finite",
        "Not yet right (not finite): the answer contains NaN or infinite values; do not divide by a maximum that may "
        "be 0.",
    )


CHANNELS = (
    "Not yet right (channels): the answer has one channel (shape {}); keep GBP's 3 channels (the one-channel "
    "Grad-CAM broadcasts over them)."
)


def test_one_channel_is_named_as_such_in_any_layout() -> None:
    one = lambda g, c: product(g, c).sum(1, keepdim=True)  # noqa: E731
    assert diagnose_guided_grad_cam(one, *maps()).message == CHANNELS.format("(1, 1, 16, 16)")
    assert diagnose_guided_grad_cam(lambda g, c: one(g, c)[0, 0], *maps()).message == CHANNELS.format("(16, 16)")


HINT = ' Upsample Grad-CAM to GBP\'s size first, with F.interpolate(cam, size=..., mode="bilinear").'


def test_a_wrong_shape_gets_the_upsampling_hint_only_when_the_grid_differs() -> None:
    gbp, cam = maps()
    cases = {
        (1, 3, 3, 3): lambda g, c: g[..., :3, :3] * c,
        (4, 4): lambda g, c: torch.zeros(4, 4),
        (2, 16, 16): lambda g, c: product(g, c)[0, :2],
        (768,): lambda g, c: product(g, c).flatten(),
    }
    for shape, answer in cases.items():
        hint = HINT if shape[-2:] != SIZE and len(shape) >= 2 else ""
        assert diagnose_guided_grad_cam(answer, gbp, cam) == Verdict(
            "wrong", "shape", f"Not yet right (shape): the answer has shape {shape}, expected (1, 3, 16, 16).{hint}"
        ), shape


def test_the_answer_gets_copies_and_the_reference_is_a_new_tensor() -> None:
    gbp, cam = maps()
    kept = gbp.clone(), cam.clone()

    def vandal(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c.zero_()
        return g.mul_(2)

    assert diagnose_guided_grad_cam(vandal, gbp, cam).reason == "values"
    reference = guided_grad_cam_bilinear(gbp, cam)
    reference += 1
    assert torch.equal(gbp, kept[0]) and torch.equal(cam, kept[1])


def test_an_unwritten_answer_stops_the_check() -> None:
    with refuses(AnswerCheckError, "Not attempted: no answer yet; write it in the cell marked YOUR ANSWER."):
        check_guided_grad_cam(None, *maps())


# --- the inputs ----------------------------------------------------------------------------------------------


def test_gbp_and_cam_of_the_wrong_kind_are_refused_with_one_line() -> None:
    gbp, cam = maps()
    gbp_line = "gbp must be a 1 x C x H x W tensor (Guided Backpropagation), got {}."
    cam_line = "cam must be a 1 x 1 x h x w tensor (Grad-CAM at the layer's grid), got {}."
    with refuses(ValueError, gbp_line.format("a list")):
        guided_grad_cam_bilinear([1.0], cam)  # type: ignore[arg-type]
    with refuses(ValueError, gbp_line.format("shape (3, 16, 16)")):
        diagnose_guided_grad_cam(None, gbp[0], cam)
    with refuses(ValueError, cam_line.format("an ndarray")):
        guided_grad_cam_bilinear(gbp, cam.numpy())  # type: ignore[arg-type]
    with refuses(ValueError, cam_line.format("shape (1, 3, 3)")):
        guided_grad_cam_bilinear(gbp, cam[0])
    with refuses(ValueError, cam_line.format("shape (1, 2, 3, 3)")):
        diagnose_guided_grad_cam(None, gbp, cam.expand(1, 2, 3, 3))


def test_values_that_are_not_finite_reals_are_refused_for_each_input() -> None:
    gbp, cam = maps()
    bad = {
        "NaN": lambda t: t.clone().fill_(float("nan")),
        "infinity": lambda t: t.clone().fill_(float("inf")),
        "integers": lambda t: t.round().to(torch.int64),
        "sparse": lambda t: t.to_sparse(),
    }
    for make in bad.values():
        with refuses(ValueError, "gbp must hold finite real numbers (a float tensor without NaN or infinity)."):
            guided_grad_cam_bilinear(make(gbp), cam)
        with refuses(ValueError, "cam must hold finite real numbers (a float tensor without NaN or infinity)."):
            diagnose_guided_grad_cam(None, gbp, make(cam))


def test_a_grad_cam_at_most_zero_divided_by_two_is_no_normalised_grad_cam() -> None:
    """A map whose maximum is 0 is not divided by anything: halving it is a wrong value, not a normalisation."""
    gbp, _ = maps()
    cam = -torch.tensor([[[[0.0, 0.5, 0.0], [1.0, 0.0, 2.5], [0.0, 0.3, 1.2]]]])
    assert diagnose_guided_grad_cam(lambda g, c: product(g, c) / 2, gbp, cam).reason == "values"


def test_against_a_zero_reference_the_tolerance_is_absolute() -> None:
    gbp, _ = maps()
    zeros = torch.zeros(1, 1, 3, 3)
    assert diagnose_guided_grad_cam(lambda g, c: torch.full_like(g, 0.5e-5), gbp, zeros).passed
    assert diagnose_guided_grad_cam(lambda g, c: torch.full_like(g, 1.5e-5), gbp, zeros).reason == "values"


def test_the_tolerance_is_a_fraction_of_the_maximum_with_no_relative_part() -> None:
    gbp, cam = maps()
    exact = gbp.double() * up(cam.double())
    where = exact.abs().argmax()
    off = exact.flatten().clone()
    off[where] += 1.5e-5 * off[where]
    assert diagnose_guided_grad_cam(lambda g, c: off.reshape(exact.shape), gbp, cam).reason == "values"


def test_an_answer_that_is_no_tensor_is_told_what_to_return() -> None:
    assert diagnose_guided_grad_cam(lambda g, c: "map", *maps()) == Verdict(
        "wrong", "type", "Not yet right (type): the answer is a str; return a torch tensor shaped like gbp."
    )
