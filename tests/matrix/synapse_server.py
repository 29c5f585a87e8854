"""A real Synapse homeserver on 127.0.0.1 for the Matrix tests and benchmark.

The Matrix transport is only worth testing against the server co-ops actually
run: encryption, invites, sync tokens and rate limits all come from Synapse's
own behaviour, not from our idea of it. So we generate a stock config, make it
fit a test (one loopback listener, SQLite, no federation, no presence, rate
limits raised), start the real process, and register accounts through the
shared-secret admin API, exactly as an operator's script would.

Start-up costs a few seconds, so callers start one server and share it.
Who uses it (members' clients and the co-op's bot) is in `members.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

SERVER_NAME = "localhost"
START_TIMEOUT = 60.0
_counter = itertools.count(1)
GENEROUS = {"per_second": 10000, "burst_count": 10000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": GENEROUS,
    "rc_registration": GENEROUS,
    "rc_registration_token_validity": GENEROUS,
    "rc_login": {"address": GENEROUS, "account": GENEROUS, "failed_attempts": GENEROUS},
    "rc_admin_redaction": GENEROUS,
    "rc_joins": {"local": GENEROUS, "remote": GENEROUS},
    "rc_joins_per_room": GENEROUS,
    "rc_key_requests": GENEROUS,
    "rc_3pid_validation": GENEROUS,
    "rc_invites": {"per_room": GENEROUS, "per_user": GENEROUS, "per_issuer": GENEROUS},
    "rc_third_party_invite": GENEROUS,
    "rc_media_create": GENEROUS,
    "rc_presence": {"per_user": GENEROUS},
    "rc_delayed_event_mgmt": GENEROUS,
    "rc_room_creation": GENEROUS,
    "rc_reports": GENEROUS,
    "rc_profile": GENEROUS,
    "rc_user_directory": GENEROUS,
}


class SynapseError(RuntimeError):
    """Synapse could not be configured, started or asked something."""


@dataclass(frozen=True)
class Account:
    user_id: str
    password: str
    access_token: str
    device_id: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(name: str) -> str:
    """A fresh account name: tests share one server and never reuse accounts."""
    return f"{name}{next(_counter)}-{secrets.token_hex(3)}"


def synapse_available() -> str | None:
    """None when Synapse can run here, else the reason it cannot."""
    try:
        import synapse.app.homeserver  # noqa: F401
    except Exception as exc:  # an ImportError or a broken native dependency
        return f"matrix-synapse cannot be imported ({exc}); install it with pip install matrix-synapse"
    return None


class SynapseServer:
    """One Synapse process in `directory`; `start()` then `stop()`."""

    def __init__(self, directory: Path, *, python: str = sys.executable) -> None:
        self.directory = Path(directory)
        self.python = python
        self.port = 0
        self.shared_secret = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None
        self._admin: Account | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    # --- configuration --------------------------------------------------------

    def configure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        generated = subprocess.run(
            [
                self.python,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                SERVER_NAME,
                "--config-path",
                str(self.config_path),
                "--data-directory",
                str(self.directory),
                "--generate-config",
                "--report-stats=no",
            ],
            cwd=self.directory,
            capture_output=True,
            text=True,
            check=False,
        )
        if generated.returncode != 0:
            raise SynapseError(f"synapse --generate-config failed: {generated.stderr.strip()[-2000:]}")
        config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        config.update(self._overrides())
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        log_config = Path(config["log_config"])
        logging_yaml = yaml.safe_load(log_config.read_text(encoding="utf-8"))
        logging_yaml["root"]["level"] = "WARNING"
        logging_yaml.setdefault("loggers", {})["synapse.storage.SQL"] = {"level": "WARNING"}
        log_config.write_text(yaml.safe_dump(logging_yaml), encoding="utf-8")

    def _overrides(self) -> dict[str, Any]:
        return {
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.directory / "homeserver.db")}},
            "public_baseurl": f"{self.base_url}/",
            "registration_shared_secret": self.shared_secret,
            "enable_registration": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            "report_stats": False,
            "enable_metrics": False,
            "url_preview_enabled": False,
            "bcrypt_rounds": 4,
            "user_directory": {"enabled": True, "search_all_users": True},
            **RATE_LIMITS,
        }

    # --- process ----------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if not self.config_path.exists():
            self.configure()
        output = (self.directory / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            [self.python, "-m", "synapse.app.homeserver", "--config-path", str(self.config_path)],
            cwd=self.directory,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SYNAPSE_CACHE_FACTOR": "0.5"},
        )
        output.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SynapseError(f"synapse exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/_matrix/client/versions", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise SynapseError(f"synapse did not answer within {timeout:.0f}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        parts = []
        for name in ("stdout.log", "homeserver.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace")[-chars:])
        return "\n".join(parts)

    # --- HTTP helpers -------------------------------------------------------------

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, token: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise SynapseError(f"{method} {path} → {exc.code}: {detail}") from exc
        return json.loads(raw) if raw else {}

    def register(self, username: str, password: str | None = None, *, admin: bool = False) -> Account:
        """Create an account with the shared-secret admin API, as `register_new_matrix_user` does."""
        password = password or secrets.token_urlsafe(12)
        nonce = self.request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        for part in (nonce, username, password):
            mac.update(part.encode())
            mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        answer = self.request(
            "POST",
            "/_synapse/admin/v1/register",
            {"nonce": nonce, "username": username, "password": password, "admin": admin, "mac": mac.hexdigest()},
        )
        return Account(answer["user_id"], password, answer["access_token"], answer["device_id"])

    def admin(self) -> Account:
        if self._admin is None:
            self._admin = self.register(f"admin-{secrets.token_hex(4)}", admin=True)
        return self._admin

    def override_ratelimit(self, user_id: str, per_second: int, burst_count: int) -> None:
        """Give one account a message rate limit (the rest of the server keeps raised limits)."""
        self.request(
            "POST",
            f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit",
            {"messages_per_second": per_second, "burst_count": burst_count},
            token=self.admin().access_token,
        )

    def clear_ratelimit(self, user_id: str) -> None:
        self.request(
            "DELETE",
            f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit",
            token=self.admin().access_token,
        )


def main() -> None:
    """Run a throw-away server by hand: `python tests/matrix/synapse_server.py /tmp/hs`."""
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "synapse-test")
    server = SynapseServer(directory)
    server.start()
    print(f"Synapse on {server.base_url}; shared secret {server.shared_secret}; Ctrl-C stops it")
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
