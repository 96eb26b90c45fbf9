"""Live pages: the queue and a ticket's page hear of what the event log says changed
(server-sent events, after the page's own place in the log), and a ticket's page of the
other staff on it and writing there; the feed that reads the log once for all pages."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.config import Settings
from ledgerdesk.db.prepared import session_db
from ledgerdesk.events.log import EventLog
from ledgerdesk.live import QUEUE_SIZE, Change, LiveFeed
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.queries import TicketQueries
from ledgerdesk.web.console import live
from tests.events.test_write_paths import events_after, last_id
from tests.factories import make_customer, make_ticket, make_user, staff_reply
from tests.servers import free_port, start, stop
from tests.support import FrozenClock
from tests.web.conftest import PASSWORD, WebClient, csrf_of, make_person

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream ends at once here, so the test client (which reads an answer whole)
    gets what it said."""
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.2)
    monkeypatch.setattr(live, "PRESENCE_EVERY", 0.05)


def frames(body: str) -> list[tuple[str, dict[str, object] | list[object], str | None]]:
    """The (event, data, id) of each event of a stream."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
    return found


def since_of(html: str) -> int:
    found = re.search(r'data-live="/console/live\?[^"]*since=(\d+)', html)
    assert found, "the page is not live"
    return int(found.group(1))


async def test_the_queue_hears_of_every_ticket_changed_since_it_was_drawn(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    first = make_ticket(runtime, caller.user_id, title="First")
    page = await staff.get("/console/tickets")
    since = since_of(page.text)
    second = make_ticket(runtime, caller.user_id, title="Second")
    sam = make_user(runtime, name="Sam", staff=True)
    staff_reply(runtime, first, sam)
    stream = await staff.get(f"/console/live?since={since}")
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-store"
    assert stream.text.startswith("retry: ")
    heard = frames(stream.text)
    assert [(event, data["ticket"]) for event, data, _ in heard] == [  # type: ignore[call-overload]
        ("changed", second),
        ("changed", first),
    ]
    assert [data["type"] for _, data, _ in heard] == ["ticket.created", "ticket.replied"]  # type: ignore[call-overload]
    last = heard[-1][2]
    assert last is not None
    # Opened again with the last event's id: nothing twice.
    again = await staff.http.get("/console/live", headers={"last-event-id": last})
    assert frames(again.text) == []


async def test_a_ticket_page_hears_of_its_own_ticket_only(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    mine = make_ticket(runtime, caller.user_id, title="Mine")
    other = make_ticket(runtime, caller.user_id, title="Other")
    page = await staff.get(f"/console/tickets/{mine}")
    since = since_of(page.text)
    sam = make_user(runtime, name="Sam", staff=True)
    staff_reply(runtime, other, sam)
    staff_reply(runtime, mine, sam)
    stream = await staff.get(f"/console/live?ticket={mine}&since={since}")
    assert [(e, d["ticket"]) for e, d, _ in frames(stream.text) if e == "changed"] == [  # type: ignore[call-overload]
        ("changed", mine)
    ]


async def test_who_else_is_on_a_ticket_page_and_who_writes_there(
    runtime: Runtime, clock: FrozenClock, staff: WebClient, other_web: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id, title="Outage")
    make_person(runtime, "Bea Backup", "bea@example.com", staff=True)
    assert (await other_web.sign_in("bea@example.com")).status_code == 303
    alone = await staff.get(f"/console/live?ticket={ticket_id}")
    assert [d for e, d, _ in frames(alone.text) if e == "presence"] == [[]]
    bea_page = await other_web.get(f"/console/tickets/{ticket_id}")
    before = last_id(runtime)
    told = await other_web.http.post(
        f"/console/tickets/{ticket_id}/presence",
        data={"csrf": csrf_of(bea_page.text), "typing": "1"},
    )
    assert told.status_code == 204
    assert events_after(runtime, before) == []  # bookkeeping: no event
    seen = await staff.get(f"/console/live?ticket={ticket_id}")
    present = [d for e, d, _ in frames(seen.text) if e == "presence"]
    assert present == [
        [{"user_id": present[0][0]["user_id"], "name": "Bea Backup", "typing": True}]
    ]  # type: ignore[index]
    # The page itself says so too (without script).
    page = await staff.get(f"/console/tickets/{ticket_id}")
    assert "Also here: <strong><bdi>Bea Backup</bdi></strong> (writing a reply)" in page.text
    clock.advance(20)  # writing is said to stop, being there holds longer
    page = await staff.get(f"/console/tickets/{ticket_id}")
    assert "Also here: <strong><bdi>Bea Backup</bdi></strong></p>" in page.text
    clock.advance(60)
    page = await staff.get(f"/console/tickets/{ticket_id}")
    assert "Also here" not in page.text


async def test_presence_takes_a_session_a_token_and_a_ticket(
    runtime: Runtime, staff: WebClient, other_web: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = await staff.get(f"/console/tickets/{ticket_id}")
    token = csrf_of(page.text)
    missing = await staff.http.post("/console/tickets/999999/presence", data={"csrf": token})
    assert missing.status_code == 404
    forged = await staff.http.post(f"/console/tickets/{ticket_id}/presence", data={"csrf": "x"})
    assert forged.status_code in (400, 403)
    anonymous = await other_web.http.post(f"/console/tickets/{ticket_id}/presence", data={})
    assert anonymous.status_code == 303
    with runtime.transaction(write=False) as (session, _):
        assert (
            TicketQueries(session_db(session)).present(ticket_id, runtime.clock.timestamp()) == []
        )


async def test_the_stream_is_for_signed_in_staff_and_checks_what_it_is_given(
    runtime: Runtime, staff: WebClient, other_web: WebClient
) -> None:
    anonymous = await other_web.http.get("/console/live")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/signin")
    assert (await staff.http.get("/console/live?ticket=abc")).status_code == 400
    assert (await staff.http.get("/console/live?since=-1")).status_code == 400
    assert (await staff.http.get("/console/live?ticket=424242")).status_code == 404


async def test_a_customer_has_no_stream(runtime: Runtime, ann: tuple[int, WebClient]) -> None:
    _, web = ann
    answer = await web.http.get("/console/live")
    assert answer.status_code in (303, 403, 404)
    assert "text/event-stream" not in answer.headers.get("content-type", "")


async def test_the_feed_reads_the_log_once_for_every_page(
    runtime: Runtime, app: LedgerdeskApp
) -> None:
    feed = LiveFeed(runtime, poll=0.05)
    caller = make_customer(runtime, "Ann")
    task = asyncio.create_task(feed.run())
    try:
        for _ in range(100):  # its first round: its place in the log
            if feed.position is not None:
                break
            await asyncio.sleep(0.02)
        with feed.subscribe() as (first, _), feed.subscribe() as (second, _):
            ticket_id = make_ticket(runtime, caller.user_id)  # a commit wakes it
            heard = await asyncio.wait_for(first.get(), 5)
            assert heard == await asyncio.wait_for(second.get(), 5)
            assert heard is not None
            assert (heard.type, heard.ticket_id) == ("ticket.created", ticket_id)
            with runtime.transaction(write=False) as (session, _):
                assert heard.id == EventLog(session).last_id()
            make_user(runtime, name="Not a ticket")  # customer.created: not for pages
            await asyncio.sleep(0.3)
            assert first.empty()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_page_far_behind_is_told_to_reload(runtime: Runtime) -> None:
    feed = LiveFeed(runtime)
    with feed.subscribe() as (queue, _):
        from ledgerdesk.live import _offer

        for n in range(QUEUE_SIZE + 1):
            _offer(queue, Change(n, "ticket.replied", 1))
        assert queue.qsize() == 1
        assert queue.get_nowait() is None


@pytest.mark.slow
def test_a_stopping_server_closes_its_event_streams_at_once(
    migrated_database: str, tmp_path: Path
) -> None:
    """The streams would otherwise keep a server that was told to stop running for as
    long as each has left (up to STREAM_SECONDS)."""
    runtime = Runtime.build(Settings(database_url=migrated_database, data_dir=tmp_path))
    try:
        make_person(runtime, "Sam Stream", "stream@example.com", staff=True)
    finally:
        runtime.close()
    port = free_port()
    process = start(
        ["serve", "--port", str(port)],
        port,
        {"LEDGERDESK_DATABASE_URL": migrated_database, "LEDGERDESK_DATA_DIR": str(tmp_path)},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            page = client.get("/signin")
            signed = client.post(
                "/signin",
                data={
                    "csrf": csrf_of(page.text),
                    "email": "stream@example.com",
                    "password": PASSWORD,
                },
            )
            assert signed.status_code == 303
            with client.stream("GET", "/console/live") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                next(stream.iter_bytes())  # the stream is open (its first line)
                began = time.monotonic()
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
                assert time.monotonic() - began < 5
    finally:
        output = stop(process)
    assert "Traceback" not in output, output
