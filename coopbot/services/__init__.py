"""The co-op's rules, free of any chat platform: one sub-package a room of the co-op
(members, dispatch, polls, money, announcements, data), and the few modules every room shares."""

from __future__ import annotations

import importlib
import pkgutil


def load_services() -> None:
    """Import every service module, in every room, so what they register (sweeps, renderers) is known."""
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)
