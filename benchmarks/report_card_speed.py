"""How many images per second does the report card judge, batched (``utils.evaluation.evaluate``) or one at a time?

The images: ``--images`` random crops (seeded) of the course photos in data/ (each crop a square of
half to all of the photo's shorter side, anywhere in it), preprocessed at 224 x 224 for the offline
SqueezeNet 1.1. Both paths compute the report card of lesson 08 for the course's three methods
(Grad-CAM, Guided Backpropagation, Guided Grad-CAM): each image's top class, the maps, and the
deletion and insertion AUCs with blurred 16 x 16 patches in 8 steps.

(a) batched: one ``evaluate`` call over all the images, with an empty map cache (every map is computed);
(b) loop: per image, the top class from one forward pass, then ``utils.faithfulness.report_card_rows``
    on that one photo (which computes its three maps in one pass and runs the 44 perturbed images of
    its three maps in batches of its default size, 8 on a CPU): the same public functions, one photo
    at a time;
(c) single: ``evaluate`` with ``batch_size=1`` and ``forward_batch=1``: every call of the model,
    the maps' and each perturbed image's, takes one image (no batching at all);
(d) wide: (a) with ``forward_batch=128``, the default before it became 8 on a CPU
    (``utils.faithfulness.CPU_FORWARD_BATCH``): what the smaller batch gains on this machine.

(b) is the loop a learner writes with the course's functions; its perturbed images already go
through the model in batches, so on a CPU (a) gains over (b) only what the maps and per-call
overheads cost. (c) shows what batching itself buys, (d) what the batch's size does. Each repeat
times the paths side by side (in rotating order, to cancel drift), and the largest difference
between the AUCs of (a) and the others is
printed (batched maps and forward passes round differently: a few 1e-6). The last line is::

    batched_speedup=<b/a> unbatched_speedup=<c/a> small_batch_gain=<d/a> images_per_s_batched=<..>
    images_per_s_loop=<..> images_per_s_single=<..> device=<cpu|cuda>

with the medians over the repeats. Run by hand, not by the test suite:
``python benchmarks/report_card_speed.py --repeats 3`` (add ``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch

from utils.datasets import load_image, preprocess_imagenet_image
from utils.evaluation import MapCache, evaluate
from utils.faithfulness import COURSE_METHODS, report_card_rows
from utils.models import LoadedModel, load_model

DATA = Path(__file__).resolve().parent.parent / "data"
SETTINGS = {"steps": 8, "baseline": "blur", "patch": 16}  # lesson 08's report card


def course_crops(loaded: LoadedModel, count: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` random square crops of the course photos, each a ``1 x 3 x 224 x 224`` model input."""
    photos = [load_image(p) for p in sorted(DATA.iterdir()) if p.suffix.lower() in (".png", ".jpg")]
    generator = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        short = min(photo.size)
        side = int(short * (0.5 + 0.5 * torch.rand(1, generator=generator).item()))
        left = int((photo.width - side) * torch.rand(1, generator=generator).item())
        top = int((photo.height - side) * torch.rand(1, generator=generator).item())
        crops.append(preprocess_imagenet_image(photo.crop((left, top, left + side, top + side)), loaded.transforms))
    return crops


def _evaluated(loaded: LoadedModel, images: list[torch.Tensor], **batching: int) -> list[tuple[float, float]]:
    """One ``evaluate`` call, empty map cache: the (insertion, deletion) AUCs image by image, method by method."""
    table = evaluate(
        loaded.model,
        loaded.target_layer_name,
        images,
        list(COURSE_METHODS),
        cache=MapCache(),
        progress=False,
        **batching,
        **SETTINGS,
    )
    return [(r.insertion_auc, r.deletion_auc) for r in table.rows]


def batched(loaded: LoadedModel, images: list[torch.Tensor]) -> list[tuple[float, float]]:
    """(a) Every image in one chunk, the perturbed images ``forward_batch`` (its default) at a time."""
    return _evaluated(loaded, images, batch_size=len(images))


def single(loaded: LoadedModel, images: list[torch.Tensor]) -> list[tuple[float, float]]:
    """(c) No batching: every model call one image."""
    return _evaluated(loaded, images, batch_size=1, forward_batch=1)


def wide(loaded: LoadedModel, images: list[torch.Tensor]) -> list[tuple[float, float]]:
    """(d) As (a), 128 perturbed images a pass (the former default on every device)."""
    return _evaluated(loaded, images, batch_size=len(images), forward_batch=128)


def loop(loaded: LoadedModel, images: list[torch.Tensor]) -> list[tuple[float, float]]:
    """(b) One image at a time: its top class, then ``report_card_rows`` on that photo alone."""
    found = []
    for i, x in enumerate(images):
        with torch.no_grad():
            top = int(loaded.model(x).argmax())
        rows = report_card_rows(
            loaded.model, loaded.target_layer_name, {f"image {i}": (x, top)}, COURSE_METHODS, **SETTINGS
        )
        found += [(r.insertion_auc, r.deletion_auc) for r in rows]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    loaded = load_model("squeezenet1_1", device=args.device)
    images = [x.to(loaded.device) for x in course_crops(loaded, args.images)]
    paths = {"batched": batched, "loop": loop, "single": single, "wide": wide}
    timings: dict[str, list[float]] = {name: [] for name in paths}
    worst = 0.0
    for repeat in range(args.repeats):
        results = {}
        order = list(paths)[repeat % len(paths) :] + list(paths)[: repeat % len(paths)]
        for name in order:
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant maps of some crops: every path warns alike
                results[name] = paths[name](loaded, images)
            if args.device == "cuda":
                torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - start)
        for other in ("loop", "single", "wide"):
            pairs = zip(results["batched"], results[other])
            worst = max(worst, max(abs(a - b) for pa, pb in pairs for a, b in zip(pa, pb)))
        print(
            f"repeat {repeat}: batched {timings['batched'][-1]:.1f} s, loop {timings['loop'][-1]:.1f} s, "
            f"single {timings['single'][-1]:.1f} s, wide {timings['wide'][-1]:.1f} s; speed-up over the loop "
            f"{timings['loop'][-1] / timings['batched'][-1]:.2f}, over single "
            f"{timings['single'][-1] / timings['batched'][-1]:.2f}, over wide "
            f"{timings['wide'][-1] / timings['batched'][-1]:.2f}",
            flush=True,
        )
    a, b, c, d = (statistics.median(timings[name]) for name in paths)
    print(f"images={args.images} max_auc_diff={worst:.1e} torch_threads={torch.get_num_threads()}")
    print(
        f"batched_speedup={b / a:.2f} unbatched_speedup={c / a:.2f} small_batch_gain={d / a:.2f} "
        f"images_per_s_batched={args.images / a:.3f} "
        f"images_per_s_loop={args.images / b:.3f} images_per_s_single={args.images / c:.3f} device={args.device}"
    )


if __name__ == "__main__":
    main()
