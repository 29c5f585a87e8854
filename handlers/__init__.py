"""Chat commands, one module per area, shared by every platform.

Importing `load_all` registers every command: each module under this package
adds its own with the `@command` decorator, so a new area needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
