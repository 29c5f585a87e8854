"""`coopbot demo` runs start to finish on a throw-away database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_exits_zero_and_tells_the_story(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coopbot.cli", "demo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Welcome to Coop Vélo Paris" in done.stdout
    assert list(tmp_path.iterdir()) == [], "the demo left files behind"
