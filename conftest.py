"""Test-suite set-up shared by unit tests, doctests and notebooks (nbval).

* The offline model unless ``XAI_MODEL`` says otherwise, so tests never download weights.
* No network: a connection to anything but this machine fails at once instead of hanging,
  in the test process (socket guard) and in notebook kernels (an unreachable proxy).
* Figures render off-screen.
* Every notebook must be collected when the notebooks are part of the run.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
NOTEBOOKS = ROOT / "notebooks"

os.environ.setdefault("XAI_MODEL", "squeezenet1_1")
os.environ.setdefault("MPLBACKEND", "Agg")
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
