"""Memory that stays bounded: the explorer after many uploads, and the faithfulness curves with many steps.

Two measurements, each in a fresh process so that one cannot hide in the other's allocator pools,
each beside the present cost's old behaviour reproduced in the same run:

* **explorer**: ``--uploads`` (50) uploads of a 3000 x 3000 flat PNG (33 kB each, far under the
  upload limits) into one ``SaliencyExplorer``, each shown at once (prediction, Grad-CAM maps,
  picture), as a class would. "now": the explorer as it is. "old": the same explorer with every
  limit lifted and every decoded upload kept, as the explorer kept them before (issue 20: +45 MB
  per upload). Reported: the resident memory added, after the uploads (``/proc/self/statm``).
* **curves**: ``insertion_deletion(patch=1, steps=600, batch_size=8)`` on a 224 x 224 photo.
  "now": the perturbed images built batch by batch. "old": all ``2 x 599`` perturbed images
  built first, then run 8 at a time, as ``insertion_deletion`` did. Reported: the peak resident
  memory added (``ru_maxrss``), after a warm-up call with 2 steps.

Run: ``.venv/bin/python benchmarks/memory_bounds.py`` (about 3 minutes on a 2-core laptop with the
offline model; ``--model tiny`` for a small stand-in network, ``--uploads`` and ``--steps`` to
change the sizes). Linux only (``/proc``, ``ru_maxrss`` in kB). Numbers depend on the machine;
the ratio is the point. The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import resource
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXPLORER_LIMIT_MB = 300
CURVES_LIMIT_MB = 200
SIDE = 3000


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _loaded(model: str) -> Any:
    import torch
    from torchvision.transforms._presets import ImageClassification

    from utils.models import LoadedModel, load_model

    if model == "squeezenet1_1":
        return load_model("squeezenet1_1", device="cpu")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    net.append(torch.nn.Linear(8, 10))
    return LoadedModel(
        name="tiny",
        model=net.eval(),
        target_layer=net[1],
        target_layer_name="1",
        categories=tuple(f"class {i}" for i in range(10)),
        transforms=ImageClassification(crop_size=224, resize_size=256),
        device=torch.device("cpu"),
        description="a tiny stand-in network",
    )


def _upload(i: int) -> tuple[dict[str, Any], ...]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE), (40 + i % 200, 120, 200)).save(buffer, format="PNG")
    content = buffer.getvalue()
    file = {"name": f"flat{i}.png", "type": "image/png", "size": len(content), "content": memoryview(content)}
    return ({**file, "last_modified": datetime(2024, 1, 1, tzinfo=UTC)},)


def explorer_memory(model: str, uploads: int, old: bool) -> dict[str, float]:
    """Resident MB added by ``uploads`` uploads (and the MB the explorer says it keeps)."""
    import utils.explorer as explorer_module
    from utils.datasets import sample_image_path

    loaded = _loaded(model)
    explorer = explorer_module.SaliencyExplorer(loaded, samples={"cat": sample_image_path("cat")})
    kept_uploads: list[Any] = []
    if old:  # every limit lifted, every decoded upload kept: the explorer before issue 20
        decode = explorer_module.image_from_upload
        explorer_module.image_from_upload = lambda *a, **k: kept_uploads.append(decode(*a, **k)) or kept_uploads[-1]
        explorer_module.ImageAnalysis.forget = lambda self: None
        explorer_module.MAP_BYTES_KEPT = explorer_module.PICTURE_BYTES_KEPT = 2**62
        explorer_module.PICTURES_KEPT = 10**9
        explorer.uploads_kept = 10**9
    explorer.upload.value = _upload(10**6)  # warm up: the first upload's allocations are not the uploads' cost
    gc.collect()
    before = _resident_mb()
    for i in range(uploads):
        explorer.upload.value = _upload(i)
        assert "Problem" not in explorer.message.value, explorer.message.value
    gc.collect()
    return {"added_mb": _resident_mb() - before, "kept_mb": explorer.cached_bytes / 2**20}


def _old_curves(model: Any, x: Any, saliency: Any, target: int, steps: int, batch_size: int) -> Any:
    """``insertion_deletion`` as it was: every perturbed image built first, then run ``batch_size`` at a time."""
    import torch

    from utils.faithfulness import _counts, removal_ranks, replacement

    ranks, units = removal_ranks(saliency, tuple(x.shape[-2:]), 1)
    base = replacement(x, "blur")
    masks = torch.from_numpy(ranks[None] < _counts(units, steps)[1:-1, None, None])[:, None]
    images = torch.cat([x, base, torch.where(masks, base, x), torch.where(masks, x, base)])
    with torch.no_grad():
        return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def curves_memory(model: str, steps: int, old: bool) -> dict[str, float]:
    """Peak resident MB added by one ``insertion_deletion(patch=1, steps=steps, batch_size=8)``."""
    import numpy as np
    import torch

    from utils.datasets import preprocess_imagenet_image, sample_image_path
    from utils.faithfulness import insertion_deletion

    loaded = _loaded(model)
    x = preprocess_imagenet_image(sample_image_path("cat"), loaded.transforms)
    saliency = np.random.default_rng(0).random(tuple(x.shape[-2:]))
    torch.set_num_threads(1)

    def run(n: int) -> None:
        if old:
            _old_curves(loaded.model, x, saliency, 0, n, 8)
        else:
            insertion_deletion(
                loaded.model, x, saliency, 0, steps=n, patch=1, batch_size=8, categories=loaded.categories
            )

    run(2)  # warm up: imports, the first forward pass, allocator pools
    gc.collect()
    before = _peak_mb()
    run(steps)
    return {"added_mb": _peak_mb() - before}


def _child(args: list[str]) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("squeezenet1_1", "tiny"), default="squeezenet1_1")
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--child", nargs=2, metavar=("WHAT", "WHEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, when = args.child
        old = when == "old"
        found = (
            explorer_memory(args.model, args.uploads, old)
            if what == "explorer"
            else curves_memory(args.model, args.steps, old)
        )
        print(json.dumps(found))
        return
    common = ["--model", args.model, "--uploads", str(args.uploads), "--steps", str(args.steps)]
    found = {(what, when): _child([what, when, *common]) for what in ("explorer", "curves") for when in ("old", "now")}
    print(f"model: {args.model}")
    print(f"{'':44s}{'old':>10s}{'now':>10s}{'old / now':>11s}{'limit':>8s}")
    rows = [
        (f"explorer, {args.uploads} uploads of {SIDE} x {SIDE} PNG (MB)", "explorer", EXPLORER_LIMIT_MB),
        (f"insertion_deletion, patch 1, {args.steps} steps (MB)", "curves", CURVES_LIMIT_MB),
    ]
    for label, what, limit in rows:
        old, now = found[(what, "old")]["added_mb"], found[(what, "now")]["added_mb"]
        print(f"{label:44s}{old:10.0f}{now:10.0f}{old / max(now, 1.0):10.1f}x{limit:8d}")
    kept = found[("explorer", "now")]["kept_mb"]
    print(f"the explorer's own count of what it keeps now: {kept:.0f} MB")
    explorer_now, curves_now = found[("explorer", "now")]["added_mb"], found[("curves", "now")]["added_mb"]
    within = explorer_now < EXPLORER_LIMIT_MB and curves_now < CURVES_LIMIT_MB
    old_explorer, old_curves = found[("explorer", "old")]["added_mb"], found[("curves", "old")]["added_mb"]
    print(
        f"summary: explorer +{explorer_now:.0f} MB after {args.uploads} uploads (old +{old_explorer:.0f}), "
        f"curves +{curves_now:.0f} MB at {args.steps} steps (old +{old_curves:.0f}): "
        + ("both within their limits" if within else "OVER A LIMIT")
    )


if __name__ == "__main__":
    main()
