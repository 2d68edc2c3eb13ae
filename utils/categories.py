"""ImageNet category names, the class index a name or a number stands for, and the checks on plain arguments.

The names come from torchvision's weights metadata (no download); the course's two models share
them (``LoadedModel.categories``). ``category_index`` turns what a learner types into an index
and refuses anything that could silently mean another class: an exact (case-sensitive) name wins
(``"cardigan"`` is the sweater, 474; ``"Cardigan"`` the corgi, 264), a name that matches several
categories only when case is ignored, or that the list holds more than once, is refused with
the candidates and their indices.

Every module checks the plain arguments a learner passes the same way, with the helpers at the
end: ``describe`` shows a value in a one-line message, ``check_flag`` and ``check_count`` refuse
what is not a boolean or a whole number (a tensor where ``True`` goes, ``True`` where a count goes),
``check_model`` what is not a torch module.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torchvision.models import VGG16_Weights

__all__ = [
    "as_class_index",
    "category_index",
    "category_names",
    "check_count",
    "check_flag",
    "check_model",
    "check_real",
    "describe",
    "imagenet_categories",
]


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet category names, from torchvision's weights metadata (no download).

    >>> cats = imagenet_categories()
    >>> len(cats), cats[281], cats[967]
    (1000, 'tabby', 'espresso')
    """
    return tuple(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def as_class_index(target: object, name: str = "class") -> int:
    """``target`` as an integer class index: a Python or numpy integer, or a 0-D integer tensor.

    Booleans (``True``, ``np.True_``, ``torch.tensor(True)``) and floats are refused, so that a
    flag or a probability never silently becomes class 1 or 0. The range is not checked here.

    >>> as_class_index(np.int64(3)), as_class_index(torch.tensor(5))
    (3, 5)
    >>> as_class_index(torch.tensor(True))
    Traceback (most recent call last):
    ...
    TypeError: A class must be an index or a category name, not a boolean tensor(True).
    """
    if isinstance(target, torch.Tensor):
        if target.dtype == torch.bool or target.is_floating_point() or target.is_complex() or target.numel() != 1:
            kind = "boolean " if target.dtype == torch.bool else ""
            shown = repr(target) if target.numel() <= 4 else f"tensor of shape {tuple(target.shape)}"
            raise TypeError(f"A {name} must be an index or a category name, not a {kind}{shown}.")
        if target.ndim != 0:
            raise TypeError(f"A {name} must be one index, not a tensor of shape {tuple(target.shape)}; use t.item().")
        return int(target.item())
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, np.integer)):
        kind = type(target).__name__
        raise TypeError(f"A {name} must be an index or a category name, not {kind} {describe(target)}.")
    return int(target)


def category_index(target: int | str, categories: Sequence[str] | None = None) -> int:
    """The class index of ``target``: an index, or a category name.

    A name is matched exactly first (case-sensitive), then ignoring case and surrounding spaces.
    A name that matches several categories that way, or that ``categories`` lists more than
    once, raises a ``ValueError`` listing the candidates with their indices; an unknown name
    lists the closest names; an index out of range gives the valid range.

    >>> category_index("Tiger Cat"), category_index("cardigan"), category_index("Cardigan")
    (282, 474, 264)
    >>> category_index("CARDIGAN")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Class name 'CARDIGAN' is ambiguous: 'Cardigan' (264), 'cardigan' (474); give the exact name ...
    >>> category_index("tigr cat")
    Traceback (most recent call last):
    ...
    ValueError: Unknown class name 'tigr cat'; closest: 'tiger cat', 'trench coat', 'tiger shark'.
    >>> category_index(1000)
    Traceback (most recent call last):
    ...
    ValueError: Class index 1000 is out of range; valid: 0-999.
    """
    names = category_names(categories)
    if isinstance(target, str):
        return _index_of_name(target, names)
    index = as_class_index(target)
    if not 0 <= index < len(names):
        raise ValueError(f"Class index {index} is out of range; valid: 0-{len(names) - 1}.")
    return index


def category_names(categories: Sequence[str] | None = None) -> tuple[str, ...]:
    """``categories`` as a tuple of names, checked (a non-empty sequence of strings); ``None``: ImageNet's.

    >>> category_names(["cat", "dog"]), len(category_names())
    (('cat', 'dog'), 1000)
    """
    if categories is None:
        return imagenet_categories()
    if isinstance(categories, str) or not isinstance(categories, Sequence):
        kind = type(categories).__name__
        raise TypeError(f"categories must be a sequence of names (LoadedModel.categories), not {kind}.")
    names = tuple(categories)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError("categories must be a non-empty sequence of names (strings), e.g. LoadedModel.categories.")
    return names


def _index_of_name(target: str, names: tuple[str, ...]) -> int:
    wanted = target.strip()
    exact = [i for i, n in enumerate(names) if n == wanted]
    found = exact or [i for i, n in enumerate(names) if n.strip().lower() == wanted.lower()]
    if len(found) == 1:
        return found[0]
    if found:
        candidates = ", ".join(f"{names[i]!r} ({i})" for i in found)
        raise ValueError(f"Class name {target!r} is ambiguous: {candidates}; give the exact name or the index.")
    lowered = [n.lower() for n in names]
    close = difflib.get_close_matches(wanted.lower(), lowered, n=3, cutoff=0.5)
    hint = ", ".join(repr(names[lowered.index(c)]) for c in close) or "none"
    raise ValueError(f"Unknown class name {target!r}; closest: {hint}.")


# --- plain arguments ----------------------------------------------------------------------------


_SHOWN_REPR = 40
"""The longest repr an error message quotes; a longer value is named by its type."""


def describe(value: object) -> str:
    """``value`` as an error message shows it: its repr when short and on one line, else its kind and shape.

    >>> describe(2.5), describe("gpu"), describe(np.zeros((8, 8))), describe(torch.zeros(2, 3))
    ('2.5', "'gpu'", 'a float64 array of shape (8, 8)', 'a torch.float32 tensor of shape (2, 3)')
    >>> describe("x" * 41), describe([1, 2])
    ('a str', '[1, 2]')
    """
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim > 0:
        kind = "array" if isinstance(value, np.ndarray) else "tensor"
        return f"a {value.dtype} {kind} of shape {tuple(value.shape)}"
    text = repr(value)
    if len(text) > _SHOWN_REPR or "\n" in text:
        return f"a {type(value).__name__}"
    return text


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool when it is one (``True``, ``False``, ``np.bool_``); anything else is a ``TypeError``.

    >>> check_flag(np.True_, "normalise")
    True
    >>> check_flag(torch.ones(3), "normalise")
    Traceback (most recent call last):
    ...
    TypeError: normalise must be True or False, not a torch.float32 tensor of shape (3,).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {describe(value)}.")
    return bool(value)


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an int when it is a whole number (Python or numpy) of at least ``minimum``; booleans are refused.

    >>> check_count(np.int64(3), "top_k")
    3
    >>> check_count(True, "top_k")
    Traceback (most recent call last):
    ...
    TypeError: top_k must be a whole number, not True.
    """
    if isinstance(minimum, bool) or not isinstance(minimum, int):
        raise TypeError(f"minimum must be an int, not {type(minimum).__name__}.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number, not {describe(value)}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)}.")
    return int(value)


def check_real(value: object, name: str) -> float:
    """``value`` as a float when it is a real number (Python or numpy), not NaN; booleans are refused.

    >>> check_real(np.float32(0.5), "alpha")
    0.5
    >>> check_real("0.5", "alpha")
    Traceback (most recent call last):
    ...
    TypeError: alpha must be a number, not '0.5'.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, not {describe(value)}.")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, not NaN.")
    return float(value)


def check_model(model: object, what: str = "the classifier") -> nn.Module:
    """``model`` when it is a torch ``nn.Module``; anything else is a ``TypeError`` that says ``what`` it should be.

    >>> check_model(None, "e.g. load_model().model")
    Traceback (most recent call last):
    ...
    TypeError: model must be a torch nn.Module (e.g. load_model().model), not None.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module ({what}), not {describe(model)}.")
    return model
