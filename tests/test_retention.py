"""Rows that expire are pruned (issue: idempotency rows never expired)."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.cli.main import cli
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import IdempotentRequest, UserToken, WebNotice, WebSession
from ledgerdesk.retention import BATCH, prune
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, system_work
from tests.support import FrozenClock, assert_success, call
from tests.web.conftest import make_person

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


def count(runtime: Runtime, model: type) -> int:
    with unit_of_work(runtime.sessions, write=False) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


async def create_with_key(client: httpx.AsyncClient, runtime: Runtime, key: str) -> None:
    caller = make_customer(runtime, f"Customer {key}")
    answer = await client.post(
        "/api/rest/v2/administration",
        json=caller.body("createTicket", title="t", content="c"),
        headers={"Idempotency-Key": key},
    )
    assert_success(answer)


async def test_answers_older_than_a_day_and_dead_sign_in_rows_are_pruned(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await create_with_key(client, runtime, "old-one")
    user_id = make_person(runtime, "Ann", "ann@example.com")
    with system_work(runtime) as work:
        people = PeopleService.of(work)
        people.issue_link(user_id, "reset", now=clock.now)
        signed = people.begin_session(people.stored_password(user_id), now=clock.now)
        people.leave_notice(signed.secret, message="hello", once={}, now=clock.now)
    clock.advance(DAY + 60)
    await create_with_key(client, runtime, "new-one")
    assert count(runtime, IdempotentRequest) == 2
    removed = prune(runtime)
    assert removed == {
        "idempotent_answers": 1,
        "password_links": 1,
        "web_notices": 1,
        "web_sessions": 1,
        "webhook_log_rows": 0,
    }
    assert count(runtime, IdempotentRequest) == 1
    for model in (UserToken, WebNotice, WebSession):
        assert count(runtime, model) == 0
    # The answer still within its day replays; the pruned key starts afresh.
    assert prune(runtime)["idempotent_answers"] == 0


def test_a_backlog_is_pruned_in_batches(runtime: Runtime, clock: FrozenClock) -> None:
    caller = make_customer(runtime)
    with unit_of_work(runtime.sessions, write=True) as session:
        session.add_all(
            IdempotentRequest(
                user_id=caller.user_id,
                key=f"k{n}",
                fingerprint="f",
                response=b"{}",
                created_at=clock.now - 2 * DAY,
            )
            for n in range(BATCH * 2 + 5)
        )
    assert prune(runtime)["idempotent_answers"] == BATCH * 2 + 5
    assert count(runtime, IdempotentRequest) == 0


def test_db_prune_says_what_it_removed(database_url: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", database_url, "db", "prune", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "idempotent_answers": 0,
        "password_links": 0,
        "web_notices": 0,
        "web_sessions": 0,
        "webhook_log_rows": 0,
    }
    prose = CliRunner().invoke(cli, ["--database-url", database_url, "db", "prune"])
    assert "Removed 0 idempotent answers, 0 password links" in prose.stdout


async def test_a_replay_within_the_day_still_answers_the_first_answer(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    caller = make_customer(runtime)
    body = caller.body("createTicket", title="t", content="c")
    first = await client.post(
        "/api/rest/v2/administration", json=body, headers={"Idempotency-Key": "k"}
    )
    clock.advance(DAY - 60)
    prune(runtime)
    again = await call(client, caller, "getTicketOverview")
    assert len(assert_success(again)["tickets"]) == 1
    replay = await client.post(
        "/api/rest/v2/administration", json=body, headers={"Idempotency-Key": "k"}
    )
    assert replay.json() == first.json()


def test_the_webhook_log_keeps_what_is_younger_than_its_days(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """Attempts and finished deliveries go after LEDGERDESK_WEBHOOK_LOG_DAYS; a pending
    delivery stays, however old."""
    from sqlalchemy import insert

    from ledgerdesk.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

    now_ms = clock.now * 1000
    old = now_ms - 31 * 86_400_000
    young = now_ms - 29 * 86_400_000
    with runtime.transaction(write=True) as (session, _):
        endpoint = WebhookEndpoint(
            url="https://93.184.216.34/",
            event_types=[],
            note="",
            secret="whsec_x",
            enabled=True,
            ordered=True,
            after_event_id=0,
            created_at=clock.now,
        )
        session.add(endpoint)
        session.flush()
        rows = []
        for state, done in (
            ("delivered", old),
            ("failed", old),
            ("delivered", young),
            ("pending", None),
        ):
            rows.append(
                session.scalar(
                    insert(WebhookDelivery)
                    .values(
                        endpoint_id=endpoint.id,
                        event_id=1,
                        kind="event",
                        state=state,
                        attempts=1,
                        next_at=old,
                        created_at=old,
                        done_at=done,
                    )
                    .returning(WebhookDelivery.id)
                )
            )
        for delivery, at in zip(rows, (old, old, young, old), strict=True):
            session.execute(
                insert(WebhookAttempt).values(
                    delivery_id=delivery,
                    endpoint_id=endpoint.id,
                    event_id=1,
                    at=at,
                    milliseconds=5,
                    status=500,
                    answer="",
                    error="answered 500",
                )
            )
    assert prune(runtime)["webhook_log_rows"] == 3 + 2  # three old attempts, two finished
    with runtime.transaction(write=False) as (session, _):
        states = sorted(session.scalars(select(WebhookDelivery.state)))
        attempts = session.scalar(select(func.count()).select_from(WebhookAttempt))
    assert states == ["delivered", "pending"]
    assert attempts == 1
