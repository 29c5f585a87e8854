"""Chat commands, one module per area, shared by every platform.

Each module under this package declares its own commands with the `@command`
decorator, so a new area needs no edit here; `collect_commands` gathers them
into the registry a bot answers from (built once, in `coopbot.app.CoopBot`).
"""

from __future__ import annotations

import sys

from handlers.registry import COMMAND, Commands


def collect_commands() -> Commands:
    """Every command the modules of this package declare, in a registry of its own."""
    return Commands(COMMAND.declared_in(sys.modules[__name__]))
