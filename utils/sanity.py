"""Sanity checks for saliency maps: does a map change when the model it explains is destroyed?

The model-parameter randomisation test of Adebayo et al. (2018, "Sanity Checks for Saliency
Maps", NeurIPS, Section 3 and Fig. 2): re-initialise the model's layers one after another from
the top (the classifier first, then deeper and deeper blocks), recompute a map after every step,
and measure how similar it stays to the map of the trained model. A map that stays the same
while the weights it claims to explain are gone does not explain those weights.

* ``randomisation_order`` lists the layers in the order they are randomised, output first;
  ``cascading_randomisation`` yields a copy of the model randomised one more layer per step.
  The caller's model is never touched, and the global random state is left as it was.
* ``rank_correlation`` (Spearman, of absolute values) and ``ssim`` (structural similarity)
  compare two maps; a 3-channel map is reduced to one channel first by summing the magnitudes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

from utils.saliency import MapLike, magnitude

__all__ = [
    "ConstantMapWarning",
    "cascading_randomisation",
    "randomisation_order",
    "rank_correlation",
    "ssim",
]

_PLAIN_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_SSIM_WINDOW = 7  # skimage's default window side; smaller maps get the largest odd side that fits


class ConstantMapWarning(UserWarning):
    """A map is constant (e.g. all zero), so its ranks carry no information; see ``rank_correlation``."""


# --- comparing maps ---------------------------------------------------------------------------


def _pair(a: MapLike, b: MapLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    first, second = magnitude(a), magnitude(b)
    if first.shape != second.shape:
        raise ValueError(
            f"The maps have different sizes, {first.shape} and {second.shape}; compare maps of the same size "
            "(upsample a Grad-CAM map with utils.saliency.upsample_cam first)."
        )
    return first, second


def rank_correlation(a: MapLike, b: MapLike) -> float:
    """Spearman rank correlation between the magnitudes of two maps (see ``magnitude``), in [-1, 1].

    1 means the pixels are ranked in the same order by both maps, 0 no relation. A constant map
    (e.g. a blank Grad-CAM) has no ranking, so Spearman's formula gives NaN; here it is defined
    instead: two constant maps give 1.0 (both rank every pixel equally), one constant map gives
    0.0 (nothing of the other map's ranking survives), and a ``ConstantMapWarning`` says so.

    >>> rank_correlation(np.array([[1.0, 2.0, 3.0]]), np.array([[-10.0, 20.0, 30.0]]))
    1.0
    >>> rank_correlation(np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 2.0, 1.0]]))
    -1.0
    """
    first, second = _pair(a, b)
    constant = [name for name, m in (("a", first), ("b", second)) if np.ptp(m) == 0]
    if constant:
        value = 1.0 if len(constant) == 2 else 0.0
        which = "both maps are" if len(constant) == 2 else f"map {constant[0]} is"
        warnings.warn(
            f"{which} constant (e.g. all zero), so the rank correlation is undefined; returning {value}.",
            ConstantMapWarning,
            stacklevel=2,
        )
        return value
    return float(spearmanr(first.ravel(), second.ravel()).statistic)


def ssim(a: MapLike, b: MapLike) -> float:
    """Structural similarity (SSIM, Wang et al. 2004) between the magnitudes of two maps.

    Each magnitude map (see ``magnitude``) is divided by its own maximum, so both lie in
    [0, 1] (an all-zero map stays zero), and ``skimage.metrics.structural_similarity`` compares
    them with ``data_range=1``. Its 7 x 7 window shrinks to the largest odd size that fits a
    smaller map; maps smaller than 3 x 3 raise a ``ValueError``. 1 means identical.

    >>> ramp = np.arange(64.0).reshape(8, 8)
    >>> ssim(ramp, 2 * ramp), round(ssim(ramp, ramp.T), 2)
    (1.0, 0.25)
    """
    first, second = (m / m.max() if m.max() > 0 else m for m in _pair(a, b))
    side = min(first.shape)
    window = min(_SSIM_WINDOW, side if side % 2 else side - 1)
    if window < 3:
        raise ValueError(f"SSIM needs maps of at least 3 x 3 pixels, got {first.shape}; upsample them first.")
    return float(structural_similarity(first, second, data_range=1.0, win_size=window))


# --- randomising a model ----------------------------------------------------------------------


def randomisation_order(model: nn.Module) -> list[str]:
    """The model's layers with weights, as dotted names, in the order the test randomises them.

    Output first: the reverse of registration order (forward order for models built from
    ``nn.Sequential``). A layer is a module with parameters that is not a plain container
    (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``): a convolution, a linear or
    normalisation layer, or a block as a whole (SqueezeNet's Fire modules, ResNet's residual
    blocks), as Adebayo et al. randomised Inception v3 block by block. Parameters registered on
    the model itself, outside any child module, are not listed.

    >>> from torchvision.models import squeezenet1_1
    >>> randomisation_order(squeezenet1_1())  # doctest: +NORMALIZE_WHITESPACE
    ['classifier.1', 'features.12', 'features.11', 'features.10', 'features.9', 'features.7',
     'features.6', 'features.4', 'features.3', 'features.0']
    """
    found: list[str] = []
    _collect_layers(model, "", found)
    return found[::-1]


def _collect_layers(parent: nn.Module, prefix: str, found: list[str]) -> None:
    for name, child in parent.named_children():
        if not any(True for _ in child.parameters()):
            continue
        if isinstance(child, _PLAIN_CONTAINERS):
            _collect_layers(child, f"{prefix}{name}.", found)
        else:
            found.append(prefix + name)


def cascading_randomisation(
    model: nn.Module, layer_order: Sequence[str | nn.Module] | None = None, *, seed: int = 0
) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer name, randomised copy)`` with one more layer re-initialised at each step.

    ``model`` is deep-copied once and never changed. Step ``i`` (from 0) re-initialises the
    parameters of layer ``layer_order[i]`` in that copy with its own ``reset_parameters()``
    (PyTorch's default initialisation; batch-norm statistics are reset too) under
    ``torch.manual_seed(seed + i)``, inside ``torch.random.fork_rng``: the same seed gives the
    same weights on every run and every device, and the global random state is untouched.
    ``layer_order`` (names or modules of ``model``) defaults to ``randomisation_order(model)``,
    the classifier first. The copy keeps the model's train/eval mode and device.

    Every step yields the **same** copy, randomised further: use it inside the loop, or
    ``copy.deepcopy`` it to keep one step.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> [name for name, _ in cascading_randomisation(net)]
    ['2', '0']
    """
    names = randomisation_order(model) if layer_order is None else [_layer_name(model, layer) for layer in layer_order]
    for name in names:
        _check_resettable(name, model.get_submodule(name))
    return _randomise(copy.deepcopy(model), names, seed)


def _randomise(randomised: nn.Module, names: list[str], seed: int) -> Iterator[tuple[str, nn.Module]]:
    for step, name in enumerate(names):
        layer = randomised.get_submodule(name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + step)
            fresh = copy.deepcopy(layer).to("cpu")  # drawn on the CPU: the same weights on every device
            for module in fresh.modules():
                if callable(getattr(module, "reset_parameters", None)):
                    module.reset_parameters()
        layer.load_state_dict(fresh.state_dict())
        yield name, randomised


def _layer_name(model: nn.Module, layer: str | nn.Module) -> str:
    modules = dict(model.named_modules())
    if isinstance(layer, str) and layer and layer in modules:
        return layer
    if isinstance(layer, nn.Module):
        for name, module in modules.items():
            if module is layer and name:
                return name
    what = repr(layer) if isinstance(layer, str) else f"The {type(layer).__name__} given"
    raise ValueError(
        f"{what} is not a layer of {type(model).__name__}; layers with weights, output first: "
        f"{', '.join(map(repr, randomisation_order(model)))}."
    )


def _check_resettable(name: str, layer: nn.Module) -> None:
    """Every parameter of ``layer`` must belong to a module that can re-initialise it."""
    if not any(True for _ in layer.parameters()):
        raise ValueError(f"Layer {name!r} has no parameters to randomise; choose one from randomisation_order(model).")
    for part_name, part in layer.named_modules():
        own = list(part.parameters(recurse=False))
        if own and not callable(getattr(part, "reset_parameters", None)):
            where = f"{name}.{part_name}" if part_name else name
            raise ValueError(
                f"Module {where!r} ({type(part).__name__}) has parameters but no reset_parameters(), "
                "so it cannot be re-initialised; leave it out of layer_order or give it that method."
            )
