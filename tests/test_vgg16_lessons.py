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
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[list[Run]]:
    """The notebooks that ran to the end, reported as a table after the last one."""
    done: list[Run] = []
    yield done
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not done:
        return
    reporter.write_sep("-", "notebooks run to the end on VGG16 with random weights")
    reporter.write_line(f"{'notebook':<48} {'seconds':>8} {'claims printed':>15} {'banner':>7}")
    for run in done:
        banner = "yes" if run.banner else "no"
        reporter.write_line(f"{run.notebook:<48} {run.seconds:>8.0f} {run.claims:>15} {banner:>7}")
    reporter.write_line(
        f"{len(done)} notebook(s), {sum(r.seconds for r in done):.0f} s, "
        f"{sum(r.claims for r in done)} claim checks printed instead of asserted"
    )


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


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_to_the_end_on_random_weight_vgg16(
    notebook: str, runs: list[Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAI_MODEL", "vgg16")  # the kernel inherits the test's environment
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")
    path = ROOT / notebook
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.monotonic()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index)  # a cell tagged raises-exception may raise
            except CellExecutionError as error:
                reason = f"{error.ename}: {error.evalue}".splitlines()[0]
                pytest.fail(
                    f"{notebook}, cell {index + 1} ({_first_line(cell.source)!r}) fails on random-weight VGG16: "
                    f"{reason}",
                    pytrace=False,
                )
    seconds = time.monotonic() - started
    runs.append(Run(notebook, seconds, claims_printed(nb), _printed(nb, RANDOM_WEIGHTS_BANNER)))
