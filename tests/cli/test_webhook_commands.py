"""``ledgerdesk admin webhook``: endpoints, the delivery log, replays and tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, select, update

from ledgerdesk.cli.main import cli
from ledgerdesk.clock import moment_of
from ledgerdesk.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ledgerdesk.webhooks.relay import fan_out
from ledgerdesk.webhooks.signing import is_secret
from tests.cli.test_admin import ok_json, one_line_error

URL = "https://93.184.216.34/hooks"


def create(run: Any, *options: str) -> dict[str, Any]:
    return ok_json(run("admin", "webhook", "create", "--url", URL, *options, "--json"))


def test_create_prints_the_secret_once_and_list_never(run: Any) -> None:
    made = create(run, "--event", "ticket.*", "--event", "invoice.issued", "--note", "crm")
    assert is_secret(made["secret"])
    assert (made["url"], made["eventTypes"], made["note"]) == (
        URL,
        ["ticket.*", "invoice.issued"],
        "crm",
    )
    assert made["ordered"] is True
    listed = ok_json(run("admin", "webhook", "list", "--json"))
    assert [e["id"] for e in listed["endpoints"]] == [made["id"]]
    assert "secret" not in listed["endpoints"][0]
    prose = run("admin", "webhook", "create", "--url", URL, "--unordered")
    assert "Signing secret (shown once" in prose.stdout
    assert "unordered" in run("admin", "webhook", "list").stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--url", "http://93.184.216.34/"], "url: the URL must start with https://"),
        (["--url", "https://169.254.169.254/"], "url: 169.254.169.254 is a link-local address"),
        (["--url", URL, "--event", "tickets"], "event: 'tickets' is no event type"),
        (["--url", URL, "--customer", "999"], "customer: user 999 is no customer"),
    ],
)
def test_refusals_name_the_option(run: Any, options: list[str], message: str) -> None:
    assert message in one_line_error(run("admin", "webhook", "create", *options))


def test_a_customers_endpoint_takes_only_their_kinds_of_events(run: Any) -> None:
    customer = ok_json(run("admin", "user", "create", "--name", "Ann", "--json"))["userId"]
    refused = run(
        "admin",
        "webhook",
        "create",
        "--url",
        URL,
        "--customer",
        str(customer),
        "--event",
        "ticket.note_added",
    )
    assert "no type you receive" in one_line_error(refused)
    made = create(run, "--customer", str(customer))
    assert made["customerId"] == customer
    assert ok_json(run("admin", "webhook", "list", "--json"))["endpoints"] == []
    mine = ok_json(run("admin", "webhook", "list", "--customer", str(customer), "--json"))
    assert [e["id"] for e in mine["endpoints"]] == [made["id"]]


def test_disable_enable_rotate_test_and_delete(run: Any) -> None:
    made = create(run)
    endpoint = str(made["id"])
    off = ok_json(run("admin", "webhook", "disable", endpoint, "--json"))
    assert (off["enabled"], off["disabledReason"]) == (False, "disabled by hand")
    assert "disabled; enable it first" in one_line_error(run("admin", "webhook", "test", endpoint))
    assert ok_json(run("admin", "webhook", "enable", endpoint, "--json"))["enabled"] is True
    rotated = ok_json(run("admin", "webhook", "rotate-secret", endpoint, "--json"))
    assert is_secret(rotated["secret"])
    assert rotated["secret"] != made["secret"]
    assert rotated["previousSecretUntil"] is not None
    assert "A test event is on its way" in run("admin", "webhook", "test", endpoint).stdout
    assert ok_json(run("admin", "webhook", "delete", endpoint, "--json"))["deleted"] is True
    assert "There is no webhook endpoint" in one_line_error(
        run("admin", "webhook", "disable", endpoint)
    )


def test_deliveries_show_every_attempt_and_failed_filters(run: Any, database_url: str) -> None:
    made = create(run)
    ok_json(run("admin", "user", "create", "--name", "Ann", "--json"))
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            from sqlalchemy.orm import Session

            with Session(connection) as session:
                fan_out(session, 1_000)
                session.flush()
            ids = list(connection.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)))
            connection.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == ids[0])
                .values(state="delivered", attempts=2, done_at=2_000, last_status=200)
            )
            connection.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == ids[1])
                .values(attempts=1, last_status=500, last_error="answered 500")
            )
            for delivery, status in ((ids[0], 500), (ids[0], 200), (ids[1], 500)):
                connection.execute(
                    insert(WebhookAttempt).values(
                        delivery_id=delivery,
                        endpoint_id=made["id"],
                        event_id=0,
                        at=1_500,
                        milliseconds=12,
                        status=status,
                        answer="hello",
                        error=None if status == 200 else f"answered {status}",
                    )
                )
    finally:
        engine.dispose()
    shown = ok_json(run("admin", "webhook", "deliveries", str(made["id"]), "--json"))
    assert [d["state"] for d in shown["deliveries"]] == ["pending", "delivered"]
    assert [a["status"] for a in shown["deliveries"][1]["attempts"]] == [500, 200]
    failing = ok_json(run("admin", "webhook", "deliveries", str(made["id"]), "--failed", "--json"))
    assert [d["id"] for d in failing["deliveries"]] == [ids[1]]
    prose = run("admin", "webhook", "deliveries", str(made["id"])).stdout
    assert "answered 500" in prose


def test_replay_an_event_or_a_range(run: Any) -> None:
    made = create(run)
    endpoint = str(made["id"])
    ok_json(run("admin", "user", "create", "--name", "Ann", "--json"))
    newest = json.loads(run("admin", "events", "--json").stdout.splitlines()[-1])["id"]
    one = ok_json(run("admin", "webhook", "replay", endpoint, "--event", str(newest), "--json"))
    assert one["deliveries"] == 1
    ranged = ok_json(run("admin", "webhook", "replay", endpoint, "--since", "2000-01-01", "--json"))
    assert ranged["deliveries"] >= 2  # the endpoint's creation, the customer, the replay
    assert "give --event, or --since" in one_line_error(
        run("admin", "webhook", "replay", endpoint), exit_code=2
    )
    assert "not a date and time" in one_line_error(
        run("admin", "webhook", "replay", endpoint, "--since", "yesterday"), exit_code=2
    )
    assert "until: is before since" in one_line_error(
        run(
            "admin", "webhook", "replay", endpoint, "--since", "2030-01-02", "--until", "2030-01-01"
        )
    )
    assert "there is no event 99999" in one_line_error(
        run("admin", "webhook", "replay", endpoint, "--event", "99999")
    )


def test_the_endpoint_row_keeps_the_secret_only_where_it_signs(database_url: str, run: Any) -> None:
    made = create(run)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.scalar(
                select(WebhookEndpoint.secret).where(WebhookEndpoint.id == made["id"])
            )
            payloads = connection.exec_driver_sql("SELECT payload FROM events").all()
    finally:
        engine.dispose()
    assert stored == made["secret"]
    assert all(made["secret"] not in str(row[0]) for row in payloads)


def test_a_moment_without_an_offset_is_in_the_servers_time_zone(database_url: str) -> None:
    amsterdam = ZoneInfo("Europe/Amsterdam")
    assert moment_of("2026-11-30T12:00", amsterdam) == int(
        datetime(2026, 11, 30, 11, 0, tzinfo=UTC).timestamp()
    )
    assert moment_of("2026-11-30T12:00+00:00", amsterdam) == int(
        datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
    )
    with pytest.raises(ValueError, match="is not a date and time"):
        moment_of("noon", amsterdam)
    runner = CliRunner()
    made = runner.invoke(
        cli, ["--database-url", database_url, "admin", "webhook", "create", "--url", URL, "--json"]
    )
    endpoint = str(json.loads(made.stdout)["id"])
    # In UTC+14 the day already began 14 hours before midnight UTC: an event of now is in it.
    tomorrow_there = runner.invoke(
        cli,
        [
            "--database-url",
            database_url,
            "admin",
            "webhook",
            "replay",
            endpoint,
            "--since",
            datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat(),
            "--json",
        ],
        env={"LEDGERDESK_TIMEZONE": "Pacific/Kiritimati"},
    )
    assert tomorrow_there.exit_code == 0, tomorrow_there.output
    assert json.loads(tomorrow_there.stdout)["deliveries"] >= 1
