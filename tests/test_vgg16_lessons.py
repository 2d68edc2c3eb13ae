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
tests/test_vgg16_lessons.py``); CI runs it as its own step under Python 3.13, before the main suite, while the
main environment is installed (``.ci/run``: 3.11 runs the notebooks on the offline model, 3.13 on VGG16).

The notebooks run on pytest-xdist's workers (``make test-vgg16``: ``-n auto``), the slowest first, each
kernel on its share of the cores (conftest.py); on this 2-core machine two kernels of one thread each
finish the set about a tenth sooner than one kernel of two threads. Each test hands its notebook's
run to the closing table (conftest.py's ``Vgg16Report``) as a user property, which reaches the
controlling process from any worker.

Lesson 03 runs the article's own lines (``models.vgg16(weights=VGG16_Weights.IMAGENET1K_V1)``) when
VGG16's weights are in torch's cache. Here the cache (``$TORCH_HOME``) is a temporary folder holding the
same seeded random weights under the file name torchvision looks for, so those lines execute too,
unchanged, and nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from torchvision import models
from torchvision.models import VGG16_Weights

from utils.models import RANDOM_WEIGHTS_BANNER, load_model, vgg16_weights_path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
CELL_TIMEOUT_S = 1800
"""One cell's limit: VGG16 on a CPU takes about 15 GFLOPs a forward pass."""
CLAIM_PREFIX = "claim '"
"""How a claim printed instead of asserted starts (``utils.lesson.ClaimChecker``)."""

pytestmark = [pytest.mark.vgg16, pytest.mark.timeout(4 * CELL_TIMEOUT_S)]


# The slowest first (seconds on random-weight VGG16, 2-core CI machine, one kernel at a time), so that the two
# workers finish together; a notebook not listed (a new lesson) comes after these, in file order.
SECONDS_BEFORE = {
    "notebooks/08_faithfulness.ipynb": 112,
    "notebooks/solutions/08_faithfulness.ipynb": 112,
    "notebooks/solutions/05_sanity_checks.ipynb": 54,
    "notebooks/05_sanity_checks.ipynb": 51,
    "notebooks/07_attribution_axioms.ipynb": 50,
    "notebooks/solutions/10_which_map_to_trust.ipynb": 32,
    "notebooks/10_which_map_to_trust.ipynb": 30,
    "notebooks/06_explorer.ipynb": 24,
}
SLOWEST_FIRST = sorted(NOTEBOOKS, key=lambda notebook: -SECONDS_BEFORE.get(notebook, 0))
RUN_PROPERTY = "vgg16_run"
"""The user property each test records for conftest.py's closing table: notebook, seconds, claims, banner."""


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


@pytest.fixture(scope="session")
def article_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``$TORCH_HOME`` whose VGG16 checkpoint holds the switch's seeded random weights (lesson 03's article)."""
    home = tmp_path_factory.mktemp("torch_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setenv("XAI_MODEL", "vgg16")
        patch.setenv("XAI_RANDOM_WEIGHTS", "1")
        checkpoint = vgg16_weights_path()
        checkpoint.parent.mkdir(parents=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the switch's banner
            torch.save(load_model("vgg16", device="cpu").model.state_dict(), checkpoint)
    return home


@pytest.fixture
def random_vgg16(monkeypatch: pytest.MonkeyPatch, article_cache: Path) -> None:
    """The test switch and the cache holding its weights, for the kernels (they inherit the test's environment)."""
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")
    monkeypatch.setenv("TORCH_HOME", str(article_cache))


@pytest.mark.parametrize("notebook", SLOWEST_FIRST)
def test_notebook_runs_to_the_end_on_random_weight_vgg16(
    notebook: str, random_vgg16: None, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    nb = run_to_the_end(ROOT / notebook)
    seconds = time.monotonic() - started
    record_property(
        RUN_PROPERTY,
        {
            "notebook": notebook,
            "seconds": seconds,
            "claims": claims_printed(nb),
            "banner": _printed(nb, RANDOM_WEIGHTS_BANNER),
        },
    )
    if notebook.endswith("03_guided_grad_cam.ipynb"):  # the article's own lines ran, on the cached weights
        assert _printed(nb, "VGG16 loaded; features[29] = ReLU"), "lesson 03's article cell did not run its lines"


def test_the_article_cache_holds_the_switchs_weights_under_torchvisions_name(random_vgg16: None) -> None:
    """Lesson 03's ``models.vgg16(weights=IMAGENET1K_V1)`` reads this cache: the file name torchvision asks for,
    and the same weights as ``load_model`` under the switch (so the banner's "random weights" holds for it too)."""
    expected = os.path.basename(urlparse(VGG16_Weights.IMAGENET1K_V1.url).path)
    assert vgg16_weights_path().name == expected and vgg16_weights_path().is_file()
    with contextlib.redirect_stdout(io.StringIO()):
        switched = load_model("vgg16", device="cpu").model.state_dict()
    article = models.vgg16(weights=VGG16_Weights.IMAGENET1K_V1).state_dict()  # no download: it is cached
    assert article.keys() == switched.keys()
    assert all(torch.equal(article[key], switched[key]) for key in article)


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
