"""The co-op's rules, one module an area, free of any chat platform."""

from __future__ import annotations

import importlib
import pkgutil


def load_services() -> None:
    """Import every service module, so what they register (sweeps, renderers) is known."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
