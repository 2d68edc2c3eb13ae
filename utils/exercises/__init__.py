"""The lessons' exercise checkers: one module per lesson, one shared way to give a verdict.

Each lesson's checker compares a learner's answer with the reference, names the usual mistake
when one matches, and otherwise says where the answer differs. ``diagnose_*`` functions return a
``Verdict``; ``check_*`` functions print it when the answer is right and raise
``AnswerCheckError`` (an ``AssertionError``, so that nbval and pytest show it as a failed check)
when it is not. This module holds what every checker shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from utils.categories import check_flag, describe

__all__ = [
    "AnswerCheckError",
    "Verdict",
    "answer_array",
    "answer_tensor",
    "call_answer",
    "check_image",
    "correct",
    "not_attempted",
    "report",
    "wrong",
]

Status = Literal["correct", "not attempted", "wrong"]


class AnswerCheckError(AssertionError):
    """The answer to an exercise is missing or not right yet; the message says what differs.

    IPython shows an exception that has ``_render_traceback_`` by the lines it returns: a failed
    check cell shows its one-line verdict, in JupyterLab and on the site, instead of a traceback
    through the checker's code. The cell still raises (nbval's ``raises-exception`` still holds).

    >>> AnswerCheckError("Not yet right (sign): swap the classes.")._render_traceback_()
    ['AnswerCheckError: Not yet right (sign): swap the classes.']
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


@dataclass(frozen=True)
class Verdict:
    """What a checker found: ``status``, a short ``reason`` (a mistake's name) and a ``message`` for the learner."""

    status: Status
    reason: str
    message: str

    @property
    def passed(self) -> bool:
        """Whether the answer is correct."""
        return self.status == "correct"

    def __str__(self) -> str:
        return self.message


def correct(text: str) -> Verdict:
    """A passing verdict: ``Verdict("correct", "correct", "Correct: " + text)``."""
    return Verdict("correct", "correct", f"Correct: {text}")


def wrong(reason: str, text: str) -> Verdict:
    """A failing verdict for the mistake ``reason``; the message starts with ``Not yet right (reason):``.

    >>> wrong("sign", "the classes are swapped.").message
    'Not yet right (sign): the classes are swapped.'
    """
    return Verdict("wrong", reason, f"Not yet right ({reason}): {text}")


def not_attempted(text: str = "no answer yet; write it in the cell marked YOUR ANSWER.") -> Verdict:
    """The verdict for an answer that is still the exercise's placeholder."""
    return Verdict("not attempted", "not attempted", f"Not attempted: {text}")


def call_answer(answer: Any, *args: Any) -> Any:
    """The learner's answer: ``answer(*args)`` if it is a function, else ``answer`` itself.

    Returns a ``Verdict`` instead when the function raises (``NotImplementedError`` counts as
    not attempted; any other error is reported as the mistake ``"raised"``), for the
    placeholders ``None``, ``...`` and ``NotImplemented``, and for an answer that is (or returns)
    a verdict rather than a value: the mistake ``"verdict"``.

    >>> call_answer(lambda a, b: a + b, 1, 2)
    3
    >>> call_answer(None).status
    'not attempted'
    >>> call_answer(lambda: correct("trust me.")).reason
    'verdict'
    """
    if _looks_like_verdict(answer):
        return _verdict_given(answer)
    if callable(answer):
        name = getattr(answer, "__name__", "your function")
        try:
            answer = answer(*args)
        except NotImplementedError:
            return not_attempted(f"{name} raises NotImplementedError; write it in the cell marked YOUR ANSWER.")
        except Exception as error:  # the learner's code: any error is a finding, not a crash
            return wrong("raised", f"{name} raised {type(error).__name__}: {error}")
        if _looks_like_verdict(answer):
            return _verdict_given(answer)
    if answer is None or answer is Ellipsis or answer is NotImplemented:
        return not_attempted()
    return answer


_VERDICT_WORDS = ("correct", "not yet right", "not attempted")


def _looks_like_verdict(value: Any) -> bool:
    """Whether ``value`` is a checker's verdict, or dresses as one (its fields, its words), rather than an answer."""
    if isinstance(value, (Verdict, AnswerCheckError)):
        return True
    if isinstance(value, (torch.Tensor, np.ndarray, type)):
        return False
    if isinstance(value, str):
        return value.strip().lower().startswith(_VERDICT_WORDS)
    if isinstance(value, dict):
        return "passed" in value or "status" in value
    fields = ("passed", "status", "verdict")
    return any(_has_attribute(value, field) for field in fields) and not callable(value)


def _has_attribute(value: Any, name: str) -> bool:
    try:
        return hasattr(value, name)
    except Exception:  # an object whose attributes raise is not a verdict
        return False


def _verdict_given(value: Any) -> Verdict:
    return wrong(
        "verdict",
        f"the answer is {article(type(value).__name__)} that reads like a checker's verdict, not the value asked "
        "for; return the value itself and let the check cell judge it.",
    )


def article(noun: str) -> str:
    """``noun`` with its indefinite article: ``"an ndarray"``, ``"an int"``, ``"a float"``.

    >>> article("ndarray"), article("int"), article("str"), article("Verdict")
    ('an ndarray', 'an int', 'a str', 'a Verdict')
    """
    spoken_vowel = noun[:1].lower() in "aeio" or noun.lower().startswith("nd")  # "an ndarray": en-dee-array
    return f"{'an' if spoken_vowel else 'a'} {noun}"


def answer_array(answer: Any, want: str, *, squeeze: bool = True) -> npt.NDArray[np.float64] | Verdict:
    """The learner's answer as a new float64 array, or a ``"type"`` verdict saying what it is instead.

    ``answer`` may be a numpy array or a torch tensor (any device, may require grad) of real
    numbers; booleans, complex numbers, strings and other objects are named as mistakes, and
    ``want`` (e.g. ``"an H x W numpy array or torch tensor"``) says what to return instead.
    ``squeeze`` drops leading size-1 dimensions (``1 x 1 x H x W`` -> ``H x W``).

    >>> answer_array(torch.ones(1, 1, 2, 2), "a map").shape
    (2, 2)
    >>> answer_array(np.array([[1 + 1j]]), "a map").message
    'Not yet right (type): the answer is a complex array (dtype complex128); the map is real: return a map.'
    """
    check_flag(squeeze, "squeeze")
    if isinstance(answer, torch.Tensor):
        kind = "tensor"
        values = _tensor_values(answer, want)
        if isinstance(values, Verdict):
            return values
    elif isinstance(answer, np.ndarray):
        kind, values = "array", answer
    else:
        return wrong("type", f"the answer is {article(type(answer).__name__)}; return {want}.")
    if values.dtype == np.bool_:
        return wrong("type", f"the answer is a boolean {kind} (dtype bool): True/False, not numbers; return {want}.")
    if np.iscomplexobj(values):
        return wrong("type", f"the answer is a complex {kind} (dtype {values.dtype}); the map is real: return {want}.")
    if not np.issubdtype(values.dtype, np.number):
        return wrong("type", f"the answer is {article(kind)} of dtype {values.dtype}; return {want}.")
    values = np.array(values, dtype=np.float64, copy=True)
    while check_flag(squeeze, "squeeze") and values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    return values


def _tensor_values(answer: torch.Tensor, want: str) -> npt.NDArray[Any] | Verdict:
    """A tensor's values as a numpy array, or a ``"type"`` verdict for a tensor that holds none (meta, sparse, ...)."""
    if answer.is_meta:
        return wrong("type", f"the answer is a meta tensor: a shape without values; return {want} with its values.")
    if answer.layout != torch.strided:
        return wrong("type", f"the answer is a sparse tensor ({answer.layout}); return {want} (x.to_dense()).")
    if answer.is_complex():
        dtype = str(answer.dtype).removeprefix("torch.")
        return wrong("type", f"the answer is a complex tensor (dtype {dtype}); the map is real: return {want}.")
    try:
        tensor = answer.detach().cpu().resolve_conj().resolve_neg()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    except (RuntimeError, TypeError, NotImplementedError) as error:  # quantized and other tensors numpy cannot read
        return wrong(
            "type", f"the answer is a tensor of dtype {answer.dtype} that numpy cannot read ({error}); return {want}."
        )


def answer_tensor(answer: Any, want: str, *, squeeze: bool = True) -> torch.Tensor | Verdict:
    """``answer_array`` as a float64 CPU tensor (or the same ``"type"`` verdict)."""
    values = answer_array(answer, want, squeeze=squeeze)
    return values if isinstance(values, Verdict) else torch.from_numpy(values)


def check_image(x: object, name: str = "x") -> torch.Tensor:
    """``x`` when it is a finite float ``N x C x H x W`` tensor (the model input); else a one-line error.

    >>> check_image(torch.zeros(1, 3, 4, 4)).shape
    torch.Size([1, 3, 4, 4])
    >>> check_image(torch.zeros(3, 4))
    Traceback (most recent call last):
    ...
    ValueError: x must be a model input of shape N x C x H x W, got shape (3, 4).
    """
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided or not x.is_floating_point():
        raise TypeError(f"{name} must be a float torch tensor (the preprocessed image), not {describe(x)}.")
    if x.is_meta:
        raise TypeError(f"{name} is a meta tensor (a shape without values); give the preprocessed image itself.")
    if x.ndim != 4 or x.numel() == 0:
        raise ValueError(f"{name} must be a model input of shape N x C x H x W, got shape {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the image and its preprocessing.")
    return x


def report(verdict: Verdict, label: str | None = None) -> Verdict:
    """Print a passing ``verdict`` (prefixed with ``label``) and return it; raise ``AnswerCheckError`` otherwise.

    >>> report(correct("well done."), "toy").passed
    toy: Correct: well done.
    True
    """
    if not isinstance(verdict, Verdict):
        raise TypeError(f"verdict must be a Verdict from a diagnose_* function, not {describe(verdict)}.")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string (e.g. the method's name) or None, not {type(label).__name__}.")
    text = f"{label}: {verdict.message}" if label else verdict.message
    if not verdict.passed:
        raise AnswerCheckError(text)
    print(text)
    return verdict
