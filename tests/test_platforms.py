"""A platform is a plug-in: one package under coopbot.transports and one configuration section.

The co-op's rules never name a platform. A third platform (here a made-up
"pigeon" post, declared by a package the test puts on the transports' path)
gets its rooms, its message length, its `/notify` word, its account check in
`coopbot member add` and its label in `/whoami` without any other change.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import Field

import coopbot.transports
from coopbot import platforms
from coopbot.chat import Address
from coopbot.cli import build_parser
from coopbot.config import Config, PlatformSection, config_warnings
from coopbot.errors import UsageError
from coopbot.models import Announcement
from coopbot.services.announcements import announce
from handlers.announce import notify_choice

ROOT = Path(__file__).resolve().parent.parent
PIGEON_PACKAGE = '''
from coopbot.platforms import Platform

PLATFORM = Platform(
    "pigeon", "Pigeon post", 160, len, words=("loft",),
    account_pattern=r"ring-[0-9]+", account_rule="a pigeon is known by its ring, like ring-42",
    account_help="the ring of their pigeon",
)
'''


class PigeonSection(PlatformSection):
    lofts: list[str] = Field(default_factory=list)
    coordinator_lofts: list[str] = Field(default_factory=list)

    def room_ids(self, coordinators: bool) -> list[str]:
        return list(self.coordinator_lofts if coordinators else self.lofts)


class PigeonConfig(Config):
    pigeon: PigeonSection = Field(default_factory=PigeonSection)


@pytest.fixture
def pigeon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[platforms.Platform]:
    """The pigeon package installed beside telegram and matrix, for this test only."""
    (tmp_path / "pigeon").mkdir()
    (tmp_path / "pigeon" / "__init__.py").write_text(PIGEON_PACKAGE)
    monkeypatch.setattr(coopbot.transports, "__path__", [*coopbot.transports.__path__, str(tmp_path)])
    platforms.known.cache_clear()
    try:
        yield platforms.find("pigeon")
    finally:
        sys.modules.pop("coopbot.transports.pigeon", None)
        platforms.known.cache_clear()


def test_the_platforms_are_found_in_their_packages() -> None:
    assert list(platforms.known()) == ["matrix", "telegram", "console"]
    assert platforms.label("telegram") == "Telegram"
    assert platforms.find("somewhere else") is platforms.CONSOLE


def test_a_third_platform_is_one_package_and_one_section(pigeon: platforms.Platform) -> None:
    assert pigeon.label == "Pigeon post"
    config = PigeonConfig(pigeon=PigeonSection(enabled=True, lofts=["rooftop"], coordinator_lofts=["office"]))
    assert platforms.live(config) == [pigeon]
    assert platforms.rooms(config, coordinators=False) == [Address("pigeon", "rooftop", private=False)]
    assert platforms.rooms(config, coordinators=True) == [Address("pigeon", "office", private=False)]


def test_a_section_filled_in_but_not_switched_on_is_warned_about(pigeon: platforms.Platform) -> None:
    config = PigeonConfig(pigeon=PigeonSection(lofts=["rooftop"]))
    assert platforms.live(config) == [platforms.CONSOLE]
    assert config_warnings(config) == [
        "[pigeon] has settings (lofts) but no `enabled = true`: Pigeon stays off until you add that line."
    ]


def test_with_no_platform_switched_on_the_co_op_talks_in_the_console() -> None:
    assert platforms.rooms(Config(), coordinators=True) == [Address("console", "coordinators", private=False)]


def test_an_announcement_is_cut_to_the_platforms_own_length(pigeon: platforms.Platform) -> None:
    text = "Bring your lights tonight. " * 30
    announcement = Announcement(id=3, text=text, urgent=False, created_at=datetime(2026, 12, 4, tzinfo=UTC))
    messages = announce.compose("en", announcement, "Inès", "pigeon")
    assert len(messages) > 1
    assert all(len(message) <= 160 for message in messages)


def test_notify_takes_a_platforms_own_words(pigeon: platforms.Platform) -> None:
    assert notify_choice("loft") == "pigeon"
    assert notify_choice("Element") == "matrix"
    assert notify_choice("les deux") == platforms.EVERY
    with pytest.raises(UsageError):
        notify_choice("carrier")


def test_member_add_checks_an_account_as_its_platform_writes_it(pigeon: platforms.Platform) -> None:
    args = build_parser().parse_args(["member", "add", "--name", "Zoé", "--pigeon", "ring-7"])
    assert args.pigeon == "ring-7"
    assert pigeon.account_problem("ring-7") is None
    assert pigeon.account_problem("Coco") == "a pigeon is known by its ring, like ring-42"


PLATFORM_WORD = re.compile(r"telegram|matrix|console", re.IGNORECASE)


def platform_words_in_code(path: Path) -> list[str]:
    """Names and strings that name a platform, outside docstrings and comments."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            word = node.value
        elif isinstance(node, ast.Name | ast.alias | ast.Attribute):
            word = node.id if isinstance(node, ast.Name) else node.name if isinstance(node, ast.alias) else node.attr
        else:
            continue
        if PLATFORM_WORD.search(word):
            found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}: {word}")
    return found


def test_the_co_ops_rules_and_commands_never_name_a_platform() -> None:
    files = sorted([*(ROOT / "coopbot" / "services").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")])
    assert [found for path in files for found in platform_words_in_code(path)] == []
