"""What every exercise checker shares: a verdict is no answer, tensors without values get one line, the words are
grammatical, and a failed check shows its one line (IPython's ``_render_traceback_``) while the cell still raises.

No answer is written out here: each checker is given the course's reference (``utils.saliency.grad_cam``,
``utils.faithfulness.insertion_deletion``, ...) wrapped so that it returns something that is not an answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell
from torch import nn

from utils.discriminativity import discriminativity_map
from utils.exercises import AnswerCheckError, Verdict, check_image, correct, report
from utils.exercises.discriminativity import diagnose_discriminativity_map
from utils.exercises.faithfulness import diagnose_insertion_curve
from utils.exercises.grad_cam import diagnose_grad_cam
from utils.exercises.guided_backprop import deconv_rule, diagnose_deconv_rule
from utils.exercises.guided_grad_cam import diagnose_guided_grad_cam, guided_grad_cam_bilinear
from utils.exercises.sanity import diagnose_edge_map
from utils.exercises.shortcuts import diagnose_box_share
from utils.faithfulness import insertion_deletion
from utils.saliency import grad_cam
from utils.sanity import edge_map
from utils.shortcuts import Box, box_share

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Checker:
    """One lesson's checker: ``diagnose(answer, *args)``, and the reference's value as an answer function's result."""

    diagnose: Callable[..., Verdict]
    args: tuple[Any, ...]
    reference: Callable[..., Any]

    def verdict(self, wrap: Callable[[Any], Any]) -> Verdict:
        """The verdict on a function that returns ``wrap`` of the reference's result."""
        return self.diagnose(lambda *given: wrap(self.reference(*given)), *self.args)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def _checkers() -> dict[str, Checker]:
    net, x = _net().eval(), torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gbp, cam = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)), torch.rand(1, 1, 2, 2)
    s_a, s_b = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    picture, saliency = np.random.default_rng(0).random((8, 8, 3)), np.random.default_rng(1).random((8, 8))
    box = Box(top=2, left=3, height=3, width=2, image_size=(8, 8))
    return {
        "01 grad_cam": Checker(diagnose_grad_cam, (net, "1", x, 0), grad_cam),
        "02 deconv_rule": Checker(diagnose_deconv_rule, (net, x, 0), deconv_rule),
        "03 guided_grad_cam": Checker(diagnose_guided_grad_cam, (gbp, cam), guided_grad_cam_bilinear),
        "04 discriminativity_map": Checker(diagnose_discriminativity_map, (s_a, s_b), discriminativity_map),
        "05 edge_map": Checker(diagnose_edge_map, (picture,), edge_map),
        "08 insertion_curve": Checker(
            lambda answer, *args: diagnose_insertion_curve(answer, *args, steps=4),
            (net, x, saliency, 0),
            lambda m, x, s, t, steps: insertion_deletion(m, x, s, t, steps=steps, baseline="blur").insertion,
        ),
        "09 box_share": Checker(diagnose_box_share, (torch.randn(1, 3, 8, 8), box), lambda s, b: box_share(s, b)),
    }


CHECKERS = _checkers()


def one_line_refusal(verdict: Verdict, reason: str) -> None:
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert "\n" not in verdict.message and "Traceback" not in verdict.message


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_the_reference_passes_every_checker(name: str) -> None:
    assert CHECKERS[name].verdict(lambda value: value).passed


def _dresses_as_a_verdict(checker: Checker) -> list[Callable[[Any], Any]]:
    return [
        lambda value: checker.diagnose(checker.reference, *checker.args),  # the checker's own verdict
        lambda value: correct("trust me."),
        lambda value: {"status": "correct", "passed": True},
        lambda value: SimpleNamespace(passed=True, status="correct", message="Correct: trust me."),
        lambda value: "Correct: your map equals the reference.",
        lambda value: AnswerCheckError("Correct"),
    ]


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_an_answer_that_returns_a_verdict_is_refused_by_every_checker(name: str) -> None:
    checker = CHECKERS[name]
    for wrap in _dresses_as_a_verdict(checker):
        one_line_refusal(checker.verdict(wrap), "verdict")
    one_line_refusal(checker.diagnose(correct("given as the answer."), *checker.args), "verdict")


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().float()
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


BAD_TENSORS: dict[str, Callable[[Any], torch.Tensor]] = {
    "meta": lambda value: torch.empty(_as_tensor(value).shape, device="meta"),
    "sparse": lambda value: _as_tensor(value).reshape(-1, 1).to_sparse(),
    "sparse-csr": lambda value: _as_tensor(value).reshape(1, -1).to_sparse_csr(),
    "complex": lambda value: _as_tensor(value).to(torch.complex64),
    "conjugate": lambda value: _as_tensor(value).to(torch.complex64).conj(),
}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("kind", sorted(BAD_TENSORS))
@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_a_tensor_without_real_values_gets_one_line_from_every_checker(name: str, kind: str) -> None:
    verdict = CHECKERS[name].verdict(BAD_TENSORS[kind])
    one_line_refusal(verdict, "type")
    assert kind.split("-")[0].replace("conjugate", "complex") in verdict.message


@pytest.mark.parametrize("name", sorted(set(CHECKERS) - {"09 box_share"}))
def test_the_words_name_an_int_and_an_ndarray_with_their_article(name: str) -> None:
    for wrap, words in ((lambda value: 3, "an int"), (lambda value: np.array([["a"]]), "an array of dtype <U1")):
        verdict = CHECKERS[name].verdict(wrap)
        assert not verdict.passed and "\n" not in verdict.message
        if name == "02 deconv_rule" and words.startswith("an array"):
            words = "returned an ndarray"
        assert words in verdict.message, verdict.message
        assert all(f" a {word}" not in verdict.message for word in ("int", "ndarray", "array", "object"))


def test_a_meta_image_is_refused_where_it_enters() -> None:
    with pytest.raises(TypeError, match="^x is a meta tensor"):
        check_image(torch.empty(1, 3, 8, 8, device="meta"))


# --- a failed check shows its one line -------------------------------------------------------------


VERDICT = "Not yet right (sign): the answer is S_B - S_A: the classes are in the wrong order."


def test_a_failed_check_renders_as_its_one_line() -> None:
    error = AnswerCheckError(f"GBP: {VERDICT}")
    assert error._render_traceback_() == [f"AnswerCheckError: GBP: {VERDICT}"]
    assert isinstance(error, AssertionError), "pytest and nbval count it as a failed check"


def test_ipython_shows_the_one_line_and_the_cell_still_raises(capsys: pytest.CaptureFixture[str]) -> None:
    shell = InteractiveShell.instance()
    try:
        shell.user_ns.update(report=report, wrong=lambda: Verdict("wrong", "sign", VERDICT))
        result = shell.run_cell("report(wrong(), 'GBP')")
    finally:
        InteractiveShell.clear_instance()
    shown = capsys.readouterr().out.strip()
    assert isinstance(result.error_in_exec, AnswerCheckError), "the cell raised"
    assert shown == f"AnswerCheckError: GBP: {VERDICT}", shown
    assert str(ROOT) not in shown and "utils/exercises" not in shown


def _notebook(path: Path, tags: list[str]) -> Path:
    code = f"from utils.exercises import Verdict, report\nreport(Verdict('wrong', 'sign', {VERDICT!r}), 'GBP')"
    cell = {"cell_type": "code", "execution_count": None, "id": "check", "metadata": {"tags": tags}, "outputs": []}
    notebook = {
        "cells": [{**cell, "source": code}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path


def test_in_a_kernel_the_error_output_is_one_line_and_the_cell_still_raises(tmp_path: Path) -> None:
    """JupyterLab and the site show the kernel's error output: one line. nbval fails a cell when the kernel sends an
    error message (the output below) unless the cell is tagged ``raises-exception``, and fails a tagged cell that sends
    none: the check cells still raise."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(_notebook(tmp_path / "check.ipynb", ["check", "raises-exception"]), as_version=4)
    replies: list[dict[str, Any]] = []
    client = NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(ROOT)}})
    client.on_cell_error = lambda cell, cell_index, execute_reply: replies.append(execute_reply["content"])
    client.execute()  # the tag lets the cell raise; any other error would stop here
    (output,) = notebook.cells[0].outputs
    assert (output.output_type, output.ename, output.evalue) == ("error", "AnswerCheckError", f"GBP: {VERDICT}")
    assert output.traceback == [f"AnswerCheckError: GBP: {VERDICT}"]
    assert [reply["status"] for reply in replies] == ["error"]
