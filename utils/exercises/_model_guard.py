"""Run a learner's function on a copy of the model, and say in one line what it changed.

The checkers of lessons 01 and 08 pass the learner's function a deep copy of the model, so the
lesson's model stays as it was whatever the function does. Afterwards the copy is compared with
the model: modules, dtype and device, weights and buffers, ``requires_grad``, train/eval flags,
hooks and ``.grad`` left on the parameters (the ``.backward()`` trap). Torch's global state
(gradient mode, default dtype, hooks on every module) cannot be copied: it is restored after the
function ran, and a change is reported too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

__all__: list[str] = []

UNCHANGED = "The checker ran your function on a copy: the lesson's model is unchanged."

_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = tuple(
    name
    for name in dir(torch_module)
    if name.startswith("_global_") and name.endswith("hooks") and isinstance(getattr(torch_module, name), dict)
)


def copy_for_learner(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` for the learner's function; a one-line ``TypeError`` when it cannot be copied."""
    try:
        return copy.deepcopy(model)
    except Exception as error:  # a model holding something deepcopy refuses (a lock, a generator, ...)
        raise TypeError(
            f"model cannot be copied for the check ({type(error).__name__}: {error}); give the checker a plain "
            "nn.Module such as load_model().model."
        ) from None


def _hooks(module: nn.Module) -> int:
    count = sum(len(getattr(module, name, None) or {}) for name in _MODULE_HOOKS)
    for parameter in module.parameters(recurse=False):
        count += len(parameter._backward_hooks or {}) + len(
            getattr(parameter, "_post_accumulate_grad_hooks", None) or {}
        )
    return count


def _layout(model: nn.Module) -> list[tuple[str, type, bool, str]]:
    """Each module's name, class, whether its ``forward`` was replaced, and a leaf's settings (its repr)."""
    return [(n, type(m), "forward" in vars(m), "" if m._modules else repr(m)) for n, m in model.named_modules()]


def model_change(model: nn.Module, used: nn.Module) -> tuple[str, str] | None:
    """How ``used`` (a copy of ``model`` after the learner's function ran) differs: ``(reason, one line)``, or None.

    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> used = copy_for_learner(net)
    >>> model_change(net, used) is None
    True
    >>> model_change(net, used.train(False))[0]
    'train mode'
    """
    modules, used_modules = dict(model.named_modules()), dict(used.named_modules())
    shapes, used_shapes = _layout(model), _layout(used)
    if shapes != used_shapes:
        changed = next((a[0] for a, b in zip(shapes, used_shapes, strict=False) if a != b), "a module")
        return "modules", (
            f"your function changed the model's modules (at {changed or 'the model'!r}: replaced, added, removed, "
            "or a setting such as inplace changed); build what you need beside the model, never inside it."
        )
    state, used_state = model.state_dict(keep_vars=True), used.state_dict(keep_vars=True)
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue  # a module's extra state: not a tensor, nothing to compare by value
        other = used_state.get(name)
        if not isinstance(other, torch.Tensor):
            return "modules", f"your function removed {name} from the model; build what you need beside the model."
        if (other.dtype, other.device) != (value.dtype, value.device):
            return "dtype", (
                f"your function converted the model: {name} is now {other.dtype} on {other.device}, was "
                f"{value.dtype} on {value.device} "
                "(model.double(), .half() and .to(...) change the model itself, for the rest of the lesson); "
                "compute in the model's own dtype, or convert a copy: copy.deepcopy(model).double()."
            )
        if other.shape != value.shape or not torch.equal(other.detach(), value.detach()):
            return "weights", (
                f"your function changed the model's values ({name}); an in-place operation on a weight or buffer "
                "(zero_(), +=, a training step) changes the model itself. Read them, never write them."
            )
        if isinstance(value, nn.Parameter) and other.requires_grad != value.requires_grad:
            return "requires_grad", (
                f"your function set {name}.requires_grad to {other.requires_grad} (requires_grad_ changes the "
                "model itself); leave it, and take gradients with torch.autograd.grad."
            )
    for name, module in modules.items():
        if used_modules[name].training != module.training:
            mode = "train" if used_modules[name].training else "eval"
            return "train mode", (
                f"your function left the model in {mode} mode (model.{mode}() changes the model itself; at "
                f"{name or 'the model'!r}); leave the mode as you found it."
            )
        if _hooks(used_modules[name]) != _hooks(module):
            return "hooks left", (
                f"your function left a hook on the model (at {name or 'the model'!r}); keep each handle and call "
                "handle.remove() in a finally block."
            )
    grads = [name for name, parameter in used.named_parameters() if parameter.grad is not None]
    if grads:
        return "grad left", (
            f"your function left gradients in the parameters' .grad ({grads[0]}, ...): .backward() stores them in "
            "the model and adds to them at every call. Use torch.autograd.grad(score, A), which returns the gradient "
            "and stores nothing."
        )
    return None


@contextmanager
def global_state_kept() -> Iterator[list[tuple[str, str]]]:
    """Restore torch's gradient mode, default dtype and global module hooks after the block; list what changed.

    >>> with global_state_kept() as changed:
    ...     _ = torch.set_grad_enabled(False)
    >>> torch.is_grad_enabled(), changed[0][0]
    (True, 'grad mode')
    """
    grad_enabled, default_dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    hooks = {name: dict(getattr(torch_module, name)) for name in _GLOBAL_HOOKS}
    changed: list[tuple[str, str]] = []
    try:
        yield changed
    finally:
        if torch.is_grad_enabled() != grad_enabled:
            changed.append(
                (
                    "grad mode",
                    f"your function left gradients switched {'off' if grad_enabled else 'on'} for the whole notebook "
                    "(torch.set_grad_enabled); use `with torch.no_grad():` around the lines that need it. The "
                    "checker switched them back.",
                )
            )
            torch.set_grad_enabled(grad_enabled)
        if torch.get_default_dtype() != default_dtype:
            changed.append(
                (
                    "default dtype",
                    f"your function changed torch's default dtype to {torch.get_default_dtype()} for the whole "
                    "notebook (torch.set_default_dtype); give dtypes where you create tensors. The checker set it "
                    "back.",
                )
            )
            torch.set_default_dtype(default_dtype)
        if any(dict(getattr(torch_module, name)) != kept for name, kept in hooks.items()):
            changed.append(
                (
                    "global hooks",
                    "your function added or removed a global module hook (register_module_forward_hook and "
                    "friends run on every module of every model); hook the one layer you need and remove the "
                    "handle in a finally block. The checker put the global hooks back as they were.",
                )
            )
            for name, kept in hooks.items():
                table: dict[Any, Any] = getattr(torch_module, name)
                table.clear()
                table.update(kept)
