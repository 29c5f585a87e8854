"""How light is the bot to start: idle memory of `coopbot run`, and `coopbot --help` wall time.

(a) Idle RSS. On a throw-away config (SQLite in a temporary folder, neither
    Telegram nor Matrix, so `coopbot run` talks in the terminal as the first
    admin), one admin is added, then `coopbot run` is started with its
    standard input a pipe kept open. Once it printed "Talking to ..." (the
    database is upgraded, the scheduler ran its first sweep, the outbox loop
    is waiting) and has sat `--settle` seconds, VmRSS and VmHWM are read from
    /proc/PID/status; closing its input stops it. Target: under 70 MiB.
    Baseline: a bare `python -c "import sqlalchemy, telegram, nio"`, the
    libraries the bot cannot run without, in the same interpreter; and a
    bare `python -c pass`.
(b) `coopbot --help` and an argument error (`coopbot no-such-command`): the
    median wall time of `--runs` runs each, against `python -c pass` (the
    interpreter's own start). Target: well under a second.

Left out: a running Telegram or Matrix client (their HTTP sessions, nio's
encryption store and sync state), a large co-op's rows in memory, PostgreSQL's
driver, and memory after the first chart is drawn (matplotlib, numpy and
Pillow load then, on the first period close, and stay: about 45-55 MiB more).
Numbers depend on the machine; not a test.

    python bench/startup.py [--runs 5] [--settle 1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "Talking to "
MIB = 1024


def coopbot_command() -> list[str]:
    """`coopbot` as an operator types it: the installed script beside this Python, else the module."""
    script = Path(sys.executable).with_name("coopbot")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from coopbot.cli import main; sys.exit(main())"]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def python_rss(code: str) -> int:
    """VmRSS (KiB) of a fresh interpreter after running `code`."""
    probe = (
        f"{code}\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'): print(line.split()[1])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def idle_run(settle: float) -> tuple[int, int, float]:
    """(VmRSS KiB, VmHWM KiB, seconds to ready) of `coopbot run` on the console."""
    with tempfile.TemporaryDirectory(prefix="coopbot-startup-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(f'[coop]\nname = "Bench Coop"\n[database]\nurl = "sqlite:///{Path(tmp) / "c.sqlite3"}"\n')
        base = [*coopbot_command(), "--config", str(config)]
        env = {**os.environ, "XDG_STATE_HOME": tmp}
        subprocess.run([*base, "member", "add", "--name", "Alice", "--role", "admin"], env=env, cwd=tmp,
                       check=True, capture_output=True)
        started = time.perf_counter()
        bot = subprocess.Popen([*base, "run"], env=env, cwd=tmp, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert bot.stdin is not None and bot.stdout is not None
        try:
            for line in bot.stdout:
                if line.startswith(READY):
                    break
            else:
                said = bot.stderr.read() if bot.stderr else ""
                raise RuntimeError(f"`coopbot run` stopped before it was ready: {said}")
            ready = time.perf_counter() - started
            time.sleep(settle)
            rss, peak = status_kib(bot.pid, "VmRSS"), status_kib(bot.pid, "VmHWM")
        finally:
            bot.stdin.close()  # end of input: the chat loop stops the bot
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
    return rss, peak, ready


def wall(command: list[str], runs: int) -> float:
    """Median wall time of `command`, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each timed command (the median is shown)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds the bot idles before RSS is read")
    args = parser.parse_args()

    rss, peak, ready = idle_run(args.settle)
    libraries = python_rss("import sqlalchemy, telegram, nio")
    bare = python_rss("pass")
    print(f"coopbot run (console), idle:   VmRSS {rss / MIB:6.1f} MiB  (peak {peak / MIB:.1f} MiB, "
          f"ready in {ready:.2f} s)   target < 70 MiB")
    print(f"python + sqlalchemy, telegram, nio: {libraries / MIB:6.1f} MiB")
    print(f"bare python:                   VmRSS {bare / MIB:6.1f} MiB")

    command = coopbot_command()
    print(f"coopbot --help:                {wall([*command, '--help'], args.runs):6.3f} s   target well under 1 s")
    print(f"coopbot no-such-command:       {wall([*command, 'no-such-command'], args.runs):6.3f} s")
    print(f"python -c pass:                {wall([sys.executable, '-c', 'pass'], args.runs):6.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
