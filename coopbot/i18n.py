"""Every sentence the bot says, in French and English.

Catalogues live in `coopbot/locales/<lang>/<area>.toml`, one file per area so
that each part of the co-op's rules keeps its own words. Keys are flat
(`members.welcome`); values are `str.format` templates.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("en", "fr")
FALLBACK = "en"


def _flatten(prefix: str, data: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@cache
def catalogue(lang: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for path in sorted((LOCALES / lang).glob("*.toml")):
        _flatten("", tomllib.loads(path.read_text(encoding="utf-8")), entries)
    return entries


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def normalise_language(code: str | None) -> str | None:
    """'fr-FR', 'fr_CA' → 'fr'; anything we do not speak → None."""
    if not code:
        return None
    short = code.replace("_", "-").split("-")[0].lower()
    return short if short in LANGUAGES else None


def t(lang: str, key: str, /, **params: Any) -> str:
    template = catalogue(lang).get(key) or catalogue(FALLBACK).get(key)
    if template is None:
        raise KeyError(f"no sentence for {key!r}")
    try:
        return template.format(**params)
    except (KeyError, IndexError) as exc:
        raise KeyError(f"sentence {key!r} needs {exc}") from exc
