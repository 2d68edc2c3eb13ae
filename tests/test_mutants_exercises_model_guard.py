"""The model guard (utils/exercises/_model_guard.py), line by line: each change a learner's function can make to its
copy of the model is named with the exact line the learner sees, at the module where it happened (mutation testing,
issue 26)."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
import torch
from _shared import refuses
from torch import nn

from utils.exercises._model_guard import copy_for_learner, model_change


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).eval()


def changed(change: Any, model: nn.Module | None = None) -> tuple[str, str] | None:
    """``model_change`` after ``change(used)`` ran on a copy of ``model`` (``net()`` when none is given)."""
    model = net() if model is None else model
    used = copy_for_learner(model)
    change(used)
    return model_change(model, used)


MODULES = (
    "your function changed the model's modules (at {}: replaced, added, removed, or a setting such as inplace "
    "changed); build what you need beside the model, never inside it."
)


# --- copying ---------------------------------------------------------------------------------------------------


def test_a_model_that_cannot_be_copied_is_refused_with_the_copy_error_in_one_line() -> None:
    model = net()
    model.lock = threading.Lock()  # type: ignore[assignment]
    try:
        copy.deepcopy(threading.Lock())
    except TypeError as error:
        why = f"TypeError: {error}"
    with refuses(
        TypeError,
        f"model cannot be copied for the check ({why}); give the checker a plain nn.Module such as load_model().model.",
    ):
        copy_for_learner(model)


def test_an_untouched_copy_is_no_change() -> None:
    assert changed(lambda used: None) is None


# --- the modules -------------------------------------------------------------------------------------------------


class ReLU(nn.Module):
    """Another class that prints as nn.ReLU does: only its type tells them apart."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)


def test_a_module_replaced_by_another_class_with_the_same_repr_is_named() -> None:
    def replace(used: nn.Sequential) -> None:
        used[1] = ReLU()

    assert repr(ReLU()) == repr(nn.ReLU())
    assert changed(replace) == ("modules", MODULES.format("'1'"))


def test_a_replaced_forward_is_named_at_its_module_and_at_the_model() -> None:
    def patch_layer(used: nn.Sequential) -> None:
        used[2].forward = lambda x: x

    def patch_model(used: nn.Sequential) -> None:
        used.forward = lambda x: x

    assert changed(patch_layer) == ("modules", MODULES.format("'2'"))
    assert changed(patch_model) == ("modules", MODULES.format("'the model'"))


def test_a_module_added_at_the_end_is_named_as_a_module() -> None:
    assert changed(lambda used: used.append(nn.Identity())) == ("modules", MODULES.format("'a module'"))


def test_a_removed_buffer_is_named() -> None:
    model = nn.Sequential(nn.BatchNorm1d(3)).eval()

    def remove(used: nn.Sequential) -> None:
        used[0].running_mean = None

    assert changed(remove, model) == (
        "modules",
        "your function removed 0.running_mean from the model; build what you need beside the model.",
    )


class Tagged(nn.Module):
    """A module whose state holds a non-tensor entry (its extra state), before the weights of the next layer."""

    def get_extra_state(self) -> dict[str, int]:
        return {"version": 1}

    def set_extra_state(self, state: Any) -> None:
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_weights_after_an_extra_state_entry_are_still_compared() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(Tagged(), nn.Linear(2, 2))
    assert next(iter(model.state_dict())) == "0._extra_state"

    def zero(used: nn.Sequential) -> None:
        with torch.no_grad():
            used[1].weight.zero_()

    assert changed(zero, model) == (
        "weights",
        "your function changed the model's values (1.weight); an in-place operation on a weight or buffer (zero_(), "
        "+=, a training step) changes the model itself. Read them, never write them.",
    )


# --- dtype, requires_grad, mode ------------------------------------------------------------------------------------


def test_a_converted_model_gets_the_whole_line() -> None:
    assert changed(lambda used: used.double()) == (
        "dtype",
        "your function converted the model: 0.weight is now torch.float64 on cpu, was torch.float32 on cpu "
        "(model.double(), .half() and .to(...) change the model itself, for the rest of the lesson); compute in the "
        "model's own dtype, or convert a copy: copy.deepcopy(model).double().",
    )


def test_a_frozen_weight_gets_the_whole_line() -> None:
    assert changed(lambda used: used[2].bias.requires_grad_(False)) == (
        "requires_grad",
        "your function set 2.bias.requires_grad to False (requires_grad_ changes the model itself); leave it, and "
        "take gradients with torch.autograd.grad.",
    )


TRAIN_MODE = (
    "your function left the model in {0} mode (model.{0}() changes the model itself; at {1}); leave the mode as you "
    "found it."
)


def test_the_mode_left_is_named_with_where() -> None:
    assert changed(lambda used: used.train()) == ("train mode", TRAIN_MODE.format("train", "'the model'"))
    assert changed(lambda used: used[2].train()) == ("train mode", TRAIN_MODE.format("train", "'2'"))
    assert changed(lambda used: used.eval(), net().train()) == ("train mode", TRAIN_MODE.format("eval", "'the model'"))


# --- hooks and gradients -------------------------------------------------------------------------------------------

HOOKS = "your function left a hook on the model (at {}); keep each handle and call handle.remove() in a finally block."


def test_a_hook_on_the_model_itself_is_named_there() -> None:
    assert changed(lambda used: used.register_forward_hook(lambda *args: None)) == (
        "hooks left",
        HOOKS.format("'the model'"),
    )


def test_a_hook_on_a_weight_is_named_at_its_own_layer() -> None:
    assert changed(lambda used: used[2].weight.register_hook(lambda grad: grad)) == ("hooks left", HOOKS.format("'2'"))


def test_a_forward_hook_and_a_weight_hook_on_one_layer_are_both_counted() -> None:
    def hook_twice(used: nn.Sequential) -> None:
        used[0].register_forward_hook(lambda *args: None)
        used[0].weight.register_hook(lambda grad: grad)

    assert changed(hook_twice) == ("hooks left", HOOKS.format("'0'"))


def test_a_gradient_hook_and_an_accumulation_hook_on_one_weight_are_both_counted() -> None:
    def hook_twice(used: nn.Sequential) -> None:
        used[0].weight.register_hook(lambda grad: grad)
        used[0].weight.register_post_accumulate_grad_hook(lambda parameter: None)

    assert changed(hook_twice) == ("hooks left", HOOKS.format("'0'"))


@pytest.mark.parametrize("first", ["0.weight", "2.bias"])
def test_gradients_left_are_named_by_the_first_parameter_holding_one(first: str) -> None:
    def backward(used: nn.Sequential) -> None:
        score = used(torch.ones(1, 2))[0, 0]
        if first == "2.bias":
            score = score.detach() + used[2].bias.sum()
        score.backward()

    assert changed(backward) == (
        "grad left",
        f"your function left gradients in the parameters' .grad ({first}, ...): .backward() stores them in the model "
        "and adds to them at every call. Use torch.autograd.grad(score, A), which returns the gradient and stores "
        "nothing.",
    )
