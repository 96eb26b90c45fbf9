"""Settings built once from ``LEDGERDESK_*`` environment variables.

Every value is checked here, at start-up, so that a typo in a deployment fails with one
clear line instead of surfacing as odd behaviour under load.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

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


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 150 * 1024 * 1024
    trusted_proxies: tuple[IPNetwork, ...] = ()
    rate_limit: int = 600
    # Requests a minute of one customer across all their keys (0: twice rate_limit), and
    # how many usable keys a customer may hold: many keys do not multiply a customer's rate.
    customer_rate_limit: int = 0
    max_keys_per_customer: int = 20
    # The limits count per window of this many seconds (a minute, as SPEC says).
    rate_limit_window: int = 60
    auth_failure_limit: int = 10
    redis_url: str | None = None
    db_pool_size: int = 10
    # How long one statement may run (PostgreSQL's statement_timeout; asyncpg's reads also
    # time out on the client) and how long a request waits for the database at all; how
    # long opening a connection may take. A database that hangs then costs a request a
    # clean 503, not a request that never ends.
    db_timeout: float = 30.0
    db_connect_timeout: float = 5.0
    # Request-body bytes held in memory at once (JSON and form bodies count twice: raw
    # and parsed). 256 MiB leaves room for a few workers on a 2 GiB server.
    body_memory_bytes: int = 256 * 1024 * 1024
    # Slow clients: the request line and headers must arrive within header_timeout;
    # the body may pause at most body_timeout between two pieces; an idle keep-alive
    # connection is closed after keepalive_timeout; at most max_connections at once.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000
    # A body must arrive within body_deadline seconds in all and, after its first
    # body_timeout seconds, at an average of body_min_rate bytes a second (a client
    # dribbling a byte every few seconds is cut off, a slow but honest upload is not).
    body_deadline: float = 600.0
    body_min_rate: int = 16384
    # An answer the client stops reading is dropped after send_timeout seconds.
    send_timeout: float = 30.0
    # Open connections from one client address (an IPv6 /64 counts as one); trusted
    # proxies are not counted (they carry everyone's connections).
    max_connections_per_address: int = 100
    # "i3d": answer as the original service's clients expect (every envelope with HTTP
    # 200; getTicketAttachment answers the envelope unless "encoding": "raw").
    compat: str = ""
    # "local" (a directory under data_dir) or "database" (the blobs table); by default
    # the database when it is PostgreSQL, so that several servers can share it.
    attachment_store: str = ""
    # Web sign-in: failed attempts allowed per account in SIGNIN_WINDOW seconds (an
    # address gets four times as many, for offices behind one NAT).
    signin_failure_limit: int = 5
    # Where people reach this server, for the links the admin CLI prints.
    public_url: str = "http://127.0.0.1:8080"
    # The currency of every invoice (ISO 4217), shown beside every amount on the pages.
    currency: str = "EUR"

    @property
    def i3d_compatible(self) -> bool:
        """Whether answers follow the original service's habits (LEDGERDESK_COMPAT=i3d)."""
        return self.compat == "i3d"

    @property
    def customer_limit(self) -> int:
        """Requests a minute of one customer across all their keys."""
        return self.customer_rate_limit or 2 * self.rate_limit

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced, checked like the original."""
        return replace(self, **changes)

    def __post_init__(self) -> None:
        if self.max_attachment_bytes < 1:
            raise ConfigError("LEDGERDESK_MAX_ATTACHMENT_BYTES must be at least 1")
        if self.max_body_bytes < 1024:
            raise ConfigError("LEDGERDESK_MAX_BODY_BYTES must be at least 1024")
        if self.rate_limit < 1:
            raise ConfigError("LEDGERDESK_RATE_LIMIT must be at least 1")
        if self.customer_rate_limit < 0:
            raise ConfigError("LEDGERDESK_CUSTOMER_RATE_LIMIT must be 0 (twice the key's) or more")

        if self.max_keys_per_customer < 1:
            raise ConfigError("LEDGERDESK_MAX_KEYS_PER_CUSTOMER must be at least 1")
        if not 1 <= self.rate_limit_window <= 86400:
            raise ConfigError("LEDGERDESK_RATE_LIMIT_WINDOW must be 1 to 86400 seconds")
        if self.auth_failure_limit < 1:
            raise ConfigError("LEDGERDESK_AUTH_FAILURE_LIMIT must be at least 1")
        if self.db_pool_size < 1:
            raise ConfigError("LEDGERDESK_DB_POOL_SIZE must be at least 1")
        if self.body_memory_bytes < 1024 * 1024:
            raise ConfigError("LEDGERDESK_BODY_MEMORY_BYTES must be at least 1048576")
        for name, value in (
            ("LEDGERDESK_HEADER_TIMEOUT", self.header_timeout),
            ("LEDGERDESK_BODY_TIMEOUT", self.body_timeout),
            ("LEDGERDESK_KEEPALIVE_TIMEOUT", self.keepalive_timeout),
            ("LEDGERDESK_BODY_DEADLINE", self.body_deadline),
            ("LEDGERDESK_SEND_TIMEOUT", self.send_timeout),
            ("LEDGERDESK_DB_TIMEOUT", self.db_timeout),
            ("LEDGERDESK_DB_CONNECT_TIMEOUT", self.db_connect_timeout),
        ):
            if not 0 < value <= 3600:
                raise ConfigError(f"{name} must be more than 0 and at most 3600 seconds")
        if self.max_connections < 1:
            raise ConfigError("LEDGERDESK_MAX_CONNECTIONS must be at least 1")
        if self.max_connections_per_address < 1:
            raise ConfigError("LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS must be at least 1")
        if self.body_min_rate < 0:
            raise ConfigError("LEDGERDESK_BODY_MIN_RATE must be 0 (no minimum) or more")
        if self.body_deadline < self.body_timeout:
            raise ConfigError("LEDGERDESK_BODY_DEADLINE must be at least LEDGERDESK_BODY_TIMEOUT")
        if self.compat not in ("", "i3d"):
            raise ConfigError(f"LEDGERDESK_COMPAT must be empty or 'i3d', not {self.compat!r}")
        if self.redis_url is not None and not self.redis_url.removeprefix("async+").startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(
                "LEDGERDESK_REDIS_URL must be redis://host:port/db, rediss://... or unix://..., "
                f"not {self.redis_url!r}"
            )
        if self.signin_failure_limit < 1:
            raise ConfigError("LEDGERDESK_SIGNIN_FAILURE_LIMIT must be at least 1")
        if not self.public_url.startswith(("http://", "https://")):
            raise ConfigError(
                "LEDGERDESK_PUBLIC_URL must start with http:// or https://, "
                f"not {self.public_url!r}"
            )
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if not (len(self.currency) == 3 and self.currency.isascii() and self.currency.isupper()):
            raise ConfigError(
                f"LEDGERDESK_CURRENCY must be an ISO 4217 code such as EUR, not {self.currency!r}"
            )
        if not self.attachment_store:
            object.__setattr__(self, "attachment_store", "local" if self.is_sqlite else "database")
        if self.attachment_store not in ("local", "database"):
            raise ConfigError(
                "LEDGERDESK_ATTACHMENT_STORE must be 'local' or 'database', "
                f"not {self.attachment_store!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("LEDGERDESK_DATA_DIR") or DEFAULT_DATA_DIR)
        return cls(
            database_url=normalize_database_url(
                env.get("LEDGERDESK_DATABASE_URL") or sqlite_url(data_dir)
            ),
            data_dir=data_dir,
            timezone=_timezone(env.get("LEDGERDESK_TIMEZONE") or "UTC"),
            max_attachment_bytes=_int(env, "LEDGERDESK_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024),
            max_body_bytes=_int(env, "LEDGERDESK_MAX_BODY_BYTES", 150 * 1024 * 1024),
            trusted_proxies=parse_networks(
                env.get("LEDGERDESK_TRUSTED_PROXIES", ""), "LEDGERDESK_TRUSTED_PROXIES"
            ),
            rate_limit=_int(env, "LEDGERDESK_RATE_LIMIT", 600),
            customer_rate_limit=_int(env, "LEDGERDESK_CUSTOMER_RATE_LIMIT", 0),
            max_keys_per_customer=_int(env, "LEDGERDESK_MAX_KEYS_PER_CUSTOMER", 20),
            rate_limit_window=_int(env, "LEDGERDESK_RATE_LIMIT_WINDOW", 60),
            auth_failure_limit=_int(env, "LEDGERDESK_AUTH_FAILURE_LIMIT", 10),
            redis_url=env.get("LEDGERDESK_REDIS_URL") or None,
            db_pool_size=_int(env, "LEDGERDESK_DB_POOL_SIZE", 10),
            db_timeout=_float(env, "LEDGERDESK_DB_TIMEOUT", 30.0),
            db_connect_timeout=_float(env, "LEDGERDESK_DB_CONNECT_TIMEOUT", 5.0),
            body_memory_bytes=_int(env, "LEDGERDESK_BODY_MEMORY_BYTES", 256 * 1024 * 1024),
            header_timeout=_float(env, "LEDGERDESK_HEADER_TIMEOUT", 10.0),
            body_timeout=_float(env, "LEDGERDESK_BODY_TIMEOUT", 30.0),
            keepalive_timeout=_float(env, "LEDGERDESK_KEEPALIVE_TIMEOUT", 5.0),
            max_connections=_int(env, "LEDGERDESK_MAX_CONNECTIONS", 1000),
            body_deadline=_float(env, "LEDGERDESK_BODY_DEADLINE", 600.0),
            body_min_rate=_int(env, "LEDGERDESK_BODY_MIN_RATE", 16384),
            send_timeout=_float(env, "LEDGERDESK_SEND_TIMEOUT", 30.0),
            max_connections_per_address=_int(env, "LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS", 100),
            compat=(env.get("LEDGERDESK_COMPAT") or "").strip().lower(),
            attachment_store=(env.get("LEDGERDESK_ATTACHMENT_STORE") or "").strip().lower(),
            signin_failure_limit=_int(env, "LEDGERDESK_SIGNIN_FAILURE_LIMIT", 5),
            public_url=env.get("LEDGERDESK_PUBLIC_URL") or "http://127.0.0.1:8080",
            currency=(env.get("LEDGERDESK_CURRENCY") or "EUR").strip().upper(),
        )


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


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"LEDGERDESK_TIMEZONE: unknown time zone {name!r}") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value != value:  # NaN
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}")
    return value
