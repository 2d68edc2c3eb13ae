"""How many images per second does the report card judge, batched (``utils.evaluation.evaluate``) or one at a time?

The images: ``--images`` random crops (seeded) of the course photos in data/ (each crop a square of
half to all of the photo's shorter side, anywhere in it), preprocessed at 224 x 224 for the offline
SqueezeNet 1.1. Both paths compute the report card of lesson 08 for the course's three methods
(Grad-CAM, Guided Backpropagation, Guided Grad-CAM): each image's top class, the maps, and the
deletion and insertion AUCs with blurred 16 x 16 patches in 8 steps.

(a) batched: one ``evaluate`` call over all the images, with an empty map cache (every map is computed);
(b) loop: per image, the top class from one forward pass, then ``utils.faithfulness.report_card_rows``
    on that one photo (which computes its three maps in one pass and runs the perturbed images of
    its three maps together): the same public functions, one image at a time.

Each repeat times (a) and (b) side by side (in alternating order, to cancel drift), and the
largest difference between their AUCs is printed (the batched maps and forward passes round
differently: a few 1e-6). The last line is::

    batched_speedup=<b/a> images_per_s_batched=<..> images_per_s_loop=<..> device=<cpu|cuda>

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


def batched(loaded: LoadedModel, images: list[torch.Tensor]) -> list[tuple[float, float]]:
    """(a) One ``evaluate`` call; the (insertion, deletion) AUCs image by image, method by method."""
    table = evaluate(
        loaded.model,
        loaded.target_layer_name,
        images,
        list(COURSE_METHODS),
        cache=MapCache(),
        progress=False,
        batch_size=len(images),
        **SETTINGS,
    )
    return [(r.insertion_auc, r.deletion_auc) for r in table.rows]


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
    timings: dict[str, list[float]] = {"batched": [], "loop": []}
    worst = 0.0
    for repeat in range(args.repeats):
        results = {}
        for name in ("batched", "loop") if repeat % 2 == 0 else ("loop", "batched"):
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant maps of some crops: both paths warn alike
                results[name] = (batched if name == "batched" else loop)(loaded, images)
            if args.device == "cuda":
                torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - start)
        worst = max(
            worst, max(abs(a - b) for pa, pb in zip(results["batched"], results["loop"]) for a, b in zip(pa, pb))
        )
        print(
            f"repeat {repeat}: batched {timings['batched'][-1]:.1f} s, loop {timings['loop'][-1]:.1f} s, "
            f"speed-up {timings['loop'][-1] / timings['batched'][-1]:.2f}",
            flush=True,
        )
    a, b = statistics.median(timings["batched"]), statistics.median(timings["loop"])
    print(f"images={args.images} max_auc_diff={worst:.1e} torch_threads={torch.get_num_threads()}")
    print(
        f"batched_speedup={b / a:.2f} images_per_s_batched={args.images / a:.3f} "
        f"images_per_s_loop={args.images / b:.3f} device={args.device}"
    )


if __name__ == "__main__":
    main()
