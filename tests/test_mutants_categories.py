"""utils.categories: class names and indices, and the one-line messages for plain arguments, value by value.

The module's doctests show one case of each helper; these pin every branch a learner can reach, whole
messages included (a message is the module's output when the input is wrong).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _shared import refuses
from torch import nn

from utils.categories import (
    as_class_index,
    category_index,
    category_names,
    check_count,
    check_flag,
    check_model,
    check_real,
    describe,
    imagenet_categories,
)

NAMES = ("cat", "dog", "cup")


# --- class indices -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, message",
    [
        (torch.tensor(True), "A class must be an index or a category name, not a boolean tensor(True)."),
        (torch.tensor(2.0), "A class must be an index or a category name, not a tensor(2.)."),
        (torch.tensor(1 + 0j), "A class must be an index or a category name, not a tensor(1.+0.j)."),
        (torch.tensor([1, 2]), "A class must be an index or a category name, not a tensor([1, 2])."),
        (torch.arange(5), "A class must be an index or a category name, not a tensor of shape (5,)."),
        (torch.tensor([1, 2, 3, 4]), "A class must be an index or a category name, not a tensor([1, 2, 3, 4])."),
        (torch.tensor([[3]]), "A class must be one index, not a tensor of shape (1, 1); use t.item()."),
        (True, "A class must be an index or a category name, not bool True."),
        (np.True_, "A class must be an index or a category name, not bool np.True_."),
        (1.0, "A class must be an index or a category name, not float 1.0."),
        (None, "A class must be an index or a category name, not NoneType None."),
    ],
)
def test_as_class_index_refuses_what_could_silently_become_a_class(target: object, message: str) -> None:
    with refuses(TypeError, message):
        as_class_index(target)


def test_as_class_index_names_the_argument_and_takes_integers_of_every_kind() -> None:
    with refuses(TypeError, "A class_b must be an index or a category name, not str 'x'."):
        as_class_index("x", "class_b")
    assert [as_class_index(v) for v in (0, np.int8(7), torch.tensor(9, dtype=torch.uint8), torch.tensor(-1))] == [
        0,
        7,
        9,
        -1,
    ]
    assert type(as_class_index(np.int64(3))) is int and type(as_class_index(torch.tensor(4))) is int


def test_category_index_takes_the_range_from_the_given_names() -> None:
    assert [category_index(i, NAMES) for i in (0, 1, 2)] == [0, 1, 2]
    assert category_index(np.int64(2), NAMES) == 2
    for bad in (3, -1):
        with refuses(ValueError, f"Class index {bad} is out of range; valid: 0-2."):
            category_index(bad, NAMES)
    assert category_index(999) == 999 and category_index(0) == 0
    assert category_index(" Dog ", NAMES) == 1 and category_index("espresso") == 967


def test_a_name_listed_twice_is_ambiguous_and_an_unknown_name_lists_the_closest() -> None:
    with refuses(ValueError, "Class name 'cat' is ambiguous: 'cat' (0), 'cat' (2); give the exact name or the index."):
        category_index("cat", ("cat", "dog", "cat"))
    with refuses(ValueError, "Unknown class name 'cta'; closest: 'cat'."):
        category_index("cta", NAMES)
    with refuses(ValueError, "Unknown class name 'zebra'; closest: none."):
        category_index("zebra", NAMES)
    many = tuple(f"cat{i}" for i in range(6))
    with refuses(ValueError, "Unknown class name 'cat'; closest: 'cat5', 'cat4', 'cat3'."):
        category_index("cat", many)  # three at most
    with refuses(ValueError, "Unknown class name 'bird'; closest: 'birds'."):
        category_index("bird", ("birds", "dog"))


def test_close_names_need_at_least_half_their_letters_in_common() -> None:
    # difflib's ratio for 'abcd' against 'abxy' is 0.5 (kept); against 'axyz' 0.25 (dropped).
    with refuses(ValueError, "Unknown class name 'abcd'; closest: 'abxy'."):
        category_index("abcd", ("abxy", "axyz"))


@pytest.mark.parametrize(
    "categories, error, message",
    [
        ("cat", TypeError, "categories must be a sequence of names (LoadedModel.categories), not str."),
        ({"cat"}, TypeError, "categories must be a sequence of names (LoadedModel.categories), not set."),
        ((), ValueError, "categories must be a non-empty sequence of names (strings), e.g. LoadedModel.categories."),
        (
            ["cat", 1],
            ValueError,
            "categories must be a non-empty sequence of names (strings), e.g. LoadedModel.categories.",
        ),
    ],
)
def test_category_names_refuses_what_is_not_a_list_of_names(categories, error, message) -> None:
    with refuses(error, message):
        category_names(categories)
    with refuses(error, message):
        category_index(0, categories)


def test_the_names_are_imagenets_from_torchvision() -> None:
    names = imagenet_categories()
    assert names is imagenet_categories() and category_names() == names
    assert (names[0], names[282], names[999]) == ("tench", "tiger cat", "toilet tissue")
    assert category_names(["a", "b"]) == ("a", "b")


# --- plain arguments -----------------------------------------------------------------------------


def test_describe_shows_short_values_and_names_long_ones() -> None:
    assert describe(np.float64(2.0)) == "np.float64(2.0)"
    assert describe(np.zeros(())) == "array(0.)"  # a 0-D array is shown, not named by shape
    assert describe(torch.tensor(1.5)) == "tensor(1.5000)"
    assert describe("x" * 38) == repr("x" * 38)  # 40 characters with the quotes: still shown
    assert describe("x" * 39) == "a str"
    assert describe("a\nb") == repr("a\nb")  # repr escapes the line break: one line
    assert describe(type("Odd", (), {"__repr__": lambda self: "two\nlines"})()) == "a Odd"
    assert describe(None) == "None"


def test_check_flag_count_real_and_model_messages() -> None:
    assert check_flag(False, "f") is False and type(check_flag(np.False_, "f")) is bool
    with refuses(TypeError, "keep_aspect must be True or False, not 1."):
        check_flag(1, "keep_aspect")
    assert check_count(5, "n") == 5 and check_count(0, "n", minimum=0) == 0 and check_count(2, "n", minimum=2) == 2
    with refuses(ValueError, "steps must be at least 2, got 1."):
        check_count(1, "steps", minimum=2)
    with refuses(ValueError, "steps must be at least 1, got 0."):
        check_count(np.int64(0), "steps")
    with refuses(TypeError, "steps must be a whole number, not 2.0."):
        check_count(2.0, "steps")
    with refuses(TypeError, "steps must be a whole number, not np.True_."):
        check_count(np.True_, "steps")
    for minimum in (True, 1.0):
        with refuses(TypeError, f"minimum must be an int, not {type(minimum).__name__}."):
            check_count(3, "steps", minimum=minimum)
    assert check_real(3, "alpha") == 3.0 and type(check_real(np.int32(3), "alpha")) is float
    with refuses(ValueError, "alpha must be a number, not NaN."):
        check_real(float("nan"), "alpha")
    with refuses(TypeError, "alpha must be a number, not False."):
        check_real(False, "alpha")
    net = nn.Linear(1, 1)
    assert check_model(net) is net
    with refuses(TypeError, "model must be a torch nn.Module (the classifier), not 'vgg16'."):
        check_model("vgg16")
