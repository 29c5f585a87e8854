"""`coopbot run` in processes of their own, for tests that kill them as an operator's
`kill -9` or a power cut would, and read what they print line by line.

Each line a process prints is timestamped as it arrives and wakes whoever waits
for it: tests wait on lines ("now leads"), never sleep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEADS = "now leads"
RUNNING = "coopbot is running on"
LOST = "stopped leading"


class BotProcess:
    """One `coopbot run`, its output read by a thread of its own."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coopbot.cli", "--config", str(config), "run", *args],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def output(self) -> str:
        with self.changed:
            return "\n".join(line for _, line in self.lines)

    def count(self, text: str) -> int:
        with self.changed:
            return sum(1 for _, line in self.lines if text in line)

    def wait_line(self, text: str, *, nth: int = 1, timeout: float = 60.0) -> float:
        """When the `nth` line containing `text` arrived (monotonic seconds)."""

        def found() -> float | None:
            times = [at for at, line in self.lines if text in line]
            return times[nth - 1] if len(times) >= nth else None

        with self.changed:
            if not self.changed.wait_for(lambda: found() is not None or self.process.poll() is not None,
                                         timeout=timeout):
                raise AssertionError(f"no {text!r} line within {timeout} s:\n{self.output()}")
            at = found()
        if at is None:
            raise AssertionError(f"the process ended (status {self.process.returncode}) before {text!r}:\n"
                                 f"{self.output()}")
        return at

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def leads_since(self) -> int:
        """How many times this process has taken the lead."""
        return self.count(LEADS)


def pid_in(text: str) -> int | None:
    found = re.search(r"pid (\d+)", text)
    return int(found.group(1)) if found else None
