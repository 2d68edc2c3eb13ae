"""Does the course compute the same maps on a GPU as on the CPU? A check to run by hand where CUDA exists.

Everything the lessons compute on the model's device is computed twice, on the CPU and on
``--device`` (default ``cuda``), from the same photo and the same weights, and compared: the
preprocessing, the prediction, the three maps of ``saliency_maps`` (and Captum's, on the device),
the discriminativity score, one step of parameter randomisation (drawn on the CPU, so the same
weights on every device), a deletion/insertion curve, and the shortcut model of lesson 09 moved
to the device. Each line prints the largest difference relative to the CPU map's largest value;
the last line is ``device_check=<passed|FAILED> worst_relative_difference=<x>``. The exit status
is 0 only when every difference is within ``--tolerance``.

Not part of ``make test`` (CI has no GPU): ``python benchmarks/device_check.py --device cuda``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings

import numpy as np
import torch
from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam

from utils.datasets import preprocess_imagenet_image, sample_image_path
from utils.discriminativity import discriminativity_score
from utils.faithfulness import insertion_deletion
from utils.models import load_model
from utils.regions import region_masks
from utils.saliency import saliency_maps, upsample_cam
from utils.sanity import cascading_randomisation
from utils.shortcuts import accuracy, small_cnn, tagged_dataset, train_classifier


def relative(reference: torch.Tensor | np.ndarray | float, other: torch.Tensor | np.ndarray | float) -> float:
    """``max |reference - other| / max |reference|``, both brought to the CPU in float64."""
    a = torch.as_tensor(
        np.asarray(reference.detach().cpu() if isinstance(reference, torch.Tensor) else reference), dtype=torch.float64
    )
    b = torch.as_tensor(
        np.asarray(other.detach().cpu() if isinstance(other, torch.Tensor) else other), dtype=torch.float64
    )
    scale = float(a.abs().max()) or 1.0
    return float((a - b).abs().max()) / scale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest relative difference allowed")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="captum")  # Captum's notes on hooks and requires_grad
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"device_check: CUDA is not available here (torch {torch.__version__}); nothing to compare.")
        return 2
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    cpu, gpu = load_model("squeezenet1_1", device="cpu"), load_model("squeezenet1_1", device=device)
    print(
        f"torch {torch.__version__}; {torch.cuda.get_device_name(device) if device.type == 'cuda' else device}; "
        f"model {cpu.name}, layer {cpu.target_layer_name}"
    )
    results: dict[str, float] = {}
    photo = sample_image_path("fruits")
    x_cpu = preprocess_imagenet_image(photo, cpu.transforms)
    x_gpu = preprocess_imagenet_image(photo, gpu.transforms, device=device)
    assert x_gpu.device.type == device.type
    results["preprocess"] = relative(x_cpu, x_gpu)
    with torch.no_grad():
        results["logits"] = relative(cpu.model(x_cpu), gpu.model(x_gpu))

    classes = ["orange", "lemon"]
    maps_cpu = saliency_maps(cpu.model, cpu.target_layer_name, x_cpu, classes)
    maps_gpu = saliency_maps(gpu.model, gpu.target_layer_name, x_gpu, classes)
    for cls in classes:
        for method, value in maps_cpu[cls].items():
            assert maps_gpu[cls][method].device.type == device.type, f"{method} left the device"
            results[f"{method} '{cls}'"] = relative(value, maps_gpu[cls][method])
    index = gpu.categories.index("lemon")
    captum = {
        "grad_cam": LayerGradCam(gpu.model, gpu.target_layer).attribute(x_gpu, index, relu_attributions=True),
        "guided_backprop": GuidedBackprop(gpu.model).attribute(x_gpu, index),
        "guided_grad_cam": GuidedGradCam(gpu.model, gpu.target_layer).attribute(x_gpu, index),
    }
    for method, value in captum.items():
        results[f"{method} vs Captum on {device.type}"] = relative(value, maps_gpu["lemon"][method])

    masks = region_masks("fruits", cpu.transforms)
    scores = [
        discriminativity_score(
            m["orange"]["guided_grad_cam"], m["lemon"]["guided_grad_cam"], (masks["orange"], masks["lemon"])
        )
        for m in (maps_cpu, maps_gpu)
    ]
    results["discriminativity score"] = abs(scores[0].score - scores[1].score)

    randomised = []
    for loaded, x in ((cpu, x_cpu), (gpu, x_gpu)):
        name, copy_ = next(iter(cascading_randomisation(loaded.model)))
        with torch.no_grad():
            randomised.append(copy_(x))
    results[f"randomised {name}: logits"] = relative(*randomised)

    curves = [
        insertion_deletion(
            loaded.model, x, upsample_cam(m["lemon"]["grad_cam"], x.shape[-2:], "bilinear"), "lemon", steps=8
        )
        for loaded, x, m in ((cpu, x_cpu, maps_cpu), (gpu, x_gpu, maps_gpu))
    ]
    results["deletion curve"] = relative(curves[0].deletion, curves[1].deletion)
    results["insertion curve"] = relative(curves[0].insertion, curves[1].insertion)

    data = tagged_dataset(64, "confounded", seed=0)
    trained = train_classifier(small_cnn(), data, epochs=2, seed=0)
    on_gpu = copy.deepcopy(trained).to(device)
    results["shortcut model accuracy (cpu - device)"] = abs(accuracy(trained, data) - accuracy(on_gpu, data))

    for name, value in results.items():
        print(f"{name:48s} {value:.2e}")
    assert all(p.device.type == "cpu" for p in cpu.model.parameters()), "the CPU model moved"
    worst = max(results.values())
    passed = worst <= args.tolerance
    print(f"device_check={'passed' if passed else 'FAILED'} worst_relative_difference={worst:.2e}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
