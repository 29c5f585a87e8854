"""The README's two commands are the ones CI runs and the ones that work."""

from __future__ import annotations

import re
from pathlib import Path

from handlers.registry import Commands

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_starts_with_the_two_commands() -> None:
    run, test = readme_commands()[:2]
    assert run.endswith("pip install -e . && coopbot demo")
    assert test.endswith('pip install -e ".[test]" && pytest')


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith(readme_commands()[1] + " ||") for line in ci)


def test_every_command_is_documented(declared_commands: Commands) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in declared_commands.names() if f"/{name}" not in readme]
    assert missing == []
