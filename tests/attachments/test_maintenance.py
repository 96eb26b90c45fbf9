"""Storage that stays clean: verify, orphans, leftovers, and a collector that never races."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.orm import Session

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.attachments.repository import BlobRepository
from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import Attachment, BlobChunk, Reply, Ticket, User
from ledgerdesk.runtime import Runtime
from tests.conftest import CLIENT_ADDRESS, make_client
from tests.factories import make_customer
from tests.support import FrozenClock, assert_success, call, json_attachment

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["local", "database"])
def store_app(
    request: pytest.FixtureRequest, settings: Settings, clock: FrozenClock
) -> Iterator[LedgerdeskApp]:
    app = create_app(settings.with_overrides(attachment_store=request.param), clock=clock)
    yield app
    app.state.runtime.close()


@pytest.fixture
def store_runtime(store_app: LedgerdeskApp) -> Runtime:
    runtime: Runtime = store_app.state.runtime
    return runtime


async def stored_ticket(app: LedgerdeskApp, *files: tuple[str, bytes]) -> int:
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    async with make_client(app, CLIENT_ADDRESS) as client:
        response = await call(
            client,
            caller,
            "createTicket",
            title="T",
            content="C",
            attachments=[json_attachment(name, data) for name, data in files],
        )
    ticket_id: int = assert_success(response)["ticketId"]
    return ticket_id


def put_orphan(runtime: Runtime, data: bytes) -> str:
    """Bytes stored as a killed request would leave them: no attachment row."""
    writer = IncomingWriter(runtime.incoming_dir, 1 << 20, "orphan")
    writer.write(data)
    incoming = writer.finish("orphan", "application/octet-stream")
    with runtime.transaction(write=True) as (session, blobs):
        blobs.add(session, incoming)
    incoming.discard()
    return incoming.sha256


def cli_env(runtime: Runtime) -> dict[str, str]:
    return {
        "LEDGERDESK_DATABASE_URL": runtime.settings.database_url,
        "LEDGERDESK_DATA_DIR": str(runtime.settings.data_dir),
        "LEDGERDESK_ATTACHMENT_STORE": runtime.settings.attachment_store,
    }


def verify(runtime: Runtime, *flags: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(
        cli, ["admin", "storage", "verify", "--json", *flags], env=cli_env(runtime)
    )
    assert result.output, result.exception
    report: dict[str, object] = json.loads(result.output)
    return result.exit_code, report


async def test_a_clean_store_verifies_healthy(
    store_app: LedgerdeskApp, store_runtime: Runtime
) -> None:
    await stored_ticket(store_app, ("a.txt", b"alpha"), ("b.txt", b"beta"))
    await stored_ticket(store_app, ("again.txt", b"alpha"))  # the same bytes, stored once
    code, report = verify(store_runtime)
    assert code == 0
    assert report["store"] == store_runtime.settings.attachment_store
    assert report["checked"] == 2
    assert (report["missing"], report["corrupt"], report["orphans"], report["leftovers"]) == (
        [],
        [],
        [],
        [],
    )


async def test_changed_bytes_are_reported_corrupt(
    store_app: LedgerdeskApp, store_runtime: Runtime
) -> None:
    await stored_ticket(store_app, ("a.txt", b"alpha"))
    sha256 = hashlib.sha256(b"alpha").hexdigest()
    if store_runtime.settings.attachment_store == "local":
        path = store_runtime.settings.data_dir / "attachments" / sha256[:2] / sha256[2:4] / sha256
        path.chmod(0o644)
        path.write_bytes(b"alphX")
    else:
        with unit_of_work(store_runtime.sessions, write=True) as session:
            session.execute(
                update(BlobChunk).where(BlobChunk.sha256 == sha256).values(data=b"alphX")
            )
    code, report = verify(store_runtime)
    assert code == 1
    assert report["corrupt"] == [sha256]
    assert report["healthy"] is False


async def test_lost_bytes_are_reported_missing(
    store_app: LedgerdeskApp, store_runtime: Runtime
) -> None:
    await stored_ticket(store_app, ("a.txt", b"alpha"))
    sha256 = hashlib.sha256(b"alpha").hexdigest()
    with unit_of_work(store_runtime.sessions, write=True) as session:
        store_runtime.blobs.remove(session, [sha256])
    code, report = verify(store_runtime)
    assert code == 1
    assert report["missing"] == [sha256]


async def test_orphans_are_listed_and_removed_by_repair_and_nothing_else_is(
    store_app: LedgerdeskApp, store_runtime: Runtime
) -> None:
    await stored_ticket(store_app, ("kept.txt", b"kept"))
    orphan = put_orphan(store_runtime, b"nobody points at me")
    code, report = verify(store_runtime)
    assert (code, report["orphans"]) == (0, [orphan])
    code, report = verify(store_runtime, "--repair")
    assert (code, report["orphans"], report["removed"]) == (0, [orphan], 1)
    code, report = verify(store_runtime)
    assert (report["orphans"], report["checked"], report["healthy"]) == ([], 1, True)


def test_leftover_uploads_of_dead_processes_are_listed_and_removed(runtime: Runtime) -> None:
    root = runtime.incoming_dir.parent
    dead = root / "p999999-deadbeef0000"
    dead.mkdir(parents=True)
    (dead / "in-x.part").write_bytes(b"half an upload")
    (root / "p999999-deadbeef0000.lock").write_bytes(b"")
    code, report = verify(runtime)
    assert (code, report["leftovers"]) == (0, [str(dead)])
    assert dead.exists()
    code, report = verify(runtime, "--repair")
    assert (code, report["leftovers"]) == (0, [str(dead)])
    assert report["leftovers"] == [str(dead)]
    assert not dead.exists()
    # This live process's own folder is never touched.
    assert runtime.incoming_dir.is_dir()


def test_the_collector_waits_for_a_transaction_storing_bytes(store_runtime: Runtime) -> None:
    """Bytes linked (or inserted) by a transaction not yet committed are never collected."""
    runtime = store_runtime
    writer = IncomingWriter(runtime.incoming_dir, 1 << 20, "inflight")
    writer.write(b"in flight")
    incoming = writer.finish("inflight", "application/octet-stream")
    collected: list[str] = []
    with runtime.transaction(write=True) as (session, blobs):
        blobs.add(session, incoming)
        collector = threading.Thread(
            target=lambda: collected.extend(runtime.maintenance.collect_orphans())
        )
        collector.start()
        time.sleep(0.3)
        if runtime.settings.attachment_store == "local":
            # The linked file is a candidate; removing it waits for the lock that the
            # storing transaction holds until it ends. (An uncommitted blob row of the
            # database store is not even visible to the collector.)
            assert collector.is_alive()
        make_row_for(session, incoming.sha256)
    collector.join(10)
    assert not collector.is_alive()
    assert collected == []
    with unit_of_work(runtime.sessions, write=False) as session:
        assert BlobRepository(session).used([incoming.sha256]) == {incoming.sha256}
        assert runtime.blobs.stored(session) == [incoming.sha256]
    incoming.discard()


def make_row_for(session: Session, sha256: str) -> None:
    """An attachment row for these bytes, made in the storing transaction."""
    user = User(name="U", email=None, is_staff=False, created_at=0)
    session.add(user)
    session.flush()
    ticket = Ticket(
        code=12345678,
        user_id=user.id,
        title="T",
        reference="",
        status=1,
        priority=2,
        created_at=0,
        status_updated_at=0,
        last_updated_at=0,
    )
    session.add(ticket)
    session.flush()
    reply = Reply(ticket_id=ticket.id, author_id=user.id, title="T", content="C", created_at=0)
    session.add(reply)
    session.flush()
    session.add(
        Attachment(
            ticket_id=ticket.id,
            reply_id=reply.id,
            name="f",
            content_type="text/plain",
            size=9,
            sha256=sha256,
        )
    )
    session.flush()


async def test_start_up_cleans_what_earlier_runs_left(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    first = create_app(settings, clock=clock)
    runtime: Runtime = first.state.runtime
    orphan = put_orphan(runtime, b"left by a killed request")
    leftover = runtime.incoming_dir / "in-half.part"
    leftover.write_bytes(b"half")
    # The process dies without closing: its lock goes with it (here: closed by hand).
    assert runtime.incoming._lock is not None
    os.close(runtime.incoming._lock)
    runtime.engine.dispose()
    second = create_app(settings, clock=clock)
    later: Runtime = second.state.runtime
    leftovers, orphans = later.maintenance.clean()
    assert leftover.parent in leftovers
    assert orphans == [orphan]
    assert not leftover.exists()
    later.close()
