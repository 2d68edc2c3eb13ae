"""Every lesson and solution notebook runs to its end on VGG16, the article's model, with seeded random weights.

A learner with internet runs the course on VGG16 (``load_model()``'s ``"auto"``), but VGG16's weights
cannot be downloaded where the tests run. So this test runs each notebook under the test switch
``XAI_MODEL=vgg16 XAI_RANDOM_WEIGHTS=1`` (``utils.models.random_weights_switch``): VGG16's
architecture with seeded random weights, so that every VGG16 branch of every lesson executes (its
layer names, ``features[29]``, the 14 x 14 grid, the fully connected head). It fails on any error
outside the cells tagged ``raises-exception`` and names the cell; the numbers themselves are
meaningless, so the lessons' measured claims print (``utils.lesson.claim_checker``) instead of
asserting, and the run reports how many did, with each notebook's time.

Not part of ``make test``: every test here carries the ``vgg16`` marker, which pyproject.toml's
``addopts`` deselects (``-m "not vgg16"``). Run it with ``make test-vgg16`` (``pytest -m vgg16
tests/test_vgg16_lessons.py``); CI runs it as its own step after the main suite (``.ci/run``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from utils.models import RANDOM_WEIGHTS_BANNER

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
CELL_TIMEOUT_S = 1800
"""One cell's limit: VGG16 on a CPU takes about 15 GFLOPs a forward pass."""
CLAIM_PREFIX = "claim '"
"""How a claim printed instead of asserted starts (``utils.lesson.ClaimChecker``)."""

pytestmark = [pytest.mark.vgg16, pytest.mark.timeout(4 * CELL_TIMEOUT_S)]


@dataclass(frozen=True)
class Run:
    """What one notebook's run on random-weight VGG16 showed."""

    notebook: str
    seconds: float
    claims: int
    banner: bool


class Report:
    """A pytest plugin for this run: the table of notebooks that ran to the end, in pytest's closing summary."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.runs:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("-", "notebooks run to the end on VGG16 with random weights")
        write(f"{'notebook':<56} {'seconds':>8} {'claims printed':>15} {'banner':>7}")
        for run in self.runs:
            write(f"{run.notebook:<56} {run.seconds:>8.0f} {run.claims:>15} {'yes' if run.banner else 'no':>7}")
        write(
            f"{len(self.runs)} notebook(s), {sum(r.seconds for r in self.runs):.0f} s, "
            f"{sum(r.claims for r in self.runs)} claim checks printed instead of asserted"
        )


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> list[Run]:
    """Where each test records its notebook's run; the list is printed after the run's results."""
    report = Report()
    request.config.pluginmanager.register(report, "vgg16-lessons-report")
    return report.runs


def claims_printed(nb: nbformat.NotebookNode) -> int:
    """How many lines of the notebook's printed output are claims reported instead of asserted.

    >>> cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", text="claim 'a': x\\nother\\n")])
    >>> claims_printed(nbformat.v4.new_notebook(cells=[cell]))
    1
    """
    return sum(
        line.startswith(CLAIM_PREFIX)
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
        for line in output.get("text", "").splitlines()
    )


def _printed(nb: nbformat.NotebookNode, text: str) -> bool:
    return any(
        text in output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return lines[0].strip()[:80] if lines else ""


def run_to_the_end(path: Path) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` in a fresh kernel, in its folder; return it with its outputs.

    A cell tagged ``raises-exception`` may raise; any other error fails the test, naming the
    notebook, the cell (its number and first line of code) and the error's first line.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                reason = f"{error.ename}: {error.evalue}".splitlines()[0]
                pytest.fail(
                    f"{path.name}, cell {index + 1} ({_first_line(cell.source)!r}) fails on random-weight VGG16: "
                    f"{reason}",
                    pytrace=False,
                )
    return nb


@pytest.fixture
def random_vgg16(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test switch, for the kernels (they inherit the test's environment)."""
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_to_the_end_on_random_weight_vgg16(notebook: str, runs: list[Run], random_vgg16: None) -> None:
    started = time.monotonic()
    nb = run_to_the_end(ROOT / notebook)
    seconds = time.monotonic() - started
    runs.append(Run(notebook, seconds, claims_printed(nb), _printed(nb, RANDOM_WEIGHTS_BANNER)))


def test_a_failing_cell_fails_the_run_by_name_and_a_tagged_one_does_not(tmp_path: Path, random_vgg16: None) -> None:
    """The check above can fail: on an error outside a ``raises-exception`` cell, naming that cell."""
    cells = [
        nbformat.v4.new_code_cell("import os\nprint(os.environ['XAI_RANDOM_WEIGHTS'])"),
        nbformat.v4.new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_code_cell("# the claim helper's line\nprint(\"claim 'x': ...\")"),
        nbformat.v4.new_code_cell("# fails\nraise KeyError('features.29')"),
        nbformat.v4.new_code_cell("print('never run')"),
    ]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    with pytest.raises(
        pytest.fail.Exception, match=r"^lesson.ipynb, cell 4 \(\"raise KeyError\('features.29'\)\"\) fails"
    ):
        run_to_the_end(path)
    cells.pop(3)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    nb = run_to_the_end(path)
    assert nb.cells[0].outputs[0]["text"] == "1\n" and nb.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert claims_printed(nb) == 1 and nb.cells[3].outputs[0]["text"] == "never run\n"
