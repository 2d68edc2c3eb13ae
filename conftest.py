"""Test-suite set-up shared by unit tests, doctests and notebooks (nbval).

* The offline model unless ``XAI_MODEL`` says otherwise, so tests never download weights.
* No network: a connection to anything but this machine fails at once instead of hanging,
  in the test process (socket guard) and in notebook kernels (an unreachable proxy).
* Figures render off-screen.
* Every notebook must be collected when the notebooks are part of the run.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
NOTEBOOKS = ROOT / "notebooks"

os.environ.setdefault("XAI_MODEL", "squeezenet1_1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist (make test: -n auto) each worker, and each notebook kernel it starts, gets its share of the cores:
# two workers each running torch on every core would spend their time waiting for each other.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(max(1, (os.cpu_count() or 1) // _WORKERS)))
for _var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ[_var] = "http://127.0.0.1:9"  # discard port: refused at once
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "localhost,127.0.0.1,::1"


class NetworkAccessInTests(RuntimeError):
    """Raised when a test tries to reach another machine."""


_real_connect = socket.socket.connect


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkAccessInTests(f"tests must not use the network (tried to connect to {address!r})")
    return _real_connect(self, address)


def _guarded_create_connection(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
    if not _is_local(address):
        raise NetworkAccessInTests(f"tests must not use the network (tried to connect to {address!r})")
    return _real_create_connection(address, *args, **kwargs)


_real_create_connection = socket.create_connection


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "create_connection", _guarded_create_connection)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail the run when a notebook on disk produced no test items (not collected)."""
    here = session.config.invocation_params.dir
    args = [Path(here, a.split("::")[0]).resolve() for a in session.config.args]
    wants_notebooks = any(NOTEBOOKS == a or NOTEBOOKS in a.parents or a in NOTEBOOKS.parents for a in args)
    if not wants_notebooks:
        return
    on_disk = {p.resolve() for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    requested = {p for p in on_disk if any(a == p or a in p.parents for a in args)}
    collected = {Path(str(item.path)).resolve() for item in session.items}
    missing = sorted(str(p.relative_to(ROOT)) for p in requested - collected)
    if missing:
        raise pytest.UsageError(f"notebooks not collected (is nbval enabled?): {', '.join(missing)}")


# --- Parallel runs (make test: pytest -n auto) ---------------------------------------------------------------------
# A notebook's cells share one kernel, so each notebook runs whole and in order on one worker; so does each test
# file (its fixtures are built once), and the two files that share the built site (tests/conftest.py's session
# fixture ``course_site``) run on the same worker.
SITE_TEST_FILES = ("test_site.py", "test_browser.py")


def _notebook_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell" and str(item.path).endswith(".ipynb")


VGG16_TEST_FILE = "test_vgg16_lessons.py"
"""Each of its tests runs a whole notebook in a kernel of its own (make test-vgg16), so each is a unit of work."""


def course_scope(nodeid: str) -> str:
    """The unit of work a worker takes: the file a test or notebook cell is in; the site's tests together; each
    notebook run of the VGG16 file alone.

    >>> course_scope("notebooks/01_grad_cam.ipynb::Cell 3"), course_scope("tests/test_browser.py::test_x[a::b]")
    ('notebooks/01_grad_cam.ipynb', 'the site tests')
    >>> course_scope("tests/test_vgg16_lessons.py::test_runs[notebooks/05_x.ipynb]")
    'tests/test_vgg16_lessons.py::test_runs[notebooks/05_x.ipynb]'
    """
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return "the site tests" if name in SITE_TEST_FILES else nodeid if name == VGG16_TEST_FILE else path


class CourseScheduling:
    """pytest-xdist's scheduling hook: registered only when pytest-xdist is installed and enabled."""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
        from xdist.scheduler import LoadScopeScheduling

        class ByCourseScope(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return course_scope(nodeid)

        return ByCourseScope(config, log)


class Vgg16Report:
    """The closing table of ``make test-vgg16``: each notebook's time, claims printed and banner.

    tests/test_vgg16_lessons.py records each run as the user property ``vgg16_run``; reports carry
    their user properties from an xdist worker to this process, where the table is printed.
    """

    def __init__(self) -> None:
        self.runs: list[dict[str, object]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.runs += [value for name, value in report.user_properties if name == "vgg16_run"]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.runs:
            return
        runs = sorted(self.runs, key=lambda run: str(run["notebook"]))
        write = terminalreporter.write_line
        terminalreporter.write_sep("-", "notebooks run to the end on VGG16 with random weights")
        write(f"{'notebook':<56} {'seconds':>8} {'claims printed':>15} {'banner':>7}")
        for run in runs:
            banner = "yes" if run["banner"] else "no"
            write(f"{run['notebook']!s:<56} {float(run['seconds']):>8.0f} {run['claims']!s:>15} {banner:>7}")
        write(
            f"{len(runs)} notebook(s), {sum(float(run['seconds']) for run in runs):.0f} s of kernel time, "
            f"{sum(int(run['claims']) for run in runs)} claim checks printed instead of asserted"
        )


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(CourseScheduling(), "course-scheduling")
    if not hasattr(config, "workerinput"):  # the controlling process (or a run without xdist) prints the table
        config.pluginmanager.register(Vgg16Report(), "vgg16-report")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _executed.expect(items)


# --- The notebooks nbval ran, kept for the site -------------------------------------------------------------------
class ExecutedNotebooks:
    """Keep each notebook nbval ran whole and without a failure as an executed notebook, for ``make html``.

    nbval executes every notebook in the test run; the site (book/_ext/course_site.py) takes these
    outputs into MyST-NB's cache instead of executing the same code a second time. A notebook is kept
    only when every one of its cells ran in this session and passed; it goes to
    ``build/executed/<model>/<fingerprint>/<path>.ipynb`` with its wall time (kernel start included)
    beside it, where ``<fingerprint>`` is ``course_site.code_fingerprint()`` (utils/, data/, the pins).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.expected: dict[Path, int] = {}
        self.cells: dict[Path, list[tuple[pytest.Item, bool]]] = {}
        self.started: dict[Path, float] = {}

    def expect(self, items: list[pytest.Item]) -> None:
        self.expected = {}
        for item in items:
            if _notebook_cell(item):
                path = Path(str(item.path)).resolve()
                self.expected[path] = self.expected.get(path, 0) + 1

    def start(self, item: pytest.Item) -> None:
        path = Path(str(item.path)).resolve()
        if path not in self.started:
            self.started[path] = time.monotonic()

    def ran(self, item: pytest.Item, passed: bool) -> None:
        path = Path(str(item.path)).resolve()
        done = self.cells.setdefault(path, [])
        done.append((item, passed))
        if len(done) == self.expected.get(path) and all(ok for _, ok in done):
            self.write(path, [cell for cell, _ in done], time.monotonic() - self.started[path])

    @functools.cached_property
    def folder(self) -> Path | None:
        model = os.environ.get("XAI_MODEL", "")
        if model in ("", "auto") or os.environ.get("XAI_RANDOM_WEIGHTS", "") not in ("", "0"):
            # which model the kernels loaded is not known here, or its weights are random (a test of the code paths,
            # whose outputs no site may show): the site executes what it needs
            return None
        sys.path.insert(0, str(self.root / "book" / "_ext"))
        try:
            import course_site
        finally:
            sys.path.pop(0)
        return course_site.EXECUTED / model / course_site.code_fingerprint(self.root)

    def write(self, path: Path, cells: list[pytest.Item], seconds: float) -> None:
        import nbformat

        folder = self.folder
        if folder is None or self.root not in path.parents:
            return
        from ipykernel.ipkernel import IPythonKernel  # the kernel nbval ran (--nbval-current-env)

        nb = copy.deepcopy(cells[0].parent.nb)  # nbval's own reading of the notebook
        nb.metadata.language_info = copy.deepcopy(IPythonKernel.language_info)  # as nbclient records it
        by_id = {id(cell.cell): cell for cell in cells}
        count = 0
        for index, source_cell in enumerate(cells[0].parent.nb.cells):
            if id(source_cell) in by_id:
                count += 1
                nb.cells[index].outputs = by_id[id(source_cell)].test_outputs or []
                nb.cells[index].execution_count = count
        target = folder / path.relative_to(self.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_suffix(".json").write_text(json.dumps({"seconds": round(seconds, 2)}), encoding="utf-8")
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        nbformat.write(nb, partial)
        partial.replace(target)  # a site build running beside the tests sees the whole notebook or none


_executed = ExecutedNotebooks(ROOT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):  # noqa: ANN201 (a hook wrapper)
    if _notebook_cell(item):
        _executed.start(item)  # before nbval starts the kernel in the first cell's set-up
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201 (a hook wrapper)
    outcome = yield
    report = outcome.get_result()
    if _notebook_cell(item) and (report.when == "call" or (report.when == "setup" and not report.passed)):
        _executed.ran(item, report.when == "call" and report.passed)
