"""How long each notebook takes to run on its own, and the whole course under nbval as ``make test`` runs it.

The limits are issue 18's ("Done when") and issue 21's: each lesson in at most 12 s executed alone on
the 2-core CI machine with the offline model (the report card, lesson 08: 20 s; the Clever Hans lesson,
09: 25 s; which map to trust, 10: 20 s), and the whole course (lessons and solutions) in at most 110 s
under nbval. Solutions are timed and printed but have no limit of their own.

A notebook's time is measured as MyST-NB and the guide's agenda measure it: from starting a fresh
kernel to the kernel's exit (nbclient). What a learner waits for after "Restart and run all"
(from the kernel's start to the last cell's reply) is printed beside it; the rest is stopping the
kernel, about a second once torch is loaded. The limit is checked against the whole. The course's
time is the wall time of ``pytest -n auto notebooks/`` (nbval, every notebook whole on one worker;
see conftest.py).

    .venv/bin/python benchmarks/course_times.py             # every notebook alone, then the course
    .venv/bin/python benchmarks/course_times.py --only 05   # one notebook (a prefix of the file name)

Times on a busy machine are longer: run it on a quiet one. It is not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LIMITS_S = {"08": 20.0, "09": 25.0, "10": 20.0}
"""Lessons with a limit of their own (issues 18 and 21); every other lesson: ``DEFAULT_LIMIT_S``."""
DEFAULT_LIMIT_S = 12.0
COURSE_LIMIT_S = 110.0
"""The whole course under nbval, ``pytest -n auto notebooks/`` (issue 18)."""


def notebooks(only: str = "") -> list[Path]:
    found = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
        (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb")
    )
    return [path for path in found if path.name.startswith(only)]


def run_alone(path: Path) -> tuple[float, float]:
    """Seconds from starting a kernel to the kernel's exit after ``path``, and to its last code cell's reply."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", record_timing=True, resources={"metadata": {"path": str(path.parent)}}
    )
    start = datetime.now(UTC)
    client.execute()
    stopped = datetime.now(UTC)
    replies = [cell.metadata["execution"]["shell.execute_reply"] for cell in nb.cells if cell.cell_type == "code"]
    last = max(datetime.fromisoformat(reply.replace("Z", "+00:00")) for reply in replies)
    return (stopped - start).total_seconds(), (last - start).total_seconds()


def run_course() -> float:
    """Seconds for ``pytest -n auto notebooks/`` (nbval), as ``make test`` runs the notebooks."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "auto", "notebooks"], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the notebooks failed under nbval:\n{result.stdout[-3000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="notebooks whose file name starts with this (e.g. 05)")
    parser.add_argument("--no-course", action="store_true", help="skip the whole-course run under nbval")
    args = parser.parse_args(argv)
    os.environ.setdefault("XAI_MODEL", "squeezenet1_1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    over = 0
    print(f"{'notebook':56s} {'seconds':>8s} {'limit':>6s} {'(to last reply)':>16s}")
    for path in notebooks(args.only):
        seconds, last_reply = run_alone(path)
        limit = LIMITS_S.get(path.name[:2], DEFAULT_LIMIT_S)
        lesson = path.parent.name == "notebooks"
        flag = "" if not lesson or seconds <= limit else "  over"
        over += bool(flag)
        shown = f"{limit:.0f}" if lesson else ""
        print(f"{path.relative_to(ROOT).as_posix():56s} {seconds:8.1f} {shown:>6s} {last_reply:16.1f}{flag}")
    if not args.no_course and not args.only:
        seconds = run_course()
        flag = "" if seconds <= COURSE_LIMIT_S else "  over"
        over += bool(flag)
        print(f"{'the whole course under nbval (pytest -n auto)':56s} {seconds:8.1f} {COURSE_LIMIT_S:6.0f}{flag}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
