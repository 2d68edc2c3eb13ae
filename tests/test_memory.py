"""A thin strip must not take gigabytes: peak memory of the image path, measured in a fresh process.

Resizing the shorter side of a 1 x N strip to 256 would build a 256 x 256N picture (about 260 MB
per 1000 pixels of length); ``preprocess_imagenet_image`` crops to what the centre crop keeps
first. The child process measures its own peak resident memory (``ru_maxrss``) after warming up
on an ordinary photo, so the number is the strip's extra cost alone. A cap on the child's data
segment (``RLIMIT_DATA``) keeps a regression from taking the machine's memory: it fails instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 200
STRIP_LENGTH = 20_000

CHILD = """
import io, json, resource, sys, warnings
import numpy as np
from PIL import Image
from utils.datasets import preprocess_imagenet_image, sample_image_path
from utils.explorer import ImageAnalysis, image_from_upload
from utils.models import load_model

warnings.simplefilter("ignore")  # the strip is upscaled, and says so
mode, length, cap_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
loaded = load_model("squeezenet1_1", device="cpu") if mode == "explorer" else None
buffer = io.BytesIO()
Image.new("RGB", (length, 1), (10, 200, 30)).save(buffer, format="PNG")
strip = buffer.getvalue()
def run(content):
    if mode == "explorer":
        return ImageAnalysis(loaded, image_from_upload(content, "strip.png"), top_k=1).x
    return preprocess_imagenet_image(Image.open(io.BytesIO(content)))
ordinary = io.BytesIO()
Image.open(sample_image_path("cat")).save(ordinary, format="PNG")
run(ordinary.getvalue())  # warm up: imports, the model's first forward pass, allocator pools
before = peak()
soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
limit = int((before + cap_mb) * 2**20) if soft == resource.RLIM_INFINITY else soft
resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
try:
    shape = list(run(strip).shape)
except MemoryError:
    shape = "MemoryError"
print(json.dumps({"extra_mb": peak() - before, "shape": shape}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kB and RLIMIT_DATA on private mappings are Linux's")
@pytest.mark.parametrize("mode", ["preprocess", "explorer"])
def test_a_thin_strip_stays_under_200_mb_of_extra_peak_memory(mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(STRIP_LENGTH), str(4 * LIMIT_MB)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [1, 3, 224, 224], measured
    assert measured["extra_mb"] < LIMIT_MB, f"a 1 x {STRIP_LENGTH} strip took {measured['extra_mb']:.0f} MB extra"


# --- issue 20: the explorer after many uploads, the curves with many steps ----------------------------


def _bounds(what: str, **sizes: int) -> dict:
    """``benchmarks/memory_bounds.py``'s measurement of ``what`` as it is now, in a fresh process (tiny model)."""
    options = [f"--{name}={value}" for name, value in sizes.items()]
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "memory_bounds.py"),
            "--child",
            what,
            "now",
            "--model=tiny",
            *options,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/statm and ru_maxrss in kB are Linux's")
def test_fifty_uploads_of_a_3000_pixel_png_add_under_300_mb_to_the_explorer() -> None:
    """Before issue 20 each upload kept its decoded 27 MB picture and its maps: about +45 MB per upload."""
    measured = _bounds("explorer", uploads=50)
    assert measured["added_mb"] < 300, f"50 uploads added {measured['added_mb']:.0f} MB"
    assert measured["kept_mb"] < 64, f"the explorer keeps {measured['kept_mb']:.0f} MB"


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kB is Linux's")
def test_insertion_deletion_with_600_pixel_steps_adds_under_200_mb_at_its_peak() -> None:
    """Before issue 20 all 1,198 perturbed 224 x 224 images were built first: 720 MB before the first batch."""
    measured = _bounds("curves", steps=600)
    assert measured["added_mb"] < 200, f"600 steps added {measured['added_mb']:.0f} MB at the peak"
