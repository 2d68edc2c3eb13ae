"""What one learner costs a shared server, lesson by lesson: the kernel's peak memory and its CPU seconds.

Each lesson is run as a learner runs it, "Restart and run all" in a fresh kernel (nbclient, the
kernel JupyterLab starts), on the model ``XAI_MODEL`` selects. A last cell, added to a copy of the
notebook, asks the kernel itself for ``resource.getrusage``: the peak resident memory of the kernel
process (``ru_maxrss``) and its CPU seconds (user + system), its child processes included. The wall
time from the kernel's start to its last reply is printed beside them; on a busy machine it grows,
the CPU seconds and the memory do not.

    .venv/bin/python benchmarks/learner_cost.py              # every lesson, the offline model
    XAI_MODEL=vgg16 .venv/bin/python benchmarks/learner_cost.py --only 01

The last line, ``peak_rss_mb=N cpu_s=N lesson=NN``, is the costliest lesson: the largest peak memory and
the largest CPU time over the lessons (the instructor guide sizes a server from it). Solutions cost what
their lessons cost and are left out. It is not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json as _json, resource as _resource
_self, _children = _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)
print("LEARNER_COST " + _json.dumps({
    "peak_rss_mb": max(_self.ru_maxrss, _children.ru_maxrss) / 1024,
    "cpu_s": _self.ru_utime + _self.ru_stime + _children.ru_utime + _children.ru_stime,
}))
"""


def lessons(only: str = "") -> list[Path]:
    return [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if p.name.startswith(only)]


def cost(path: Path) -> dict[str, float]:
    """Peak memory (MB), CPU seconds and wall seconds of one lesson run whole in a fresh kernel."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=1200, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    failed = [
        i
        for i, cell in enumerate(nb.cells[:-1])
        if cell.cell_type == "code"
        and any(o.get("output_type") == "error" for o in cell.outputs)
        and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    if failed:
        raise SystemExit(f"{path.name}: cells {failed} failed; fix the lesson before measuring what it costs.")
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    line = next(line for line in text.splitlines() if line.startswith("LEARNER_COST "))
    measured = json.loads(line.removeprefix("LEARNER_COST "))
    return {**measured, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="lessons whose file name starts with this (e.g. 05)")
    args = parser.parse_args()
    chosen = lessons(args.only)
    if not chosen:
        raise SystemExit(f"no lesson's file name starts with {args.only!r}")
    model = os.environ.get("XAI_MODEL", "auto")
    print(
        f"model: {model}; threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {os.cpu_count()} cores"
    )
    print(f"{'lesson':34}{'peak memory (MB)':>18}{'CPU (s)':>10}{'wall (s)':>10}")
    results = {}
    for path in chosen:
        results[path.name] = measured = cost(path)
        print(f"{path.stem:34}{measured['peak_rss_mb']:18.0f}{measured['cpu_s']:10.1f}{measured['wall_s']:10.1f}")
    by_memory = max(results, key=lambda name: results[name]["peak_rss_mb"])
    by_cpu = max(results, key=lambda name: results[name]["cpu_s"])
    print(
        f"peak_rss_mb={results[by_memory]['peak_rss_mb']:.0f} cpu_s={results[by_cpu]['cpu_s']:.1f} "
        f"lesson={by_memory[:2]},{by_cpu[:2]}"
    )


if __name__ == "__main__":
    main()
