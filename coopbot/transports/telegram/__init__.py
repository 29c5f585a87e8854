"""Telegram, through python-telegram-bot: what the core must know of it.

The client itself (`transport`, `intake`, `messages`) is imported only when
the bot runs on Telegram.
"""

from __future__ import annotations

from coopbot.platforms import Platform
from coopbot.splitting import utf16_units

#: Telegram counts a message's 4096 characters in UTF-16 code units.
PLATFORM = Platform(
    "telegram",
    "Telegram",
    4096,
    utf16_units,
    builder="coopbot.transports.telegram.transport:build_telegram_transport",
    account_pattern=r"-?\d+",
    account_rule="a Telegram user id is a number, like 123456789",
    account_help="their numeric Telegram user id",
)
