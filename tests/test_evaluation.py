"""utils.evaluation: the report card over many images, batched, cached, saved; checked against the one-image code."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from _shared import small_net
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils.datasets import ImageLoadError
from utils.evaluation import Evaluation, EvaluationRow, MapCache, evaluate, image_hash
from utils.faithfulness import insertion_deletion
from utils.road import road


def images(n: int = 5, side: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


class CountingMethod:
    """A fake method, deterministic per image and class, that counts its calls and the images it saw."""

    def __init__(self) -> None:
        self.calls = 0
        self.images = 0

    def __call__(self, model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
        self.calls += 1
        self.images += x.shape[0]
        weights = torch.tensor(classes, dtype=x.dtype)[:, None, None, None] + 1
        return (x * torch.tensor([1.0, -2.0, 0.5])[None, :, None, None]).sum(1, keepdim=True) * weights


SETTINGS = [
    dict(steps=4, baseline="blur", patch=4),
    dict(steps=8, baseline="mean", patch=1),
    dict(steps=3, baseline="zero", patch=5),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_batched_aucs_equal_insertion_deletion_image_by_image(settings: dict) -> None:
    """The curves of a chunk, run through the model together (batches crossing images), are each image's curves."""
    net, x, fake = small_net(), images(), CountingMethod()
    classes = [0, 3, 1, 4, 2]
    table = evaluate(net, None, x, {"fake": fake}, classes=classes, forward_batch=7, progress=False, **settings)
    assert fake.calls == 1 and fake.images == 5  # one call for the whole chunk
    for i, row in enumerate(table.rows):
        saliency = fake(net, x[i : i + 1], [classes[i]])
        curves = insertion_deletion(net, x[i : i + 1], saliency, classes[i], **settings)
        assert (row.image, row.target) == (f"image {i}", classes[i])
        assert row.insertion_auc == pytest.approx(curves.insertion_auc, abs=1e-6)
        assert row.deletion_auc == pytest.approx(curves.deletion_auc, abs=1e-6)
    spread = np.ptp([r.insertion_auc for r in table.rows])
    assert spread > 1e-3, spread  # the images differ: a mix-up between them would show


def test_course_methods_in_chunks_equal_one_image_at_a_time() -> None:
    """Chunks of 5, 2 and 1 images give the same AUCs (maps batched, forward passes shared) to float precision."""
    net, x = small_net(), images()
    methods = ["grad_cam", "guided_backprop", "guided_grad_cam", "edges", "random"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = [evaluate(net, "3", x, methods, batch_size=b, progress=False, steps=4, patch=2) for b in (5, 2, 1)]
    first = np.array([(r.insertion_auc, r.deletion_auc) for r in tables[0].rows])
    for other in tables[1:]:
        assert [(r.image, r.method, r.target) for r in other.rows] == [
            (r.image, r.method, r.target) for r in tables[0].rows
        ]
        assert np.abs(np.array([(r.insertion_auc, r.deletion_auc) for r in other.rows]) - first).max() < 1e-5


def test_the_class_is_the_top_class_unless_given() -> None:
    net, x = small_net(), images()
    top = net(x).argmax(1).tolist()
    found = evaluate(net, None, x, ["centre"], progress=False, steps=2, patch=4)
    assert [r.target for r in found.rows] == top
    given = evaluate(net, None, x, ["centre"], classes=[4, 4, 0, 1, 2], progress=False, steps=2, patch=4)
    assert [r.target for r in given.rows] == [4, 4, 0, 1, 2]


def test_csv_round_trips_and_summary_is_mean_and_range(tmp_path) -> None:
    net, x = small_net(), images(3)
    table = evaluate(
        net, None, x, {"fake": CountingMethod(), "edges": "edges"}, with_road=True, progress=False, steps=4, patch=4
    )
    assert all(not math.isnan(r.road_combined) for r in table.rows)
    back = Evaluation.read_csv(table.to_csv(tmp_path / "card.csv"))
    assert back.rows == table.rows  # floats written with repr: exactly the same numbers
    summary = table.summary()
    assert list(summary) == ["fake", "edges"]
    values = [r.insertion_auc for r in table.rows if r.method == "edges"]
    s = summary["edges"]
    assert (s.images, s.insertion_min, s.insertion_max) == (3, min(values), max(values))
    assert s.insertion_mean == pytest.approx(np.mean(values))
    roads = [r.road_combined for r in table.rows if r.method == "edges"]
    assert s.road_combined_mean == pytest.approx(np.mean(roads))


def test_road_columns_are_utils_road() -> None:
    net, x, fake = small_net(), images(2), CountingMethod()
    table = evaluate(net, None, x, {"fake": fake}, classes=[1, 2], with_road=True, progress=False, steps=4, patch=4)
    for i, row in enumerate(table.rows):
        curves = road(net, x[i : i + 1], fake(net, x[i : i + 1], [row.target]), row.target)
        assert (row.road_morf, row.road_lerf) == pytest.approx((curves.morf.mean(), curves.lerf.mean()), abs=1e-7)
        assert row.road_combined == pytest.approx(curves.combined, abs=1e-7)


def test_the_cache_returns_the_same_maps_without_calling_the_method_again() -> None:
    net, x, fake, cache = small_net(), images(), CountingMethod(), MapCache()
    first = evaluate(net, None, x, {"fake": fake}, cache=cache, progress=False, steps=4, patch=4)
    assert (fake.calls, first.maps_computed, len(cache)) == (1, 5, 5)
    kept = {key: value[0].clone() for key, value in cache._maps.items()}
    again = evaluate(net, None, x, {"fake": fake}, cache=cache, with_road=True, progress=False, steps=8, patch=2)
    assert (fake.calls, again.maps_computed, cache.hits) == (1, 0, 5)  # another metric, no map computed
    assert all(torch.equal(cache._maps[key][0], value) for key, value in kept.items())
    same = evaluate(net, None, x, {"fake": fake}, cache=cache, progress=False, steps=4, patch=4)
    assert [(r.insertion_auc, r.deletion_auc) for r in same.rows] == [
        (r.insertion_auc, r.deletion_auc) for r in first.rows
    ]
    # a changed image, another class or another model is another map
    evaluate(net, None, x[:1] + 0.5, {"fake": fake}, cache=cache, progress=False)
    other_class = (int(net(x[:1]).argmax()) + 1) % 5
    evaluate(net, None, x[:1], {"fake": fake}, classes=[other_class], cache=cache, progress=False)
    evaluate(small_net(seed=3), None, x[:1], {"fake": fake}, cache=cache, progress=False)
    assert fake.calls == 4


def test_only_the_missing_images_are_computed() -> None:
    net, x, fake, cache = small_net(), images(), CountingMethod(), MapCache()
    evaluate(net, None, x[:2], {"fake": fake}, cache=cache, progress=False)
    table = evaluate(net, None, x, {"fake": fake}, cache=cache, progress=False)
    assert (fake.calls, fake.images, table.maps_computed) == (2, 5, 3)


def test_the_cache_is_bounded_by_entries_and_bytes() -> None:
    one = torch.zeros(1, 1, 8, 8)  # 256 bytes
    by_entries, by_bytes = MapCache(max_entries=3), MapCache(max_bytes=600)
    for c in range(5):
        by_entries.put(("m", "f", "h", c), one, 0.0)
        by_bytes.put(("m", "f", "h", c), one, 0.0)
    assert len(by_entries) == 3 and by_entries.get(("m", "f", "h", 1)) is None and by_entries.get(("m", "f", "h", 4))
    assert (len(by_bytes), by_bytes.bytes) == (2, 512)
    with pytest.raises(ValueError, match="max_entries must be at least 1, got 0"):
        MapCache(max_entries=0)


def test_a_folder_a_dataloader_and_a_list_give_the_same_table(tmp_path) -> None:
    from PIL import Image

    from utils.datasets import preprocess_imagenet_image

    rng = np.random.default_rng(0)
    for name in ("b.png", "a.jpg"):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    net = small_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small pictures upscaled
        folder = evaluate(net, None, tmp_path, ["centre"], progress=False)
        x = torch.cat([preprocess_imagenet_image(tmp_path / n) for n in ("a.jpg", "b.png")])
    assert [r.image for r in folder.rows] == ["a.jpg", "b.png"]
    listed = evaluate(net, None, list(x), ["centre"], progress=False)
    loader = DataLoader(TensorDataset(x, torch.tensor([7, 7])), batch_size=1)
    loaded = evaluate(net, None, loader, ["centre"], progress=False)
    aucs = [[(r.insertion_auc, r.deletion_auc) for r in t.rows] for t in (folder, listed, loaded)]
    assert aucs[0] == aucs[1] == aucs[2]


def test_model_and_images_are_left_as_they_were() -> None:
    net, x = small_net().train(), images()
    before, pixels = {k: v.clone() for k, v in net.state_dict().items()}, x.clone()
    evaluate(net, "3", x, ["grad_cam", "guided_backprop"], with_road=True, progress=False, steps=4, patch=4)
    assert net.training and all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and torch.equal(x, pixels)
    assert not any(m._forward_hooks or m._backward_hooks for m in net.modules())


def test_image_hash_follows_content_not_object() -> None:
    x = images(1)[0]
    assert image_hash(x) == image_hash(x.clone()) != image_hash(x.flip(-1))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda net, x, d: evaluate(net, None, d, ["centre"]), ValueError, "holds no images"),
        (
            lambda net, x, d: evaluate(net, None, x, ["centre"], classes=[1, 2]),
            ValueError,
            "classes has 2 entries but there are 5 images",
        ),
        (
            lambda net, x, d: evaluate(net, None, list(x), ["centre"], classes=[1] * 6),
            ValueError,
            "classes has 6 entries",
        ),
        (lambda net, x, d: evaluate(net, None, x, ["grad_kam"]), ValueError, "Unknown method 'grad_kam'"),
        (lambda net, x, d: evaluate(net, None, [], ["centre"]), ValueError, "images is empty"),
        (lambda net, x, d: evaluate(net, None, iter([]), ["centre"]), ValueError, "images held no image"),
        (lambda net, x, d: evaluate(net, None, x, ["centre"], classes=[9] * 5), ValueError, "out of range"),
        (lambda net, x, d: evaluate(net, None, x, ["centre"], steps=0), ValueError, "steps must be at least 1, got 0"),
        (lambda net, x, d: evaluate(net, None, [x[0], x[1, :, :8]], ["centre"]), ValueError, "differ in size"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, call, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        call(small_net(), images(), tmp_path)
    assert "\n" not in str(raised.value)


def test_an_unreadable_image_is_named(tmp_path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageLoadError, match="broken.png"):
        evaluate(small_net(), None, tmp_path, ["centre"], progress=False)


def test_a_classes_list_for_a_dataloader_is_checked_at_the_end() -> None:
    loader = DataLoader(TensorDataset(images(), torch.zeros(5)), batch_size=2)
    loader = (batch for batch in loader)  # no dataset: the number of images is unknown until the end
    with pytest.raises(ValueError, match="classes has 6 entries but there are 5 images"):
        evaluate(small_net(), None, loader, ["centre"], classes=[0] * 6, progress=False, steps=2, patch=4)


def test_rows_are_rows() -> None:
    row = EvaluationRow("a", "m", 1, 0.5, 0.25)
    assert math.isnan(row.road_combined) and math.isnan(row.seconds)


def test_the_layer_is_part_of_the_key_whether_named_or_given() -> None:
    net, x, cache = small_net(), images(2), MapCache()
    evaluate(net, "3", x, ["grad_cam"], cache=cache, progress=False)
    again = evaluate(net, net[3], x, ["grad_cam"], cache=cache, progress=False)
    other = evaluate(net, "1", x, ["grad_cam"], cache=cache, progress=False)
    assert (again.maps_computed, other.maps_computed) == (0, 2)


def test_the_progress_bar_counts_the_images(capsys) -> None:
    evaluate(small_net(), None, images(), ["centre"], batch_size=2, progress=True, steps=2, patch=16)
    err = capsys.readouterr().err
    assert "5/5" in err
    assert re.search(r"\d(image/s|s/image)\]", err), err  # its rate in images (or seconds per image), as it counts
    evaluate(small_net(), None, images(), ["centre"], batch_size=2, progress=False, steps=2, patch=16)
    assert capsys.readouterr().err == ""
