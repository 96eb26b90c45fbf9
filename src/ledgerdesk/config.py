"""Settings built once from ``LEDGERDESK_*`` environment variables (pydantic-settings).

Every setting is declared once, with its default and its bounds; every value is
checked here, at start-up, so that a typo in a deployment fails with one clear line
instead of surfacing as odd behaviour under load.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from contextvars import ContextVar
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ledgerdesk.service_levels import DEFAULT_HOURS, DEFAULT_TARGETS, Schedule, ServiceLevels

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_DATA_DIR = "./ledgerdesk-data"
SQLITE_FILE_NAME = "ledgerdesk.sqlite3"

_SUPPORTED_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


class ConfigError(ValueError):
    """A setting is missing or impossible; the message names the variable."""


def _refuse(message: str) -> Any:
    """A setting's refusal, said when its value breaks its bounds: where it is declared."""
    return {"refuse": message}


AT_LEAST_ONE = _refuse("must be at least 1")
SECONDS = _refuse("must be more than 0 and at most 3600 seconds")
Seconds = Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False, json_schema_extra=SECONDS)]
AtLeastOne = Annotated[int, Field(ge=1, json_schema_extra=AT_LEAST_ONE)]


class Settings(BaseSettings):
    """Every setting, once: its type, default and bounds, each read from
    ``LEDGERDESK_<NAME>`` (``Settings.from_env``), or given directly (tests, tools)."""

    model_config = SettingsConfigDict(
        env_prefix="LEDGERDESK_",
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
        arbitrary_types_allowed=True,
    )

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    # Default: an SQLite file in data_dir.
    database_url: str = ""
    timezone: ZoneInfo = ZoneInfo("UTC")
    max_attachment_bytes: AtLeastOne = 10 * 1024 * 1024
    max_body_bytes: Annotated[
        int, Field(ge=1024, json_schema_extra=_refuse("must be at least 1024"))
    ] = 150 * 1024 * 1024
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    rate_limit: AtLeastOne = 600
    # Requests a minute of one customer across all their keys (0: twice rate_limit), and
    # how many usable keys a customer may hold: many keys do not multiply a customer's rate.
    customer_rate_limit: Annotated[
        int, Field(ge=0, json_schema_extra=_refuse("must be 0 (twice the key's) or more"))
    ] = 0
    max_keys_per_customer: AtLeastOne = 20
    # The limits count per window of this many seconds (a minute, as SPEC says).
    rate_limit_window: Annotated[
        int, Field(ge=1, le=86400, json_schema_extra=_refuse("must be 1 to 86400 seconds"))
    ] = 60
    auth_failure_limit: AtLeastOne = 10
    redis_url: str | None = None
    db_pool_size: AtLeastOne = 10
    # How long one statement may run (PostgreSQL's statement_timeout; asyncpg's reads also
    # time out on the client) and how long a request waits for the database at all; how
    # long opening a connection may take. A database that hangs then costs a request a
    # clean 503, not a request that never ends.
    db_timeout: Seconds = 30.0
    db_connect_timeout: Seconds = 5.0
    # Request-body bytes held in memory at once (JSON and form bodies count twice: raw
    # and parsed). 256 MiB leaves room for a few workers on a 2 GiB server.
    body_memory_bytes: Annotated[
        int, Field(ge=1024 * 1024, json_schema_extra=_refuse("must be at least 1048576"))
    ] = 256 * 1024 * 1024
    # Slow clients: the request line and headers must arrive within header_timeout;
    # the body may pause at most body_timeout between two pieces; an idle keep-alive
    # connection is closed after keepalive_timeout; at most max_connections at once.
    header_timeout: Seconds = 10.0
    body_timeout: Seconds = 30.0
    keepalive_timeout: Seconds = 5.0
    max_connections: AtLeastOne = 1000
    # A body must arrive within body_deadline seconds in all and, after its first
    # body_timeout seconds, at an average of body_min_rate bytes a second (a client
    # dribbling a byte every few seconds is cut off, a slow but honest upload is not).
    body_deadline: Seconds = 600.0
    body_min_rate: Annotated[
        int, Field(ge=0, json_schema_extra=_refuse("must be 0 (no minimum) or more"))
    ] = 16384
    # An answer the client stops reading is dropped after send_timeout seconds.
    send_timeout: Seconds = 30.0
    # Told to stop (SIGTERM), a server says it is not ready (/readyz) and goes on serving
    # for shutdown_drain seconds, so that a load balancer stops sending it requests;
    # then it stops accepting and gives what is in flight shutdown_timeout seconds.
    shutdown_drain: Annotated[
        float,
        Field(ge=0, le=3600, allow_inf_nan=False, json_schema_extra=_refuse("must be 0-3600")),
    ] = 0.0
    shutdown_timeout: Seconds = 30.0
    # Logs as plain lines ("text") or one JSON object a line ("json"); with access_log,
    # a line a request (id, method, path, action, user, status, error code, duration).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    # /metrics (Prometheus) answers these client addresses only; or, with metrics_listen
    # (host:port), it is served there alone and not on the API's port.
    metrics_allow: Annotated[tuple[IPNetwork, ...], NoDecode] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    metrics_listen: str | None = None
    # Open connections from one client address (an IPv6 /64 counts as one); trusted
    # proxies are not counted (they carry everyone's connections).
    max_connections_per_address: AtLeastOne = 100
    # "i3d": answer as the original service's clients expect (every envelope with HTTP
    # 200; getTicketAttachment answers the envelope unless "encoding": "raw").
    compat: Literal["", "i3d"] = ""
    # "local" (a directory under data_dir) or "database" (the blobs table); by default
    # the database when it is PostgreSQL, so that several servers can share it.
    attachment_store: Literal["local", "database"] = "local"
    # With the database store, the most bytes of downloaded attachments each server keeps
    # in a cache on its own disk (data_dir/blob-cache; the least recently used go first);
    # 0: no cache.
    blob_cache_bytes: Annotated[
        int, Field(ge=0, json_schema_extra=_refuse("must be 0 (no cache) or more"))
    ] = 1024 * 1024 * 1024
    # Web sign-in: failed attempts allowed per account in SIGNIN_WINDOW seconds (an
    # address gets four times as many, for offices behind one NAT).
    signin_failure_limit: AtLeastOne = 5
    # Where people reach this server, for the links the admin CLI prints.
    public_url: str = "http://127.0.0.1:8080"
    # ISO 4217: the seller's VAT accounting currency and new invoices' default until the
    # seller's details say otherwise; invoices from before invoices had currencies are in it.
    currency: str = "EUR"
    # Webhooks (see webhooks/): the delay before each attempt, in seconds (the first is
    # the first attempt's; each retry gets up to a tenth more, at random); how long a
    # receiver has to answer; how many attempts one process makes at once; how long the
    # delivery log keeps attempts and finished deliveries; after how many days of nothing
    # but failures an endpoint is disabled; how long a rotated-out secret still signs;
    # networks receivers may be in although they are not public (self-hosted receivers);
    # whether ``serve`` runs the relay (off when ``ledgerdesk worker`` runs it alone).
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = (
        0.0,
        5.0,
        300.0,
        1800.0,
        7200.0,
        18000.0,
        36000.0,
        36000.0,
    )
    webhook_timeout: Annotated[
        float,
        Field(
            gt=0,
            le=300,
            allow_inf_nan=False,
            json_schema_extra=_refuse("must be more than 0 and at most 300 seconds"),
        ),
    ] = 15.0
    webhook_concurrency: Annotated[
        int, Field(ge=1, le=1000, json_schema_extra=_refuse("must be 1 to 1000"))
    ] = 32
    webhook_log_days: Annotated[
        int, Field(ge=1, le=3650, json_schema_extra=_refuse("must be 1 to 3650 days"))
    ] = 30
    webhook_failing_days: Annotated[
        int, Field(ge=1, le=365, json_schema_extra=_refuse("must be 1 to 365 days"))
    ] = 5
    webhook_rotation_hours: Annotated[
        int, Field(ge=0, le=720, json_schema_extra=_refuse("must be 0 to 720 hours"))
    ] = 24
    webhook_allow_networks: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    webhook_relay: bool = True
    # Mail (see mail/): where notifications go out (smtp://user:password@host:587 with
    # STARTTLS, smtps://... with TLS from the start; none: no mail is sent), the support
    # address they come from and mail comes in to ("Hosting Support
    # <support@hosting.example>"), the bytes of files a notification carries at most (the
    # rest are named, with a link), what becomes of mail from unknown senders (refuse with
    # a reply, hold for staff, create the customer) and of mail naming a ticket it may
    # not join (a new ticket, or hold for staff); automatic mail to one address an hour.
    smtp_url: str | None = None
    mail_from: str | None = None
    mail_attach_bytes: Annotated[
        int, Field(ge=0, json_schema_extra=_refuse("must be 0 (never attach) or more"))
    ] = 10 * 1024 * 1024
    mail_strangers: Literal["refuse", "hold", "create"] = "refuse"
    mail_unproven: Literal["new", "hold"] = "new"
    mail_hourly_cap: AtLeastOne = 20
    mail_relay: bool = True
    # Where ``serve`` takes mail by LMTP (host:port), if anywhere; the IMAP mailbox it
    # fetches mail from (imaps://user:password@host[:port]/INBOX, or imap:// without
    # TLS, for a server on the same machine), if any.
    lmtp_listen: str | None = None
    imap_url: str | None = None
    # Service levels (tickets.sla): the working week in LEDGERDESK_TIMEZONE, holidays
    # (ISO dates), and per priority the first and next response targets in business
    # minutes ("off": none).
    business_hours: str = DEFAULT_HOURS
    holidays: str = ""
    sla: str = DEFAULT_TARGETS

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values given directly, else the environment ``from_env`` reads (none when
        constructed directly: a tool's or a test's settings are what it says)."""
        environ = _ENVIRON.get()
        if environ is None:
            return (init_settings,)
        return (init_settings, _MappingSource(settings_cls, environ))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``LEDGERDESK_*`` variables (of the process, by default)."""
        token = _ENVIRON.set(os.environ if environ is None else environ)
        try:
            return cls()
        finally:
            _ENVIRON.reset(token)

    @property
    def i3d_compatible(self) -> bool:
        """Whether answers follow the original service's habits (LEDGERDESK_COMPAT=i3d)."""
        return self.compat == "i3d"

    @property
    def customer_limit(self) -> int:
        """Requests a minute of one customer across all their keys."""
        return self.customer_rate_limit or 2 * self.rate_limit

    @property
    def lmtp_address(self) -> tuple[str, int] | None:
        """Where to listen for LMTP, if anywhere."""
        return _host_port(self.lmtp_listen)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where /metrics has a port of its own, if it has."""
        return _host_port(self.metrics_listen)

    @property
    def support_address(self) -> str | None:
        """The address mail comes in to and goes out from (of LEDGERDESK_MAIL_FROM)."""
        return None if self.mail_from is None else parseaddr(self.mail_from)[1]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced, checked like the original."""
        return type(self)(**{**dict(self), **changes})

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        """The database (an SQLite file in the data directory unless named) and where
        attachments go (the database when it is PostgreSQL) when not given."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not data.get("database_url"):
            data["database_url"] = sqlite_url(Path(data.get("data_dir") or DEFAULT_DATA_DIR))
        if not str(data.get("attachment_store") or "").strip():
            sqlite = str(data["database_url"]).startswith("sqlite")
            data["attachment_store"] = "local" if sqlite else "database"
        return data

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> str:
        return normalize_database_url(str(value))

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone(cls, value: Any) -> ZoneInfo:
        return value if isinstance(value, ZoneInfo) else _timezone(str(value).strip() or "UTC")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> tuple[IPNetwork, ...]:
        if isinstance(value, str):
            return parse_networks(value, "LEDGERDESK_TRUSTED_PROXIES")
        return tuple(value)

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _smtp_url(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        text_value = str(value).strip()
        try:
            url = make_url(text_value)
        except ArgumentError:
            url = None
        if url is None or url.drivername not in ("smtp", "smtps") or not url.host:
            raise ConfigError(
                "LEDGERDESK_SMTP_URL must be smtp://[user:password@]host[:port] (STARTTLS) "
                "or smtps://... (TLS)"
            )
        return text_value

    @field_validator("mail_from", mode="before")
    @classmethod
    def _mail_from(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        name, address = parseaddr(str(value))
        local, at, domain = address.partition("@")
        if not (local and at and "." in domain):
            raise ConfigError(
                "LEDGERDESK_MAIL_FROM must be an address, e.g. "
                f"Hosting Support <support@hosting.example>, not {value!r}"
            )
        return formataddr((name, address.lower()))

    @field_validator("imap_url", mode="before")
    @classmethod
    def _imap_url(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        try:
            url = make_url(str(value).strip())
        except ArgumentError:
            url = None
        if (
            url is None
            or url.drivername not in ("imap", "imaps")
            or not url.host
            or not (url.username and url.password)
        ):
            raise ConfigError(
                "LEDGERDESK_IMAP_URL must be imaps://user:password@host[:port]/MAILBOX "
                "(or imap://... without TLS)"
            )
        return str(value).strip()

    @field_validator("lmtp_listen", mode="before")
    @classmethod
    def _lmtp_listen(cls, value: Any) -> str | None:
        return parse_listen(value, "LEDGERDESK_LMTP_LISTEN", "127.0.0.1:2424")

    @field_validator("metrics_listen", mode="before")
    @classmethod
    def _metrics_listen(cls, value: Any) -> str | None:
        return parse_listen(value, "LEDGERDESK_METRICS_LISTEN", "127.0.0.1:9464")

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _metrics_allow(cls, value: Any) -> tuple[IPNetwork, ...]:
        if isinstance(value, str):
            return parse_networks(value, "LEDGERDESK_METRICS_ALLOW")
        return tuple(value)

    @field_validator("mail_strangers", "mail_unproven", mode="before")
    @classmethod
    def _lower_choice(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _webhook_networks(cls, value: Any) -> tuple[IPNetwork, ...]:
        if isinstance(value, str):
            return parse_networks(value, "LEDGERDESK_WEBHOOK_ALLOW_NETWORKS")
        return tuple(value)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _retry_schedule(cls, value: Any) -> tuple[float, ...]:
        return parse_schedule(value)

    @field_validator("compat", "attachment_store", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        code = str(value).strip().upper()
        if not (len(code) == 3 and code.isascii() and code.isalpha()):
            raise ConfigError(
                f"LEDGERDESK_CURRENCY must be an ISO 4217 code such as EUR, not {value!r}"
            )
        return code

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        if not str(value).removeprefix("async+").startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "LEDGERDESK_REDIS_URL must be redis://host:port/db, rediss://... or unix://..., "
                f"not {value!r}"
            )
        return str(value)

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: Any) -> str:
        if not str(value).startswith(("http://", "https://")):
            raise ConfigError(
                f"LEDGERDESK_PUBLIC_URL must start with http:// or https://, not {value!r}"
            )
        return str(value).rstrip("/")

    @model_validator(mode="after")
    def _together(self) -> Settings:
        if self.body_deadline < self.body_timeout:
            raise ConfigError("LEDGERDESK_BODY_DEADLINE must be at least LEDGERDESK_BODY_TIMEOUT")
        self.service_levels()  # nonsense in the hours, holidays or targets: refused now
        return self

    def service_levels(self) -> ServiceLevels | None:
        """The service levels these settings describe (None: LEDGERDESK_SLA=off)."""
        try:
            schedule = Schedule.parse(self.business_hours, self.holidays, self.timezone)
        except ValueError as exc:
            raise ConfigError(f"LEDGERDESK_BUSINESS_HOURS or LEDGERDESK_HOLIDAYS: {exc}") from None
        try:
            return ServiceLevels.parse(schedule, self.sla)
        except ValueError as exc:
            raise ConfigError(f"LEDGERDESK_SLA: {exc}") from None


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("ledgerdesk_environ", default=None)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self.environ.items()}


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem as one line naming the variable, in the setting's own words."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    name = str(error["loc"][0]) if error["loc"] else ""
    variable = f"LEDGERDESK_{name.upper()}"
    given = error.get("input")
    field = Settings.model_fields.get(name)
    extra = field.json_schema_extra if field is not None else None
    kind = error["type"]
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return ConfigError(f"{variable} must be a whole number, not {given!r}")
    if kind in ("float_parsing", "float_type", "finite_number"):
        return ConfigError(f"{variable} must be a number of seconds, not {given!r}")
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return ConfigError(f"{variable} must be one of {expected}, not {given!r}")
    if isinstance(extra, dict) and "refuse" in extra:
        return ConfigError(f"{variable} {extra['refuse']}")
    return ConfigError(f"{variable}: {error['msg']}")


def sqlite_url(data_dir: Path) -> str:
    return str(URL.create("sqlite+pysqlite", database=str(data_dir / SQLITE_FILE_NAME)))


def normalize_database_url(raw: str) -> str:
    """Check a database URL and pin the driver ledgerdesk ships with."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"LEDGERDESK_DATABASE_URL is not a database URL: {raw!r}") from None
    driver = _SUPPORTED_DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(
            "LEDGERDESK_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://..., "
            f"not {url.drivername!r}"
        )
    if driver.startswith("sqlite") and url.database in (None, "", ":memory:"):
        # Every pooled connection would get its own empty in-memory database.
        raise ConfigError("LEDGERDESK_DATABASE_URL must name an SQLite file, not memory")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def parse_listen(value: Any, what: str, example: str) -> str | None:
    """``host:port`` to listen on (an IPv6 host may be bracketed), or None when empty."""
    if value is None or not str(value).strip():
        return None
    host, colon, port = str(value).strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} must be host:port, e.g. {example}, not {value!r}")
    return f"{host.strip('[]')}:{port}"


def _host_port(listen: str | None) -> tuple[str, int] | None:
    if listen is None:
        return None
    host, _, port = listen.rpartition(":")
    return host, int(port)


def parse_networks(raw: str | list[str] | tuple[str, ...], what: str) -> tuple[IPNetwork, ...]:
    """Parse CIDRs (comma- or space-separated); a bare address is a one-address network."""
    parts = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw)
    networks = []
    for part in parts:
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{what}: {part!r} is not an IP address or CIDR range") from None
    return tuple(networks)


# A retry waits at most a week; at most 50 attempts.
MAX_RETRY_DELAY = 7 * 86400
MAX_ATTEMPTS = 50


def parse_schedule(raw: str | list[float] | tuple[float, ...]) -> tuple[float, ...]:
    """LEDGERDESK_WEBHOOK_RETRY_SCHEDULE: comma-separated seconds before each attempt."""
    what = "LEDGERDESK_WEBHOOK_RETRY_SCHEDULE"
    parts = [p.strip() for p in raw.split(",")] if isinstance(raw, str) else list(raw)
    delays = []
    for part in parts:
        try:
            delay = float(part)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: {part!r} is not a number of seconds") from None
        if not 0 <= delay <= MAX_RETRY_DELAY:
            raise ConfigError(f"{what}: each delay must be 0 to {MAX_RETRY_DELAY} seconds")
        delays.append(delay)
    if not 1 <= len(delays) <= MAX_ATTEMPTS:
        raise ConfigError(f"{what}: give 1 to {MAX_ATTEMPTS} delays, e.g. 0,5,300,1800")
    return tuple(delays)


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"LEDGERDESK_TIMEZONE: unknown time zone {name!r}") from None
