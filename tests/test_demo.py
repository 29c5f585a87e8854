"""`coopbot demo` runs start to finish on a throw-away database, the same on every run, in
English or entirely in French."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from coopbot.demo import run_demo
from coopbot.i18n import entries


def test_demo_exits_zero_and_tells_the_story(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coopbot.cli", "demo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Welcome to Coop Vélo Paris" in done.stdout
    assert list(tmp_path.iterdir()) == [], "the demo left files behind"


async def transcript(lang: str) -> bytes:
    out = io.StringIO()
    assert await run_demo(out, lang=lang) == 0
    return out.getvalue().encode()


async def test_every_run_prints_the_same_transcript() -> None:
    first = await transcript("en")
    assert first == await transcript("en")
    assert "Welcome to Coop Vélo Paris".encode() in first


async def test_the_french_demo_has_no_english_in_its_narration() -> None:
    french = (await transcript("fr")).decode()
    narration = [text for key, text in entries("en").items()
                 if key.startswith("demo.") and key != "demo.when" and isinstance(text, str)]
    assert narration, "the demo's English catalogue"
    assert [line for line in narration if line in french] == []
    for english in ("a small courier co-op", "Getting around", "One member, one vote", "Monday", "November",
                    "Welcome to"):
        assert english not in french
    assert "Démo de coopbot" in french and "Premiers pas" in french and "lundi 2 novembre, 09:20" in french
