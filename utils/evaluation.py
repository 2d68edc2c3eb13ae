"""Saliency methods judged over many images: a folder, a ``DataLoader`` or a list of tensors, in batches.

Lesson 08's report card judges each method on three photos; ``evaluate`` runs the same tests over
as many images as you have, and returns a table you can save (``Evaluation.to_csv``) and summarise
per method (mean and range). It is the one-image code of ``utils.faithfulness`` made to scale:

* **batched**: images go through in chunks of ``batch_size``; the class of every image of a chunk
  comes from one forward pass, every method's maps from one ``attribution_maps`` call per chunk
  (a ``Method`` is called once with the whole chunk), and the deletion/insertion images of every
  map of every image of the chunk go through the model together, ``forward_batch`` at a time
  (by default 8 on a CPU, whose caches do not hold larger batches' activations, and
  ``ACCELERATOR_FORWARD_BATCH`` elsewhere), in channels-last memory layout (oneDNN's faster
  convolutions on the CPU: SqueezeNet about 1.4x at a batch of 128 on the course's machine; the
  same numbers to float precision);
* **on the model's device**: the images are moved there; the model is neither moved nor changed;
* **cached**: a ``MapCache`` keeps computed maps keyed by (model, method, image content, class),
  so a second run with other metrics (ROAD, other steps) computes no map again; it is bounded by
  entries and by bytes, the least recently used maps going first;
* **with a progress bar** (``tqdm.auto``) over the images for runs of more than one chunk.

The curves are Petsiuk et al.'s (2018, https://arxiv.org/abs/1806.07421), with the settings and
the rounding of ``utils.faithfulness.insertion_deletion`` (tested: the same AUCs); ROAD (Rong et
al., 2022, https://arxiv.org/abs/2202.00449) is ``utils.road.road``, one image at a time (its
imputation is one sparse solve per image).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import nn

from utils.categories import check_count, check_flag, check_model, describe
from utils.datasets import preprocess_imagenet_image
from utils.faithfulness import (
    BASELINE_MAPS,
    BASELINES,
    COURSE_METHODS,
    MAX_STEPS,
    Method,
    attribution_maps,
    forward_batch_for,
    removal_ranks,
    replacement,
)
from utils.ground_truth import METHOD_NAMES, saliency_methods
from utils.road import road
from utils.saliency import as_batch, check_class_range, class_index, class_scores, eval_with_frozen_parameters
from utils.sanity import ConstantMapWarning

__all__ = [
    "ACCELERATOR_FORWARD_BATCH",
    "IMAGE_SUFFIXES",
    "Evaluation",
    "EvaluationRow",
    "MapCache",
    "MethodSummary",
    "evaluate",
    "image_hash",
    "model_fingerprint",
]

Class = Union[int, str]
Images = Union[str, os.PathLike, torch.Tensor, Sequence[torch.Tensor], Iterable[object]]
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ACCELERATOR_FORWARD_BATCH: int = 128
"""Perturbed images per forward pass on a GPU (or any device but the CPU) when ``forward_batch`` is None; on a CPU,
``utils.faithfulness.CPU_FORWARD_BATCH`` (8)."""
"""The files of a folder that ``evaluate`` reads as images (any case); other files are left alone."""
_clock: Callable[[], float] = time.perf_counter


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationRow:
    """One method on one image: its class, its AUCs, ROAD's means (NaN when not asked for), seconds per map."""

    image: str
    method: str
    target: int
    insertion_auc: float
    deletion_auc: float
    road_morf: float = math.nan
    road_lerf: float = math.nan
    road_combined: float = math.nan
    seconds: float = math.nan


@dataclass(frozen=True)
class MethodSummary:
    """A method over the images: mean, lowest and highest of each metric (NaN where not computed)."""

    method: str
    images: int
    insertion_mean: float
    insertion_min: float
    insertion_max: float
    deletion_mean: float
    deletion_min: float
    deletion_max: float
    road_combined_mean: float
    road_combined_min: float
    road_combined_max: float
    seconds: float


_FLOATS = {f.name for f in fields(EvaluationRow)} - {"image", "method", "target"}


@dataclass(frozen=True)
class Evaluation:
    """The rows of ``evaluate``, image by image, method by method; ``maps_computed`` counts maps not found in the cache.

    >>> table = Evaluation((EvaluationRow("a.png", "m", 3, 0.6, 0.2), EvaluationRow("b.png", "m", 1, 0.8, 0.4)))
    >>> s = table.summary()["m"]
    >>> s.images, round(s.insertion_mean, 3), s.insertion_min, s.insertion_max, math.isnan(s.road_combined_mean)
    (2, 0.7, 0.6, 0.8, True)
    """

    rows: tuple[EvaluationRow, ...]
    maps_computed: int = 0

    def summary(self) -> dict[str, MethodSummary]:
        """``{method: MethodSummary}``, in the order the methods first appear."""
        by_method: dict[str, list[EvaluationRow]] = {}
        for row in self.rows:
            by_method.setdefault(row.method, []).append(row)

        def spread(found: list[EvaluationRow], name: str) -> tuple[float, float, float]:
            values = np.array([getattr(r, name) for r in found], dtype=np.float64)
            if np.isnan(values).all():
                return math.nan, math.nan, math.nan
            return float(np.nanmean(values)), float(np.nanmin(values)), float(np.nanmax(values))

        return {
            method: MethodSummary(
                method,
                len(found),
                *spread(found, "insertion_auc"),
                *spread(found, "deletion_auc"),
                *spread(found, "road_combined"),
                spread(found, "seconds")[0],
            )
            for method, found in by_method.items()
        }

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write one line per row (a header first) to ``path``, with the csv module; returns the path.

        The csv module writes floats (numpy's float64 too) with ``float.__repr__``, so ``Evaluation.read_csv``
        gets back exactly the same numbers.
        """
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(EvaluationRow)])
            writer.writeheader()
            for row in self.rows:
                writer.writerow(asdict(row))  # not repr(v): numpy's float64 would be written "np.float64(0.5)"
        return path

    @classmethod
    def read_csv(cls, path: str | os.PathLike) -> Evaluation:
        """The rows ``to_csv`` wrote (``maps_computed`` is not saved: 0)."""
        with Path(path).open(newline="", encoding="utf-8") as found:
            reader = csv.DictReader(found)
            expected = [f.name for f in fields(EvaluationRow)]
            if reader.fieldnames != expected:
                raise ValueError(
                    f"{path} is not a table written by Evaluation.to_csv: its header is {reader.fieldnames}."
                )
            rows = tuple(
                EvaluationRow(
                    **{k: float(v) if k in _FLOATS else int(v) if k == "target" else v for k, v in line.items()}
                )
                for line in reader
            )
        return cls(rows)


# --- the cache ----------------------------------------------------------------------------------


def image_hash(x: torch.Tensor) -> str:
    """A fingerprint of an image's content (its values, shape and dtype), not of the tensor object.

    >>> a = torch.arange(6.0).reshape(1, 2, 3)
    >>> image_hash(a) == image_hash(a.clone()), image_hash(a) == image_hash(a + 1)
    (True, False)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (an image or a map), not {describe(x)}.")
    data = (x.to_dense() if x.layout != torch.strided else x).detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{tuple(data.shape)} {data.dtype}".encode())
    digest.update(data.numpy().tobytes() if data.dtype != torch.bfloat16 else data.float().numpy().tobytes())
    return digest.hexdigest()[:32]


def model_fingerprint(model: nn.Module) -> str:
    """A fingerprint of a model's class, parameters and buffers: a changed weight gives another one.

    >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
    (True, False)
    """
    digest = hashlib.sha256(type(check_model(model)).__name__.encode())
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(image_hash(value).encode())
    return digest.hexdigest()[:32]


Key = tuple[str, str, str, int]


class MapCache:
    """Computed maps by (model fingerprint, method, image hash, class), at most ``max_entries`` and ``max_bytes``.

    The least recently used maps go first when either bound is passed. ``hits`` and ``misses``
    count the look-ups. A method is known by its name (and the Grad-CAM layer): two different
    functions under one name would share their maps, so give them different names.

    >>> cache = MapCache(max_entries=2)
    >>> for c in range(3):
    ...     cache.put(("model", "m", "image", c), torch.zeros(1, 4, 4), 0.1)
    >>> len(cache), cache.get(("model", "m", "image", 0)), cache.get(("model", "m", "image", 2))[1]
    (2, None, 0.1)
    """

    def __init__(self, *, max_entries: int = 4096, max_bytes: int = 512 * 2**20) -> None:
        self.max_entries = check_count(max_entries, "max_entries")
        self.max_bytes = check_count(max_bytes, "max_bytes")
        self.hits = self.misses = self.bytes = 0
        self._maps: OrderedDict[Key, tuple[torch.Tensor, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._maps)

    def get(self, key: Key) -> tuple[torch.Tensor, float] | None:
        """``(map, seconds it took)`` for ``key``, marked as the most recently used; None if not kept."""
        found = self._maps.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._maps.move_to_end(key)
        return found

    def put(self, key: Key, saliency: torch.Tensor, seconds: float) -> None:
        """Keep a detached CPU copy of ``saliency``; then drop the oldest maps until both bounds hold."""
        kept = saliency.detach().to("cpu").clone()
        if key in self._maps:
            self.bytes -= _nbytes(self._maps.pop(key)[0])
        self._maps[key] = (kept, float(seconds))
        self.bytes += _nbytes(kept)
        while self._maps and (len(self._maps) > self.max_entries or self.bytes > self.max_bytes):
            self.bytes -= _nbytes(self._maps.popitem(last=False)[1][0])


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# --- reading the images -------------------------------------------------------------------------


def _folder_images(
    folder: Path, transforms: Callable[..., torch.Tensor] | None
) -> tuple[Iterator[tuple[str, torch.Tensor]], int]:
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; pass a folder of images, a DataLoader or a list of tensors.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"The folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put the images there.")
    return ((p.name, preprocess_imagenet_image(p, transforms)[0]) for p in files), len(files)


def _tensor_images(images: object) -> Iterator[tuple[str, torch.Tensor]]:
    """Images from a tensor, a list of tensors or a DataLoader's batches (``x`` or ``(x, labels, ...)``)."""
    if isinstance(images, torch.Tensor):
        images = [images]
    n = 0
    for item in images:  # type: ignore[union-attr]
        batch = item[0] if isinstance(item, (tuple, list)) and item else item
        if isinstance(batch, torch.Tensor) and batch.layout != torch.strided:
            batch = batch.to_dense()
        if not isinstance(batch, torch.Tensor) or batch.ndim not in (3, 4) or batch.numel() == 0:
            shown = describe(batch)
            raise ValueError(
                f"Image {n} is {shown}; give images as tensors C x H x W or batches N x C x H x W "
                "(a DataLoader may yield (images, labels))."
            )
        for image in batch if batch.ndim == 4 else batch[None]:
            yield f"image {n}", image
            n += 1


def _image_source(
    images: Images, transforms: Callable[..., torch.Tensor] | None
) -> tuple[Iterator[tuple[str, torch.Tensor]], int | None]:
    """The ``(name, C x H x W tensor)`` pairs, read lazily, and how many there are (None if unknown)."""
    if isinstance(images, (str, os.PathLike)):
        return _folder_images(Path(images), transforms)
    if isinstance(images, torch.Tensor):
        return _tensor_images(images), (images.shape[0] if images.ndim == 4 else 1)
    if isinstance(images, (list, tuple)) and not images:
        raise ValueError("images is empty; give a folder, a DataLoader, or at least one image tensor.")
    if not isinstance(images, Iterable) or isinstance(images, (bytes, bytearray, Mapping, set, np.ndarray)):
        raise TypeError(f"images must be a folder, a DataLoader or a list of tensors, not {describe(images)}.")
    dataset = getattr(images, "dataset", None)
    total = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
    if isinstance(images, (list, tuple)):
        total = sum(t.shape[0] if isinstance(t, torch.Tensor) and t.ndim == 4 else 1 for t in images)
    return _tensor_images(images), total


def _chunks(pairs: Iterator[tuple[str, torch.Tensor]], size: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
    chunk: list[tuple[str, torch.Tensor]] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- the methods --------------------------------------------------------------------------------


def _resolved_methods(
    methods: Sequence[str] | Mapping[str, Method | str], layer: nn.Module | str | None
) -> dict[str, Method | str]:
    """``{name: course name or function}``: the report card's names stay names, the other course methods become
    ``utils.ground_truth.saliency_methods``' functions; an unknown name is refused."""
    if isinstance(methods, str) or not isinstance(methods, (Mapping, list, tuple)) or not methods:
        raise TypeError(
            f"methods must be a non-empty list of names or a dict {{name: method}}, not {describe(methods)}."
        )
    named = dict(methods) if isinstance(methods, Mapping) else {m: m for m in methods}
    known = COURSE_METHODS + BASELINE_MAPS + tuple(m for m in METHOD_NAMES if m not in COURSE_METHODS)
    resolved: dict[str, Method | str] = {}
    for name, method in named.items():
        if not isinstance(name, str):
            raise TypeError(f"Each method needs a name (a string), not {describe(name)}.")
        if isinstance(method, str) and method not in known:
            raise ValueError(f"Unknown method {method!r}; name one of {', '.join(known)}, or pass a function.")
        if isinstance(method, str) and method not in COURSE_METHODS + BASELINE_MAPS:
            if not isinstance(layer, str):
                raise ValueError(f"Method {method!r} needs the Grad-CAM layer's name (e.g. loaded.target_layer_name).")
            method = saliency_methods(layer)[method]
        elif not isinstance(method, str) and not callable(method):
            raise TypeError(f"Method {name!r} must be a name or a function (model, x, classes) -> maps.")
        resolved[name] = method
    return resolved


def _chunk_maps(
    model: nn.Module,
    layer: nn.Module | str | None,
    batch: torch.Tensor,
    classes: list[int],
    methods: dict[str, Method | str],
    cache: MapCache,
    model_key: str,
) -> tuple[dict[str, torch.Tensor], dict[str, list[float]], int]:
    """Every method's ``N x C x H x W`` maps of the chunk (cached ones reused), their seconds, how many computed."""
    layer_key = layer if isinstance(layer, str) or layer is None else _module_name(model, layer)
    hashes = [image_hash(image) for image in batch]
    keys = {name: [(model_key, f"{name}@{layer_key}", h, c) for h, c in zip(hashes, classes)] for name in methods}
    found = {name: [cache.get(k) for k in keys[name]] for name in methods}
    missing = sorted({i for name in methods for i, f in enumerate(found[name]) if f is None})
    computed = 0
    if missing:
        wanted = {name: m for name, m in methods.items() if any(found[name][i] is None for i in missing)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Captum's notes on requires_grad and hooks
            fresh = attribution_maps(model, layer, batch[missing], [classes[i] for i in missing], wanted)
        for name in wanted:
            for j, i in enumerate(missing):
                if found[name][i] is None:
                    found[name][i] = (fresh.maps[name][j : j + 1], fresh.seconds[name])
                    cache.put(keys[name][i], *found[name][i])
                    computed += 1
    maps = {name: torch.cat([f[0] for f in found[name]]) for name in methods}  # type: ignore[index]
    seconds = {name: [f[1] for f in found[name]] for name in methods}  # type: ignore[index]
    return maps, seconds, computed


def _module_name(model: nn.Module, layer: nn.Module) -> str:
    """The layer's dotted name in ``model`` (for the cache's key), or its type and id if it is not in there."""
    return next((name for name, m in model.named_modules() if m is layer), f"{type(layer).__name__}#{id(layer)}")


# --- the curves, for a chunk of images at once --------------------------------------------------


def _step_counts(units: int, steps: int) -> np.ndarray:
    """Units removed after each step, rounded as ``utils.faithfulness`` rounds them (symmetric curves).

    >>> _step_counts(196, 8).tolist()
    [0, 25, 49, 74, 98, 122, 147, 171, 196]
    """
    half = [(k * units + steps // 2) // steps for k in range(steps // 2 + 1)]
    return np.array(half + [units - c for c in reversed(half[: (steps + 1) // 2])], dtype=np.int64)


def _check_settings(steps: object, patch: object, shape: tuple[int, int]) -> tuple[int, int]:
    steps, patch = check_count(steps, "steps"), check_count(patch, "patch")
    units = -(-shape[0] // patch) * -(-shape[1] // patch)
    if patch > min(shape) or steps > min(units, MAX_STEPS):
        raise ValueError(
            f"steps={steps} and patch={patch} do not fit a {shape[0]} x {shape[1]} image "
            f"(at most {min(units, MAX_STEPS)} steps of patches no larger than the image); use fewer, smaller ones."
        )
    return steps, patch


def _chunk_curves(
    model: nn.Module,
    batch: torch.Tensor,
    maps: dict[str, torch.Tensor],
    classes: list[int],
    given: object,
    *,
    steps: int,
    baseline: str,
    patch: int,
    forward_batch: int,
    names: list[str],
) -> dict[str, list[tuple[float, float]]]:
    """``{method: [(insertion AUC, deletion AUC) per image]}``: every perturbed image of the chunk in shared batches."""
    shape = (int(batch.shape[-2]), int(batch.shape[-1]))
    base = replacement(batch, baseline)
    ranked = {name: [removal_ranks(m, shape, patch) for m in found] for name, found in maps.items()}
    for name, found in maps.items():
        for i, m in enumerate(found):
            values = m[0] if m.shape[0] == 1 else m.abs().sum(dim=0)  # what removal_ranks ranks by
            if float(values.amax() - values.amin()) == 0:
                warnings.warn(
                    f"The {name!r} map of {names[i]!r} is constant: it ranks no pixel above another, so its curves "
                    "are those of a fixed random order; check the class and the method.",
                    ConstantMapWarning,
                    stacklevel=3,
                )
    jobs: list[tuple[int, torch.Tensor | None, int, bool]] = []  # (image, ranks, count, show the replacement)
    for i in range(batch.shape[0]):
        jobs += [(i, None, 0, False), (i, None, 0, True)]
    units = 0
    for name in maps:
        for i, (ranks, units) in enumerate(ranked[name]):
            r = torch.from_numpy(ranks).to(batch.device)
            inner = _step_counts(units, steps)[1:-1].tolist()
            jobs += [(i, r, c, False) for c in inner] + [(i, r, c, True) for c in inner]
    p = _probabilities(model, batch, base, jobs, classes, given, forward_batch)
    n, per = batch.shape[0], 2 * (steps - 1)
    fractions = _step_counts(units, steps) / units
    out: dict[str, list[tuple[float, float]]] = {}
    at = 2 * n
    for name in maps:
        out[name] = []
        for i in range(n):
            deletion = np.r_[p[2 * i], p[at : at + steps - 1], p[2 * i + 1]]
            insertion = np.r_[p[2 * i + 1], p[at + steps - 1 : at + per], p[2 * i]]
            out[name].append((float(np.trapezoid(insertion, fractions)), float(np.trapezoid(deletion, fractions))))
            at += per
    return out


def _probabilities(
    model: nn.Module,
    batch: torch.Tensor,
    base: torch.Tensor,
    jobs: list[tuple[int, torch.Tensor | None, int, bool]],
    classes: list[int],
    given: object,
    forward_batch: int,
) -> np.ndarray:
    """Each job's image (built only when its batch runs) through the model: the probability of its image's class."""
    out = []
    for start in range(0, len(jobs), forward_batch):
        chunk = jobs[start : start + forward_batch]
        shown = torch.stack(
            [
                torch.full(batch.shape[-2:], inverted, device=batch.device)
                if ranks is None
                else (ranks < count) ^ inverted
                for _, ranks, count, inverted in chunk
            ]
        )[:, None]
        index = torch.tensor([i for i, *_ in chunk], device=batch.device)
        images = torch.where(shown, base[index], batch[index]).contiguous(memory_format=torch.channels_last)
        scores = class_scores(model(images), len(chunk))
        if start == 0:
            check_class_range(classes, given, scores.shape[1])
        wanted = torch.tensor([classes[i] for i, *_ in chunk], device=scores.device)
        out.append(torch.softmax(scores.double(), dim=1).gather(1, wanted[:, None])[:, 0].cpu())
    return torch.cat(out).numpy()


# --- the whole run ------------------------------------------------------------------------------


def _device_of(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _checked_classes(classes: object, categories: Sequence[str] | None) -> list[int] | None:
    if classes is None:
        return None
    if not isinstance(classes, (list, tuple, torch.Tensor, np.ndarray)) or getattr(classes, "ndim", 1) != 1:
        raise TypeError(
            f"classes must be None (each image's top class) or a list of one class per image, not {describe(classes)}."
        )
    return [class_index(c, categories) for c in list(classes)]


def evaluate(
    model: nn.Module,
    layer: nn.Module | str | None,
    images: Images,
    methods: Sequence[str] | Mapping[str, Method | str],
    *,
    classes: Sequence[Class] | None = None,
    transforms: Callable[..., torch.Tensor] | None = None,
    categories: Sequence[str] | None = None,
    steps: int = 8,
    baseline: str = "blur",
    patch: int = 16,
    with_road: bool = False,
    batch_size: int = 32,
    forward_batch: int | None = None,
    cache: MapCache | None = None,
    model_key: str | None = None,
    progress: bool | None = None,
) -> Evaluation:
    """Deletion/insertion AUCs (and ROAD with ``with_road``) of every method on every image, batched.

    ``images``: a folder (its ``IMAGE_SUFFIXES`` files in name order, preprocessed with
    ``transforms``, e.g. ``loaded.transforms``), a ``DataLoader`` (or any iterable) of batches
    ``N x C x H x W`` or ``(images, labels)`` (labels are not used), a list of model inputs, or one
    tensor. ``methods``: names (``COURSE_METHODS``, ``BASELINE_MAPS`` and every key of
    ``utils.ground_truth.METHOD_NAMES``) or ``{name: Method}``. ``classes``: None for each image's
    top class, or one class per image (indices or names of ``categories``). ``steps``, ``patch``
    and ``baseline`` are the report card's (lesson 08); ``cache`` keeps the maps between runs
    (pass the same ``MapCache`` again), under ``model_key`` (default: ``model_fingerprint``).
    ``progress``: a bar over the images (None: when there is more than one chunk). ``forward_batch``:
    perturbed images per forward pass (None: ``utils.faithfulness.forward_batch_for`` the model's device: 8 on a CPU).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> table = evaluate(net, "1", torch.rand(3, 3, 8, 8), ["grad_cam", "random"], steps=2, patch=2)
    >>> [(r.image, r.method) for r in table.rows][:3], table.maps_computed
    ([('image 0', 'grad_cam'), ('image 0', 'random'), ('image 1', 'grad_cam')], 6)
    """
    from tqdm.auto import tqdm

    check_model(model, "a classifier, e.g. load_model().model")
    named = _resolved_methods(methods, layer)
    wanted = _checked_classes(classes, categories)
    batch_size = check_count(batch_size, "batch_size")
    forward_batch = None if forward_batch is None else check_count(forward_batch, "forward_batch")
    with_road = check_flag(with_road, "with_road")
    progress = None if progress is None else check_flag(progress, "progress")
    if not isinstance(baseline, str) or baseline not in BASELINES:
        raise ValueError(f"Unknown baseline {describe(baseline)}; use one of {', '.join(BASELINES)}.")
    if cache is not None and not isinstance(cache, MapCache):
        raise TypeError(f"cache must be a MapCache (to reuse maps between runs) or None, not {describe(cache)}.")
    if model_key is not None and not isinstance(model_key, str):
        raise TypeError(
            f"model_key must be a string naming the model, or None for its fingerprint, not {describe(model_key)}."
        )
    pairs, total = _image_source(images, transforms)
    if wanted is not None and total is not None and len(wanted) != total:
        raise ValueError(f"classes has {len(wanted)} entries but there are {total} images; give one class per image.")
    cache = MapCache() if cache is None else cache
    device = _device_of(model)
    forward_batch = forward_batch_for(device, ACCELERATOR_FORWARD_BATCH) if forward_batch is None else forward_batch
    model_key = model_fingerprint(model) if model_key is None else model_key
    show = progress if progress is not None else total is None or total > batch_size
    rows: list[EvaluationRow] = []
    computed = seen = 0
    with tqdm(total=total, unit="image", disable=not show, desc="evaluating") as bar:
        for chunk in _chunks(pairs, batch_size):
            names = [name for name, _ in chunk]
            if any(t.shape != chunk[0][1].shape for _, t in chunk):
                raise ValueError(f"{names[0]} and another image differ in size; resize them alike (e.g. 224 x 224).")
            batch = as_batch(model, torch.stack([t.detach() for _, t in chunk]).to(device))
            steps, patch = _check_settings(steps, patch, (int(batch.shape[-2]), int(batch.shape[-1])))
            chunk_classes = _classes_of(model, batch, wanted, seen)
            maps, seconds, fresh = _chunk_maps(model, layer, batch, chunk_classes, named, cache, model_key)
            computed += fresh
            with torch.no_grad(), eval_with_frozen_parameters(model):
                aucs = _chunk_curves(
                    model,
                    batch,
                    maps,
                    chunk_classes,
                    classes if classes is not None else chunk_classes,
                    steps=steps,
                    baseline=baseline,
                    patch=patch,
                    forward_batch=forward_batch,
                    names=names,
                )
            for i, image in enumerate(names):
                for name in named:
                    roads = _road_means(model, batch[i : i + 1], maps[name][i], chunk_classes[i]) if with_road else ()
                    row = (image, name, chunk_classes[i], *aucs[name][i], *roads)  # ROAD's fields stay NaN without it
                    rows.append(EvaluationRow(*row, seconds=seconds[name][i]))
            seen += len(chunk)
            bar.update(len(chunk))
    if seen == 0:
        raise ValueError("images held no image (an empty DataLoader or iterable); give at least one image.")
    if wanted is not None and seen != len(wanted):
        raise ValueError(f"classes has {len(wanted)} entries but there are {seen} images; give one class per image.")
    return Evaluation(tuple(rows), computed)


def _classes_of(model: nn.Module, batch: torch.Tensor, wanted: list[int] | None, seen: int) -> list[int]:
    """The chunk's given classes, or each image's top class from one forward pass."""
    if wanted is not None:
        if seen + batch.shape[0] > len(wanted):
            raise ValueError(f"classes has {len(wanted)} entries but there are more images; give one class per image.")
        return wanted[seen : seen + batch.shape[0]]
    with torch.no_grad(), eval_with_frozen_parameters(model):
        scores = class_scores(model(batch.contiguous(memory_format=torch.channels_last)), batch.shape[0])
    return scores.argmax(dim=1).tolist()


def _road_means(model: nn.Module, x: torch.Tensor, saliency: torch.Tensor, target: int) -> tuple[float, float, float]:
    """ROAD's mean MoRF and LeRF probabilities and its combined score, from ``utils.road.road``."""
    curves = road(model, x, saliency, target)
    return float(curves.morf.mean()), float(curves.lerf.mean()), curves.combined
