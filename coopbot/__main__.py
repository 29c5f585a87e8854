"""`python -m coopbot ...`: the same as the `coopbot` command."""

from __future__ import annotations

from coopbot.cli import main

raise SystemExit(main())
