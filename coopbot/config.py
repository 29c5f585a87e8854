"""The co-op's configuration: `config.toml`, validated, with embedded defaults.

Every key has a default so that `coopbot demo` and `coopbot chat` run with no
file at all. Secrets never live in the file: it names the environment
variables that hold them. Validation errors name the bad key and say why, so
the member installing the bot can fix it without reading code.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coopbot.errors import ConfigError, CoopError

LANGUAGES = ("en", "fr")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CoopSection(Section):
    name: str = "Coop Vélo"
    timezone: str = "Europe/Paris"
    currency: str = "EUR"
    default_language: Literal["en", "fr"] = "en"
    #: Environment variable holding the key that keeps secret ballots apart
    #: from voters; without it, a key file in coopbot's state folder (never the database's).
    secret_env: str = "COOPBOT_SECRET"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use a name like 'Europe/Paris'") from exc
        return value

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("use a three-letter ISO code such as 'EUR'")
        return value.upper()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DatabaseSection(Section):
    url: str = "sqlite:///coopbot.sqlite3"

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("use a sqlite:/// or postgresql+psycopg:// URL")
        return value


class PlatformSection(Section):
    """A chat platform's settings (see `coopbot.platforms`): switched on or not, and its rooms."""

    enabled: bool = False

    def room_ids(self, coordinators: bool) -> list[str]:
        """The co-op's rooms on this platform, or the rooms whose members see coordinator notices."""
        raise NotImplementedError

    def check_secrets(self) -> None:
        """Raise ConfigError when a secret the platform cannot start without is missing."""


class TelegramSection(PlatformSection):
    token_env: str = "COOPBOT_TELEGRAM_TOKEN"
    api_base_url: str = "https://api.telegram.org/bot"
    mode: Literal["polling", "webhook"] = "polling"
    group_chat_ids: list[int] = Field(default_factory=list)
    #: Chats whose members see coordinator notices (one line per job change).
    coordinator_chat_ids: list[int] = Field(default_factory=list)
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_url: str = ""
    webhook_secret_env: str = "COOPBOT_TELEGRAM_WEBHOOK_SECRET"
    per_second: float = 30.0
    private_chat_interval: float = 1.0
    group_per_minute: int = 20

    def token(self) -> str:
        return _secret(self.token_env, "telegram.token_env")

    def check_secrets(self) -> None:
        self.token()

    def room_ids(self, coordinators: bool) -> list[str]:
        return [str(chat) for chat in (self.coordinator_chat_ids if coordinators else self.group_chat_ids)]


class MatrixSection(PlatformSection):
    homeserver: str = "http://127.0.0.1:8008"
    user_id: str = "@coopbot:localhost"
    password_env: str = "COOPBOT_MATRIX_PASSWORD"
    access_token_env: str = "COOPBOT_MATRIX_TOKEN"
    store_path: str = "matrix-store"
    device_name: str = "coopbot"
    rooms: list[str] = Field(default_factory=list)
    coordinator_rooms: list[str] = Field(default_factory=list)
    encryption: bool = True

    def room_ids(self, coordinators: bool) -> list[str]:
        return list(self.coordinator_rooms if coordinators else self.rooms)

    @field_validator("user_id")
    @classmethod
    def _mxid(cls, value: str) -> str:
        if not value.startswith("@") or ":" not in value:
            raise ValueError("a Matrix user id looks like '@coopbot:example.org'")
        return value


class DispatchSection(Section):
    policy: Literal["broadcast", "rotation"] = "broadcast"
    #: Seconds a rotation offer stays with one worker before moving on.
    offer_timeout: int = Field(default=120, ge=10, le=86400)
    #: Minutes without activity before an available worker is asked "still available?".
    idle_minutes: int = Field(default=90, ge=5)
    #: Minutes to answer that question before being set away.
    idle_answer_minutes: int = Field(default=15, ge=1)
    points_per_delivery: float = Field(default=1.0, ge=0)


class PeriodsSection(Section):
    #: "weekly", "monthly", or a five-field cron expression for the period end.
    schedule: str = "monthly"
    max_shift_hours: float = Field(default=12, gt=0, le=24)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if value in ("weekly", "monthly"):
            return value
        fields = value.split()
        if len(fields) != 5:
            raise ValueError("use 'weekly', 'monthly' or a cron expression like '0 0 1 * *'")
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"bad cron expression: {exc}") from exc
        return value


class SharesSection(Section):
    legal_reserve_pct: float = Field(default=15, ge=0, le=100)
    development_fund_pct: float = Field(default=25, ge=0, le=100)
    dividend_pct: float = Field(default=60, ge=0, le=100)
    equity_threshold: float = Field(default=0, ge=0)
    base_pay_per_hour: float = Field(default=0, ge=0)
    base_pay_per_delivery: float = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _buckets_add_up(self) -> SharesSection:
        total = self.legal_reserve_pct + self.development_fund_pct + self.dividend_pct
        if abs(total - 100) > 1e-9:
            raise ValueError(
                "legal_reserve_pct + development_fund_pct + dividend_pct must add up to 100 "
                f"(they add up to {total:g})"
            )
        return self


class PollsSection(Section):
    default_duration_hours: float = Field(default=72, gt=0)
    quorum_pct: float = Field(default=50, ge=0, le=100)
    threshold_pct: float = Field(default=50, ge=0, le=100)
    #: One `block` vote stops a proposal.
    block_vetoes: bool = True
    #: Hours before the close when members who have not voted are reminded.
    reminder_hours: float = Field(default=24, ge=0)
    #: Governed settings that only a coordinator or admin may propose to change.
    restricted_settings: list[str] = Field(default_factory=lambda: ["remove_member"])


class CollegesSection(Section):
    """A multi-stakeholder co-op (a SCIC) votes by colleges, each weighted as its statutes say.

    Empty (the default): one member, one vote, as ever. French SCIC law has each
    college weigh between 10% and 50% of the votes, together 100%
    (loi 47-1775 art. 19 septies and following); `coopbot.services.polls.colleges` counts them.
    """

    #: College name → its weight in percent, like `workers = 50`.
    weights: dict[str, float] = Field(default_factory=dict)
    #: The college of a member nobody placed in one yet.
    default: str = ""
    #: The college customers vote in, if the co-op admits them as members of one ("" : they do not vote).
    customers: str = ""

    @model_validator(mode="after")
    def _weights_are_statutory(self) -> CollegesSection:
        if not self.weights:
            if self.default or self.customers:
                raise ValueError("default and customers name colleges: list them with their weights first")
            return self
        total = sum(self.weights.values())
        if abs(total - 100) > 1e-9:
            raise ValueError(f"the colleges' weights must add up to 100 (they add up to {total:g})")
        outside = sorted(name for name, weight in self.weights.items() if not 10 <= weight <= 50)
        if outside:
            raise ValueError(f"each college weighs between 10 and 50 (SCIC law); not {', '.join(outside)}")
        for key, name in (("default", self.default), ("customers", self.customers)):
            if name and name not in self.weights:
                raise ValueError(f"{key} = {name!r} is not one of the colleges ({', '.join(self.weights)})")
        if not self.default:
            raise ValueError("name the college of members not yet placed in one: default = \"workers\"")
        return self


class PricesSection(Section):
    """The price rule before any vote (`price.*` settings; see `services/dispatch/prices.py`).

    Zones are listed from the centre out, each a name and its postcodes or district
    names: `zones = "A: 75001, 75002, Le Marais; B: 75011, Belleville"`. The table, when
    given, prices a pair of zones outright: `table = "A-C 5.50"`.
    """

    base: float = Field(default=4.0, ge=0)
    zones: str = ""
    crossing: float = Field(default=2.5, ge=0)
    table: str = ""
    urgent: float = Field(default=0, ge=0)
    urgent_minutes: int = Field(default=45, ge=1, le=1440)
    evening: float = Field(default=0, ge=0)
    evening_hours: str = "19:00-23:00"
    night: float = Field(default=0, ge=0)
    night_hours: str = "23:00-06:00"
    heavy: float = Field(default=0, ge=0)
    heavy_words: str = "cargo, heavy, lourd, encombrant"

    @model_validator(mode="after")
    def _readable(self) -> PricesSection:
        """A rule that cannot be read is refused at start, not at the first order."""
        from coopbot.services.dispatch import prices

        for reader, value in (
            (prices.read_zones, self.zones), (prices.read_window, self.evening_hours),
            (prices.read_window, self.night_hours),
        ):  # fmt: skip
            try:
                reader(value)
            except CoopError as exc:
                raise ValueError(f"{exc.key}: {exc.params}") from None
        return self


class OrdersSection(Section):
    """Customers' orders: how long a quote holds, what proves a delivery, what a customer sees."""

    quote_valid_minutes: int = Field(default=15, ge=1, le=1440)
    proof: Literal["none", "photo", "code", "photo_or_code"] = "code"
    proof_retention_days: int = Field(default=30, ge=1)
    #: Where proof-of-delivery photos are kept (relative to the working directory, like
    #: `[matrix] store_path`): files on disk, never rows in the database.
    photo_folder: str = "proof-photos"
    #: How a customer sees their courier: "first_name" or "none" (just "a courier").
    courier_name: Literal["first_name", "none"] = "first_name"


class WebSection(Section):
    """The web door (`coopbot/web/`): one web server inside `coopbot run`, off unless switched on.

    It listens on the local interface by default: a reverse proxy in front holds
    the host name and TLS (README, "The web door").
    """

    enabled: bool = False
    listen: str = "127.0.0.1"
    #: 0 lets the system pick a free port (the log says which).
    port: int = Field(default=8080, ge=0, le=65535)
    #: The address the world reaches it at, through the proxy (for links the bot writes).
    public_url: str = ""
    #: Larger request bodies are refused with 413 before anything reads them.
    max_body_kib: int = Field(default=64, ge=1, le=10240)
    #: Orders API requests a minute for each shop's key; more get 429 with Retry-After.
    api_rate_per_minute: int = Field(default=60, ge=1, le=100_000)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not a web address: write the full http(s) address people reach the "
                "web door at, like 'https://coop.example.org'"
            )
        return value.rstrip("/")


class LoggingSection(Section):
    """What `coopbot run` logs, and how: one line per event, plain or JSON (`coopbot.ops.logs`)."""

    #: "text" for a person reading a terminal; "json" (one object a line) for a log collector.
    format: Literal["text", "json"] = "text"
    #: Empty: warnings and errors, or everything the bot does with `-v`.
    level: Literal["", "debug", "info", "warning", "error"] = ""


class MetricsSection(Section):
    """`/metrics` on a port of its own, for a bot whose web door is off (with it on, the web door serves it)."""

    enabled: bool = False
    listen: str = "127.0.0.1"
    #: 0 lets the system pick a free port (the log says which).
    port: int = Field(default=9464, ge=0, le=65535)


class LeadershipSection(Section):
    """Several `coopbot run` on one PostgreSQL: how fast a follower notices the leader is gone.

    A follower tries the lock every `retry_seconds`; the leader checks its lock
    connections every `check_seconds` and steps down when one fails. Takeover after a
    leader dies takes about `retry_seconds` plus the transports' start.
    """

    check_seconds: float = Field(default=1.0, ge=0.1, le=30)
    retry_seconds: float = Field(default=1.0, ge=0.1, le=30)


class AccountingSection(Section):
    """The chart of accounts the FEC (`coopbot export fec`) writes to: French PCG numbers by default.

    A co-op's accountant may use other numbers (sub-accounts like 7061, another
    purchases account); they change them here rather than in every year's file.
    """

    sales: str = "706"
    customers: str = "411"
    bank: str = "512"
    #: 628 "Divers": a catch-all the accountant reclassifies (the ledger does not say what was bought).
    purchases: str = "628"
    suppliers: str = "401"
    wages: str = "641"
    staff: str = "421"
    result: str = "120"
    legal_reserve: str = "1061"
    other_reserves: str = "1068"
    #: 457 "Associés - dividendes à payer": owed to each member, one auxiliary account each.
    dividends: str = "457"
    sales_journal: str = "VE"
    purchases_journal: str = "AC"
    misc_journal: str = "OD"
    bank_journal: str = "BQ"

    @field_validator("sales", "customers", "bank", "purchases", "suppliers", "wages", "staff", "result",
                     "legal_reserve", "other_reserves", "dividends")  # fmt: skip
    @classmethod
    def _account_number(cls, value: str) -> str:
        if not value.isdigit() or not 3 <= len(value) <= 20:
            raise ValueError(f"{value!r} is not an account number: write digits only, like '706'")
        return value

    @field_validator("sales_journal", "purchases_journal", "misc_journal", "bank_journal")
    @classmethod
    def _journal_code(cls, value: str) -> str:
        if not value.isalnum() or not 1 <= len(value) <= 10:
            raise ValueError(f"{value!r} is not a journal code: write letters or digits, like 'VE'")
        return value


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coop: CoopSection = Field(default_factory=CoopSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    telegram: TelegramSection = Field(default_factory=TelegramSection)
    matrix: MatrixSection = Field(default_factory=MatrixSection)
    dispatch: DispatchSection = Field(default_factory=DispatchSection)
    periods: PeriodsSection = Field(default_factory=PeriodsSection)
    shares: SharesSection = Field(default_factory=SharesSection)
    polls: PollsSection = Field(default_factory=PollsSection)
    colleges: CollegesSection = Field(default_factory=CollegesSection)
    prices: PricesSection = Field(default_factory=PricesSection)
    orders: OrdersSection = Field(default_factory=OrdersSection)
    web: WebSection = Field(default_factory=WebSection)
    accounting: AccountingSection = Field(default_factory=AccountingSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    leadership: LeadershipSection = Field(default_factory=LeadershipSection)
    #: Points per unit of each contribution kind (per hour, or per item).
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "delivery": 1.0,
            "shift": 1.0,
            "admin": 1.0,
            "training": 1.0,
            "meeting": 1.0,
            "repair": 1.0,
        }
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, weight in value.items():
            if not kind.isidentifier() or not kind.islower():
                raise ValueError(f"kind {kind!r}: use a lowercase word such as 'admin'")
            if weight < 0:
                raise ValueError(f"kind {kind!r}: a weight cannot be negative")
        return value


def config_warnings(config: Config) -> list[str]:
    """Settings the bot would ignore without a word: a transport filled in but not switched on.

    A section with settings and no `enabled` key is almost always a forgotten
    line; `enabled = false` written out is a choice, and is not warned about.
    """
    found = []
    for key in type(config).model_fields:
        section = getattr(config, key)
        given = section.model_fields_set if isinstance(section, PlatformSection) else set()
        if given and "enabled" not in given:
            found.append(
                f"[{key}] has settings ({', '.join(sorted(given))}) but no `enabled = true`: "
                f"{key.capitalize()} stays off until you add that line."
            )
    return found


def _secret(env_name: str, key: str) -> str:
    value = os.environ.get(env_name, "")
    if not value:
        raise ConfigError(f"{key}: the environment variable {env_name} is empty or not set")
    return value


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the dotted key."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(file)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against config.example.toml)"
        lines.append(f"{key}: {message}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


def load_config(path: str | Path | None = None) -> Config:
    """Read `path`, else `config.toml` if present, else the embedded defaults."""
    candidate = Path(path) if path is not None else Path("config.toml")
    if not candidate.exists():
        if path is not None:
            raise ConfigError(f"{candidate}: no such file")
        return Config()
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{candidate}: not valid TOML ({exc})") from exc
    return parse_config(data)
