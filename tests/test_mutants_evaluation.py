"""utils.evaluation, value by value: the table's fields, the cache's bookkeeping, every refusal's whole line.

tests/test_evaluation.py checks the batched AUCs against the one-image code; these pin what its mutants used to change
unnoticed: every field of the summary, the fingerprints' inputs, the least recently used order, the folder and loader
readers, the step and patch limits, the constant-map warning, the channels-last layout and each refusal's message.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import warnings
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import torch
from _shared import refuses, small_net
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms._presets import ImageClassification

import utils.evaluation
import utils.faithfulness
from utils.evaluation import (
    Evaluation,
    EvaluationRow,
    MapCache,
    evaluate,
    image_hash,
    model_fingerprint,
)
from utils.ground_truth import saliency_methods
from utils.sanity import ConstantMapWarning


def images(n: int = 5, side: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


class Fake:
    """A deterministic method (per image and class) that records the batch sizes it was called with."""

    def __init__(self, channels: int = 1) -> None:
        self.sizes: list[int] = []
        self.channels = channels

    def __call__(self, model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        weights = torch.tensor(classes, dtype=x.dtype)[:, None, None, None] + 1
        one = (x * torch.tensor([1.0, -2.0, 0.5])[None, :, None, None]).sum(1, keepdim=True) * weights
        return one.repeat(1, self.channels, 1, 1)


def aucs(table: Evaluation) -> list[float]:
    """Each row's insertion and deletion AUC, in one flat list."""
    return [auc for r in table.rows for auc in (r.insertion_auc, r.deletion_auc)]


QUIET = dict(progress=False, steps=4, patch=4)


# --- the table -------------------------------------------------------------------------------------


def test_summary_gives_mean_lowest_and_highest_of_every_metric() -> None:
    rows = (
        EvaluationRow("a", "m", 1, 0.25, 0.5, 0.1, 0.6, 0.375, 2.0),
        EvaluationRow("b", "m", 2, 0.75, 0.125, 0.3, 0.2, -0.125, 4.0),
        EvaluationRow("c", "m", 3, 0.5, 0.25, math.nan, math.nan, math.nan, 3.0),  # no ROAD on this one
        EvaluationRow("a", "n", 1, 0.875, 0.0625),
    )
    summary = Evaluation(rows).summary()
    assert list(summary) == ["m", "n"]
    m, n = summary["m"], summary["n"]
    assert (m.method, m.images, n.method, n.images) == ("m", 3, "n", 1)
    assert (m.insertion_mean, m.insertion_min, m.insertion_max) == (0.5, 0.25, 0.75)
    assert (m.deletion_mean, m.deletion_min, m.deletion_max) == pytest.approx((0.875 / 3, 0.125, 0.5), abs=1e-15)
    assert (m.road_combined_mean, m.road_combined_min, m.road_combined_max) == (0.125, -0.125, 0.375)
    assert m.seconds == 3.0
    assert (n.insertion_mean, n.insertion_min, n.insertion_max) == (0.875, 0.875, 0.875)
    assert (n.deletion_mean, n.deletion_min, n.deletion_max) == (0.0625, 0.0625, 0.0625)
    assert all(math.isnan(v) for v in (n.road_combined_mean, n.road_combined_min, n.road_combined_max, n.seconds))


def test_csv_writes_each_float_with_repr_and_reads_back_nan_and_ints(tmp_path) -> None:
    rows = (EvaluationRow("a.png", "m", 3, 0.1, 1 / 3), EvaluationRow("b, c.png", "n", 12, 0.5, 0.25, 0.1, 0.2, 0.3, 4))
    written = Evaluation(rows, maps_computed=7).to_csv(str(tmp_path / "card.csv"))
    assert isinstance(written, Path) and written == tmp_path / "card.csv"
    assert written.read_bytes().decode("utf-8").splitlines() == [
        "image,method,target,insertion_auc,deletion_auc,road_morf,road_lerf,road_combined,seconds",
        "a.png,m,3,0.1,0.3333333333333333,nan,nan,nan,nan",
        '"b, c.png",n,12,0.5,0.25,0.1,0.2,0.3,4',
    ]
    back = Evaluation.read_csv(written)
    assert back.maps_computed == 0 and back.rows[1] == rows[1]
    first = back.rows[0]
    assert astuple(first)[:5] == astuple(rows[0])[:5]
    assert type(first.target) is int and type(back.rows[1].seconds) is float
    assert all(math.isnan(v) for v in (first.road_morf, first.road_lerf, first.road_combined, first.seconds))


def test_a_csv_with_another_header_is_refused_in_one_line(tmp_path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("image,score\na.png,0.5\n", encoding="utf-8")
    with refuses(ValueError, f"{path} is not a table written by Evaluation.to_csv: its header is ['image', 'score']."):
        Evaluation.read_csv(path)


def test_a_csv_with_non_ascii_names_is_utf8(tmp_path) -> None:
    rows = (EvaluationRow("écureuil ☕.png", "m", 1, 0.5, 0.25),)
    path = Evaluation(rows).to_csv(tmp_path / "card.csv")
    assert "écureuil ☕.png" in path.read_bytes().decode("utf-8")
    assert Evaluation.read_csv(path).rows[0].image == "écureuil ☕.png"


def test_the_csv_is_utf8_whatever_the_locale(tmp_path) -> None:
    """Under an ASCII locale (LC_ALL=C without Python's UTF-8 mode) the table is still written and read as UTF-8."""
    script = (
        "import locale, sys\n"
        "from utils.evaluation import Evaluation, EvaluationRow\n"
        "path = Evaluation((EvaluationRow('\\u00e9cureuil.png', 'm', 1, 0.5, 0.25),)).to_csv(sys.argv[1])\n"
        "print(locale.getpreferredencoding(False), ascii(Evaluation.read_csv(path).rows[0].image))\n"
    )
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="utf-8")
    root = Path(utils.evaluation.__file__).resolve().parents[1]  # the package being tested (mutmut's copy too)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "card.csv")], env=env, cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    encoding, name = done.stdout.split()
    assert encoding.lower() not in ("utf-8", "utf8"), encoding  # the premise: the locale's encoding is not UTF-8
    assert name == ascii("écureuil.png")
    assert "écureuil.png" in (tmp_path / "card.csv").read_bytes().decode("utf-8")
    # the same calls here too: mutmut runs a test for a function's mutants only if it saw the test call it
    again = Evaluation.read_csv(tmp_path / "card.csv").to_csv(tmp_path / "again.csv")
    assert Evaluation.read_csv(again).rows[0].image == "écureuil.png"


def test_numpy_floats_and_returns_in_names_go_through_the_csv(tmp_path) -> None:
    rows = (EvaluationRow("a\rb.png", "m", np.int64(2), np.float64(0.5), np.float64(1 / 3), seconds=np.float64(2.5)),)
    back = Evaluation.read_csv(Evaluation(rows).to_csv(tmp_path / "card.csv")).rows[0]
    assert (back.image, back.target, back.insertion_auc, back.deletion_auc, back.seconds) == (
        "a\rb.png",
        2,
        0.5,
        1 / 3,
        2.5,
    )


def test_a_value_given_as_none_counts_as_not_computed() -> None:
    rows = (EvaluationRow("a", "m", 1, 0.5, 0.25, road_combined=None), EvaluationRow("b", "m", 1, 0.25, 0.5, 0, 0, 0.5))
    s = Evaluation(rows).summary()["m"]
    assert (s.road_combined_mean, s.road_combined_min, s.road_combined_max) == (0.5, 0.5, 0.5)


# --- fingerprints -----------------------------------------------------------------------------------


def test_image_hash_reads_shape_dtype_and_every_value() -> None:
    zeros = torch.zeros(2, 3)
    assert re.fullmatch("[0-9a-f]{32}", image_hash(zeros))
    assert image_hash(zeros) != image_hash(torch.zeros(3, 2))  # the same bytes, another shape
    assert image_hash(zeros) != image_hash(torch.zeros(2, 3, dtype=torch.int32))  # the same bytes, another dtype
    one = torch.ones(2, dtype=torch.float64)
    assert image_hash(one) != image_hash(one + 1e-12)  # a difference float32 would round away
    half = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert image_hash(half) == image_hash(half.clone()) != image_hash(torch.tensor([1.0, 3.0], dtype=torch.bfloat16))
    assert image_hash(half) != image_hash(half.float())


def test_image_hash_takes_sparse_and_grad_tensors_as_their_values() -> None:
    x = torch.tensor([[0.0, 1.5], [2.0, 0.0]])
    assert image_hash(x.to_sparse()) == image_hash(x)
    assert image_hash(x.clone().requires_grad_()) == image_hash(x)
    with refuses(TypeError, "x must be a torch.Tensor (an image or a map), not [1, 2]."):
        image_hash([1, 2])


class OtherLinear(nn.Linear):
    pass


def test_model_fingerprint_reads_class_names_and_values() -> None:
    torch.manual_seed(0)
    a = nn.Linear(2, 2)
    b = OtherLinear(2, 2)
    b.load_state_dict(a.state_dict())
    assert re.fullmatch("[0-9a-f]{32}", model_fingerprint(a))
    assert model_fingerprint(a) != model_fingerprint(b)  # the same weights, another class
    first, second = nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Identity(), nn.Linear(2, 2))
    second[1].load_state_dict(first[0].state_dict())
    assert model_fingerprint(first) != model_fingerprint(second)  # the same values under other names
    copy = nn.Linear(2, 2)
    copy.load_state_dict(a.state_dict())
    assert model_fingerprint(copy) == model_fingerprint(a)
    with refuses(TypeError, "model must be a torch nn.Module (the classifier), not 'net'."):
        model_fingerprint("net")


# --- the cache --------------------------------------------------------------------------------------


def test_the_cache_drops_the_least_recently_used_map() -> None:
    cache = MapCache(max_entries=2)
    cache.put(("k", "m", "h", 0), torch.zeros(1, 2, 2), 0.0)
    cache.put(("k", "m", "h", 1), torch.zeros(1, 2, 2), 0.0)
    assert cache.get(("k", "m", "h", 0)) is not None  # 0 is now the most recently used
    cache.put(("k", "m", "h", 2), torch.zeros(1, 2, 2), 0.0)
    assert cache.get(("k", "m", "h", 1)) is None and cache.get(("k", "m", "h", 0)) is not None
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 2)


def test_the_cache_keeps_a_detached_copy_and_replaces_a_key() -> None:
    cache = MapCache()
    assert (cache.max_entries, cache.max_bytes, cache.bytes) == (4096, 512 * 2**20, 0)
    saliency = torch.ones(1, 4, 4, requires_grad=True)
    cache.put(("k", "m", "h", 0), saliency, np.float32(0.5))
    with torch.no_grad():
        saliency.mul_(3)
    kept, seconds = cache.get(("k", "m", "h", 0))
    assert torch.equal(kept, torch.ones(1, 4, 4)) and not kept.requires_grad
    assert seconds == 0.5 and type(seconds) is float
    cache.put(("k", "m", "h", 0), torch.zeros(1, 2, 2, dtype=torch.float64), 2)
    kept, seconds = cache.get(("k", "m", "h", 0))
    assert torch.equal(kept, torch.zeros(1, 2, 2, dtype=torch.float64)) and seconds == 2.0
    assert (len(cache), cache.bytes) == (1, 32)


def test_the_byte_bound_is_inclusive_and_an_oversized_map_is_not_kept() -> None:
    cache = MapCache(max_bytes=512)
    for c in range(2):
        cache.put(("k", "m", "h", c), torch.zeros(1, 8, 8), 0.0)  # 256 bytes each
    assert (len(cache), cache.bytes) == (2, 512)
    cache.put(("k", "m", "h", 9), torch.zeros(1, 16, 16), 0.0)  # 1024 bytes: more than the whole cache
    assert (len(cache), cache.bytes) == (0, 0)
    full = MapCache(max_entries=2)
    for c in range(2):
        full.put(("k", "m", "h", c), torch.zeros(1), 0.0)
    assert len(full) == 2


def test_the_cache_bounds_are_checked() -> None:
    with refuses(ValueError, "max_bytes must be at least 1, got 0."):
        MapCache(max_bytes=0)
    with refuses(TypeError, "max_entries must be a whole number, not 2.5."):
        MapCache(max_entries=2.5)


# --- reading the images -----------------------------------------------------------------------------


def test_a_folder_is_read_with_the_transforms_given_and_any_case_of_suffix(tmp_path) -> None:
    from PIL import Image

    from utils.datasets import preprocess_imagenet_image

    rng = np.random.default_rng(0)
    for name in ("b.PNG", "a.jpg"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "c.png").mkdir()  # a folder is not an image, whatever its name
    small = ImageClassification(crop_size=12, resize_size=14)
    net, fake = small_net(), Fake()
    folder = evaluate(net, None, str(tmp_path), {"fake": fake}, transforms=small, **QUIET)
    assert [r.image for r in folder.rows] == ["a.jpg", "b.PNG"] and fake.sizes == [2]
    x = torch.cat([preprocess_imagenet_image(tmp_path / n, small) for n in ("a.jpg", "b.PNG")])
    assert x.shape == (2, 3, 12, 12)
    assert aucs(folder) == aucs(evaluate(net, None, x, {"fake": Fake()}, **QUIET))


def test_what_is_not_a_folder_of_images_is_named(tmp_path) -> None:
    missing = tmp_path / "missing"
    with refuses(ValueError, f"{missing} is not a folder; pass a folder of images, a DataLoader or a list of tensors."):
        evaluate(small_net(), None, missing, ["centre"])
    with refuses(
        ValueError,
        f"The folder {tmp_path} holds no images (.png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, .tiff); "
        "put the images there.",
    ):
        evaluate(small_net(), None, tmp_path, ["centre"])


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ([torch.zeros(3, 8, 8), torch.zeros(2, 3)], "Image 1 is a torch.float32 tensor of shape (2, 3)"),
        ([torch.zeros(0, 3, 8, 8)], "Image 0 is a torch.float32 tensor of shape (0, 3, 8, 8)"),
        ([torch.zeros(1, 1, 3, 8, 8)], "Image 0 is a torch.float32 tensor of shape (1, 1, 3, 8, 8)"),
        (["a.png"], "Image 0 is 'a.png'"),
        ([()], "Image 0 is ()"),
    ],
)
def test_an_item_that_is_not_an_image_is_named_with_its_number(given, shown) -> None:
    with refuses(
        ValueError,
        f"{shown}; give images as tensors C x H x W or batches N x C x H x W "
        "(a DataLoader may yield (images, labels)).",
    ):
        evaluate(small_net(), None, given, ["centre"], **QUIET)


@pytest.mark.parametrize("given", [b"abc", {"a": 1}, {1, 2}, np.zeros((2, 3, 8, 8)), 3])
def test_images_of_another_kind_are_refused(given) -> None:
    from utils.categories import describe

    with refuses(TypeError, f"images must be a folder, a DataLoader or a list of tensors, not {describe(given)}."):
        evaluate(small_net(), None, given, ["centre"])


def test_an_empty_tuple_of_images_is_refused() -> None:
    with refuses(ValueError, "images is empty; give a folder, a DataLoader, or at least one image tensor."):
        evaluate(small_net(), None, (), ["centre"])


def test_one_image_a_sparse_batch_and_list_items_are_images() -> None:
    net, x = small_net(), images(3)
    whole = evaluate(net, None, x, {"fake": Fake()}, **QUIET)
    single = evaluate(net, None, x[1], {"fake": Fake()}, **QUIET)
    assert [r.image for r in single.rows] == ["image 0"]
    assert aucs(single) == pytest.approx(aucs(whole)[2:4], abs=1e-6)
    sparse = evaluate(net, None, [x[:2].to_sparse(), x[2]], {"fake": Fake()}, **QUIET)
    assert aucs(sparse) == pytest.approx(aucs(whole), abs=1e-6)
    pairs = evaluate(net, None, [[x[:2], torch.zeros(2)], (x[2:], "labels")], {"fake": Fake()}, **QUIET)
    assert [r.image for r in pairs.rows] == ["image 0", "image 1", "image 2"]
    assert aucs(pairs) == pytest.approx(aucs(whole), abs=1e-6)


@pytest.mark.parametrize(
    ("given", "classes", "count"),
    [
        (lambda x: x[0], [0, 1], 1),
        (lambda x: [x[:2], x[2]], [0] * 4, 3),
        (lambda x: [x[0], x[1]], [0], 2),
        (lambda x: DataLoader(TensorDataset(x[:3], torch.zeros(3)), batch_size=2), [0] * 4, 3),
    ],
)
def test_a_classes_list_of_the_wrong_length_is_refused_before_any_map(given, classes, count) -> None:
    fake = Fake()
    with refuses(
        ValueError, f"classes has {len(classes)} entries but there are {count} images; give one class per image."
    ):
        evaluate(small_net(), None, given(images()), {"fake": fake}, classes=classes, **QUIET)
    assert fake.sizes == []  # refused before any map was computed


def test_too_few_classes_for_a_loader_of_unknown_length_are_named() -> None:
    batches = (x for x in images(5).split(2))
    with refuses(ValueError, "classes has 3 entries but there are more images; give one class per image."):
        evaluate(small_net(), None, batches, ["centre"], classes=[0, 1, 2], **QUIET)


def test_images_go_through_in_chunks_of_batch_size() -> None:
    net, x, fake = small_net(), images(5), Fake()
    table = evaluate(net, None, x, {"fake": fake}, batch_size=2, **QUIET)
    assert fake.sizes == [2, 2, 1]
    assert [r.image for r in table.rows] == [f"image {i}" for i in range(5)]
    assert aucs(table) == pytest.approx(aucs(evaluate(net, None, x, {"fake": Fake()}, **QUIET)), abs=1e-6)


def test_images_that_need_gradients_are_taken_and_left_alone() -> None:
    net, x = small_net(), images(2)
    plain = evaluate(net, "3", x, ["grad_cam"], **QUIET)
    given = x.clone().requires_grad_()
    table = evaluate(net, "3", given, ["grad_cam"], **QUIET)
    assert aucs(table) == aucs(plain) and given.grad is None


# --- the methods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("methods", ["grad_cam", [], {}, {"grad_cam"}, None])
def test_methods_that_are_not_a_list_or_dict_are_refused(methods) -> None:
    from utils.categories import describe

    with refuses(
        TypeError, f"methods must be a non-empty list of names or a dict {{name: method}}, not {describe(methods)}."
    ):
        evaluate(small_net(), None, images(1), methods)


def test_each_method_needs_a_name_and_a_function_or_a_known_name() -> None:
    with refuses(TypeError, "Each method needs a name (a string), not 3."):
        evaluate(small_net(), None, images(1), {3: "centre"})
    with refuses(TypeError, "Method 'm' must be a name or a function (model, x, classes) -> maps."):
        evaluate(small_net(), None, images(1), {"m": 3})
    with refuses(
        ValueError,
        "Unknown method 'grad_kam'; name one of grad_cam, guided_backprop, guided_grad_cam, random, edges, centre, "
        "gradient, smoothgrad, integrated_gradients, deeplift, grad_cam_plus_plus, hires_cam, score_cam, layer_cam, "
        "or pass a function.",
    ):
        evaluate(small_net(), None, images(1), ("centre", "grad_kam"))


@pytest.mark.parametrize("layer", [None, "net"])
def test_a_ground_truth_method_needs_the_layer_name(layer) -> None:
    net = small_net()
    with refuses(ValueError, "Method 'gradient' needs the Grad-CAM layer's name (e.g. loaded.target_layer_name)."):
        evaluate(net, net[3] if layer else None, images(1), ["gradient"])


def test_a_ground_truth_method_is_its_function_and_names_are_kept() -> None:
    net, x = small_net(), images(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        by_name = evaluate(net, "3", x, ("gradient", "grad_cam_plus_plus"), **QUIET)
        by_function = evaluate(
            net,
            "3",
            x,
            {
                "gradient": saliency_methods("3")["gradient"],
                "grad_cam_plus_plus": saliency_methods("3")["grad_cam_plus_plus"],
            },
            **QUIET,
        )
    assert aucs(by_name) == aucs(by_function)
    renamed = evaluate(net, None, x, {"mine": "centre"}, **QUIET)
    assert [r.method for r in renamed.rows] == ["mine", "mine"]
    assert aucs(renamed) == aucs(evaluate(net, None, x, ["centre"], **QUIET))


def test_a_layer_outside_the_model_is_its_own_key() -> None:
    net, x, fake, cache = small_net(), images(2), Fake(), MapCache()
    one, other = nn.ReLU(), nn.ReLU()
    evaluate(net, one, x, {"fake": fake}, cache=cache, **QUIET)
    again = evaluate(net, other, x, {"fake": fake}, cache=cache, **QUIET)
    assert (again.maps_computed, fake.sizes) == (2, [2, 2])
    keys = sorted(key[1] for key in cache._maps)
    assert all(re.fullmatch(r"fake@ReLU#\d+", key) for key in keys) and keys[0] != keys[-1]
    evaluate(net, net[3], x, {"fake": fake}, cache=cache, **QUIET)
    assert "fake@3" in {key[1] for key in cache._maps}


def test_only_the_methods_and_images_missing_from_the_cache_are_computed() -> None:
    net, x, cache = small_net(), images(4), MapCache()
    a, b = Fake(), Fake(channels=3)
    evaluate(net, None, x[[1, 3]], {"a": a}, cache=cache, **QUIET)
    table = evaluate(net, None, x, {"a": a, "b": b}, cache=cache, **QUIET)
    assert (a.sizes, b.sizes, table.maps_computed) == ([2, 4], [4], 6)  # one call per method and chunk; 2 + 4 new
    fresh = evaluate(net, None, x, {"a": Fake(), "b": Fake(channels=3)}, **QUIET)
    assert [(r.image, r.method, r.target) for r in table.rows] == [(r.image, r.method, r.target) for r in fresh.rows]
    assert aucs(table) == pytest.approx(aucs(fresh), abs=1e-6)


def test_seconds_are_per_map_and_kept_with_the_cached_map(monkeypatch) -> None:
    ticks = iter(range(0, 1000, 6))
    monkeypatch.setattr(utils.faithfulness, "_clock", lambda: float(next(ticks)))
    net, x, cache = small_net(), images(3), MapCache()
    first = evaluate(net, None, x, {"fake": Fake()}, cache=cache, **QUIET)
    assert [r.seconds for r in first.rows] == [2.0, 2.0, 2.0]  # 6 s for 3 maps
    again = evaluate(net, None, x, {"fake": Fake()}, cache=cache, **QUIET)
    assert [r.seconds for r in again.rows] == [2.0, 2.0, 2.0] and again.maps_computed == 0
    assert evaluate(net, None, x, {"fake": Fake()}, **QUIET).summary()["fake"].seconds == 2.0


# --- the curves -------------------------------------------------------------------------------------


def test_step_and_patch_limits_are_the_image_size() -> None:
    net, x = small_net(), torch.rand(1, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    assert len(evaluate(net, None, x, ["centre"], steps=6, patch=5, progress=False).rows) == 1  # 2 x 3 patches
    assert len(evaluate(net, None, x, ["centre"], steps=1, patch=8, progress=False).rows) == 1  # one 8 x 8 patch
    with refuses(
        ValueError,
        "steps=7 and patch=5 do not fit a 8 x 12 image (at most 6 steps of patches no larger than the image); "
        "use fewer, smaller ones.",
    ):
        evaluate(net, None, x, ["centre"], steps=7, patch=5)
    with refuses(
        ValueError,
        "steps=1 and patch=9 do not fit a 8 x 12 image (at most 2 steps of patches no larger than the image); "
        "use fewer, smaller ones.",
    ):
        evaluate(net, None, x, ["centre"], steps=1, patch=9)
    big = torch.rand(1, 3, 33, 32)
    with refuses(
        ValueError,
        "steps=1025 and patch=1 do not fit a 33 x 32 image (at most 1024 steps of patches no larger than the image); "
        "use fewer, smaller ones.",
    ):
        evaluate(net, None, big, ["centre"], steps=1025, patch=1)
    with refuses(ValueError, "patch must be at least 1, got 0."):
        evaluate(net, None, x, ["centre"], patch=0)


def test_a_constant_map_is_named_in_a_warning_at_the_callers_line() -> None:
    net, x = small_net(), images(2)

    def flat(model, batch, classes):
        out = torch.zeros(batch.shape[0], 1, 16, 16)
        out[1, 0, 0, 0] = 1.0  # the second map is not constant
        return out

    with pytest.warns(ConstantMapWarning) as warned:
        evaluate(net, None, x, {"flat": flat}, **QUIET)
    caught = [w for w in warned if w.category is ConstantMapWarning]
    assert [str(w.message) for w in caught] == [
        "The 'flat' map of 'image 0' is constant: it ranks no pixel above another, so its curves are those of a "
        "fixed random order; check the class and the method."
    ]
    if "mutmut" not in sys.modules:  # mutmut's trampolines put frames of their own between the caller and the library
        assert caught[0].filename == __file__  # stacklevel: the warning points at the caller's line


def test_a_map_with_channels_is_constant_when_its_magnitude_is() -> None:
    net, x = small_net(), images(1)

    def first_channel_flat(model, batch, classes):  # channel 0 constant, the magnitude is not
        out = batch.clone()
        out[:, 0] = 1.0
        return out

    def magnitude_flat(model, batch, classes):  # every channel varies, their magnitude is 1 everywhere
        t = (batch[:, :1] * 4).round() / 4  # quarters: t + (1 - t) is exactly 1
        return torch.cat([t, 1 - t, torch.zeros_like(t)], dim=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConstantMapWarning)
        evaluate(net, None, x, {"first": first_channel_flat}, **QUIET)
    with pytest.warns(ConstantMapWarning, match="The 'magnitude' map of 'image 0' is constant"):
        evaluate(net, None, x, {"magnitude": magnitude_flat}, **QUIET)


class LayoutRecorder(nn.Module):
    """A classifier that records whether each input came in channels-last memory layout."""

    def __init__(self) -> None:
        super().__init__()
        self.net = small_net()
        self.layouts: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.layouts.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return self.net(x)


def test_the_class_and_curve_passes_run_in_channels_last_layout() -> None:
    model, x = LayoutRecorder(), images(2)
    evaluate(model, None, x, ["centre"], forward_batch=3, **QUIET)
    assert len(model.layouts) == 1 + 6 and all(model.layouts)  # the top classes, then 2 x 8 images in threes


def test_the_curve_passes_take_the_cpu_default_or_the_accelerator_default(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = small_net(), images(3)
    sizes: list[int] = []
    handle = model.register_forward_hook(lambda _, args, __: sizes.append(int(args[0].shape[0])))
    try:
        evaluate(model, None, x, ["centre"], **QUIET)  # 3 x 8 images: 8 at a time on a CPU
        assert sizes == [3, 8, 8, 8]
        sizes.clear()
        asked: list[tuple[torch.device, int]] = []
        monkeypatch.setattr(utils.evaluation, "forward_batch_for", lambda d, a: asked.append((d, a)) or a)
        evaluate(model, None, x, ["centre"], **QUIET)
        assert asked == [(torch.device("cpu"), utils.evaluation.ACCELERATOR_FORWARD_BATCH)] and sizes == [3, 24]
        sizes.clear()
        evaluate(model, None, x, ["centre"], forward_batch=5, **QUIET)
        assert sizes == [3, 5, 5, 5, 5, 4] and len(asked) == 1  # a size given is not replaced
    finally:
        handle.remove()


class ExactLogits(nn.Module):
    """Two logits, 0 and 40 x the mean pixel: exact in float32 for pixels in quarters, whatever the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        second = 40 * x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(second), second], dim=1)


def test_probabilities_are_a_float64_softmax() -> None:
    x = torch.zeros(1, 3, 2, 2)
    x[0, :, 0, 0] = 1.0  # mean 0.25 -> logit 10; the zero baseline -> 0
    saliency = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    table = evaluate(
        ExactLogits(),
        None,
        [x],
        {"s": lambda m, b, c: saliency},
        classes=[0],
        steps=1,
        patch=1,
        baseline="zero",
        progress=False,
    )
    p_image, p_base = 1 / (1 + math.exp(10.0)), 0.5
    row = table.rows[0]
    assert row.deletion_auc == pytest.approx((p_image + p_base) / 2, rel=1e-14, abs=0)
    assert row.insertion_auc == pytest.approx((p_base + p_image) / 2, rel=1e-14, abs=0)
    assert table.rows[0].target == 0


# --- the whole run ----------------------------------------------------------------------------------


def test_a_model_without_parameters_runs_on_the_cpu() -> None:
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # three logits: the channel means
    x = images(2)
    table = evaluate(pooled, None, x, ["centre"], **QUIET)
    assert [r.target for r in table.rows] == x.mean(dim=(2, 3)).argmax(1).tolist()


def test_classes_as_a_tensor_an_array_or_names() -> None:
    net, x = small_net(), images(3)
    names = ["ant", "bee", "cat", "dog", "eel"]
    for classes in (torch.tensor([4, 0, 2]), np.array([4, 0, 2]), ("eel", "ANT", "cat")):
        table = evaluate(net, None, x, ["centre"], classes=classes, categories=names, **QUIET)
        assert [r.target for r in table.rows] == [4, 0, 2]


@pytest.mark.parametrize(
    ("classes", "shown"),
    [(3, "3"), ("cat", "'cat'"), (torch.zeros(3, 1, dtype=torch.long), "a torch.int64 tensor of shape (3, 1)")],
)
def test_classes_that_are_not_one_per_image_are_refused(classes, shown) -> None:
    with refuses(
        TypeError, f"classes must be None (each image's top class) or a list of one class per image, not {shown}."
    ):
        evaluate(small_net(), None, images(3), ["centre"], classes=classes)


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (dict(batch_size=0), ValueError, "batch_size must be at least 1, got 0."),
        (dict(forward_batch=0), ValueError, "forward_batch must be at least 1, got 0."),
        (dict(with_road="yes"), TypeError, "with_road must be True or False, not 'yes'."),
        (dict(progress=1), TypeError, "progress must be True or False, not 1."),
        (dict(baseline="black"), ValueError, "Unknown baseline 'black'; use one of zero, mean, blur."),
        (dict(baseline=0), ValueError, "Unknown baseline 0; use one of zero, mean, blur."),
        (dict(cache={}), TypeError, "cache must be a MapCache (to reuse maps between runs) or None, not {}."),
        (
            dict(model_key=3),
            TypeError,
            "model_key must be a string naming the model, or None for its fingerprint, not 3.",
        ),
    ],
)
def test_each_setting_is_checked_in_one_line(settings, error, message) -> None:
    with refuses(error, message):
        evaluate(small_net(), None, images(2), ["centre"], **settings)


def test_a_model_that_is_not_a_module_is_refused() -> None:
    with refuses(TypeError, "model must be a torch nn.Module (a classifier, e.g. load_model().model), not None."):
        evaluate(None, None, images(2), ["centre"])


def test_images_of_two_sizes_are_named() -> None:
    with refuses(ValueError, "image 0 and another image differ in size; resize them alike (e.g. 224 x 224)."):
        evaluate(small_net(), None, [images(1, 16)[0], images(1, 12)[0]], ["centre"], **QUIET)


def test_the_model_key_names_the_model_in_the_cache() -> None:
    x, fake, cache = images(2), Fake(), MapCache()
    evaluate(small_net(0), None, x, {"fake": fake}, classes=[0, 1], cache=cache, model_key="mine", **QUIET)
    shared = evaluate(small_net(1), None, x, {"fake": fake}, classes=[0, 1], cache=cache, model_key="mine", **QUIET)
    assert shared.maps_computed == 0 and {key[0] for key in cache._maps} == {"mine"}
    evaluate(small_net(1), None, x, {"fake": fake}, classes=[0, 1], cache=cache, **QUIET)
    assert {key[0] for key in cache._maps} == {"mine", model_fingerprint(small_net(1))}


def test_rows_without_road_leave_its_columns_nan() -> None:
    table = evaluate(small_net(), None, images(2), ["centre"], **QUIET)
    assert all(math.isnan(v) for r in table.rows for v in (r.road_morf, r.road_lerf, r.road_combined))
    assert all(0 <= r.insertion_auc <= 1 and 0 <= r.deletion_auc <= 1 for r in table.rows)


def test_the_bar_is_shown_when_there_is_more_than_one_chunk_or_no_count(capsys) -> None:
    net, x = small_net(), images(4)
    evaluate(net, None, x, ["centre"], batch_size=4, steps=2, patch=8)
    assert capsys.readouterr().err == ""  # one chunk: no bar
    evaluate(net, None, x, ["centre"], batch_size=3, steps=2, patch=8)
    err = capsys.readouterr().err
    assert "evaluating: 100%" in err and "4/4" in err and "image" in err.rsplit("4/4", 1)[1]
    evaluate(net, None, (b for b in x.split(4)), ["centre"], batch_size=4, steps=2, patch=8)
    assert "evaluating: " in capsys.readouterr().err  # an unknown count: a bar


def test_a_signed_map_of_one_channel_is_ranked_by_its_values() -> None:
    """Half -1, half +1: not constant (the +1 half goes first), although its magnitude is."""

    def signs(model: nn.Module, batch: torch.Tensor, classes: list[int]) -> torch.Tensor:
        out = torch.ones(batch.shape[0], 1, 16, 16)
        out[:, :, :8] = -1.0
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConstantMapWarning)
        table = evaluate(small_net(), None, images(2), {"signs": signs}, **QUIET)
    assert len(table.rows) == 2


def test_only_the_user_warnings_of_the_methods_are_silenced() -> None:
    def noisy(model: nn.Module, batch: torch.Tensor, classes: list[int]) -> torch.Tensor:
        warnings.warn("a note from Captum", UserWarning, stacklevel=2)
        warnings.warn("an overflow", RuntimeWarning, stacklevel=2)
        return Fake()(model, batch, classes)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        evaluate(small_net(), None, images(2), {"noisy": noisy}, **QUIET)
    mine = [(w.category, str(w.message)) for w in seen if str(w.message) in ("a note from Captum", "an overflow")]
    assert mine == [(RuntimeWarning, "an overflow")]


def test_the_defaults_are_the_report_cards_8_steps_16_pixel_patches_and_32_images_a_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = images(33, side=33)  # 3 x 3 patches of 16 (2 x 2 of 17); 33 images: chunks of 32 and 1
    chunks: list[int] = []
    real = utils.evaluation._classes_of
    monkeypatch.setattr(utils.evaluation, "_classes_of", lambda m, b, *a: chunks.append(b.shape[0]) or real(m, b, *a))
    fake = Fake()
    default = evaluate(small_net(), None, x, {"fake": fake}, progress=False)
    assert chunks == [32, 1] and fake.sizes == [32, 1]
    told = evaluate(small_net(), None, x, {"fake": Fake()}, progress=False, steps=8, patch=16, batch_size=32)
    assert aucs(default) == aucs(told)
    other = evaluate(small_net(), None, x, {"fake": Fake()}, progress=False, steps=8, patch=11, batch_size=32)
    assert aucs(other) != aucs(told)  # the patch matters on this size: the comparison can fail


def test_misses_are_counted_each_time() -> None:
    cache = MapCache()
    for c in range(3):
        assert cache.get(("k", "m", "h", c)) is None
    assert (cache.hits, cache.misses) == (0, 3)


class Stream(torch.utils.data.IterableDataset):
    """A dataset with no length: the images of ``images()``, two per batch through a DataLoader."""

    def __iter__(self):
        return iter(images(3))


def test_a_dataloader_over_a_stream_has_no_total_and_is_evaluated_whole() -> None:
    loader = DataLoader(Stream(), batch_size=2)
    pairs, total = utils.evaluation._image_source(loader, None)
    assert total is None and len(list(pairs)) == 3
    table = evaluate(small_net(), None, DataLoader(Stream(), batch_size=2), ["centre"], **QUIET)
    assert [r.image for r in table.rows] == ["image 0", "image 1", "image 2"]
    assert aucs(table) == aucs(evaluate(small_net(), None, images(3), ["centre"], **QUIET))


def test_chunks_add_up_their_maps_images_and_given_classes() -> None:
    x = images(5)
    table = evaluate(small_net(), None, x, {"a": Fake(), "b": Fake()}, classes=[0, 1, 2, 3, 4], batch_size=2, **QUIET)
    assert table.maps_computed == 10  # 2 methods x (2 + 2 + 1) images over three chunks
    assert [r.target for r in table.rows if r.method == "a"] == [0, 1, 2, 3, 4]  # the third chunk's class is 4


def test_an_iterable_with_no_image_is_refused_in_its_whole_line() -> None:
    message = "images held no image (an empty DataLoader or iterable); give at least one image."
    with refuses(ValueError, message):
        evaluate(small_net(), None, iter([]), ["centre"], **QUIET)
    with refuses(ValueError, message):
        evaluate(small_net(), None, DataLoader(TensorDataset(torch.zeros(0, 3, 8, 8))), ["centre"], **QUIET)
