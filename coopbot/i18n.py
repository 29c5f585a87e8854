"""Every sentence the bot says, in French and English.

Catalogues live in `coopbot/locales/<lang>/<area>.toml`, one file per area so
that each part of the co-op's rules keeps its own words. Keys are flat
(`members.welcome`); values are `str.format` templates.

A sentence that counts something is a *plural table*: an inline TOML table of
CLDR plural categories (English: `one`, `other`; French: `one` for 0 and 1,
`many` for round millions, `other`), chosen with Babel's plural rules:

    points = { count = "points", one = "{count} point", other = "{count} points" }

`count` names the parameter that holds the number (default: `count`); in every
form `{count}` is that number written the reader's way by Babel ("1 250" in
French, with a narrow no-break space). A number given as text a caller already
formatted ("1,5") is read back to choose the form and shown as given.

Inside any sentence, `{name:@key}` writes the number `name` with the plural
table `key`, so one sentence can count several things:
`"{jobs:@counts.jobs} and {votes:@counts.votes}"` → "1 job and 3 votes".

A name the co-op stores in English (a kind of work, a setting, a state) is a *term*:
`{kind:~work.kind}` writes `work.kind.<kind>` in the reader's language, and the name
itself when the catalogue has no such entry (a kind of work configured after the
catalogue was written still shows). `{setting:~settings.label (key)}` adds the name in
brackets, for where a member must type it: "Legal reserve (legal_reserve_pct)". A list
is written term by term, joined by commas. See `term`.

French sentences elide at a placeholder: `de {name}` with Alice gives "d’Alice"
(also que, le, la, ne, jusque, lorsque, puisque, before a written vowel).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any

from babel import Locale
from babel.numbers import NumberFormatError, format_decimal, parse_decimal

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("en", "fr")
FALLBACK = "en"
#: `{name:~vocabulary}`: the word for `name` in `vocabulary`; with TYPED after it, and the name.
TERM = "~"
TYPED = " (key)"
#: CLDR plural categories, in CLDR's order.
CATEGORIES = ("zero", "one", "two", "few", "many", "other")
#: The key of a plural table that names the parameter holding the number.
COUNTS = "count"

_FORMATTER = Formatter()
#: French words that lose their vowel before one (`de Alice` → `d’Alice`). Not before h
#: (aspirated or not, a name cannot tell) nor y (`de Yann`); `oui` and `onze` keep theirs.
_ELIDED = re.compile(r"(?<![\w’'])(de|que|jusque|lorsque|puisque|le|la|ne)[ \u00a0]$", re.IGNORECASE)
_VOWEL = re.compile(r"[aeiouàâäéèêëîïôöùûüœæ]", re.IGNORECASE)
_NOT_ELIDED = re.compile(r"(oui|onze)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Plural:
    """One sentence per CLDR plural category; `counts` is the parameter holding the number."""

    forms: Mapping[str, str]
    counts: str = COUNTS

    def form(self, category: str) -> str:
        return self.forms.get(category, self.forms["other"])


Entry = str | Plural


def _is_plural(value: dict[str, Any]) -> bool:
    return "other" in value and set(value) <= {*CATEGORIES, COUNTS}


def _flatten(prefix: str, data: dict[str, Any], out: dict[str, Entry]) -> None:
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and _is_plural(value):
            forms = {category: str(text) for category, text in value.items() if category != COUNTS}
            out[full] = Plural(forms, str(value.get(COUNTS, COUNTS)))
        elif isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@cache
def entries(lang: str) -> dict[str, Entry]:
    """Every sentence of a language: a template, or a plural table."""
    found: dict[str, Entry] = {}
    for path in sorted((LOCALES / lang).glob("*.toml")):
        _flatten("", tomllib.loads(path.read_text(encoding="utf-8")), found)
    return found


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every key of a language with a template; a plural table shows its `other` form.

    For checking that a key exists or reading a plain template; say a sentence with `t`.
    """
    return {key: entry if isinstance(entry, str) else entry.form("other") for key, entry in entries(lang).items()}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name}


def parameters(entry: Entry) -> set[str]:
    """What a caller passes to an entry: its placeholders, with a plural table's counted one."""
    if isinstance(entry, str):
        return placeholders(entry)
    used = set().union(*(placeholders(form) for form in entry.forms.values()))
    return (used - {COUNTS}) | {entry.counts}


def references(template: str) -> set[str]:
    """The plural tables a template counts with (`{jobs:@counts.jobs}` → `counts.jobs`)."""
    return {spec[1:] for _, name, spec, _ in _FORMATTER.parse(template) if name and spec and spec.startswith("@")}


def normalise_language(code: str | None) -> str | None:
    """'fr-FR', 'fr_CA' → 'fr'; anything we do not speak → None."""
    if not code:
        return None
    short = code.replace("_", "-").split("-")[0].lower()
    return short if short in LANGUAGES else None


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def number(lang: str, value: Any) -> Decimal | None:
    """The number a parameter holds, or None: ints, decimals, and text such as '1,5' or '1 250'."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return parse_decimal(value.strip(), locale=lang)
        except (NumberFormatError, InvalidOperation, ValueError):
            return None
    return None


def plural_category(lang: str, value: Any) -> str:
    """CLDR's category for a count in a language (French 0 and 1 → 'one'); 'other' if no number."""
    found = number(lang, value)
    return "other" if found is None else str(_locale(lang).plural_form(found))


def count_text(lang: str, value: Any) -> str:
    """A count as a reader writes it ('1 250' in French); text a caller formatted stays as it is."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return format_decimal(value, locale=lang)
    return str(value)


def _elide(before: str, value: str) -> str:
    """French: `… de ` + `Alice` → `… d’`; anything else as it was."""
    if not value or _VOWEL.match(value) is None or _NOT_ELIDED.match(value):
        return before
    found = _ELIDED.search(before)
    if found is None:
        return before
    word = found.group(1)
    return before[: found.start()] + word[:-1] + "’"


def _render(lang: str, template: str, params: Mapping[str, Any]) -> str:
    out: list[str] = []
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        out.append(literal)
        if field is None:
            continue
        value, _ = _FORMATTER.get_field(field, (), params)
        value = _FORMATTER.convert_field(value, conversion)
        if spec and spec.startswith("@"):
            text = _counted(lang, spec[1:], value, params)
        elif spec and spec.startswith(TERM):
            text = _terms(lang, spec[1:], value)
        else:
            text = format(value, _render(lang, spec, params) if spec and "{" in spec else spec or "")
        if lang == "fr" and literal:
            out[-1] = _elide(literal, text)
        out.append(text)
    return "".join(out)


def _counted(lang: str, key: str, value: Any, params: Mapping[str, Any]) -> str:
    """`value` counted with the plural table `key`."""
    entry = entries(lang).get(key)
    if not isinstance(entry, Plural):
        raise KeyError(f"{key!r} is not a plural table")
    form = entry.form(plural_category(lang, value))
    return _render(lang, form, {**params, COUNTS: count_text(lang, value)})


def _known(key: str) -> bool:
    return isinstance(entries(FALLBACK).get(key), str)


def term(lang: str, vocabulary: str, name: Any, *, typed: bool = False) -> str:
    """`name` as the reader says it: `term("fr", "work.kind", "delivery")` → "livraison".

    The co-op stores these names in English and members read them in words. A name with no
    entry is shown as it is, so a kind of work a co-op configured itself still reads; a dotted
    name reads with its family's entry, given the rest as `{name}` (`weight.repair` with
    `settings.label.weight`). `typed` adds the name in brackets where a member must type it.
    """
    name = str(name)
    head, _, rest = name.partition(".")
    if _known(f"{vocabulary}.{name}"):
        words = t(lang, f"{vocabulary}.{name}")
    elif rest and _known(f"{vocabulary}.{head}"):
        words = t(lang, f"{vocabulary}.{head}", name=rest)
    else:
        words = name
    return f"{words} ({name})" if typed and words != name else words


def _terms(lang: str, spec: str, value: Any) -> str:
    """`{name:~vocabulary}` or `{name:~vocabulary (key)}`; a list term by term."""
    vocabulary = spec.removesuffix(TYPED)
    typed = spec != vocabulary
    names = value if isinstance(value, list | tuple) else [value]
    return ", ".join(term(lang, vocabulary, name, typed=typed) for name in names)


def vocabularies(template: str) -> set[str]:
    """The vocabularies a template names its terms with (`{kind:~work.kind}` → `work.kind`)."""
    return {
        spec[1:].removesuffix(TYPED)
        for _, name, spec, _ in _FORMATTER.parse(template)
        if name and spec and spec.startswith(TERM)
    }


def render(lang: str, template: str, /, **params: Any) -> str:
    """A template read from `catalogue(lang)`, written as `t` would (counts, French elisions)."""
    return _render(lang, template, params)


def t(lang: str, key: str, /, **params: Any) -> str:
    if key in entries(lang):
        source = lang
    elif key in entries(FALLBACK):
        source = FALLBACK
    else:
        raise KeyError(f"no sentence for {key!r}")
    entry = entries(source)[key]
    try:
        if isinstance(entry, str):
            return _render(source, entry, params)
        if entry.counts not in params:
            raise KeyError(entry.counts)
        return _counted(source, key, params[entry.counts], params)
    except (KeyError, IndexError, AttributeError) as exc:
        raise KeyError(f"sentence {key!r} needs {exc}") from exc
