"""Settings from the environment: defaults, and a clear refusal of nonsense."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ledgerdesk.config import ConfigError, Settings


def test_defaults_follow_the_spec() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("ledgerdesk-data")
    assert settings.database_url == "sqlite+pysqlite:///ledgerdesk-data/ledgerdesk.sqlite3"
    assert settings.timezone.key == "UTC"
    assert settings.max_attachment_bytes == 10485760
    assert settings.max_body_bytes == 157286400
    assert settings.trusted_proxies == ()
    assert settings.rate_limit == 600
    assert settings.auth_failure_limit == 10
    assert settings.redis_url is None
    assert settings.body_memory_bytes == 256 * 1024 * 1024
    assert (settings.header_timeout, settings.body_timeout) == (10.0, 30.0)
    assert (settings.keepalive_timeout, settings.max_connections) == (5.0, 1000)
    assert (settings.body_deadline, settings.body_min_rate) == (600.0, 16384)
    assert (settings.send_timeout, settings.max_connections_per_address) == (30.0, 100)
    assert (settings.db_timeout, settings.db_connect_timeout) == (30.0, 5.0)
    assert (settings.customer_limit, settings.max_keys_per_customer) == (1200, 20)
    assert (settings.shutdown_drain, settings.shutdown_timeout) == (0.0, 30.0)


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "LEDGERDESK_DATABASE_URL": "postgresql://app@db.internal/ledger",
            "LEDGERDESK_DATA_DIR": "/srv/ledgerdesk",
            "LEDGERDESK_TIMEZONE": "Europe/Amsterdam",
            "LEDGERDESK_MAX_ATTACHMENT_BYTES": "2048",
            "LEDGERDESK_MAX_BODY_BYTES": "4096",
            "LEDGERDESK_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32 192.0.2.1",
            "LEDGERDESK_RATE_LIMIT": "60",
            "LEDGERDESK_AUTH_FAILURE_LIMIT": "3",
            "LEDGERDESK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "LEDGERDESK_BODY_MEMORY_BYTES": "67108864",
            "LEDGERDESK_HEADER_TIMEOUT": "2.5",
            "LEDGERDESK_BODY_TIMEOUT": "7",
            "LEDGERDESK_KEEPALIVE_TIMEOUT": "3",
            "LEDGERDESK_MAX_CONNECTIONS": "50",
            "LEDGERDESK_COMPAT": "I3D",
            "LEDGERDESK_BODY_DEADLINE": "120",
            "LEDGERDESK_BODY_MIN_RATE": "0",
            "LEDGERDESK_SEND_TIMEOUT": "9",
            "LEDGERDESK_SHUTDOWN_DRAIN": "4.5",
            "LEDGERDESK_SHUTDOWN_TIMEOUT": "20",
            "LEDGERDESK_LOG_FORMAT": "JSON",
            "LEDGERDESK_ACCESS_LOG": "true",
            "LEDGERDESK_METRICS_ALLOW": "10.9.0.0/16 ::1",
            "LEDGERDESK_BLOB_CACHE_BYTES": "0",
            "LEDGERDESK_METRICS_LISTEN": "10.9.0.1:9464",
            "LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS": "8",
            "LEDGERDESK_DB_TIMEOUT": "12.5",
            "LEDGERDESK_DB_CONNECT_TIMEOUT": "2",
            "LEDGERDESK_CUSTOMER_RATE_LIMIT": "90",
            "LEDGERDESK_MAX_KEYS_PER_CUSTOMER": "3",
            "LEDGERDESK_WEBHOOK_RETRY_SCHEDULE": "0, 1.5,60",
            "LEDGERDESK_WEBHOOK_TIMEOUT": "4",
            "LEDGERDESK_WEBHOOK_CONCURRENCY": "5",
            "LEDGERDESK_WEBHOOK_LOG_DAYS": "7",
            "LEDGERDESK_WEBHOOK_FAILING_DAYS": "2",
            "LEDGERDESK_WEBHOOK_ROTATION_HOURS": "0",
            "LEDGERDESK_WEBHOOK_ALLOW_NETWORKS": "10.20.0.0/16,fd00::/8",
            "LEDGERDESK_WEBHOOK_RELAY": "false",
            "LEDGERDESK_SMTP_URL": "smtps://desk:secret@mail.hosting.example",
            "LEDGERDESK_MAIL_FROM": "Hosting Support <Support@Hosting.Example>",
            "LEDGERDESK_MAIL_ATTACH_BYTES": "0",
            "LEDGERDESK_MAIL_STRANGERS": "Hold",
            "LEDGERDESK_MAIL_UNPROVEN": "hold",
            "LEDGERDESK_MAIL_HOURLY_CAP": "5",
            "LEDGERDESK_MAIL_RELAY": "false",
            "LEDGERDESK_LMTP_LISTEN": "[::1]:2424",
            "LEDGERDESK_IMAP_URL": "imaps://support:pw@imap.hosting.example/INBOX",
            "LEDGERDESK_BUSINESS_HOURS": "mon-fri 08:00-18:00",
            "LEDGERDESK_HOLIDAYS": "2026-12-25",
            "LEDGERDESK_SLA": "4=15/30",
        }
    )
    # The driver ledgerdesk ships with is pinned.
    assert settings.database_url == "postgresql+psycopg://app@db.internal/ledger"
    assert settings.data_dir == Path("/srv/ledgerdesk")
    assert settings.timezone.key == "Europe/Amsterdam"
    assert (settings.max_attachment_bytes, settings.max_body_bytes) == (2048, 4096)
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.1/32"),
    )
    assert (settings.rate_limit, settings.auth_failure_limit) == (60, 3)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.body_memory_bytes == 67108864
    assert (settings.header_timeout, settings.body_timeout, settings.keepalive_timeout) == (
        2.5,
        7.0,
        3.0,
    )
    assert settings.max_connections == 50
    assert (settings.body_deadline, settings.body_min_rate) == (120.0, 0)
    assert (settings.send_timeout, settings.max_connections_per_address) == (9.0, 8)
    assert (settings.shutdown_drain, settings.shutdown_timeout) == (4.5, 20.0)
    assert (settings.log_format, settings.access_log) == ("json", True)
    assert settings.metrics_allow == (
        ipaddress.ip_network("10.9.0.0/16"),
        ipaddress.ip_network("::1/128"),
    )
    assert settings.metrics_address == ("10.9.0.1", 9464)
    assert settings.blob_cache_bytes == 0
    assert (settings.db_timeout, settings.db_connect_timeout) == (12.5, 2.0)
    assert (settings.customer_limit, settings.max_keys_per_customer) == (90, 3)
    assert settings.i3d_compatible
    assert not settings.is_sqlite
    assert settings.webhook_retry_schedule == (0.0, 1.5, 60.0)
    assert (settings.webhook_timeout, settings.webhook_concurrency) == (4.0, 5)
    assert (settings.webhook_log_days, settings.webhook_failing_days) == (7, 2)
    assert settings.webhook_rotation_hours == 0
    assert settings.webhook_allow_networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert settings.webhook_relay is False
    assert settings.smtp_url == "smtps://desk:secret@mail.hosting.example"
    assert settings.mail_from == "Hosting Support <support@hosting.example>"
    assert settings.support_address == "support@hosting.example"
    assert (settings.mail_attach_bytes, settings.mail_hourly_cap) == (0, 5)
    assert (settings.mail_strangers, settings.mail_unproven) == ("hold", "hold")
    assert settings.mail_relay is False
    assert settings.lmtp_address == ("::1", 2424)
    assert settings.imap_url == "imaps://support:pw@imap.hosting.example/INBOX"
    levels = settings.service_levels()
    assert levels is not None
    assert levels.targets == {4: (15, 30)}
    assert levels.schedule.hours[0] == ((480, 1080),)
    assert levels.schedule.tz.key == "Europe/Amsterdam"


def test_sqlite_file_follows_the_data_dir() -> None:
    settings = Settings.from_env({"LEDGERDESK_DATA_DIR": "/var/lib/ld"})
    assert settings.database_url == "sqlite+pysqlite:////var/lib/ld/ledgerdesk.sqlite3"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("LEDGERDESK_DATABASE_URL", "not a url", "not a database URL"),
        ("LEDGERDESK_DATABASE_URL", "mysql://root@localhost/x", "mysql"),
        ("LEDGERDESK_DATABASE_URL", "sqlite://", "memory"),
        ("LEDGERDESK_TIMEZONE", "Mars/Olympus", "Mars/Olympus"),
        ("LEDGERDESK_MAX_ATTACHMENT_BYTES", "ten", "whole number"),
        ("LEDGERDESK_MAX_ATTACHMENT_BYTES", "0", "at least 1"),
        ("LEDGERDESK_MAX_BODY_BYTES", "-5", "at least"),
        ("LEDGERDESK_TRUSTED_PROXIES", "10.0.0.0/99", "10.0.0.0/99"),
        ("LEDGERDESK_RATE_LIMIT", "0", "at least 1"),
        ("LEDGERDESK_AUTH_FAILURE_LIMIT", "1.5", "whole number"),
        ("LEDGERDESK_REDIS_URL", "localhost:6379", "redis://"),
        ("LEDGERDESK_BODY_MEMORY_BYTES", "1000", "at least 1048576"),
        ("LEDGERDESK_HEADER_TIMEOUT", "soon", "number of seconds"),
        ("LEDGERDESK_BODY_TIMEOUT", "0", "more than 0"),
        ("LEDGERDESK_KEEPALIVE_TIMEOUT", "nan", "number of seconds"),
        ("LEDGERDESK_MAX_CONNECTIONS", "0", "at least 1"),
        ("LEDGERDESK_COMPAT", "php", "'i3d'"),
        ("LEDGERDESK_RATE_LIMIT_WINDOW", "0", "1 to 86400"),
        ("LEDGERDESK_BODY_DEADLINE", "5", "at least LEDGERDESK_BODY_TIMEOUT"),
        ("LEDGERDESK_BODY_MIN_RATE", "-1", "0 (no minimum)"),
        ("LEDGERDESK_SEND_TIMEOUT", "0", "more than 0"),
        ("LEDGERDESK_SHUTDOWN_DRAIN", "-1", "must be 0-3600"),
        ("LEDGERDESK_SHUTDOWN_TIMEOUT", "0", "more than 0"),
        ("LEDGERDESK_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("LEDGERDESK_ACCESS_LOG", "loud", "LEDGERDESK_ACCESS_LOG"),
        ("LEDGERDESK_METRICS_ALLOW", "everyone", "'everyone' is not an IP address"),
        ("LEDGERDESK_METRICS_LISTEN", "9464", "host:port, e.g. 127.0.0.1:9464"),
        ("LEDGERDESK_BLOB_CACHE_BYTES", "-1", "0 (no cache)"),
        ("LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS", "0", "at least 1"),
        ("LEDGERDESK_DB_TIMEOUT", "0", "more than 0"),
        ("LEDGERDESK_DB_CONNECT_TIMEOUT", "never", "number of seconds"),
        ("LEDGERDESK_CUSTOMER_RATE_LIMIT", "-1", "twice the key's"),
        ("LEDGERDESK_MAX_KEYS_PER_CUSTOMER", "0", "at least 1"),
        ("LEDGERDESK_WEBHOOK_RETRY_SCHEDULE", "0,soon", "'soon' is not a number of seconds"),
        ("LEDGERDESK_WEBHOOK_RETRY_SCHEDULE", "0,-5", "each delay must be 0 to"),
        ("LEDGERDESK_WEBHOOK_RETRY_SCHEDULE", ",".join(["1"] * 51), "give 1 to 50 delays"),
        ("LEDGERDESK_WEBHOOK_TIMEOUT", "0", "more than 0 and at most 300"),
        ("LEDGERDESK_WEBHOOK_CONCURRENCY", "0", "1 to 1000"),
        ("LEDGERDESK_WEBHOOK_LOG_DAYS", "0", "1 to 3650 days"),
        ("LEDGERDESK_WEBHOOK_ALLOW_NETWORKS", "10.0.0.0/40", "10.0.0.0/40"),
        ("LEDGERDESK_WEBHOOK_RELAY", "maybe", "LEDGERDESK_WEBHOOK_RELAY"),
        ("LEDGERDESK_SMTP_URL", "mail.example.com:587", "smtp://"),
        ("LEDGERDESK_MAIL_FROM", "support", "must be an address"),
        ("LEDGERDESK_MAIL_STRANGERS", "ignore", "'refuse', 'hold' or 'create'"),
        ("LEDGERDESK_MAIL_ATTACH_BYTES", "-1", "0 (never attach)"),
        ("LEDGERDESK_LMTP_LISTEN", "2424", "host:port"),
        ("LEDGERDESK_IMAP_URL", "imaps://imap.example.com/INBOX", "user:password@"),
        ("LEDGERDESK_BUSINESS_HOURS", "weekdays 9-5", "LEDGERDESK_BUSINESS_HOURS"),
        ("LEDGERDESK_HOLIDAYS", "xmas", "not a date"),
        ("LEDGERDESK_SLA", "urgent=5", "priority=first/next"),
    ],
)
def test_nonsense_fails_with_one_clear_line(name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=r".") as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert needle in message
    assert "\n" not in message
