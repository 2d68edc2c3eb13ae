"""Import torchvision without importing ``torch._dynamo`` (the compiler), which eager code never uses.

torchvision 0.29's ``torchvision/ops/roi_align.py`` starts with
``from torch._dynamo.utils import is_compile_supported``. That one line imports the whole of
``torch._dynamo`` (sympy, torch.fx's symbolic shapes, torch.distributed's FSDP, ...): about 2 s of
every lesson's import cell on the course's 2-core machine, and about 0.6 s more when the kernel
stops. The same file's ``lazy_compile`` says why it should not happen ("This avoids eagerly importing
dynamo"), and its author gave the reason upstream: "importing dynamo has undesirable side effects
for eager mode only users" (pytorch/vision#8436). ``roi_align`` calls the function only for
deterministic RoI alignment on an accelerator; the course never calls ``roi_align``.

So while torchvision is imported for the first time, ``torch._dynamo.utils`` is a stand-in whose
``is_compile_supported`` imports the real one when it is first called; the stand-ins are removed
from ``sys.modules`` at once, also if the import fails, and ``import torch._dynamo`` afterwards
loads the real package as usual. Nothing is done when torchvision or torch._dynamo is already
imported, or for a torchvision release other than the one pinned (whose import may need more of
the compiler: it is then imported as it is, only slower). tests/test_environment.py checks all of
that, and fails when the pin moves to a release the stand-in has not been checked with.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import types

_STAND_INS = ("torch._dynamo", "torch._dynamo.utils")
CHECKED_RELEASES = ("0.29.1",)
"""torchvision releases whose import was checked to need nothing of torch._dynamo but ``is_compile_supported``."""


def _is_compile_supported(device_type: str) -> bool:
    """``torch._dynamo.utils.is_compile_supported``, imported when it is first called."""
    from torch._dynamo.utils import is_compile_supported

    return is_compile_supported(device_type)


def _checked_release() -> bool:
    try:
        return importlib.metadata.version("torchvision").split("+")[0] in CHECKED_RELEASES
    except importlib.metadata.PackageNotFoundError:
        return False


def import_torchvision() -> types.ModuleType:
    """Import torchvision (if not yet imported) without importing ``torch._dynamo``; return it."""
    if "torchvision" in sys.modules or any(name in sys.modules for name in _STAND_INS) or not _checked_release():
        return importlib.import_module("torchvision")
    import torch

    package, utils = (types.ModuleType(name) for name in _STAND_INS)
    package.__path__ = []  # a package, so that the import of torch._dynamo.utils finds its parent
    utils.is_compile_supported = _is_compile_supported
    package.utils = utils
    sys.modules.update(zip(_STAND_INS, (package, utils), strict=True))
    try:
        return importlib.import_module("torchvision")
    finally:
        for name, stand_in in zip(_STAND_INS, (package, utils), strict=True):
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
        if torch.__dict__.get("_dynamo") is package:
            del torch._dynamo  # torch imports its lazy module again on the next ``torch._dynamo``
