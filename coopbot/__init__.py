"""coopbot: the chat front end of a worker co-operative."""

from __future__ import annotations

__version__ = "0.1.0"
