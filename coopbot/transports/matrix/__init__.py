"""Matrix, through matrix-nio: what the core must know of it.

The client itself (`transport`, `events`, `send`, `state`) is imported only
when the bot runs on Matrix.
"""

from __future__ import annotations

from coopbot.platforms import Platform
from coopbot.splitting import utf8_bytes

#: An event must stay well under 64 KiB even with an HTML copy of the body, so the
#: limit is counted in bytes. Members often know Matrix by its best-known client.
PLATFORM = Platform(
    "matrix",
    "Matrix",
    16000,
    utf8_bytes,
    words=("element",),
    builder="coopbot.transports.matrix.transport:build_matrix_transport",
    account_pattern=r"@[^:\s]+:\S+",
    account_rule="a Matrix id looks like @alice:example.org",
    account_help="their Matrix user id",
)
