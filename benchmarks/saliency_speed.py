"""How much faster is ``utils.saliency.saliency_maps`` than Captum, and how close to the floor?

Three ways to get Grad-CAM, Guided Backpropagation and Guided Grad-CAM for two classes of one
image, on VGG16 (random weights, seeded) at the article's layer ``features.29``:

(a) Captum as the article uses it: one call per method per class (LayerGradCam, GuidedBackprop,
    GuidedGradCam for class A, then for class B): 8 forward passes.
(b) ``saliency_maps``: one forward pass, the graph kept; per class one backward pass to the layer
    and one guided backward pass to the input.
(c) The floor: the same passes written with bare autograd (VGG16's layers called one by one, the
    guided rule as a tensor hook on each ReLU output), no checks, no module hooks.

Each repeat runs a, b and c (in a rotating order, to cancel drift); the medians are printed.
Peak memory is measured once per variant in a fresh subprocess: on the CPU, the growth of the
process's peak resident set size (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` just
before the call) over its resident size then, so it counts what torch's allocator and glibc take
from the OS, including cached pages; on CUDA, ``torch.cuda.max_memory_allocated`` above the
memory allocated before the call. The last line is::

    speedup_vs_captum=<a/b> floor_ratio=<b/c> max_abs_diff=<largest |a - b| over the six maps>

Run by hand (not by the test suite): ``python benchmarks/saliency_speed.py --repeats 5``.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import captum
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam
from torch import nn

from utils.saliency import saliency_maps

LAYER = 29  # features.29, the ReLU after VGG16's last convolution
METHODS = ("grad_cam", "guided_backprop", "guided_grad_cam")
Maps = dict[int, dict[str, torch.Tensor]]


def captum_calls(model: nn.Module, x: torch.Tensor, classes: tuple[int, int]) -> Maps:
    """(a) One Captum call per method per class, as in the article."""
    layer = model.features[LAYER]
    maps: Maps = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns about hooks and requires_grad on every call
        for c in classes:
            maps[c] = {
                "grad_cam": LayerGradCam(model, layer).attribute(x, c, relu_attributions=True),
                "guided_backprop": GuidedBackprop(model).attribute(x, c),
                "guided_grad_cam": GuidedGradCam(model, layer).attribute(x, c),
            }
    return maps


def fused(model: nn.Module, x: torch.Tensor, classes: tuple[int, int]) -> Maps:
    """(b) ``saliency_maps``: one forward pass for both classes."""
    return saliency_maps(model, f"features.{LAYER}", x, list(classes))


def floor(model: nn.Module, x: torch.Tensor, classes: tuple[int, int]) -> Maps:
    """(c) The passes (b) needs, with bare autograd: 1 forward, 2 backward to A, 2 guided backward to x."""
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(False)
    guided = [False]

    def rule(grad: torch.Tensor) -> torch.Tensor | None:
        return F.relu(grad) if guided[0] else None

    try:
        image = x.detach().requires_grad_(True)
        h = image
        for i, module in enumerate(model.features):
            h = module(h)
            if isinstance(module, nn.ReLU):
                h.register_hook(rule)
            if i == LAYER:
                activations = h
        h = torch.flatten(model.avgpool(h), 1)
        for module in model.classifier:
            h = module(h)
            if isinstance(module, nn.ReLU):
                h.register_hook(rule)
        maps: Maps = {}
        for k, c in enumerate(classes):
            score = h[:, c]
            guided[0] = False
            (grads,) = torch.autograd.grad(score, activations, torch.ones_like(score), retain_graph=True)
            alpha = grads.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((alpha * activations.detach()).sum(1, keepdim=True))
            guided[0] = True
            (gbp,) = torch.autograd.grad(score, image, torch.ones_like(score), retain_graph=k < len(classes) - 1)
            ggc = gbp * F.interpolate(cam, size=x.shape[-2:], mode="nearest")
            maps[c] = {"grad_cam": cam, "guided_backprop": gbp, "guided_grad_cam": ggc}
        return maps
    finally:
        for p in params:
            p.requires_grad_(True)


VARIANTS: dict[str, tuple[str, Callable[[nn.Module, torch.Tensor, tuple[int, int]], Maps]]] = {
    "a": ("captum, 6 calls", captum_calls),
    "b": ("saliency_maps, 1 call", fused),
    "c": ("floor, bare autograd", floor),
}


def setup(device: str, size: int) -> tuple[nn.Module, torch.Tensor, tuple[int, int]]:
    """The seeded model and input, and the two classes: the model's top two for x (so no map is blank)."""
    torch.manual_seed(0)
    model = torchvision.models.vgg16().eval().to(device)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        first, second = model(x)[0].topk(2).indices.tolist()
    return model, x, (first, second)


def timed(fn: Callable[[], Maps], device: str) -> tuple[float, Maps]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    maps = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, maps


def max_abs_diff(first: Maps, second: Maps) -> float:
    return max((first[c][m] - second[c][m]).abs().max().item() for c in first for m in METHODS)


# --- peak memory, one fresh process per variant ------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _hwm_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def measure_peak(variant: str, device: str, size: int) -> str:
    """Peak memory of one call of ``variant`` after a warm-up call, in this (fresh) process."""
    model, x, classes = setup(device, size)
    fn = VARIANTS[variant][1]
    fn(model, x, classes)  # warm-up: one-time allocations (thread pools, kernels) are not the variant's
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn(model, x, classes)
        torch.cuda.synchronize()
        return f"{(torch.cuda.max_memory_allocated() - before) / 2**20:.0f} MiB (CUDA allocated)"
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current VmRSS
    except OSError:
        return "n/a (needs Linux /proc/self/clear_refs)"
    before = _rss_kib()
    fn(model, x, classes)
    return f"{(_hwm_kib() - before) / 1024:.0f} MiB (peak RSS growth)"


def peak_in_subprocess(variant: str, device: str, size: int) -> str:
    command = [sys.executable, __file__, "--peak-of", variant, "--device", device, "--size", str(size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    return lines[-1] if done.returncode == 0 and lines else f"failed ({done.stderr.strip().splitlines()[-1:]})"


# --- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each variant (after one warm-up)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda, if available")
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--peak-of", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but CUDA is not available here")
    if args.peak_of:
        print(measure_peak(args.peak_of, args.device, args.size))
        return

    model, x, classes = setup(args.device, args.size)
    print(
        f"VGG16 (random weights), 1x3x{args.size}x{args.size}, classes {classes}, device={args.device}, "
        f"torch {torch.__version__}, captum {captum.__version__}, threads={torch.get_num_threads()}"
    )
    for key in VARIANTS:  # warm-up
        VARIANTS[key][1](model, x, classes)
    times: dict[str, list[float]] = {key: [] for key in VARIANTS}
    maps: dict[str, Maps] = {}
    order = list(VARIANTS)
    for repeat in range(args.repeats):
        for key in order[repeat % 3 :] + order[: repeat % 3]:
            seconds, maps[key] = timed(lambda key=key: VARIANTS[key][1](model, x, classes), args.device)
            times[key].append(seconds)
        print(f"repeat {repeat + 1}: " + "  ".join(f"{k}={times[k][-1]:.3f}s" for k in VARIANTS), flush=True)
    medians = {key: statistics.median(values) for key, values in times.items()}
    for key, (label, _) in VARIANTS.items():
        peak = peak_in_subprocess(key, args.device, args.size)
        print(f"({key}) {label:<22} median {medians[key]:.3f} s   peak memory {peak}")
    print(f"max |a - c| = {max_abs_diff(maps['a'], maps['c']):.3g} (the floor computes the same maps)")
    print(
        f"speedup_vs_captum={medians['a'] / medians['b']:.2f} floor_ratio={medians['b'] / medians['c']:.2f} "
        f"max_abs_diff={max_abs_diff(maps['a'], maps['b']):.3g}"
    )


if __name__ == "__main__":
    main()
