"""Fixtures for the site tests and the browser test: the course's site built once, JupyterLab on loopback,
headless Chromium.

``course_site`` is the site ``make html`` builds, with lessons 00 and 01 executed (01 ends on a check cell) and
every other notebook a page without outputs (``python book/build.py --only 00 --only 01``), built once per test
session into a temporary folder and shared by tests/test_site.py and tests/test_browser.py.

The browser is Debian's ``chromium`` package (``command -v chromium``), launched by Playwright for
Python through ``executable_path``: nothing downloads a browser. The pinned Playwright (1.65) is
the version tested with Debian's chromium 156; change them together.

Without Chromium or Playwright the browser test is skipped with a one-line reason, except under CI
(``CI`` set), where it fails: ``.ci/run`` installs both. Each JupyterLab gets its own port, token,
config, data, runtime and settings folders and its own copies of the notebooks, and is stopped,
with its kernels, on every path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
SITE_BUILDER = ROOT / "book" / "build.py"
SITE_BUILD_S = 900
ARTIFACTS = ROOT / "build" / "test-artifacts" / "browser"
"""Screenshots the browser test leaves behind (build/ is not committed)."""

CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Playwright adds ``--headless`` and a fresh ``--user-data-dir`` (launch_persistent_context)."""
SERVER_START_S = 90
RUN_ALL_S = 240
STOP_S = 10
VISIBLE_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"

LAB_SETTINGS = {
    # No "news" toast and no update check: nothing to click away, nothing fetched.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Every cell stays in the page, so that every prompt and output can be read.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

_FINISHED = """() => {
  const prompts = [...document.querySelectorAll('__NOTEBOOK__ .jp-CodeCell .jp-InputPrompt')];
  const running = prompts.some(p => p.textContent.includes('*'));
  const all = prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
  const error = document.querySelector(
    '__NOTEBOOK__ .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
  return !running && (all || error !== null);
}""".replace("__NOTEBOOK__", VISIBLE_NOTEBOOK)

_KERNEL_READY = """name => {
  const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = widget && widget.context && widget.context.path === name && widget.sessionContext.session
    && widget.sessionContext.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
"""True once the notebook on show has a connected, idle kernel (the toolbar says "idle" earlier, before it starts)."""

_ERRORS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  const errors = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code' || (cell.getMetadata('tags') || []).includes('raises-exception')) continue;
    for (let j = 0; j < cell.outputs.length; j++) {
      const output = cell.outputs.get(j).toJSON();
      if (output.output_type === 'error') errors.push(`cell ${i + 1}: ${output.ename}: ${output.evalue}`);
    }
  }
  return errors;
}"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_browser() -> str | None:
    """Why the browser test cannot run here (one line), or None."""
    missing = []
    if shutil.which("chromium") is None:
        missing.append("Chromium (Debian: apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("Playwright (pip install -r requirements-dev.txt)")
    return f"browser test needs {' and '.join(missing)}" if missing else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a browser, skip the browser tests with one line (a skip mark folds into one summary line)."""
    reason = _missing_browser()
    if reason and not _in_ci():
        for item in items:
            if "chromium" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium; under CI, a missing browser fails the test instead of skipping it."""
    reason = _missing_browser()
    if reason:
        pytest.fail(f"{reason}; under CI it is required (.ci/run installs both)", pytrace=False)
    return str(shutil.which("chromium"))


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: where it listens, its token, and the folder it serves."""

    url: str
    token: str
    root: Path
    NOTEBOOK: ClassVar[str] = VISIBLE_NOTEBOOK
    """CSS selector of the notebook on show."""

    def run_all(self, page: Page, notebook: Path) -> list[str]:
        """Open a copy of ``notebook``, choose Run > Run All Cells, wait, and return its error outputs.

        Cells tagged ``raises-exception`` may raise. Raises Playwright's ``TimeoutError`` when the
        notebook does not finish within ``RUN_ALL_S``.
        """
        assert notebook.is_file(), f"{notebook.relative_to(ROOT)} is missing; the browser test opens it"
        shutil.copy(notebook, self.root / notebook.name)
        page.goto(f"{self.url}/lab/tree/{notebook.name}?reset&token={self.token}")
        page.wait_for_function(_KERNEL_READY, arg=notebook.name, timeout=SERVER_START_S * 1000, polling=250)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        page.wait_for_function(_FINISHED, timeout=RUN_ALL_S * 1000, polling=250)
        errors: list[str] = page.evaluate(_ERRORS)
        return errors

    def screenshot(self, page: Page, name: str) -> Path:
        """Save the page as ``build/test-artifacts/browser/<name>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path


def build_site(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``make html``'s command (``python book/build.py ARGS --quiet``) and return what it did."""
    command = [sys.executable, str(SITE_BUILDER), *args, "--quiet"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SITE_BUILD_S, check=False)


@pytest.fixture(scope="session")
def site_builder() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``build_site``, for tests that build a site of their own."""
    return build_site


@pytest.fixture(scope="session")
def course_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course's site with lessons 00 and 01 executed (``book/build.py --only 00 --only 01``): its folder."""
    out = tmp_path_factory.mktemp("course-site") / "html"
    result = build_site("--only", "00", "--only", "01", "--out", str(out))
    assert result.returncode == 0, f"the site build failed:\n{result.stderr[-4000:]}"
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(process: subprocess.Popen[bytes], status_url: str, log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with opener.open(status_url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _processes_using(folder: Path) -> list[int]:
    """Processes whose command line names ``folder``: the kernels of our server (their connection files live there)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if str(folder).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _stop(process: subprocess.Popen[bytes], runtime: Path) -> None:
    """SIGTERM to the server's process group (it stops its kernels); SIGKILL if it lingers; then any kernel left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_S)
    for pid in _processes_using(runtime):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def lab(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 at a free port, with a random token, in its own folders; stopped on every path."""
    base = tmp_path_factory.mktemp("jupyterlab")
    folders = {name: base / name for name in ("root", "config", "data", "runtime", "settings", "workspaces", "ipython")}
    for folder in folders.values():
        folder.mkdir()
    for plugin, settings in LAB_SETTINGS.items():
        path = folders["settings"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(folders["config"]),
        "JUPYTER_DATA_DIR": str(folders["data"]),
        "JUPYTER_RUNTIME_DIR": str(folders["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(folders["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(folders["workspaces"]),
        "IPYTHONDIR": str(folders["ipython"]),
    }
    port, token = _free_port(), secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folders['root']}",
        "--LabApp.expose_app_in_browser=True",  # lets the test read the notebook's outputs from the page
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root otherwise (containers, CI)
    log = base / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=folders["root"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, f"{url}/api/status?token={token}", log)
        yield Lab(url=url, token=token, root=folders["root"])
    finally:
        _stop(process, folders["runtime"])


@pytest.fixture(scope="module")
def playwright(chromium: str) -> Iterator[Any]:
    """Playwright, started once for the module's browser pages (its sync API runs one instance at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@contextmanager
def _chromium_page(playwright: Any, chromium: str, profile: Path) -> Iterator[Any]:
    """A headless Chromium page with a fresh profile, closed on every path."""
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium,
        headless=True,
        args=list(CHROMIUM_FLAGS),
        viewport={"width": 1280, "height": 900},
    )
    try:
        context.set_default_timeout(60_000)
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def page(chromium: str, lab: Lab, playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium page for JupyterLab."""
    with _chromium_page(playwright, chromium, tmp_path_factory.mktemp("chromium-profile")) as opened:
        yield opened


@dataclass
class OfflinePage:
    """A Chromium page that may load files only: every request for anything else is refused and listed."""

    page: Any
    refused: list[str]


@pytest.fixture(scope="module")
def offline_page(chromium: str, playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflinePage]:
    """A Chromium page for the built site, as a reader with no network sees it."""
    refused: list[str] = []

    def files_only(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with _chromium_page(playwright, chromium, tmp_path_factory.mktemp("chromium-site-profile")) as opened:
        opened.context.route("**/*", files_only)
        yield OfflinePage(opened, refused)
