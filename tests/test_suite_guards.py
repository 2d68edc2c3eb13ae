"""The guards the root conftest.py puts around the whole suite: offline, every notebook collected."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_reaching_another_machine_fails_at_once() -> None:
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="tests must not use the network"):
        socket.create_connection(("download.pytorch.org", 443), timeout=30)
    with pytest.raises(RuntimeError, match="tests must not use the network"):
        socket.socket().connect(("93.184.216.34", 80))
    assert time.monotonic() - start < 5


def test_loopback_stays_usable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


def test_http_from_notebook_kernels_is_refused_by_an_unreachable_proxy() -> None:
    """Kernels are separate processes; they inherit a proxy on a closed local port."""
    assert os.environ["https_proxy"] == "http://127.0.0.1:9"
    code = "import urllib.request; urllib.request.urlopen('https://download.pytorch.org/models/x.pth', timeout=30)"
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Connection refused" in result.stderr
    assert time.monotonic() - start < 20


def test_tests_default_to_the_offline_model_unless_xai_model_says_otherwise() -> None:
    code = "import os, conftest; print(os.environ['XAI_MODEL'])"
    env = {k: v for k, v in os.environ.items() if k != "XAI_MODEL"}
    chosen = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert chosen.stdout.strip() == "squeezenet1_1", chosen.stderr
    env["XAI_MODEL"] = "vgg16"
    kept = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert kept.stdout.strip() == "vgg16", kept.stderr


def test_a_notebook_that_is_not_collected_fails_the_run() -> None:
    """Without nbval's flag no notebook is collected: the run must fail, naming them."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "notebooks",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "notebooks not collected" in result.stdout + result.stderr
    assert "00_start_here.ipynb" in result.stdout + result.stderr
