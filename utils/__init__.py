"""Helpers for the Guided Grad-CAM course: one module per job (see README.md's map of the package).

Importing any of them imports torchvision first, without the compiler it does not need (see
``utils._torchvision``): that saves about 2 s in every lesson.
"""

from utils._torchvision import import_torchvision

import_torchvision()
